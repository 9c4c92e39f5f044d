/**
 * The command line's conventions in one place: every command parses its options through `parseArgs`
 * here (node:util's, same signature), so `-h` means `--help` everywhere, and a mistyped option or
 * command becomes a `UsageError` that suggests the nearest valid name and points at `--help`.
 * `describeFailure` turns what a command threw into the one line the user reads, with the exit code
 * (0 ok, 1 failure, 2 usage).
 */
import { parseArgs as parseNodeArguments, type ParseArgsConfig } from 'node:util';

/** A mistake in how the command was called (exit code 2), as opposed to a failure while running (1). */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export const exitCodes = { ok: 0, failure: 1, usage: 2 } as const;

/**
 * Edit distance with adjacent transpositions counted as one edit ('trian' is one from 'train'), as
 * typos are; small strings only (option and command names).
 */
export function editDistance(a: string, b: string): number {
  const rows = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(rows[i - 1]![j]! + 1, rows[i]![j - 1]! + 1, rows[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        best = Math.min(best, rows[i - 2]![j - 2]! + 1);
      }
      rows[i]![j] = best;
    }
  }
  return rows[a.length]![b.length]!;
}

/**
 * The candidate closest to `word`, when it is close enough to be a likely typo: within a third of the
 * word's length in edits, or a prefix of it (`--epoch` for `--epochs`, `--val` for `--validation`).
 */
export function nearest(word: string, candidates: readonly string[]): string | undefined {
  let best: { name: string; distance: number } | undefined;
  for (const name of candidates) {
    const distance = name.startsWith(word) || word.startsWith(name) ? 0.5 : editDistance(word, name);
    if (best === undefined || distance < best.distance) best = { name, distance };
  }
  if (best === undefined) return undefined;
  return best.distance <= Math.max(1, Math.floor(word.length / 3)) ? best.name : undefined;
}

/** "did you mean '--epochs'? " or nothing. */
export function suggestion(word: string, candidates: readonly string[]): string {
  const near = nearest(word, candidates);
  return near === undefined ? '' : `did you mean '${near}'? `;
}

type Options = NonNullable<ParseArgsConfig['options']>;

let currentCommand = 'tensile';

/** Names the command being run ('tensile train'), for the messages of the parses that follow. */
export function enterCommand(words: string): void {
  currentCommand = words;
}

/**
 * node:util's parseArgs with the command line's conventions: `-h` is `--help` for any command that
 * has a `help` option, and node's parse errors become UsageErrors that name the option, suggest the
 * nearest valid one and point at `--help`.
 *
 * @param command the words before the options, e.g. 'tensile train', for the messages (default: the
 *   command named by the last `enterCommand`).
 */
export function parseArgs<T extends ParseArgsConfig>(
  config: T,
  command = currentCommand,
): ReturnType<typeof parseNodeArguments<T>> {
  const options: Options = config.options ?? {};
  const args = (config.args ?? process.argv.slice(2)).map((arg) =>
    arg === '-h' && 'help' in options && !Object.values(options).some((o) => o.short === 'h')
      ? '--help'
      : arg,
  );
  try {
    return parseNodeArguments({ ...config, args }) as ReturnType<typeof parseNodeArguments<T>>;
  } catch (error) {
    throw usageErrorFrom(error, options, command);
  }
}

function usageErrorFrom(error: unknown, options: Options, command: string): unknown {
  const code = (error as { code?: string }).code;
  if (typeof code !== 'string' || !code.startsWith('ERR_PARSE_ARGS_')) return error;
  const message = (error as Error).message;
  const names = Object.keys(options).map((name) => `--${name}`);
  const help = `see '${command} --help'`;
  const quoted = /'([^']+)'/.exec(message)?.[1] ?? '';
  switch (code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION': {
      const option = quoted.split('=')[0]!;
      return new UsageError(`${command}: unknown option '${option}'; ${suggestion(option, names)}${help}`);
    }
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
      return new UsageError(`${command}: unexpected argument '${quoted}' (this command takes none); ${help}`);
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE': {
      // node says e.g. "Option '--epochs <value>' argument missing" or "... does not take an argument".
      const option = /--[\w-]+/.exec(message)?.[0] ?? quoted;
      const what = message.includes('ambiguous')
        ? `needs a value (one that starts with '-' is written ${option}=VALUE)`
        : message.includes('does not take an argument')
          ? 'takes no value'
          : 'needs a value';
      return new UsageError(`${command}: option '${option}' ${what}; ${help}`);
    }
    default:
      return new UsageError(`${command}: ${message}; ${help}`);
  }
}

