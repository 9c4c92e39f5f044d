/**
 * tensile explain: the numbers each note's claims rest on (computed from real tensile models), topic
 * look-up, and the store as a cache of results (reused, and recomputed with fresh).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { cachedRun, explain, findTopic, topics, type Topic } from '../app/explain/index.js';
import { mean, quickNotice } from '../app/explain/statistics.js';
import { headParameters } from '../app/explain/topics/fc.js';
import { poolBothWays, poolingExample } from '../app/explain/topics/pooling.js';
import { blockFacts, designs } from '../app/explain/topics/kernels.js';
import { batchNormSteps } from '../app/explain/topics/batchnorm.js';
import { syntheticAccuracy } from '../app/explain/topics/tuning.js';
import { strategyEpochs } from '../app/explain/topics/transfer.js';
import { mnistSplit } from '../app/explain/common.js';
import { seedCnn, transferStrategies, type StrategyName } from '../src/index.js';
import { markdownTables } from '../app/explain/experiment-results.js';
import { loadMnist } from '../src/index.js';
import { MemoryRunStore } from '../src/track/index.js';
import { explainTopics } from '../app/dashboard/data.js';
import { MemoryStorage } from '../src/tune/index.js';

/** Float32 arithmetic against float64 by hand. */
const float32Tolerance = 1e-4;

test('topics are found by id, by number and by the words of the issue', () => {
  const expected: Record<string, string> = {
    fc: 'DL0011',
    pooling: 'DL0009',
    tuning: 'DL0008',
    batchnorm: 'DL0007',
    freezing: 'DL0006',
    transfer: 'DL0005',
    kernels: 'DL0004',
    DL0011: 'DL0011',
    dl0009: 'DL0009',
    '7': 'DL0007',
  };
  for (const [name, id] of Object.entries(expected)) assert.equal(findTopic(name)?.id, id, name);
  assert.equal(findTopic('DL0001'), null);
  assert.equal(topics.length, 7);
});

test('DL0011: Flatten + FC against GAP + FC parameters, 8 channels and 6 classes', () => {
  assert.deepEqual(headParameters(4), { flatten: 8 * 16 * 6 + 6, gap: 54 });
  assert.deepEqual(headParameters(7), { flatten: 2358, gap: 54 });
  assert.deepEqual(headParameters(14), { flatten: 9414, gap: 54 });
});

test('DL0009: the 4×4 example pooled both ways', () => {
  const { max, average } = poolBothWays(poolingExample, 4, 4);
  assert.deepEqual(max, [6, 4, 7, 9]);
  assert.deepEqual(average, [3.75, 2.25, 3.5, 5]);
});

test('DL0004: parameters and receptive fields of 3×3 stacks against 5×5 and 7×7', () => {
  const facts = Object.fromEntries(designs.map((design) => [design.label, blockFacts(design, 16, 16)]));
  assert.deepEqual(facts['2 × 3×3'], { parameters: 18 * 256, receptiveField: 5, nonLinearities: 2 });
  assert.deepEqual(facts['1 × 5×5'], { parameters: 25 * 256, receptiveField: 5, nonLinearities: 1 });
  assert.deepEqual(facts['3 × 3×3'], { parameters: 27 * 256, receptiveField: 7, nonLinearities: 3 });
  assert.deepEqual(facts['1 × 7×7'], { parameters: 49 * 256, receptiveField: 7, nonLinearities: 1 });
  // The note's 18·C_in·C_out needs C_in = C_out: from one channel, two 3×3 layers cost more than one 5×5.
  const twoSmall = blockFacts(designs[1]!, 1, 16).parameters;
  assert.equal(twoSmall, 9 * 1 * 16 + 9 * 16 * 16);
  assert.ok(twoSmall > blockFacts(designs[2]!, 1, 16).parameters);
});

test('DL0007: batch norm by hand equals the BatchNorm layer, and y has mean β and deviation γ', () => {
  const steps = batchNormSteps(loadMnist().images, 4);
  assert.ok(steps.maxDifference < float32Tolerance, `difference ${steps.maxDifference}`);
  assert.ok(Math.abs(steps.xHatMean) < float32Tolerance);
  // ε keeps the variance of x̂ a little under 1: σ² / (σ² + ε).
  const shrink = steps.variance / (steps.variance + 1e-5);
  assert.ok(Math.abs(steps.xHatVariance - shrink) < float32Tolerance);
  assert.ok(Math.abs(steps.yMean - 0.25) < float32Tolerance);
  assert.ok(Math.abs(steps.yStandardDeviation - 1.5 * Math.sqrt(shrink)) < float32Tolerance);
  // Running statistics move a tenth of the way, the variance unbiased (N / (N − 1)).
  assert.ok(Math.abs(steps.runningMean - 0.1 * steps.mu) < float32Tolerance);
  const unbiased = (steps.variance * steps.values) / (steps.values - 1);
  assert.ok(Math.abs(steps.runningVar - (0.9 + 0.1 * unbiased)) < float32Tolerance);
});

