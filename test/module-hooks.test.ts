/**
 * Module.call, the one entry point of a module: forward pre-hooks and hooks (order, removal,
 * replacing the input or the output, hooks on nested children); summary() traced by hooks gives
 * the text it gave before hooks existed (test/fixtures/summary, written by the earlier code);
 * the BatchNorm + ReLU rewrite gives the unfused bits and leaves the structure alone; and every
 * layer class tensile exports declares its memory behaviour itself (keepsNoTensors), so that
 * forgetting it is caught here rather than silently changing memory reuse.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  Adam,
  BatchNorm,
  BatchNormRelu,
  Conv2d,
  crossEntropy,
  declareKeepsNoTensors,
  Dense,
  Flatten,
  fuseBatchNormRelu,
  GlobalAvgPool2d,
  keepsNoTensors,
  LeakyReLU,
  manualSeed,
  mean,
  Module,
  mul,
  noGrad,
  randn,
  ReLU,
  Residual,
  resnet,
  resnet18,
  runChain,
  scaleShift,
  seedCnn,
  Sequential,
  ShapeError,
  summary,
  type Tensor,
} from '../src/index.js';
import * as resnetModels from '../src/models/resnet.js';
import * as seedCnnModels from '../src/models/seed-cnn.js';
import * as nn from '../src/nn/index.js';
import { setRecycling } from '../src/tensor/memory.js';

const repositoryRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const summaries = path.resolve(repositoryRoot, 'test', 'fixtures', 'summary');

/** Multiplies by factor; records every forward it runs. */
class Scale extends Module {
  static override readonly keepsNoTensors = true;
  constructor(
    readonly factor: number,
    readonly log: string[] = [],
    readonly label = `scale ${factor}`,
  ) {
    super();
  }
  forward(x: Tensor): Tensor {
    this.log.push(`forward ${this.label}`);
    return scaleShift(x, this.factor);
  }
}

const values = (tensor: Tensor) => Array.from(tensor.data);

