/**
 * Packages that only some features need: the demo datasets (`mnist`, `fashion-mnist`), SQLite and
 * PostgreSQL storage (`better-sqlite3`, `pg`) and PNG figures (`@resvg/resvg-js`,
 * `dejavu-fonts-ttf`). They are optional peer dependencies of tensile, so a project that trains on
 * its own data does not install them; each is loaded by the function that needs it, and a missing
 * one throws an error that says what to install.
 *
 * Example:
 * ```ts
 * const pg = requireOptional<typeof import('pg')>('pg', 'a PostgreSQL run store');
 * // without pg: "tensile: a PostgreSQL run store needs the optional package 'pg', which is not
 * //              installed: npm install pg"
 * ```
 */
import { createRequire } from 'node:module';
import * as path from 'node:path';

/** Resolves from this file, i.e. from tensile's own node_modules upwards (and pnpm's peer links). */
const require = createRequire(import.meta.url);

/** A feature was used whose optional package is missing or does not load. */
export class OptionalDependencyError extends Error {
  override readonly name = 'OptionalDependencyError';

  constructor(
    /** The npm package, e.g. 'pg'. */
    readonly packageName: string,
    /** What needed it, e.g. 'a PostgreSQL run store'. */
    readonly feature: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** True when error says that packageName itself (not something it requires) cannot be found. */
function isPackageMissing(error: unknown, packageName: string): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const { code, message } = error as { code?: unknown; message?: unknown };
  if (code !== 'MODULE_NOT_FOUND' && code !== 'ERR_MODULE_NOT_FOUND') return false;
  if (typeof message !== 'string') return false;
  return message.includes(`'${packageName}'`) || message.includes(`'${packageName}/`);
}

function missingError(packageName: string, feature: string, cause: unknown): OptionalDependencyError {
  return new OptionalDependencyError(
    packageName,
    feature,
    `tensile: ${feature} needs the optional package '${packageName}', which is not installed: ` +
      `npm install ${packageName}`,
    { cause },
  );
}

function brokenError(packageName: string, feature: string, cause: unknown): OptionalDependencyError {
  const reason = cause instanceof Error ? cause.message.split('\n')[0] : String(cause);
  return new OptionalDependencyError(
    packageName,
    feature,
    `tensile: ${feature} needs the package '${packageName}', which is installed but does not load ` +
      `(${reason}); if its install script was skipped, run it: npm rebuild ${packageName}`,
    { cause },
  );
}

/**
 * The CommonJS package packageName, loaded now; throws OptionalDependencyError naming the package
 * and the command to install it when it is missing or fails to load. feature completes the sentence
 * "… needs the optional package": a noun phrase such as 'a PostgreSQL run store'.
 */
export function requireOptional<T>(packageName: string, feature: string): T {
  try {
    return require(packageName) as T;
  } catch (error) {
    if (isPackageMissing(error, packageName)) throw missingError(packageName, feature, error);
    throw brokenError(packageName, feature, error);
  }
}

/** The same for a package loaded with import(), for ES modules or where loading may wait. */
export async function importOptional<T>(packageName: string, feature: string): Promise<T> {
  try {
    return (await import(packageName)) as T;
  } catch (error) {
    if (isPackageMissing(error, packageName)) throw missingError(packageName, feature, error);
    throw brokenError(packageName, feature, error);
  }
}

/**
 * The directory of the installed package packageName, for packages that are data rather than code
 * (datasets, fonts); throws OptionalDependencyError when it is not installed.
 */
export function optionalPackageDirectory(packageName: string, feature: string): string {
  try {
    return path.dirname(require.resolve(`${packageName}/package.json`));
  } catch (error) {
    throw missingError(packageName, feature, error);
  }
}
