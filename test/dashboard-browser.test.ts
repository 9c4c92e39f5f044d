/**
 * The dashboard in a real browser (Debian's Chromium through playwright-core): the page loads; a
 * training started during the test in another process appears and its curve grows; a study made
 * with the tuning API gets its plots; explain figures show; and `tensile report`'s file renders from
 * disk with no server. Screenshots go to test-artifacts/ (git-ignored). Under the server's
 * Content-Security-Policy: the page breaks none of its rules, an inline script injected into it does
 * not run, a stored HTML or SVG artifact with a script never runs in the dashboard's origin, and a
 * dashboard with an access token works once opened with ?token=.
 *
 * Without /usr/bin/chromium the tests skip with a message, unless the CI environment variable is
 * set: in CI a missing browser is a failure (.ci/run installs it).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { artifacts, chromiumPath, chromiumSkip, requireChromium } from './helpers/chromium.js';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { SqliteRunStore } from '../src/track/index.js';
import { buildReport, startDashboard, type DashboardServer } from '../app/dashboard/index.js';
import { RandomSampler, SqliteStorage, Study, TrialPruned } from '../src/tune/index.js';
import {
  Accuracy,
  Adam,
  Dense,
  F1Score,
  fit,
  manualSeed,
  MeanAbsoluteError,
  mseLoss,
  Random,
  RunTracker,
  Sequential,
  Tensor,
  tensorDataset,
} from '../src/index.js';

/** What the page functions below touch: they run inside Chromium, where these are the DOM's. */
type PageElement = { dataset: Record<string, string | undefined>; naturalWidth?: number };
declare const document: { body: PageElement; querySelector(selector: string): PageElement | null };

const skip = chromiumSkip;
const here = path.dirname(fileURLToPath(import.meta.url));
/** Generous: the machine may be busy with other tests. */
const timeout = 60_000;