describe('forward hooks', () => {
  it('run pre-hooks, forward, then hooks, each in registration order', () => {
    const log: string[] = [];
    const layer = new Scale(2, log);
    layer.registerForwardHook(() => void log.push('hook a'));
    layer.registerForwardPreHook(() => void log.push('pre a'));
    layer.registerForwardHook(() => void log.push('hook b'));
    layer.registerForwardPreHook(() => void log.push('pre b'));
    layer.call(randn([2]));
    assert.deepEqual(log, ['pre a', 'pre b', 'forward scale 2', 'hook a', 'hook b']);
  });

  it('give the module, the input forward got and its output', () => {
    const layer = new Scale(3);
    const x = randn([3]);
    const seen: (Module | Tensor)[][] = [];
    layer.registerForwardPreHook((module, input) => void seen.push([module, input]));
    layer.registerForwardHook((module, input, output) => void seen.push([module, input, output]));
    const y = layer.call(x);
    assert.equal(seen.length, 2);
    assert.equal(seen[0]![0], layer);
    assert.equal(seen[0]![1], x);
    assert.equal(seen[1]![0], layer);
    assert.equal(seen[1]![1], x);
    assert.equal(seen[1]![2], y);
  });

  it('a pre-hook may replace the input, a hook the output; later hooks see the replacement', () => {
    const layer = new Scale(2);
    const x = randn([4]);
    const inputs: Tensor[] = [];
    layer.registerForwardPreHook((_, input) => scaleShift(input, 1, 10));
    layer.registerForwardPreHook((_, input) => void inputs.push(input));
    layer.registerForwardHook((_, input, output) => {
      inputs.push(input);
      return scaleShift(output, -1);
    });
    const outputs: Tensor[] = [];
    layer.registerForwardHook((_, _input, output) => void outputs.push(output));
    const y = layer.call(x);
    assert.deepEqual(values(y), values(scaleShift(scaleShift(scaleShift(x, 1, 10), 2), -1)));
    assert.equal(inputs[0], inputs[1], 'both hooks see the replaced input');
    assert.deepEqual(values(inputs[0]!), values(scaleShift(x, 1, 10)));
    assert.equal(outputs[0], y, 'the second hook sees the replaced output, which call() returns');
  });

  it('remove() unregisters a hook; a second remove() does nothing; forward alone runs no hooks', () => {
    const log: string[] = [];
    const layer = new Scale(1, log);
    const first = layer.registerForwardHook(() => void log.push('first'));
    const second = layer.registerForwardPreHook(() => void log.push('second'));
    layer.call(randn([1]));
    first.remove();
    first.remove();
    layer.call(randn([1]));
    second.remove();
    assert.equal(layer.hasForwardHooks(), false);
    layer.call(randn([1]));
    layer.registerForwardHook(() => void log.push('third'));
    layer.forward(randn([1]));
    assert.deepEqual(log, [
      'second',
      'forward scale 1',
      'first',
      'second',
      'forward scale 1',
      'forward scale 1',
      'forward scale 1',
    ]);
  });

  it('a hook that removes itself or another during a call does not change that call', () => {
    const log: string[] = [];
    const layer = new Scale(1, log);
    const handles = [1, 2, 3].map((n) =>
      layer.registerForwardHook(() => {
        log.push(`hook ${n}`);
        for (const handle of handles) handle.remove();
      }),
    );
    layer.call(randn([1]));
    layer.call(randn([1]));
    assert.deepEqual(log, ['forward scale 1', 'hook 1', 'hook 2', 'hook 3', 'forward scale 1']);
  });

  it('hooks on nested children run as the containers call them, in forward order', () => {
    const log: string[] = [];
    const inner = new Sequential(new Scale(2, log, 'a'), new Scale(3, log, 'b'));
    const model = new Sequential(new Scale(5, log, 'c'), new Residual(inner, new Scale(7, log, 'd')));
    for (const [name, module] of model.namedModules()) {
      module.registerForwardPreHook(() => void log.push(`pre ${name || 'model'}`));
      module.registerForwardHook(() => void log.push(`post ${name || 'model'}`));
    }
    model.call(randn([2]));
    assert.deepEqual(log, [
      'pre model',
      'pre 0',
      'forward c',
      'post 0',
      'pre 1',
      'pre 1.body',
      'pre 1.body.0',
      'forward a',
      'post 1.body.0',
      'pre 1.body.1',
      'forward b',
      'post 1.body.1',
      'post 1.body',
      'pre 1.shortcut',
      'forward d',
      'post 1.shortcut',
      'post 1',
      'post model',
    ]);
  });

  it('hooks see every layer of a ResNet that its forward calls, with their shapes', () => {
    const model = resnet({ layers: [1, 1], widths: [4, 8], classes: 3, stem: 'small' });
    const seen: string[] = [];
    for (const [name, module] of model.namedModules())
      if (module.children().length === 0)
        module.registerForwardHook((_, _input, y) => void seen.push(`${name} [${y.shape.join(', ')}]`));
    noGrad(() => model.call(randn([2, 3, 8, 8])));
    assert.deepEqual(seen, [
      'conv1 [2, 4, 8, 8]',
      'bn1 [2, 4, 8, 8]',
      'layer1.0.conv1 [2, 4, 8, 8]',
      'layer1.0.bn1 [2, 4, 8, 8]',
      'layer1.0.conv2 [2, 4, 8, 8]',
      'layer1.0.bn2 [2, 4, 8, 8]',
      'layer2.0.downsample.0 [2, 8, 4, 4]',
      'layer2.0.downsample.1 [2, 8, 4, 4]',
      'layer2.0.conv1 [2, 8, 4, 4]',
      'layer2.0.bn1 [2, 8, 4, 4]',
      'layer2.0.conv2 [2, 8, 4, 4]',
      'layer2.0.bn2 [2, 8, 4, 4]',
      'avgpool [2, 8]',
      'fc [2, 3]',
    ]);
  });

  it('an activation a hook keeps survives backward and later steps (it is never reused)', () => {
    manualSeed(4);
    const model = new Sequential(
      new Conv2d(1, 8, 3, { padding: 1 }),
      new ReLU(),
      new Conv2d(8, 8, 3, { padding: 1 }),
      new ReLU(),
      new Flatten(),
    );
    const kept: Tensor[] = [];
    model.layers[1]!.registerForwardHook((_, _input, y) => void kept.push(y));
    const x = randn([2, 1, 16, 16]);
    const output = model.call(x);
    const copy = Float32Array.from(kept[0]!.data);
    mean(mul(output, output)).backward();
    const again = model.call(randn([2, 1, 16, 16]));
    mean(mul(again, again)).backward();
    noGrad(() => model.call(randn([2, 1, 16, 16])));
    assert.deepEqual(Float32Array.from(kept[0]!.data), copy);
  });
});

