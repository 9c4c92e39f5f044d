/**
 * The dashboard's data and server without a browser: parameter importance, thinning of long series,
 * a study as plot columns, the JSON API, static files, live events, and the report's module join.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import { MemoryRunStore, type MetricSeries } from '../src/track/index.js';
import {
  decimateSeries,
  joinDashboardModules,
  defaultDashboardDirectory,
  startDashboard,
  studyView,
  type ParameterColumn,
} from '../app/dashboard/index.js';
import { MemoryStorage, parameterImportance, RandomSampler, Study, TrialPruned } from '../src/tune/index.js';
import { Random } from '../src/index.js';

function column(name: string, values: number[]): ParameterColumn {
  return { name, kind: 'float', log: false, low: 0, high: 1, choices: null, values };
}

test('parameter importance: the parameter the objective depends on gets nearly all of it', () => {
  const random = new Random(1);
  const x = Array.from({ length: 200 }, () => random.next());
  const noise = Array.from({ length: 200 }, () => random.next());
  const y = x.map((v, i) => Math.sin(3 * v) + 0.01 * noise[i]!);
  const { parameters } = parameterImportance([column('noise', noise), column('x', x)], y);
  assert.equal(parameters[0]!.name, 'x');
  assert.ok(parameters[0]!.importance > 0.9, JSON.stringify(parameters));
  assert.ok(Math.abs(parameters.reduce((sum, item) => sum + item.importance, 0) - 1) < 1e-9);
  // Nothing explains a constant objective.
  const flat = parameterImportance(
    [column('x', x)],
    x.map(() => 0.5),
  );
  assert.deepEqual(
    flat.parameters.map((p) => [p.name, p.importance]),
    [['x', 0]],
  );
});

test('thinning keeps spikes, gaps and order, and leaves short series alone', () => {
  const count = 10_000;
  const series: MetricSeries = {
    step: Array.from({ length: count }, (_, i) => i),
    x: Array.from({ length: count }, (_, i) => i / 100),
    value: Array.from({ length: count }, (_, i) => (i === 4321 ? 50 : i === 7000 ? null : Math.sin(i / 300))),
    time: Array.from({ length: count }, (_, i) => i),
  };
  const thinned = decimateSeries(series, 500);
  assert.ok(thinned.x.length <= 500 + 50, `${thinned.x.length} points`);
  assert.equal(Math.max(...thinned.value.filter((v): v is number => v !== null)), 50);
  assert.ok(thinned.value.includes(null), 'the gap of a diverged value survives');
  for (let i = 1; i < thinned.step.length; i++) assert.ok(thinned.step[i]! > thinned.step[i - 1]!);
  assert.equal(decimateSeries(series, count), series);
});

test('a study as plot columns: parameters, values, best trial and importance', async () => {
  const storage = new MemoryStorage();
  const study = await Study.create({
    storage,
    name: 's',
    direction: 'minimize',
    sampler: new RandomSampler({ seed: 3 }),
  });
  await study.optimize(
    (trial) => {
      const lr = trial.suggestFloat('lr', 1e-4, 1, { log: true });
      const optimizer = trial.suggestCategorical('optimizer', ['sgd', 'adam']);
      return (Math.log10(lr) + 2) ** 2 + (optimizer === 'adam' ? 0 : 0.5);
    },
    { nTrials: 30 },
  );
  const view = await studyView(storage, study.id);
  assert.equal(view.trials.number.length, 30);
  assert.deepEqual(
    view.parameters.map((p) => [p.name, p.kind, p.log]),
    [
      ['lr', 'float', true],
      ['optimizer', 'categorical', false],
    ],
  );
  assert.deepEqual(view.parameters[1]!.choices, ['sgd', 'adam']);
  const best = (await study.bestTrial()).number;
  assert.equal(view.best!.number, best);
  assert.equal(view.best!.value, Math.min(...view.trials.value.filter((v): v is number => v !== null)));
  assert.equal(view.importance.length, 2);
  assert.equal(view.importance[0]!.name, 'lr');
  assert.equal(view.importanceTrials, 30);
  assert.equal(view.study.trialCounts.complete, 30);
});

test('a study view carries pruned trials at their last value, every reported curve, and failed trials unplotted', async () => {
  const storage = new MemoryStorage();
  const study = await Study.create({
    storage,
    name: 'pruning',
    direction: 'maximize',
    sampler: new RandomSampler({ seed: 4 }),
    // Prunes a trial whose accuracy after 3 steps is under 0.5: the curves below decide which.
    pruner: {
      prune: (_study, trial) => trial.intermediateValues.size >= 3 && trial.intermediateValues.get(2)! < 0.5,
    },
  });
  await study.optimize(
    (trial) => {
      const lr = trial.suggestFloat('lr', 1e-4, 1, { log: true });
      if (trial.number === 5) throw new Error('diverged');
      const ceiling = 0.9 - 0.3 * Math.abs(Math.log10(lr) + 2);
      let accuracy = 0;
      for (let step = 0; step < 8; step++) {
        accuracy = ceiling * (1 - 0.5 ** (step + 1));
        trial.report(accuracy, step);
        if (trial.shouldPrune()) throw new TrialPruned();
      }
      return accuracy;
    },
    { nTrials: 14 },
  );
  const view = await studyView(storage, study.id);
  const { trials } = view;
  const pruned = trials.state.flatMap((state, i) => (state === 'pruned' ? [i] : []));
  const failed = trials.state.flatMap((state, i) => (state === 'failed' ? [i] : []));
  assert.ok(pruned.length > 0, 'some trials were pruned');
  assert.deepEqual(failed, [5]);
  for (const i of pruned) {
    const curve = view.intermediate[i]!;
    assert.deepEqual(curve.step, [0, 1, 2]);
    assert.equal(trials.lastStep[i], 2);
    // Plotted at its last reported value, and not counted as a result.
    assert.equal(trials.prunedValue[i], curve.value[2]);
    assert.equal(trials.value[i], null);
  }
  assert.equal(trials.prunedValue[5], null);
  assert.equal(trials.value[5], null);
  assert.equal(view.intermediate[5], null);
  const complete = trials.state.flatMap((state, i) => (state === 'complete' ? [i] : []));
  for (const i of complete) {
    assert.equal(view.intermediate[i]!.step.length, 8);
    assert.equal(trials.prunedValue[i], null);
  }
  assert.equal(view.importanceTrials, complete.length);
  assert.equal(view.importanceRoughBelow, 20);
  assert.equal(view.intermediateThinned, false);
});

function get(url: string): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, (response) => {
        let body = '';
        response.on('data', (chunk) => (body += chunk));
        response.on('end', () =>
          resolve({ status: response.statusCode ?? 0, type: String(response.headers['content-type']), body }),
        );
      })
      .on('error', reject);
  });
}

test('the server: page, API with incremental metrics, refused paths, and a change event', async () => {
  const runs = new MemoryRunStore();
  const run = await runs.createRun({ name: 'r', kind: 'fit' });
  await runs.logMetrics(run.id, [{ name: 'loss', step: 0, x: 1, value: 1.5 }]);
  const server = await startDashboard({ runs, studies: new MemoryStorage(), port: 0, pollMilliseconds: 50 });
  try {
    assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    const page = await get(server.url);
    assert.equal(page.status, 200);
    assert.match(page.body, /<script type="module" src="\/static\/app.js">/);
    assert.equal((await get(`${server.url}static/charts.js`)).type, 'text/javascript; charset=utf-8');
    assert.equal((await get(`${server.url}static/..%2Fpackage.json`)).status, 404);
    assert.equal((await get(`${server.url}static/../../package.json`)).status, 404);

    const overview = JSON.parse((await get(`${server.url}api/overview`)).body);
    assert.deepEqual(
      overview.runs.map((r: { name: string }) => r.name),
      ['r'],
    );
    const first = JSON.parse((await get(`${server.url}api/runs/${run.id}/metrics`)).body);
    assert.deepEqual(first.series.loss.value, [1.5]);
    await runs.logMetrics(run.id, [{ name: 'loss', step: 1, x: 2, value: Number.NaN }]);
    const next = JSON.parse(
      (await get(`${server.url}api/runs/${run.id}/metrics?after=${first.lastPointId}`)).body,
    );
    assert.deepEqual(next.series.loss.value, [null]);
    assert.equal((await get(`${server.url}api/runs/999`)).status, 404);
    assert.equal((await get(`${server.url}api/studies/999`)).status, 404);
    assert.equal((await get(`${server.url}api/nothing`)).status, 404);

    // Live events: one on connecting, another after a write.
    const events: string[] = [];
    const stream = await new Promise<http.IncomingMessage>((resolve) =>
      http.get(`${server.url}api/events`, resolve),
    );
    assert.equal(stream.headers['content-type'], 'text/event-stream');
    const received = new Promise<void>((resolve) => {
      stream.on('data', (chunk: Buffer) => {
        for (const line of chunk.toString().split('\n'))
          if (line.startsWith('data: ')) events.push(line.slice(6));
        if (events.length >= 2) resolve();
      });
    });
    await new Promise((resolve) => setTimeout(resolve, 150));
    await runs.updateSummary(run.id, { loss: 1 });
    await received;
    stream.destroy();
    assert.notEqual(JSON.parse(events[0]!).runs, JSON.parse(events[1]!).runs);
  } finally {
    await server.close();
  }
});

test('the report joins the page modules into one script without imports', () => {
  const script = joinDashboardModules(defaultDashboardDirectory());
  assert.doesNotMatch(script, /^\s*import\s/m);
  assert.doesNotMatch(script, /^export\s/m);
  assert.match(script, /function createRunsView/);
});