describe('dashboard in Chromium', { skip, timeout: 300_000 }, () => {
  let directory = '';
  let databaseFile = '';
  let runs: SqliteRunStore;
  let studies: SqliteStorage;
  let server: DashboardServer;
  let context: BrowserContext;
  let page: Page;
  let studyId = 0;
  /** What Chromium reported as broken rules of the page's Content-Security-Policy, all tests long. */
  const policyViolations: string[] = [];
  const studyTrials = 40;

  before(async () => {
    // In CI a missing browser must fail, not skip.
    requireChromium();
    directory = fs.mkdtempSync(path.join(os.tmpdir(), 'tensile-dashboard-'));
    databaseFile = path.join(directory, 'tensile.db');
    runs = new SqliteRunStore(databaseFile);
    studies = new SqliteStorage(databaseFile);
    server = await startDashboard({ runs, studies, port: 0, pollMilliseconds: 200 });
    context = await chromium.launchPersistentContext(path.join(directory, 'profile'), {
      executablePath: chromiumPath,
      headless: true,
      // The narrowest desktop width the runs table must fit without scrolling sideways.
      viewport: { width: 1280, height: 800 },
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
    page = context.pages()[0] ?? (await context.newPage());
    page.setDefaultTimeout(timeout);
    page.on('console', (message) => {
      if (/Content Security Policy/i.test(message.text())) policyViolations.push(message.text());
    });
  });

  after(async () => {
    await context?.close();
    await server?.close();
    await runs?.close();
    await studies?.close();
    if (directory) fs.rmSync(directory, { recursive: true, force: true });
  });

  /** Waits for the page to finish a render (data-ready counts renders). */
  async function waitReady(previous = 0) {
    await page.waitForFunction((count) => Number(document.body.dataset.ready ?? 0) > count, previous);
  }

  /**
   * Moves the pointer to a spot inside `target` (fractions of its box) until `chart`'s tooltip shows,
   * and returns the tooltip. A live update may redraw the chart between measuring and moving, which
   * detaches the element measured or hides the tooltip again; so measure afresh and retry.
   */
  async function pointAt(chart: string, target: string, at: { x: number; y: number }) {
    const tooltip = page.locator(`${chart} .chart-tooltip`);
    const deadline = Date.now() + timeout;
    for (let attempt = 0; ; attempt++) {
      const box = await page.locator(target).boundingBox();
      if (box !== null) {
        // Alternate by a pixel so that every attempt is a real pointer move.
        await page.mouse.move(box.x + box.width * at.x + (attempt % 2), box.y + box.height * at.y);
        if (await tooltip.isVisible()) return tooltip;
        try {
          await tooltip.waitFor({ state: 'visible', timeout: 1000 });
          return tooltip;
        } catch {
          // redrawn meanwhile: measure again
        }
      }
      assert.ok(
        Date.now() < deadline,
        `no tooltip in ${chart} after pointing at ${target} ${attempt + 1} times`,
      );
      await page.waitForTimeout(100);
    }
  }

  test('the page loads and says how to record a first run', async () => {
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    await page.goto(server.url);
    await waitReady();
    assert.equal(await page.title(), 'tensile dashboard');
    assert.match(await page.locator('main').innerText(), /No runs yet/);
    await page.locator('#live.connected').waitFor();
    await page.screenshot({ path: path.join(artifacts, 'dashboard-empty.png') });
    assert.deepEqual(errors, []);
  });

  test('a training started during the test appears and its curve grows while it runs', async () => {
    await page.goto(`${server.url}#/runs`);
    await waitReady();
    const child: ChildProcess = fork(
      path.join(here, 'dashboard-training-worker.js'),
      [`sqlite:${databaseFile}`, 'live-run', '8', '500'],
      {
        stdio: 'inherit',
      },
    );
    const finished = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      const row = page.locator('table.runs tbody tr', { hasText: 'live-run' });
      await row.waitFor();
      // The page selects a running run by itself; its loss chart fills as epochs end.
      const points = () =>
        page
          .locator('#chart-loss')
          .evaluate((element) => Number((element as unknown as PageElement).dataset.points ?? 0));
      await page.waitForFunction(
        () => Number(document.querySelector('#chart-loss')?.dataset.points ?? 0) > 0,
      );
      const first = await points();
      await page.screenshot({ path: path.join(artifacts, 'dashboard-run-live.png') });
      await page.waitForFunction(
        (count) => Number(document.querySelector('#chart-loss')?.dataset.points ?? 0) > count,
        first,
      );
      const later = await points();
      assert.ok(later > first, `the curve grew from ${first} to ${later} points`);
      assert.equal(await finished, 0);
      await row.locator('.state', { hasText: 'complete' }).waitFor();
      const epochs = await row.locator('td').nth(2).innerText();
      assert.equal(epochs, '8');
      await page.screenshot({ path: path.join(artifacts, 'dashboard-run-complete.png'), fullPage: true });
      // 8 epochs × 3 losses (train, validation, smoothed batch curve from 6 batches each): all drawn.
      await page.waitForFunction(
        () => Number(document.querySelector('#chart-loss')?.dataset.points ?? 0) === 8 + 8 + 8 * 6,
      );
      // The learning rate of every step (8 epochs × 6 batches), drawn over fractional epochs.
      await page.waitForFunction(
        () => Number(document.querySelector('#chart-learning-rate')?.dataset.points ?? 0) === 8 * 6,
      );
      assert.match(await page.locator('#chart-learning-rate svg').innerHTML(), /Learning rate at each step/);
      // Every curve and key names its metric exactly.
      const series = await page
        .locator('#chart-loss')
        .evaluate((element) => (element as unknown as PageElement).dataset.series ?? '');
      assert.deepEqual(series.split('\n'), [
        'live-run training loss (per batch)',
        'live-run training loss',
        'live-run validation loss',
      ]);
      const keys = await page.locator('#chart-accuracy .chart-key text').allTextContents();
      assert.deepEqual(keys, ['training accuracy', 'validation accuracy']);
      // Pointing at the middle of the loss chart shows each curve's value at the nearest epoch.
      const tooltip = await pointAt('#chart-loss', '#chart-loss svg', { x: 0.5, y: 0.5 });
      assert.match(await tooltip.innerText(), /loss: [\d.e-]+ at [\d.]+/);
    } finally {
      child.kill();
    }
  });

  test('the runs table fits 1280 px without sideways scrolling and names every metric exactly', async () => {
    // Longer names and more rows than the live run: the table must wrap, not scroll.
    for (const name of ['resnet18-finetune-imagenette-lr3e-4-batch64-cosine-long-name', 'short']) {
      const run = await runs.createRun({ name, kind: 'finetune', config: { lr: 3e-4 } });
      await runs.updateSummary(run.id, {
        epochs: 120,
        loss: 0.012345678,
        accuracy: 0.99876,
        validationAccuracy: 0.91234,
      });
      await runs.finishRun(run.id, 'complete');
    }
    await page.goto(`${server.url}#/runs`);
    await waitReady();
    await page.locator('table.runs tbody tr', { hasText: 'short' }).waitFor();
    const size = await page.locator('.run-list').evaluate((element) => {
      const box = element as unknown as { scrollWidth: number; clientWidth: number };
      return { scrollWidth: box.scrollWidth, clientWidth: box.clientWidth };
    });
    assert.ok(
      size.scrollWidth <= size.clientWidth,
      `table ${size.scrollWidth} px in a ${size.clientWidth} px box`,
    );
    const pageWidth = await page.evaluate(() => {
      const root = (
        globalThis as unknown as {
          document: { documentElement: { scrollWidth: number; clientWidth: number } };
        }
      ).document.documentElement;
      return { scrollWidth: root.scrollWidth, clientWidth: root.clientWidth };
    });
    assert.ok(pageWidth.scrollWidth <= pageWidth.clientWidth, `page ${pageWidth.scrollWidth} px wide`);
    const headers = await page.locator('table.runs thead th').allInnerTexts();
    assert.deepEqual(
      headers.map((text) => text.replace(/\s+/g, ' ').trim()),
      ['', 'run', 'epochs', 'training loss', 'training accuracy', 'validation accuracy', 'started · time'],
    );
    // Every column is on screen, not behind an inner scroll.
    for (const header of await page.locator('table.runs thead th').all()) {
      const box = await header.boundingBox();
      assert.ok(box !== null && box.x + box.width <= 1280, `header at ${JSON.stringify(box)}`);
    }
    await page.screenshot({ path: path.join(artifacts, 'dashboard-runs-1280.png') });
  });

  test("a study's plots render: history, importance, learning rate, parallel coordinates, slices", async () => {
    const study = await Study.create({
      storage: studies,
      name: 'browser-test-study',
      direction: 'maximize',
      sampler: new RandomSampler({ seed: 7 }),
      heartbeat: null,
    });
    studyId = study.id;
    await study.optimize(
      (trial) => {
        const lr = trial.suggestFloat('lr', 1e-4, 1, { log: true });
        const batchSize = trial.suggestCategorical('batchSize', [32, 64]);
        const dropout = trial.suggestFloat('dropout', 0, 0.5);
        return 0.98 - 0.03 * (Math.log10(lr) + 2) ** 2 - (batchSize === 64 ? 0.005 : 0) - 0.01 * dropout;
      },
      { nTrials: studyTrials },
    );
    await page.goto(`${server.url}#/studies`);
    await waitReady();
    await page.locator('tr', { hasText: 'browser-test-study' }).click();
    await page.waitForFunction(() => document.body.dataset.view?.startsWith('studies/'));
    await page.locator('#chart-parallel[data-points]').waitFor();
    const charts = await page
      .locator('.chart')
      .evaluateAll((elements) =>
        Object.fromEntries(
          elements.map((e) => [
            (e as unknown as PageElement).dataset.chart,
            Number((e as unknown as PageElement).dataset.points),
          ]),
        ),
      );
    assert.equal(charts.history, studyTrials);
    assert.equal(charts.lr, studyTrials);
    assert.equal(charts.parallel, studyTrials);
    assert.equal(charts['slice-lr'], studyTrials);
    assert.equal(charts['slice-batchSize'], studyTrials);
    assert.equal(charts['slice-dropout'], studyTrials);
    assert.equal(charts.importance, 3);
    // The objective depends on lr far more than on the others; the importance plot must say so.
    const firstBar = await page.locator('#chart-importance text').nth(1).textContent();
    assert.equal(firstBar, 'lr');
    assert.match(await page.locator('.best').innerText(), /Best: trial \d+/);
    // A trial's point names the trial and its value when pointed at.
    // (the best-so-far line lies over some points, so move the pointer rather than hover the element)
    const tooltip = await pointAt('#chart-history', '#chart-history circle >> nth=5', { x: 0.5, y: 0.5 });
    assert.match(await tooltip.innerText(), /^trial \d+: [\d.]+/);
    await page.locator('#chart-history').screenshot({ path: path.join(artifacts, 'dashboard-tooltip.png') });
    await page.screenshot({ path: path.join(artifacts, 'dashboard-study.png'), fullPage: true });
  });

  test('a study with pruned trials shows them in the history and the intermediate values, and warns on importance from few trials', async () => {
    const study = await Study.create({
      storage: studies,
      name: 'browser-pruned-study',
      direction: 'maximize',
      sampler: new RandomSampler({ seed: 11 }),
      // Stops a trial whose accuracy after 3 steps is under 0.5 (the curves below decide which).
      pruner: {
        prune: (_study, trial) =>
          trial.intermediateValues.size >= 3 && trial.intermediateValues.get(2)! < 0.5,
      },
      heartbeat: null,
    });
    await study.optimize(
      (trial) => {
        const lr = trial.suggestFloat('lr', 1e-4, 1, { log: true });
        const dropout = trial.suggestFloat('dropout', 0, 0.5);
        if (trial.number === 3) throw new Error('diverged');
        // Accuracy rises with lr over the range (0.55 at 1e-4 to 0.95 at 1); dropout barely matters.
        const ceiling = 0.55 + 0.1 * (Math.log10(lr) + 4) - 0.02 * dropout;
        let accuracy = 0;
        for (let step = 0; step < 10; step++) {
          accuracy = ceiling * (1 - 0.6 ** (step + 1));
          trial.report(accuracy, step);
          if (trial.shouldPrune()) throw new TrialPruned();
        }
        return accuracy;
      },
      { nTrials: 14 },
    );
    const all = await studies.getAllTrials(study.id);
    const pruned = all.filter((trial) => trial.state === 'pruned').map((trial) => trial.number);
    const complete = all.filter((trial) => trial.state === 'complete').map((trial) => trial.number);
    assert.ok(pruned.length >= 2 && complete.length >= 2, `pruned ${pruned}, complete ${complete}`);
    await page.goto(`${server.url}#/studies/${study.id}`);
    await page.waitForFunction(() => document.body.dataset.view?.startsWith('studies/'));
    await page.locator('#chart-intermediate[data-points]').waitFor();
    type Plots = {
      history: { number: number; state: string; value: number }[];
      historyUnplotted: { number: number; state: string }[];
      intermediate: { number: number; state: string; steps: number; endMarker: string | null }[];
      importance: { name: string }[];
      importanceWarning: boolean;
    };
    const plots = await page.evaluate(() =>
      (globalThis as unknown as { tensileDashboard: { studyPlots(): Plots } }).tensileDashboard.studyPlots(),
    );
    // The history: every complete and every pruned trial (at its last reported value); the failed one listed apart.
    assert.deepEqual(
      plots.history.filter((point) => point.state === 'pruned').map((point) => point.number),
      pruned,
    );
    assert.equal(plots.history.length, complete.length + pruned.length);
    for (const point of plots.history.filter((p) => p.state === 'pruned')) {
      const trial = all.find((t) => t.number === point.number)!;
      assert.equal(point.value, trial.intermediateValues.get(2));
    }
    assert.deepEqual(plots.historyUnplotted, [{ number: 3, state: 'failed' }]);
    assert.match(await page.locator('.failed-trials').innerText(), /failed, no value\): trial 3\./);
    assert.equal(
      Number(await page.locator('#chart-history').getAttribute('data-points')),
      plots.history.length,
    );
    // The intermediate values: one curve per reporting trial; pruned ones end at step 2 with a cross.
    assert.equal(plots.intermediate.length, complete.length + pruned.length);
    for (const curve of plots.intermediate) {
      assert.equal(curve.steps, curve.state === 'pruned' ? 3 : 10, JSON.stringify(curve));
      assert.equal(curve.endMarker, curve.state === 'pruned' ? 'cross' : null);
    }
    assert.equal(await page.locator('#chart-intermediate .end-marker.cross').count(), pruned.length);
    assert.equal(
      Number(await page.locator('#chart-intermediate').getAttribute('data-end-markers')),
      pruned.length,
    );
    // Importance from fewer than 20 complete trials comes with a warning, and still finds lr.
    assert.ok(plots.importanceWarning);
    assert.match(
      await page.locator('.importance-note').innerText(),
      new RegExp(`Importance from ${complete.length} complete trials; below 20 it is a rough guide`),
    );
    assert.equal(plots.importance[0]!.name, 'lr');
    // Pointing at a pruned curve's cross names the trial.
    const tooltip = await pointAt('#chart-intermediate', '#chart-intermediate .end-marker.cross >> nth=0', {
      x: 0.5,
      y: 0.5,
    });
    assert.match(await tooltip.innerText(), /^trial \d+ \(pruned\): [\d.]+ at 2/);
    await page.screenshot({ path: path.join(artifacts, 'dashboard-study-pruned.png'), fullPage: true });
  });

  test('explain figures recorded in the store are shown', async () => {
    const run = await runs.createRun({ name: 'DL0009', kind: 'explain' });
    await runs.updateSummary(run.id, {
      title: 'Pooling',
      text: ['Max pooling keeps the largest value of each window; average pooling their mean.'],
      tables: [
        { title: 'example', columns: ['window', 'max', 'average'], rows: [['1 3 / 4 6', '6', '3.5']] },
      ],
    });
    const svg =
      '<svg xmlns="http://www.w3.org/2000/svg" width="120" height="60"><rect width="120" height="60" fill="#1f77b4"/></svg>';
    await runs.addArtifact(run.id, {
      name: 'pooling-example',
      kind: 'figure',
      mediaType: 'image/svg+xml',
      content: svg,
    });
    await runs.finishRun(run.id, 'complete');
    await page.goto(`${server.url}#/figures`);
    await waitReady();
    const image = page.locator('#topic-DL0009 img');
    await image.waitFor();
    await page.waitForFunction(() => document.querySelector('#topic-DL0009 img')?.naturalWidth === 120);
    assert.match(await page.locator('#topic-DL0009').innerText(), /average pooling their mean/);
    assert.equal(await page.locator('#topic-DL0009 table td').first().innerText(), '1 3 / 4 6');
  });

  test('every metric a run recorded gets a chart, training and validation named exactly, and the comparison its final value', async () => {
    const random = new Random(31);
    const rows = (count: number, features: number) =>
      Array.from({ length: count * features }, () => random.normal());
    // A classifier measured by macro F1 and a regression by mean absolute error, each with validation data.
    const classes = (inputs: number[]) =>
      Int32Array.from({ length: inputs.length / 4 }, (_, i) => {
        const margin = inputs[i * 4]! + inputs[i * 4 + 1]! - inputs[i * 4 + 2]!;
        return margin > 0.5 ? 2 : margin > -0.5 ? 1 : 0;
      });
    const classInputs = rows(96, 4);
    const classValidation = rows(32, 4);
    const targets = (inputs: number[]) =>
      new Tensor(
        Float32Array.from({ length: inputs.length / 2 }, (_, i) => 2 * inputs[i * 2]! - inputs[i * 2 + 1]!),
        [inputs.length / 2, 1],
      );
    const regressionInputs = rows(96, 2);
    const regressionValidation = rows(32, 2);
    manualSeed(31);
    const classifier = new Sequential(new Dense(4, 8, { activation: 'relu' }), new Dense(8, 3));
    const f1Tracker = await RunTracker.start(runs, { name: 'f1-run' });
    const f1History = fit(
      classifier,
      tensorDataset(new Tensor(Float32Array.from(classInputs), [96, 4]), classes(classInputs)),
      {
        optimizer: new Adam(classifier.parameters(), { lr: 0.03 }),
        epochs: 4,
        batchSize: 16,
        validationData: tensorDataset(
          new Tensor(Float32Array.from(classValidation), [32, 4]),
          classes(classValidation),
        ),
        metrics: [new Accuracy(), new F1Score({ numClasses: 3 })],
        callbacks: [f1Tracker],
        progress: false,
      },
    ).epochs;
    await f1Tracker.close();
    const regressor = new Sequential(new Dense(2, 1));
    const maeTracker = await RunTracker.start(runs, { name: 'mae-run' });
    const maeHistory = fit(
      regressor,
      tensorDataset(new Tensor(Float32Array.from(regressionInputs), [96, 2]), targets(regressionInputs)),
      {
        optimizer: new Adam(regressor.parameters(), { lr: 0.1 }),
        epochs: 5,
        batchSize: 16,
        loss: mseLoss,
        validationData: tensorDataset(
          new Tensor(Float32Array.from(regressionValidation), [32, 2]),
          targets(regressionValidation),
        ),
        metrics: [new MeanAbsoluteError()],
        callbacks: [maeTracker],
        progress: false,
      },
    ).epochs;
    await maeTracker.close();

    await page.goto(`${server.url}#/runs/${f1Tracker.runId},${maeTracker.runId}`);
    await waitReady();
    type MetricChart = { id: string; title: string; series: string[]; key: string[] };
    const drawn = () =>
      page.evaluate(() =>
        (
          globalThis as unknown as { tensileDashboard: { runMetricCharts(): MetricChart[] } }
        ).tensileDashboard.runMetricCharts(),
      );
    await page.waitForFunction(() =>
      (
        globalThis as unknown as { tensileDashboard: { runMetricCharts(): { id: string }[] } }
      ).tensileDashboard
        .runMetricCharts()
        .some((chart) => chart.id === 'metric-meanAbsoluteError'),
    );
    const charts = await drawn();
    // One chart per family, the model's metrics first, then the speed the tracker records.
    assert.deepEqual(
      charts.map((chart) => chart.id),
      ['metric-macroF1', 'metric-meanAbsoluteError', 'metric-samplesPerSecond', 'metric-epochSeconds'],
    );
    const [f1, mae] = charts;
    assert.equal(f1!.title, 'Training and validation F1 (macro average)');
    assert.deepEqual(f1!.series, [
      'f1-run training F1 (macro average)',
      'f1-run validation F1 (macro average)',
    ]);
    assert.deepEqual(f1!.key, ['training F1 (macro average)', 'validation F1 (macro average)']);
    assert.equal(mae!.title, 'Training and validation mean absolute error');
    assert.deepEqual(mae!.series, [
      'mae-run training mean absolute error',
      'mae-run validation mean absolute error',
    ]);
    // Every epoch of each series is drawn, and the chart's own title and key say what it is.
    assert.equal(
      Number(await page.locator('#chart-metric-macroF1').getAttribute('data-points')),
      2 * f1History.length,
    );
    assert.equal(
      Number(await page.locator('#chart-metric-meanAbsoluteError').getAttribute('data-points')),
      2 * maeHistory.length,
    );
    assert.deepEqual(await page.locator('#chart-metric-macroF1 .chart-key text').allTextContents(), f1!.key);
    assert.match(
      await page.locator('#chart-metric-meanAbsoluteError svg').innerHTML(),
      /Training and validation mean absolute error/,
    );
    // The comparison gains each metric's final value (as the page rounds: 7 digits stored, 4 shown).
    const shown = (value: number) => Number(Number(value.toPrecision(7)).toPrecision(4)).toString();
    const row = async (name: string) =>
      page
        .locator('.compare-table tr', { has: page.locator('th', { hasText: new RegExp(`^${name}$`) }) })
        .locator('td')
        .allInnerTexts();
    const f1Final = f1History.at(-1)!.metrics;
    const maeFinal = maeHistory.at(-1)!.metrics;
    assert.deepEqual(await row('final training F1 \\(macro average\\)'), [shown(f1Final.macroF1!), '–']);
    assert.deepEqual(await row('final validation F1 \\(macro average\\)'), [
      shown(f1Final.validationMacroF1!),
      '–',
    ]);
    assert.deepEqual(await row('final training mean absolute error'), [
      '–',
      shown(maeFinal.meanAbsoluteError!),
    ]);
    assert.deepEqual(await row('final validation mean absolute error'), [
      '–',
      shown(maeFinal.validationMeanAbsoluteError!),
    ]);
    await page.screenshot({ path: path.join(artifacts, 'dashboard-run-metrics.png'), fullPage: true });
  });

  test('the served page broke no rule of its Content-Security-Policy, and an injected inline script does not run', async () => {
    await page.goto(`${server.url}#/runs`);
    await waitReady();
    // The views above drew tables, charts, tooltips and figures under the policy: nothing refused.
    assert.deepEqual(policyViolations, []);
    const ran = await page.evaluate(() => {
      const window = globalThis as unknown as { inlineRan?: boolean };
      const dom = globalThis as unknown as {
        document: {
          createElement(tag: string): { textContent: string };
          body: { append(node: unknown): void };
        };
      };
      const script = dom.document.createElement('script');
      script.textContent = 'globalThis.inlineRan = true';
      dom.document.body.append(script);
      return window.inlineRan === true;
    });
    assert.equal(ran, false, 'an inline script ran despite the policy');
    await page.waitForFunction((count) => count > 0, policyViolations.length);
    assert.match(policyViolations.join('\n'), /inline script.*script-src 'self'/i);
    policyViolations.length = 0;
  });

  test('an HTML or SVG artifact with a script never runs in the dashboard origin', async () => {
    // If it ran in the dashboard's origin, the script would leave a mark in its storage and ask the API.
    const script =
      "localStorage.setItem('artifact-ran', location.href); fetch('/api/overview?artifact-ran=1');";
    const run = await runs.createRun({ name: 'DL0099', kind: 'explain' });
    await runs.updateSummary(run.id, { title: 'Artifacts', text: ['Stored files with scripts.'] });
    const html = await runs.addArtifact(run.id, {
      name: 'page',
      kind: 'report',
      mediaType: 'text/html',
      content: `<!doctype html><title>artifact</title><script>${script}</script><p>artifact page</p>`,
    });
    const svg = await runs.addArtifact(run.id, {
      name: 'drawing',
      kind: 'figure',
      mediaType: 'image/svg+xml',
      content:
        '<svg xmlns="http://www.w3.org/2000/svg" width="80" height="40"><rect width="80" height="40" fill="#2ca02c"/>' +
        `<script>${script}</script></svg>`,
    });
    await runs.finishRun(run.id, 'complete');
    const marks: string[] = [];
    const onRequest = (request: { url(): string }) => {
      if (request.url().includes('artifact-ran')) marks.push(request.url());
    };
    page.on('request', onRequest);
    try {
      // Shown on the figures tab: an image element draws the SVG and never runs its script.
      await page.goto(`${server.url}#/figures`);
      await page.waitForFunction(() => document.querySelector('#topic-DL0099 img')?.naturalWidth === 80);
      // Opened by its address (as a link to it would): each one is a download, not a page.
      for (const [artifact, name] of [
        [html, 'page'],
        [svg, 'drawing'],
      ] as const) {
        const [download] = await Promise.all([
          page.waitForEvent('download'),
          page.goto(`${server.url}api/artifacts/${artifact.id}`).catch(() => null),
        ]);
        assert.equal(download.suggestedFilename(), name);
        await download.cancel();
      }
      await page.goto(`${server.url}#/runs`);
      await waitReady();
      const stored = await page.evaluate(() =>
        (
          globalThis as unknown as { localStorage: { getItem(key: string): string | null } }
        ).localStorage.getItem('artifact-ran'),
      );
      assert.equal(stored, null, `an artifact's script ran in the dashboard origin at ${stored}`);
      assert.deepEqual(marks, []);
    } finally {
      page.off('request', onRequest);
    }
  });

  test('with an access token: 401 without it; opened once with ?token= the page, its data and live events work', async () => {
    const token = 'browser-test-token-0123456789';
    const guarded = await startDashboard({ runs, studies, port: 0, pollMilliseconds: 200, token });
    const violationsBefore = policyViolations.length;
    try {
      const refused = await page.goto(guarded.url);
      assert.equal(refused?.status(), 401);
      assert.match(await page.locator('body').innerText(), /needs its access token/);
      await page.goto(`${guarded.url}?token=${token}#/runs`);
      await waitReady();
      await page.locator('table.runs tbody tr', { hasText: 'live-run' }).waitFor();
      // The event stream is a request of its own: the cookie carried it.
      await page.locator('#live.connected').waitFor();
      // The token has left the address bar; a reload goes on the cookie alone.
      assert.equal(page.url(), `${guarded.url}#/runs`);
      const reload = await page.reload();
      assert.equal(reload?.status(), 200);
      await waitReady();
      await page.locator('table.runs tbody tr', { hasText: 'live-run' }).waitFor();
      assert.deepEqual(policyViolations.slice(violationsBefore), []);
    } finally {
      await guarded.close();
    }
  });

  test('the report is one file that renders from disk without a server', async () => {
    const html = await buildReport({ runs, studies, title: 'browser test report' });
    const file = path.join(artifacts, 'dashboard-report.html');
    fs.writeFileSync(file, html);
    assert.doesNotMatch(html, /src="\/|href="\/static/);
    // Leave the served page first: the previous test's store writes reach it as events a moment
    // later, and the refresh they trigger must not be counted against the report.
    await page.goto('about:blank');
    const requests: string[] = [];
    const onRequest = (request: { url(): string }) => requests.push(request.url());
    page.on('request', onRequest);
    try {
      await page.goto(`file://${file}#/runs/${(await runs.listRuns({ name: 'live-run' }))[0]!.id}`);
      await waitReady();
      assert.equal(await page.title(), 'browser test report');
      assert.equal(await page.locator('#live').innerText(), 'report');
      assert.ok(Number(await page.locator('#chart-loss').getAttribute('data-points')) > 0);
      await page.goto(`file://${file}#/studies/${studyId}`);
      await page.waitForFunction(() => document.body.dataset.view?.startsWith('studies/'));
      await page.locator('#chart-parallel[data-points]').waitFor();
      assert.equal(Number(await page.locator('#chart-history').getAttribute('data-points')), studyTrials);
      await page.goto(`file://${file}#/figures`);
      await page.waitForFunction(() => document.querySelector('#topic-DL0009 img')?.naturalWidth === 120);
      await page.screenshot({ path: path.join(artifacts, 'dashboard-report-figures.png') });
    } finally {
      page.off('request', onRequest);
    }
    assert.deepEqual(
      requests.filter((url) => !url.startsWith('file://') && !url.startsWith('data:')),
      [],
    );
  });
});