test('DL0008: the synthetic objective peaks at 0.99 where it is documented to', () => {
  assert.ok(Math.abs(syntheticAccuracy(10 ** -2.5, 48, 0.9, 1e-4) - 0.99) < 1e-12);
  assert.ok(syntheticAccuracy(1e-1, 48, 0.9, 1e-4) < syntheticAccuracy(3e-3, 48, 0.9, 1e-4));
});

test('DL0005/DL0006: every strategy trains the same epochs and optimizer steps (fineTune warm-up included)', () => {
  const { train } = mnistSplit(20, 10, { classes: [0, 1] });
  const epochs = 3;
  const steps: Record<string, number> = {};
  for (const name of ['scratch', 'fineTune', 'headOnly'] as StrategyName[]) {
    const model = seedCnn({ channels: [2, 2], classes: 2 });
    let optimizerSteps = 0;
    const history = transferStrategies[name](model, train, {
      epochs: strategyEpochs(name, epochs),
      batchSize: 5,
      progress: false,
      callbacks: [{ handle: (event) => void (event.type === 'batchEnd' && optimizerSteps++) }],
    });
    assert.equal(history.epochs.length, epochs, name);
    steps[name] = optimizerSteps;
  }
  assert.equal(steps.fineTune, steps.scratch);
  assert.equal(steps.headOnly, steps.scratch);
});

test('explain runs a topic once, keeps the result in the store and reuses it; fresh recomputes', async () => {
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'tensile-explain-'));
  try {
    const store = new MemoryRunStore();
    const studies = new MemoryStorage();
    const topic = findTopic('pooling')!;
    const options = { store, studies, outDirectory: directory, quick: true };
    const first = await explain(topic, options);
    assert.equal(first.cached, false);
    assert.deepEqual(first.result.numbers.example, {
      input: poolingExample,
      max: [6, 4, 7, 9],
      average: [3.75, 2.25, 3.5, 5],
    });
    for (const file of first.files) assert.ok(fs.statSync(file).size > 100, file);
    assert.ok(first.files.some((file) => file.endsWith(path.join('quick', 'DL0009', 'pooling-4x4.png'))));
    // The trainings behind the topic are runs of their own, under the topic's run: two pooling kinds
    // times two seeds (quick mode).
    const children = await store.listRuns({ parentId: first.runId });
    assert.equal(children.length, 4);
    assert.ok(children.every((run) => run.state === 'complete' && run.pointCount > 0));

    fs.rmSync(path.join(directory, 'quick', 'DL0009'), { recursive: true });
    const second = await explain(topic, options);
    assert.equal(second.cached, true);
    assert.equal(second.runId, first.runId);
    assert.deepEqual(second.result.text, first.result.text);
    assert.deepEqual(second.result.tables, first.result.tables);
    // Figures come back from the store's copies even when the files are gone.
    assert.deepEqual(second.files, first.files);
    for (const file of second.files) assert.ok(fs.existsSync(file), file);
    assert.equal((await store.listRuns({ parentId: first.runId })).length, 4, 'nothing retrained');

    const third = await explain(topic, { ...options, fresh: true });
    assert.equal(third.cached, false);
    assert.notEqual(third.runId, first.runId);
    // A quick result is never shown for the full topic, nor the other way round.
    assert.equal(await cachedRun(store, topic, false), null);
  } finally {
    fs.rmSync(directory, { recursive: true, force: true });
  }
});

test('DL0011 quick: the text states the measured numbers', async () => {
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'tensile-explain-'));
  try {
    const outcome = await explain(findTopic('fc')!, {
      store: new MemoryRunStore(),
      studies: new MemoryStorage(),
      outDirectory: directory,
      quick: true,
    });
    const text = outcome.result.text.join('\n');
    for (const number of ['774', '2,358', '9,414', '54']) assert.ok(text.includes(number), number);
    const accuracy = outcome.result.numbers.accuracy as { flatten: number[]; gap: number[] };
    assert.equal(accuracy.flatten.length, 2, 'one accuracy per seed');
    assert.ok(text.includes(`${(mean(accuracy.flatten) * 100).toFixed(1)}%`));
    assert.equal(outcome.result.figures.length, 2);
  } finally {
    fs.rmSync(directory, { recursive: true, force: true });
  }
});

