/**
 * `tensile report --out report.html`: the runs, studies and explain figures of a store as one
 * self-contained HTML file.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { numberOption, parseArgs } from './arguments.js';
import { buildReport } from '../app/dashboard/index.js';
import { defaultStoreUrl, failLostRuns, openRunStore, sqliteFile, writeFileAtomic } from '../src/index.js';
import { openStorage } from '../src/tune/index.js';

export const reportHelp = `usage: tensile report [options]

Writes one HTML file with the recorded runs (curves and comparison), the studies (their plots) and the
explain figures (each topic's newest full result; a topic that has only --quick runs is shown marked
as a quick run, never in place of a full one). It needs no server and no network: open it in any
browser, or mail it.

options:
  --out FILE        the file to write (default report.html)
  --storage URL     where runs and studies are: sqlite:PATH or postgres://USER@HOST/DB (default ${defaultStoreUrl})
  --title TEXT      page title (default "tensile report")
  --max-points N    points kept per metric series (default 2000; long curves are thinned, spikes kept)`;

export async function reportCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      out: { type: 'string', default: 'report.html' },
      storage: { type: 'string', default: defaultStoreUrl },
      title: { type: 'string', default: 'tensile report' },
      'max-points': { type: 'string', default: '2000' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(reportHelp);
    return 0;
  }
  const maxPoints = numberOption(values['max-points'], 'max-points', { integer: true, minimum: 10 })!;
  const url = values.storage!;
  const file = sqliteFile(url);
  if (file !== null && !fs.existsSync(file)) {
    throw new Error(
      `no store at ${file}: train, tune or explain something first, or name one with --storage`,
    );
  }
  const runs = await openRunStore(url);
  const studies = await openStorage(url);
  try {
    // A report is a snapshot for others: runs whose process was killed should not read as running.
    await failLostRuns(runs);
    const html = await buildReport({ runs, studies, title: values.title!, maxPointsPerSeries: maxPoints });
    writeFileAtomic(values.out!, new TextEncoder().encode(html));
    const listed = (await runs.listRuns()).length;
    const studyCount = (await studies.listStudies()).length;
    console.log(
      `report written to ${path.resolve(values.out!)} (${(html.length / 1024).toFixed(0)} KiB: ${listed} runs, ${studyCount} studies)`,
    );
  } finally {
    await runs.close();
    await studies.close();
  }
  return 0;
}