/** What a numeric option must be: checked when the command line is read, before any work. */
export interface NumberRule {
  integer?: boolean;
  /** Smallest allowed value (inclusive). */
  minimum?: number;
  /** The value must be greater than this. */
  above?: number;
  /** The value must be less than this. */
  below?: number;
}

/**
 * Reads a numeric option's text; undefined stays undefined (the option was not given). Throws a
 * UsageError naming the option, the rule and the text given.
 *
 * @example
 * const epochs = numberOption(values.epochs, 'epochs', { integer: true, minimum: 1 });
 */
export function numberOption(
  text: string | undefined,
  name: string,
  rule: NumberRule = {},
): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  const fail = (what: string): never => {
    throw new UsageError(`${currentCommand}: --${name} must be ${what}, got '${text}'`);
  };
  if (text.trim() === '' || !Number.isFinite(value)) fail('a number');
  const bounds = [
    rule.minimum !== undefined ? `≥ ${rule.minimum}` : '',
    rule.above !== undefined ? `> ${rule.above}` : '',
    rule.below !== undefined ? `< ${rule.below}` : '',
  ].filter((bound) => bound !== '');
  const what = `${rule.integer ? 'an integer' : 'a number'}${bounds.length > 0 ? ` ${bounds.join(' and ')}` : ''}`;
  if (rule.integer && !Number.isInteger(value)) fail(what);
  if (rule.minimum !== undefined && value < rule.minimum) fail(what);
  if (rule.above !== undefined && !(value > rule.above)) fail(what);
  if (rule.below !== undefined && !(value < rule.below)) fail(what);
  return value;
}

const fileErrorWords: Record<string, string> = {
  ENOENT: 'no such file',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EISDIR: 'is a directory',
  ENOTDIR: 'a part of the path is not a directory',
  ENOSPC: 'disk full',
  EROFS: 'read-only file system',
  EEXIST: 'already exists',
  EMFILE: 'too many open files',
  ELOOP: 'too many symbolic links',
  ENAMETOOLONG: 'name too long',
};

const writingCalls = new Set(['write', 'rename', 'mkdir', 'unlink', 'copyfile', 'symlink', 'chmod']);

/**
 * The line a user reads for what a command threw, and the exit code. File-system errors read
 * `cannot read 'FILE': no such file` instead of node's errno text; usage errors exit 2; anything
 * else prints its message. With `verbose`, the stack follows.
 */
export function describeFailure(error: unknown, verbose: boolean): { line: string; exitCode: number } {
  const stack = verbose && error instanceof Error && error.stack !== undefined ? `\n${error.stack}` : '';
  if (error instanceof UsageError) return { line: `${error.message}${stack}`, exitCode: exitCodes.usage };
  const system = error as { code?: unknown; path?: unknown; syscall?: unknown };
  if (typeof system.code === 'string' && typeof system.path === 'string' && system.code in fileErrorWords) {
    const verb = writingCalls.has(String(system.syscall)) ? 'write' : 'read';
    const words = fileErrorWords[system.code]!;
    return {
      line: `tensile: cannot ${verb} '${system.path}': ${words}${stack}`,
      exitCode: exitCodes.failure,
    };
  }
  const message = error instanceof Error ? error.message : String(error);
  const prefixed = message.startsWith('tensile') ? message : `tensile: ${message}`;
  return { line: `${prefixed}${stack}`, exitCode: exitCodes.failure };
}