describe('summary() traced with hooks', () => {
  for (const [file, build] of [
    ['seed-cnn.txt', () => summary(seedCnn(), [1, 28, 28])],
    ['resnet18.txt', () => summary(resnet18(), [3, 224, 224])],
    [
      'resnet18-small-frozen.txt',
      () => {
        const model = resnet18({ classes: 10, stem: 'small' });
        model.conv1.freeze();
        model.stages[0]!.freeze();
        return summary(model, [3, 32, 32]);
      },
    ],
  ] as const) {
    it(`gives the text it gave before hooks: ${file}`, () => {
      assert.equal(`${build().text}\n`, fs.readFileSync(path.join(summaries, file), 'utf8'));
    });
  }

  it('leaves no hook behind and keeps hooks the user registered', () => {
    const model = resnet({ layers: [1], widths: [4], classes: 2, stem: 'small' });
    const calls: string[] = [];
    model.bn1.registerForwardHook(() => void calls.push('user'));
    summary(model, [3, 8, 8]);
    assert.deepEqual(calls, ['user']);
    const withHooks = model.namedModules().filter(([, module]) => module.hasForwardHooks());
    assert.deepEqual(
      withHooks.map(([name]) => name),
      ['bn1'],
    );
  });
});

/** Output, loss and every parameter and buffer after two Adam steps of a small BatchNorm + ReLU network. */
function trainBits(prepare: (model: Sequential) => void): Float32Array[] {
  manualSeed(9);
  const model = new Sequential(
    new Conv2d(2, 4, 3, { padding: 1, bias: false }),
    new BatchNorm(4),
    new ReLU(),
    new Conv2d(4, 4, 3, { padding: 1 }),
    new BatchNorm(4),
    new ReLU(),
    new GlobalAvgPool2d(),
    new Flatten(),
    new Dense(4, 3),
  );
  prepare(model);
  const optimizer = new Adam(model.parameters(), { lr: 1e-2 });
  const x = randn([5, 2, 6, 6]);
  const result: Float32Array[] = [];
  for (let step = 0; step < 2; step++) {
    const output = model.call(x);
    const loss = crossEntropy(output, [0, 1, 2, 1, 0]);
    optimizer.zeroGrad();
    loss.backward();
    optimizer.step();
    result.push(Float32Array.from(output.data), Float32Array.from(loss.data));
  }
  for (const [, tensor] of model.stateDict()) result.push(Float32Array.from(tensor.data));
  result.push(Float32Array.from(noGrad(() => model.eval().call(x)).data));
  return result;
}

describe('the BatchNorm + ReLU rewrite', () => {
  it('fuses exactly a BatchNorm followed by a ReLU layer, and keeps the positions', () => {
    const conv = new Conv2d(1, 2, 3);
    const batchNorm = new BatchNorm(2);
    const relu = new ReLU();
    const leaky = new LeakyReLU();
    const { modules, positions } = fuseBatchNormRelu([conv, batchNorm, relu, new BatchNorm(2), leaky]);
    assert.equal(modules.length, 4);
    assert.equal(modules[0], conv);
    assert.ok(modules[1] instanceof BatchNormRelu);
    assert.equal((modules[1] as BatchNormRelu).batchNorm, batchNorm);
    assert.equal((modules[1] as BatchNormRelu).relu, relu);
    assert.ok(modules[2] instanceof BatchNorm);
    assert.equal(modules[3], leaky);
    assert.deepEqual(positions, [0, 1, 3, 4]);
  });

  it('gives the unfused bits, also with a hook on the batch norm (which then runs unfused)', () => {
    const fused = trainBits(() => {});
    const unfused = trainBits((model) => (model.fuseBatchNormRelu = false));
    const hooked: string[] = [];
    const withHook = trainBits((model) =>
      model.layers[4]!.registerForwardHook((_, _input, y) => void hooked.push(y.gradFn?.name ?? 'none')),
    );
    assert.deepEqual(fused, unfused);
    assert.deepEqual(withHook, unfused);
    // The hooked batch norm ran as its own layer (not the fused op) in every call.
    assert.deepEqual(hooked, ['BatchNorm', 'BatchNorm', 'none']);
  });

  it('changes what runs, not the structure: children, names and state_dict stay', () => {
    const model = seedCnn({ channels: [4, 8] });
    const before = model.namedModules().map(([name, module]) => [name, module.constructor.name]);
    const names = [...model.stateDict().keys()];
    model.call(randn([2, 1, 28, 28]));
    assert.deepEqual(
      model.namedModules().map(([name, module]) => [name, module.constructor.name]),
      before,
    );
    assert.deepEqual([...model.stateDict().keys()], names);
    assert.ok(!model.namedModules().some(([, module]) => module instanceof BatchNormRelu));
  });

  it('is made again when the layers change', () => {
    const model = new Sequential(new BatchNorm(2), new ReLU());
    const x = randn([3, 2]);
    assert.equal(model.call(x).gradFn?.name, 'BatchNorm+ReLU');
    model.replace(1, new LeakyReLU());
    assert.equal(model.call(x).gradFn?.name, 'leaky_relu');
    model.replace(1, new ReLU());
    assert.equal(model.call(x).gradFn?.name, 'BatchNorm+ReLU');
  });

  it('names the failing layer by its position in errors, fused or not', () => {
    const model = new Sequential(new Dense(3, 4), new BatchNorm(5), new ReLU());
    assert.throws(
      () => model.call(randn([2, 3])),
      (error: Error) => {
        assert.ok(error instanceof ShapeError);
        assert.match(error.message, /^layer 1 BatchNorm\(5\): /);
        return true;
      },
    );
  });
});

