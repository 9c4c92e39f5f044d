/**
 * The strategies: each one's trainable set (per epoch where it changes), discriminative rates,
 * fineTune's two phases, and head surgery.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type Callback,
  classifierOutputs,
  Conv2d,
  Dense,
  discriminativeLearningRates,
  fineTune,
  Flatten,
  flattenToGap,
  freezeEarly,
  fullLowLr,
  gradualUnfreeze,
  GradualUnfreezing,
  headOnly,
  type ImageDataset,
  manualSeed,
  noGrad,
  Random,
  replaceHead,
  resnet,
  seedCnn,
  Sequential,
  SGD,
  Tensor,
  trainableParameterNames,
  type TrainingControl,
  type TrainingEvent,
  trainFromScratch,
} from '../src/index.js';

function randomImages(count: number, seed: number, classes = 3): ImageDataset {
  const random = new Random(seed);
  const images = new Float32Array(count * 144);
  for (let i = 0; i < images.length; i++) images[i] = random.next();
  const labels = Int32Array.from({ length: count }, (_, i) => i % classes);
  return {
    images,
    labels,
    count,
    channels: 1,
    height: 12,
    width: 12,
    classes,
    classNames: Array.from({ length: classes }, (_, i) => String(i)),
  };
}

function smallCnn(seed = 1) {
  manualSeed(seed);
  return seedCnn({ channels: [4, 8], classes: 3 });
}

/** Records, at the first batch of every epoch, the trainable layers (by state_dict prefix) and the group rates. */
class TrainableTrace implements Callback {
  readonly layers: string[][] = [];
  readonly rates: number[][] = [];
  handle(event: TrainingEvent, control: TrainingControl): void {
    if (event.type !== 'batchStart' || event.batch !== 0) return;
    this.layers.push([...new Set(trainableParameterNames(control.model).map((name) => name.split('.')[0]!))]);
    this.rates.push(control.optimizer.groups.map((group) => group.settings.lr));
  }
}

const block1 = ['0', '1', '3', '4'];
const block2 = ['7', '8', '10', '11'];
const head = ['16'];
const quiet = { progress: false, epochs: 1, batchSize: 8 } as const;

describe('strategies', () => {
  const data = randomImages(16, 1);

  it('headOnly trains only the classifier', () => {
    const model = smallCnn();
    const trace = new TrainableTrace();
    headOnly(model, data, { ...quiet, callbacks: [trace] });
    assert.deepEqual(trace.layers, [head]);
    assert.deepEqual(trace.rates, [[3e-3]]);
  });

  it('freezeEarly freezes the first k block groups', () => {
    const one = new TrainableTrace();
    freezeEarly(smallCnn(), data, { ...quiet, callbacks: [one] });
    assert.deepEqual(one.layers, [[...block2, ...head]]);
    const two = new TrainableTrace();
    freezeEarly(smallCnn(), data, { ...quiet, frozenGroups: 2, callbacks: [two] });
    assert.deepEqual(two.layers, [head]);
    assert.throws(
      () => freezeEarly(smallCnn(), data, { ...quiet, frozenGroups: 3 }),
      /frozenGroups must be an integer in \[0, 2\]/,
    );
  });

  it('fullLowLr trains everything at a tenth of the usual rate, unfreezing what was frozen', () => {
    const model = smallCnn();
    model.freeze();
    const trace = new TrainableTrace();
    fullLowLr(model, data, { ...quiet, callbacks: [trace] });
    assert.deepEqual(trace.layers, [[...block1, ...block2, ...head]]);
    assert.deepEqual(trace.rates, [[1e-4]]);
  });

  it('gradualUnfreeze unfreezes one block group per stage, from the top', () => {
    const trace = new TrainableTrace();
    gradualUnfreeze(smallCnn(), data, { ...quiet, epochs: 6, callbacks: [trace], schedule: null });
    assert.deepEqual(trace.layers, [
      head,
      head,
      [...block2, ...head],
      [...block2, ...head],
      [...block1, ...block2, ...head],
      [...block1, ...block2, ...head],
    ]);
    const faster = new TrainableTrace();
    gradualUnfreeze(smallCnn(), data, { ...quiet, epochs: 4, epochsPerGroup: 1, callbacks: [faster] });
    assert.deepEqual(
      faster.layers.map((layers) => layers.length),
      [1, 5, 9, 9],
    );
  });

  it('gradual unfreezing depends on the epoch alone, so a resumed run gets the same stage', () => {
    const model = smallCnn();
    const schedule = new GradualUnfreezing(model, 2);
    assert.deepEqual(
      [0, 1, 2, 3, 4, 9].map((epoch) => schedule.trainableGroups(epoch)),
      [1, 1, 2, 2, 3, 3],
    );
    schedule.apply(model, 3);
    assert.deepEqual(
      [...new Set(trainableParameterNames(model).map((name) => name.split('.')[0]))],
      [...block2, ...head],
    );
  });

  it('fineTune warms up the head, then trains everything with discriminative rates', () => {
    const trace = new TrainableTrace();
    const history = fineTune(smallCnn(), data, {
      ...quiet,
      epochs: 2,
      freezeEpochs: 1,
      lr: 0.01,
      schedule: null,
      callbacks: [trace],
    });
    assert.deepEqual(
      history.epochs.map((logs) => logs.epoch),
      [0, 1, 2],
    );
    assert.deepEqual(trace.layers, [head, [...block1, ...block2, ...head], [...block1, ...block2, ...head]]);
    assert.deepEqual(trace.rates[0], [0.01]);
    const [first, second, third] = trace.rates[1]!;
    assert.ok(
      Math.abs(third! - 0.005) < 1e-12 &&
        Math.abs(second! - 0.005 / 2.6) < 1e-12 &&
        Math.abs(first! - 0.005 / 2.6 ** 2) < 1e-12,
      `rates ${trace.rates[1]}`,
    );
  });

  it('the scratch baseline trains everything at 1e-3, and every strategy checks the class count', () => {
    const trace = new TrainableTrace();
    trainFromScratch(smallCnn(), data, { ...quiet, callbacks: [trace] });
    assert.deepEqual(trace.rates, [[1e-3]]);
    assert.throws(
      () => headOnly(smallCnn(), randomImages(10, 2, 5), quiet),
      /classifier has 3 outputs but the data has 5 classes; call replaceHead\(model, 5\) first/,
    );
  });

  it('a custom optimizer factory receives the groups', () => {
    const trace = new TrainableTrace();
    freezeEarly(smallCnn(), data, {
      ...quiet,
      optimizer: (groups) => new SGD(groups, { momentum: 0.9 }),
      lr: 0.5,
      callbacks: [trace],
    });
    assert.deepEqual(trace.rates, [[0.5]]);
  });
});

