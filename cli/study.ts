/**
 * tensile study list|show|export: looks into study storages (SQLite files, PostgreSQL, ...).
 */
import * as fs from 'node:fs';
import { numberOption, parseArgs } from './arguments.js';
import { formatNumber, formatTable, openStorage, Study, storageUrlHelp, type Cell } from '../src/index.js';
import { defaultStorage } from './tune.js';

export const studyHelp = `usage: tensile study <list | show NAME | export NAME> [options]

  list            the studies in the storage, with trial counts and best values
  show NAME       one study: its best trial and a table of all trials
  export NAME     all trials as CSV (default) or JSON

options:
  --storage URL     default ${defaultStorage}; ${storageUrlHelp}
  --format csv|json (export) output format (default csv)
  --output FILE     (export) write to FILE instead of standard output
  --top N           (show) only the N best complete trials, plus the others' count`;

export async function studyCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      storage: { type: 'string', default: defaultStorage },
      format: { type: 'string', default: 'csv' },
      output: { type: 'string' },
      top: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  const [action, name] = positionals;
  if (values.help || action === undefined) {
    console.log(studyHelp);
    return values.help ? 0 : 2;
  }
  if (!['list', 'show', 'export'].includes(action)) {
    console.error(`tensile study: unknown action '${action}'\n\n${studyHelp}`);
    return 2;
  }
  if (action !== 'list' && name === undefined) {
    console.error(`tensile study ${action}: give a study name (see: tensile study list)`);
    return 2;
  }
  const url = values.storage!;
  if (url.startsWith('sqlite:') && !fs.existsSync(url.slice('sqlite:'.length))) {
    console.error(`tensile study: no study database at ${url.slice('sqlite:'.length)} (give --storage)`);
    return 1;
  }
  const storage = await openStorage(url);
  try {
    if (action === 'list') {
      const studies = await storage.listStudies();
      if (studies.length === 0) {
        console.log(`no studies in ${url}`);
        return 0;
      }
      const rows: Cell[][] = studies.map((s) => [
        s.name,
        s.direction,
        Object.values(s.trialCounts).reduce((a, b) => a + b, 0),
        s.trialCounts.complete,
        s.trialCounts.pruned,
        s.trialCounts.failed,
        s.trialCounts.running,
        s.bestValue,
        new Date(s.createdAt).toISOString().slice(0, 19).replace('T', ' '),
      ]);
      console.log(
        formatTable(
          ['study', 'direction', 'trials', 'complete', 'pruned', 'failed', 'running', 'best', 'created'],
          rows,
        ),
      );
      return 0;
    }
    const study = await Study.load(name!, storage, { heartbeat: null });
    if (action === 'export') {
      const text =
        values.format === 'json'
          ? await study.toJson()
          : values.format === 'csv'
            ? await study.toCsv()
            : null;
      if (text === null) throw new Error(`--format must be csv or json, got '${values.format}'`);
      if (values.output === undefined) process.stdout.write(text);
      else {
        fs.writeFileSync(values.output, text);
        console.error(`wrote ${(await study.trials()).length} trials to ${values.output}`);
      }
      return 0;
    }
    const trials = await study.trials();
    const best = await study.bestTrial().catch(() => null);
    console.log(`study '${study.name}' (${study.direction}), ${trials.length} trials`);
    if (best !== null) {
      console.log(`best: trial ${best.number}, value ${formatNumber(best.value!)}`);
      for (const [key, value] of Object.entries(best.params))
        console.log(`  ${key} = ${typeof value === 'number' ? formatNumber(value) : String(value)}`);
    }
    const table = await study.table();
    const keep = table.columns.map((c) => !['started_at', 'completed_at', 'worker'].includes(c));
    let rows = table.rows;
    if (values.top !== undefined) {
      const top = numberOption(values.top, 'top', { integer: true, minimum: 1 })!;
      const sign = study.direction === 'minimize' ? 1 : -1;
      rows = rows
        .filter((r) => r[1] === 'complete')
        .sort((a, b) => sign * ((a[2] as number) - (b[2] as number)))
        .slice(0, top);
    }
    console.log(
      '\n' +
        formatTable(
          table.columns.filter((_, i) => keep[i]),
          rows.map((r) => r.filter((_, i) => keep[i])),
        ),
    );
    if (rows.length < table.rows.length)
      console.log(
        `(${table.rows.length - rows.length} more trials; all: tensile study export ${study.name})`,
      );
    return 0;
  } finally {
    await storage.close();
  }
}