test('every topic runs in quick mode: labelled as quick, no verdict, stored and written apart', async () => {
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'tensile-explain-quick-'));
  const store = new MemoryRunStore();
  const studies = new MemoryStorage();
  try {
    for (const topic of topics) {
      const outcome = await explain(topic, { store, studies, outDirectory: directory, quick: true });
      assert.equal(outcome.quick, true, topic.id);
      assert.equal(outcome.result.text[0], quickNotice, `${topic.id}: the notice comes first`);
      const text = outcome.result.text.join('\n');
      // A quick run names no winner and claims no difference.
      assert.doesNotMatch(text, / is more accurate than | wins[ ,]|was found better|ended best/, topic.id);
      assert.match(text, /quick run draws no conclusion/, topic.id);
      assert.deepEqual(outcome.result.numbers.seeds, [1, 2], `${topic.id}: the seeds are named`);
      assert.ok(outcome.files.length > 0, topic.id);
      for (const file of outcome.files)
        assert.ok(file.startsWith(path.join(directory, 'quick', topic.id) + path.sep), file);
      const run = await store.getRun(outcome.runId);
      assert.equal(run.config.quick, true);
      assert.equal(run.summary.quick, true);
    }
    // Nothing outside quick/ (but the shared cache of pretrained weights).
    assert.deepEqual(fs.readdirSync(directory).sort(), ['cache', 'quick']);
  } finally {
    await studies.close();
    fs.rmSync(directory, { recursive: true, force: true });
  }
});

test('a quick run never replaces a full result: not in explain, the dashboard data or the files', async () => {
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'tensile-explain-apart-'));
  const store = new MemoryRunStore();
  const studies = new MemoryStorage();
  try {
    const pooling = findTopic('pooling')!;
    // A full result, stored first (a stand-in: the full topic takes minutes).
    const fullFigure =
      '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><text>full</text></svg>';
    const fullTopic: Topic = {
      ...pooling,
      run: () =>
        Promise.resolve({
          title: pooling.title,
          question: 'q',
          text: ['the full result'],
          tables: [],
          figures: [{ name: 'pooling-accuracy', svg: fullFigure }],
          numbers: { seeds: [1, 2, 3, 4, 5] },
        }),
    };
    const full = await explain(fullTopic, { store, studies, outDirectory: directory });
    assert.equal(full.quick, false);
    const fullFile = path.join(directory, 'DL0009', 'pooling-accuracy.svg');
    assert.equal(fs.readFileSync(fullFile, 'utf8'), fullFigure);

    const quick = await explain(pooling, { store, studies, outDirectory: directory, quick: true });
    assert.equal(quick.cached, false, 'a full result does not answer a quick request');
    assert.notEqual(quick.runId, full.runId);
    assert.equal(fs.readFileSync(fullFile, 'utf8'), fullFigure, 'the full figure file is untouched');
    assert.ok(fs.existsSync(path.join(directory, 'quick', 'DL0009', 'pooling-accuracy.svg')));

    // The non-quick path still shows the full result, though the quick one is newer.
    const again = await explain(pooling, { store, studies, outDirectory: directory });
    assert.equal(again.cached, true);
    assert.equal(again.runId, full.runId);
    assert.deepEqual(again.result.text, ['the full result']);
    assert.equal(fs.readFileSync(fullFile, 'utf8'), fullFigure);
    // So do the dashboard and the report, which read explainTopics.
    const shown = await explainTopics(store, (artifact) => `/api/artifacts/${artifact.id}`);
    const entry = shown.find((topic) => topic.topic === 'DL0009')!;
    assert.equal(entry.runId, full.runId);
    assert.equal(entry.quick, false);

    // A topic with only a quick run is shown, marked quick.
    const fc = await explain(findTopic('fc')!, { store, studies, outDirectory: directory, quick: true });
    const onlyQuick = (await explainTopics(store, () => '')).find((topic) => topic.topic === 'DL0011')!;
    assert.equal(onlyQuick.runId, fc.runId);
    assert.equal(onlyQuick.quick, true);
  } finally {
    await studies.close();
    fs.rmSync(directory, { recursive: true, force: true });
  }
});

test("the experiments' markdown summaries are read back as tables", () => {
  const summary = [
    '# lr-batch',
    '',
    'SGD with momentum 0.9, 3 epochs.',
    '',
    '| batch size | best lr | validation accuracy |',
    '|---|---|---|',
    '| 32 | 0.1 | 97.0% |',
    '| 64 | 0.2 | 96.5% |',
    '',
    '### digits 0-4 → 5-9',
    '',
    '| method | 10/class |',
    '|---|---|',
    '| scratch | 61.0 ± 2.0 |',
  ].join('\n');
  const { tables, paragraphs } = markdownTables(summary);
  assert.deepEqual(tables, [
    {
      title: 'lr-batch',
      columns: ['batch size', 'best lr', 'validation accuracy'],
      rows: [
        ['32', '0.1', '97.0%'],
        ['64', '0.2', '96.5%'],
      ],
    },
    { title: 'digits 0-4 → 5-9', columns: ['method', '10/class'], rows: [['scratch', '61.0 ± 2.0']] },
  ]);
  assert.deepEqual(paragraphs, ['SGD with momentum 0.9, 3 epochs.']);
});
