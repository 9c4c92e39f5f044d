/**
 * node dist/bench/dashboard.js [--json] [--trials N] [--points N] [--runs N] [--repeats N]
 *
 * How the dashboard copes with large data, measured in Debian's Chromium (playwright-core):
 *   study   a study of 10,000 trials (4 parameters): page load of its plots (optimization history,
 *           importance, learning rate, parallel coordinates, slices) and one redraw of all of them
 *   runs    3 runs of 100,000 metric points each, all selected: page load of their curves and a redraw
 *   live    1,000 new points appended to a selected run: the page's incremental update
 *   api     server time and size of the JSON behind each page
 * Page load is from navigation to the first complete render (document.body.dataset.readyAt);
 * redraws are medians of --repeats calls of window.tensileDashboard.redraw(). The runs live in a
 * SQLite file (as `tensile train` writes them); the study in memory, because writing 10,000 trials
 * with fsync per write would take longer than the measurement.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';
import { SqliteRunStore, type MetricInput } from '../src/track/index.js';
import { startDashboard } from '../app/dashboard/index.js';
import { MemoryStorage, RandomSampler, Study } from '../src/tune/index.js';

const { values } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    trials: { type: 'string', default: '10000' },
    points: { type: 'string', default: '100000' },
    runs: { type: 'string', default: '3' },
    repeats: { type: 'string', default: '5' },
  },
});
const trialCount = Number(values.trials);
const pointCount = Number(values.points);
const runCount = Number(values.runs);
const repeats = Number(values.repeats);

function median(samples: number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'tensile-bench-dashboard-'));
const log = (line: string) => {
  if (!values.json) console.log(line);
};
try {
  log(
    `preparing: a study of ${trialCount.toLocaleString('en-US')} trials, ${runCount} runs of ${pointCount.toLocaleString('en-US')} points`,
  );
  const studies = new MemoryStorage();
  const study = await Study.create({
    storage: studies,
    name: 'bench-study',
    direction: 'maximize',
    sampler: new RandomSampler({ seed: 1 }),
    heartbeat: null,
  });
  await study.optimize(
    (trial) => {
      const lr = trial.suggestFloat('lr', 1e-5, 1, { log: true });
      const batchSize = trial.suggestCategorical('batchSize', [16, 32, 64, 128, 256]);
      const momentum = trial.suggestFloat('momentum', 0, 0.99);
      const dropout = trial.suggestFloat('dropout', 0, 0.5);
      return (
        0.98 -
        0.03 * (Math.log10(lr) + 2.5) ** 2 -
        0.0001 * Math.abs(batchSize - 64) +
        0.01 * momentum -
        0.02 * dropout
      );
    },
    { nTrials: trialCount },
  );
  const runs = new SqliteRunStore(path.join(directory, 'tensile.db'));
  const runIds: number[] = [];
  const epochs = 100;
  const batchesPerEpoch = Math.max(1, Math.floor((pointCount - epochs * 5) / epochs));
  for (let r = 0; r < runCount; r++) {
    const run = await runs.createRun({
      name: `long run ${r + 1}`,
      kind: 'fit',
      config: { lr: 10 ** -(2 + r), batchesPerEpoch },
    });
    runIds.push(run.id);
    for (let epoch = 0; epoch < epochs; epoch++) {
      const points: MetricInput[] = [];
      for (let batch = 0; batch < batchesPerEpoch; batch++) {
        const x = epoch + (batch + 1) / batchesPerEpoch;
        points.push({
          name: 'batchLoss',
          step: epoch * batchesPerEpoch + batch,
          x,
          value: 2.3 * Math.exp(-x / (10 + r * 5)) + 0.05 * Math.sin(batch * 12.9898 + r) ** 2,
        });
      }
      const x = epoch + 1;
      for (const [name, value] of [
        ['loss', 2.3 * Math.exp(-x / (10 + r * 5))],
        ['validationLoss', 2.3 * Math.exp(-x / (12 + r * 5)) + 0.02],
        ['accuracy', 1 - 0.9 * Math.exp(-x / (8 + r * 5))],
        ['validationAccuracy', 0.99 - 0.9 * Math.exp(-x / (9 + r * 5))],
        ['learningRate', 10 ** -(2 + r) * 0.5 * (1 + Math.cos((Math.PI * epoch) / epochs))],
      ] as const) {
        points.push({ name, step: epoch, x, value });
      }
      await runs.logMetrics(run.id, points);
    }
    await runs.finishRun(run.id, 'complete');
  }
  const totalPoints = (await runs.getRun(runIds[0]!)).pointCount;
  const server = await startDashboard({ runs, studies, port: 0 });

  const api: Record<string, { milliseconds: number; kilobytes: number }> = {};
  for (const [name, url] of [
    ['study', `api/studies/${study.id}`],
    ['run metrics', `api/runs/${runIds[0]}/metrics`],
    ['overview', 'api/overview'],
  ] as const) {
    const times: number[] = [];
    let size = 0;
    for (let i = 0; i < repeats; i++) {
      const started = performance.now();
      const body = await (await fetch(server.url + url)).text();
      times.push(performance.now() - started);
      size = body.length;
    }
    api[name] = { milliseconds: median(times), kilobytes: size / 1024 };
  }

  const context = await chromium.launchPersistentContext(path.join(directory, 'profile'), {
    executablePath: '/usr/bin/chromium',
    headless: true,
    viewport: { width: 1400, height: 1000 },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(120_000);
  type Handle = { redraw(): number; refresh(): Promise<void> };
  const load = async (hash: string, selector: string) => {
    const times: number[] = [];
    for (let i = 0; i < Math.min(3, repeats); i++) {
      await page.goto('about:blank');
      await page.goto(server.url + hash);
      await page.locator(selector).waitFor();
      await page.waitForFunction(
        () =>
          (globalThis as unknown as { document: { body: { dataset: Record<string, string> } } }).document.body
            .dataset.readyAt !== undefined,
      );
      times.push(
        Number(
          await page.evaluate(
            () =>
              (globalThis as unknown as { document: { body: { dataset: Record<string, string> } } }).document
                .body.dataset.readyAt,
          ),
        ),
      );
    }
    return median(times);
  };
  const redraw = async () => {
    const times: number[] = [];
    for (let i = 0; i < repeats; i++)
      times.push(
        await page.evaluate(() =>
          (globalThis as unknown as { tensileDashboard: Handle }).tensileDashboard.redraw(),
        ),
      );
    return median(times);
  };

  const studyLoad = await load(`#/studies/${study.id}`, '#chart-parallel[data-points]');
  const studyRedraw = await redraw();
  const runsLoad = await load(`#/runs/${runIds.join(',')}`, '#chart-loss[data-points]');
  const runsRedraw = await redraw();
  const drawnPoints = Number(await page.locator('#chart-loss').getAttribute('data-points'));
  const renderer = await page.locator('#chart-loss').getAttribute('data-renderer');

  // Live: 1,000 more points on the first run, then the page's incremental refresh.
  const appended: MetricInput[] = Array.from({ length: 1000 }, (_, i) => ({
    name: 'batchLoss',
    step: 10_000_000 + i,
    x: epochs + (i + 1) / 1000,
    value: 0.05,
  }));
  await runs.logMetrics(runIds[0]!, appended);
  const liveTimes: number[] = [];
  const started = performance.now();
  await page.evaluate(() =>
    (globalThis as unknown as { tensileDashboard: Handle }).tensileDashboard.refresh(),
  );
  liveTimes.push(performance.now() - started);
  await context.close();
  await server.close();
  await runs.close();

  const result = {
    machine: `${os.cpus()[0]?.model ?? 'cpu'} × ${os.cpus().length}`,
    study: { trials: trialCount, pageLoadMilliseconds: studyLoad, redrawMilliseconds: studyRedraw },
    runs: {
      runs: runCount,
      pointsPerRun: totalPoints,
      pointsDrawn: drawnPoints,
      renderer,
      pageLoadMilliseconds: runsLoad,
      redrawMilliseconds: runsRedraw,
    },
    live: { appendedPoints: appended.length, refreshMilliseconds: liveTimes[0] },
    api,
  };
  if (values.json) console.log(JSON.stringify(result, null, 2));
  else {
    log(`machine: ${result.machine}`);
    log(
      `study of ${trialCount.toLocaleString('en-US')} trials: page load ${studyLoad.toFixed(0)} ms, redraw of all plots ${studyRedraw.toFixed(1)} ms`,
    );
    log(
      `${runCount} runs × ${totalPoints.toLocaleString('en-US')} points (${drawnPoints.toLocaleString('en-US')} in the loss chart, ${renderer}): page load ${runsLoad.toFixed(0)} ms, redraw ${runsRedraw.toFixed(1)} ms`,
    );
    log(
      `live: 1,000 new points fetched and drawn in ${result.live.refreshMilliseconds!.toFixed(0)} ms (measured from Node, including the round trip)`,
    );
    for (const [name, entry] of Object.entries(api))
      log(`api ${name}: ${entry.milliseconds.toFixed(0)} ms, ${entry.kilobytes.toFixed(0)} KiB`);
  }
} finally {
  fs.rmSync(directory, { recursive: true, force: true });
}