describe('discriminative learning rates', () => {
  it('decay geometrically from the head (ULMFiT)', () => {
    const groups = discriminativeLearningRates(
      resnet({ layers: [1, 1], widths: [4, 8], classes: 2, stem: 'small' }),
      { lr: 1e-3, decay: 10 },
    );
    assert.deepEqual(
      groups.map((g) => g.name),
      ['stem', 'layer1', 'layer2', 'head'],
    );
    groups.forEach((group, i) =>
      assert.ok(Math.abs(group.lr - 1e-3 / 10 ** (3 - i)) < 1e-15, `${group.name}: ${group.lr}`),
    );
    const model = smallCnn();
    const all = discriminativeLearningRates(model, { lr: 1 }).flatMap((group) => group.parameters);
    assert.equal(all.length, model.parameters().length, 'every parameter belongs to exactly one group');
    assert.throws(() => discriminativeLearningRates(model, { lr: 1, decay: 0.5 }), /decay must be ≥ 1/);
  });
});

describe('head surgery', () => {
  it('replaceHead gives the classifier a new class count under the same name', () => {
    const model = smallCnn();
    model.freeze();
    const layer = replaceHead(model, 7, { random: new Random(3) });
    assert.equal(classifierOutputs(model), 7);
    assert.deepEqual(model.stateDict().get('16.weight')!.shape, [7, 8]);
    assert.deepEqual(trainableParameterNames(model), ['16.weight', '16.bias']);
    assert.equal(model.layers[16], layer);
    const y = noGrad(() => model.forward(new Tensor(new Float32Array(2 * 144), [2, 1, 12, 12])));
    assert.deepEqual(y.shape, [2, 7]);
    const net = resnet({ layers: [1], widths: [4], classes: 10, stem: 'small' });
    replaceHead(net, 2);
    assert.deepEqual(net.stateDict().get('fc.weight')!.shape, [2, 4]);
  });

  it('flattenToGap swaps Flatten+FC for GAP+FC; pooled weights keep the logits of spatially constant maps', () => {
    manualSeed(4);
    const conv = new Conv2d(1, 2, 1);
    const model = new Sequential(conv, new Flatten(), new Dense(2 * 3 * 3, 4));
    const gap = flattenToGap(model);
    assert.deepEqual(
      gap.layers.map((layer) => layer.describe()),
      [conv.describe(), 'GlobalAvgPool2d', 'Flatten', 'Dense(2→4)'],
    );
    assert.equal(gap.layers[0], conv, 'the body is shared, not copied');
    // Constant images give constant feature maps through a 1×1 convolution.
    const images = new Tensor(
      Float32Array.from({ length: 2 * 9 }, (_, i) => (i < 9 ? 0.3 : -1.2)),
      [2, 1, 3, 3],
    );
    const before = noGrad(() => model.forward(images));
    const after = noGrad(() => gap.forward(images));
    before.data.forEach((value, i) =>
      assert.ok(Math.abs(value - after.data[i]!) < 1e-5, `${value} vs ${after.data[i]}`),
    );
    const seed = flattenToGap(seedCnn({ channels: [4, 8], head: 'flatten', inputSize: 12 }));
    assert.deepEqual(
      [...seed.stateDict().keys()],
      [
        ...seedCnn({ channels: [4, 8] })
          .stateDict()
          .keys(),
      ],
      'the flatten-head seed CNN becomes the GAP one',
    );
  });
});