/** Classes among a module's exports that extend Module and do not declare keepsNoTensors themselves. */
function undeclaredLayers(exports: Record<string, unknown>): string[] {
  return Object.entries(exports)
    .filter(
      ([, value]) =>
        typeof value === 'function' &&
        value !== Module &&
        value.prototype instanceof Module &&
        !Object.hasOwn(value, 'keepsNoTensors'),
    )
    .map(([name]) => name);
}

describe('memory behaviour is declared, never guessed', () => {
  it('every layer class exported by src/nn and src/models declares keepsNoTensors itself', () => {
    const layerClasses = Object.values({ ...nn, ...resnetModels, ...seedCnnModels }).filter(
      (value) => typeof value === 'function' && value.prototype instanceof Module,
    );
    assert.ok(layerClasses.length >= 25, `found ${layerClasses.length} layer classes`);
    assert.deepEqual(undeclaredLayers({ ...nn, ...resnetModels, ...seedCnnModels }), []);
  });

  it('the check catches a class that forgot, and such a class gets no memory reuse', () => {
    class Forgetful extends ReLU {}
    class Declared extends ReLU {
      static override readonly keepsNoTensors = true;
    }
    assert.deepEqual(undeclaredLayers({ Forgetful, Declared, ReLU }), ['Forgetful']);
    // Not inherited from ReLU: a subclass may keep what its parent did not.
    assert.equal(keepsNoTensors(new Forgetful()), false);
    assert.equal(keepsNoTensors(new Declared()), true);
    // A container counts only when every descendant declared it and has no hooks.
    assert.equal(keepsNoTensors(new Sequential(new ReLU(), new Forgetful())), false);
    const relu = new ReLU();
    const container = new Sequential(relu);
    assert.equal(keepsNoTensors(container), true);
    const handle = relu.registerForwardPreHook(() => {});
    assert.equal(keepsNoTensors(container), false);
    handle.remove();
    assert.equal(keepsNoTensors(container), true);
  });

  it('declareKeepsNoTensors still declares a class (for existing callers)', () => {
    class Old extends Module {
      forward(x: Tensor): Tensor {
        return x;
      }
    }
    assert.equal(keepsNoTensors(new Old()), false);
    declareKeepsNoTensors(Old);
    assert.equal(keepsNoTensors(new Old()), true);
    assert.deepEqual(undeclaredLayers({ Old }), []);
  });

  it('a subclass that keeps its input and forgot to declare keeps correct values through backward', () => {
    class KeepingRelu extends ReLU {
      kept: Tensor | null = null;
      override forward(x: Tensor): Tensor {
        this.kept = x;
        return super.forward(x);
      }
    }
    manualSeed(6);
    const keeper = new KeepingRelu();
    const model = new Sequential(
      new Conv2d(1, 8, 3, { padding: 1 }),
      keeper,
      new Conv2d(8, 2, 3),
      new Flatten(),
    );
    const output = model.call(randn([2, 1, 16, 16]));
    const firstKept = keeper.kept!;
    const copy = Float32Array.from(firstKept.data);
    mean(mul(output, output)).backward();
    // Another step allocates from whatever the first backward pass freed.
    const again = model.call(randn([2, 1, 16, 16]));
    mean(mul(again, again)).backward();
    assert.notEqual(keeper.kept, firstKept);
    assert.deepEqual(Float32Array.from(firstKept.data), copy);
  });
});

describe('runChain', () => {
  it('calls the modules in order, returns x for none, and prefixes shape errors with the name', () => {
    const log: string[] = [];
    const y = runChain([new Scale(2, log, 'a'), new Scale(3, log, 'b')], randn([2]), (i) => `step ${i}`);
    assert.equal(y.shape[0], 2);
    assert.deepEqual(log, ['forward a', 'forward b']);
    const x = randn([2]);
    assert.equal(
      runChain([], x, () => ''),
      x,
    );
    assert.throws(
      () => runChain([new Dense(2, 3), new Dense(4, 1)], randn([1, 2]), (i) => `step ${i}`),
      /^ShapeError: step 1: /,
    );
  });

  it('gives the same bits with and without memory reuse through call()', () => {
    const run = (recycling: boolean) => {
      setRecycling(recycling);
      try {
        return trainBits(() => {});
      } finally {
        setRecycling(true);
      }
    };
    assert.deepEqual(run(true), run(false));
  });
});
