/**
 * Runs PyTorch reference cases (format: test/fixtures/torch-parity/README.md) against tensile.
 *
 * Each case file holds inputs, parameters, and PyTorch's outputs and gradients; the case's op is
 * recomputed with tensile's public ops and layers on the current backend, and every expected
 * tensor is compared element-wise with |ours − ref| ≤ atol + rtol·|ref|.
 */
import * as path from 'node:path';
import {
  activation,
  Adam,
  AdamW,
  avgPool2d,
  batchNorm,
  binaryCrossEntropyWithLogits,
  conv2d,
  crossEntropy,
  formatShape,
  globalAvgPool2d,
  globalMaxPool2d,
  huberLoss,
  int64ToInt32,
  l1Loss,
  linear,
  logSoftmax,
  maxPool2d,
  modelFromConfig,
  mseLoss,
  noGrad,
  Parameter,
  readSafetensors,
  resnet,
  SGD,
  shapesEqual,
  smoothL1Loss,
  softmax,
  Tensor,
  type ActivationKind,
  type Data,
  type LayerConfig,
  type Module,
  type Optimizer,
  type Reduction,
  type ResNetBlockKind,
  type SafetensorsEntry,
} from '../../src/index.js';

export interface Tolerance {
  rtol: number;
  atol: number;
}

export interface Comparison {
  tensor: string;
  /** Largest |ours − ref| over the tensor. */
  maxAbsoluteError: number;
  /** Largest |ours − ref| / (atol + rtol·|ref|): ≤ 1 passes. */
  worstRatio: number;
  passed: boolean;
}

export interface CaseResult {
  name: string;
  op: string;
  file: string;
  passed: boolean;
  comparisons: Comparison[];
  /** Set when the case could not be run (unknown op, missing tensor, exception). */
  error?: string;
}

/** What a case computes: named outputs to compare with the file's tensors of the same names. */
type CaseRunner = (c: LoadedCase) => Map<string, Tensor | Data>;

interface LoadedCase {
  meta: Record<string, unknown>;
  tensor(name: string, requiresGrad?: boolean): Tensor;
  labels(name: string): Int32Array;
  has(name: string): boolean;
  names(): string[];
}

class ParityCaseError extends Error {}

function loadCase(file: string): LoadedCase {
  const { tensors, metadata } = readSafetensors(file);
  if (metadata.case === undefined)
    throw new ParityCaseError(`${file}: no 'case' entry in the header's __metadata__`);
  const meta = JSON.parse(metadata.case) as Record<string, unknown>;
  const get = (name: string): SafetensorsEntry => {
    const entry = tensors.get(name);
    if (entry === undefined)
      throw new ParityCaseError(
        `${path.basename(file)}: tensor '${name}' is missing (op ${String(meta.op)})`,
      );
    return entry;
  };
  return {
    meta,
    tensor(name, requiresGrad = false) {
      const entry = get(name);
      if (entry.data instanceof Float32Array)
        return new Tensor(entry.data.slice(), entry.shape, requiresGrad);
      if (entry.data instanceof Float64Array)
        return new Tensor(Float32Array.from(entry.data), entry.shape, requiresGrad);
      throw new ParityCaseError(
        `${path.basename(file)}: tensor '${name}' has dtype ${entry.dtype}, expected F32`,
      );
    },
    labels(name) {
      const entry = get(name);
      if (entry.data instanceof BigInt64Array)
        return int64ToInt32(entry.data, `tensor '${name}' in ${path.basename(file)}`);
      if (entry.data instanceof Int32Array) return entry.data;
      throw new ParityCaseError(
        `${path.basename(file)}: tensor '${name}' has dtype ${entry.dtype}, expected I64 class indices`,
      );
    },
    has: (name) => tensors.has(name),
    names: () => [...tensors.keys()],
  };
}

/** Runs backward from output with the upstream gradient grad_y. */
function backwardWith(output: Tensor, c: LoadedCase): void {
  output.backward(c.tensor('grad_y'));
}

function reductionOf(c: LoadedCase): Reduction {
  return (c.meta.reduction as Reduction | undefined) ?? 'mean';
}

/** A reduced loss is back-propagated from 1; an unreduced one ('none') with the case's grad_y. */
function backwardLoss(loss: Tensor, c: LoadedCase): void {
  if (c.meta.reduction === 'none') backwardWith(loss, c);
  else loss.backward();
}

/** An elementwise loss case: pred, target, loss, grad_pred. */
function regressionLossCase(
  c: LoadedCase,
  lossOf: (prediction: Tensor, target: Tensor, reduction: Reduction) => Tensor,
): Map<string, Tensor | Data> {
  const prediction = c.tensor('pred', true);
  const loss = lossOf(prediction, c.tensor('target'), reductionOf(c));
  backwardLoss(loss, c);
  return new Map<string, Tensor | Data>([
    ['loss', loss.data],
    ['grad_pred', gradOf(prediction)],
  ]);
}

function gradOf(t: Tensor): Data {
  if (t.grad === null) throw new ParityCaseError('no gradient reached an input');
  return t.grad.data;
}

const activationKinds: Record<string, ActivationKind | 'none' | 'softmax' | 'log_softmax'> = {
  none: 'none',
  relu: 'relu',
  sigmoid: 'sigmoid',
  tanh: 'tanh',
  gelu: 'gelu',
  leaky_relu: 'leaky_relu',
  elu: 'elu',
  softmax: 'softmax',
  log_softmax: 'log_softmax',
};

function pooledOptions(meta: Record<string, unknown>) {
  return {
    kernelSize: meta.kernel as number,
    stride: meta.stride as number,
    padding: meta.padding as number,
  };
}

const runners: Record<string, CaseRunner> = {
  dense(c) {
    const x = c.tensor('x', true);
    const weight = c.tensor('weight', true);
    const bias = c.tensor('bias', true);
    const name = String(c.meta.activation);
    const kind = activationKinds[name];
    if (kind === undefined) throw new ParityCaseError(`unknown activation '${name}'`);
    const z = linear(x, weight, bias);
    const slope = (c.meta.leaky_relu_slope as number | undefined) ?? 0.01;
    const y =
      kind === 'none'
        ? z
        : kind === 'softmax'
          ? softmax(z)
          : kind === 'log_softmax'
            ? logSoftmax(z)
            : activation(kind, z, { alpha: kind === 'leaky_relu' ? slope : 1 });
    backwardWith(y, c);
    return new Map<string, Tensor | Data>([
      ['y', y],
      ['grad_x', gradOf(x)],
      ['grad_weight', gradOf(weight)],
      ['grad_bias', gradOf(bias)],
    ]);
  },
  conv2d(c) {
    const x = c.tensor('x', true);
    const weight = c.tensor('weight', true);
    const bias = c.meta.bias === true ? c.tensor('bias', true) : null;
    const y = conv2d(x, weight, bias, {
      stride: c.meta.stride as number,
      padding: c.meta.padding as number,
      dilation: (c.meta.dilation as number | undefined) ?? 1,
    });
    backwardWith(y, c);
    const result = new Map<string, Tensor | Data>([
      ['y', y],
      ['grad_x', gradOf(x)],
      ['grad_weight', gradOf(weight)],
    ]);
    if (bias !== null) result.set('grad_bias', gradOf(bias));
    return result;
  },
  max_pool2d(c) {
    const x = c.tensor('x', true);
    const y = maxPool2d(x, pooledOptions(c.meta));
    backwardWith(y, c);
    return new Map<string, Tensor | Data>([
      ['y', y],
      ['grad_x', gradOf(x)],
    ]);
  },
  avg_pool2d(c) {
    const x = c.tensor('x', true);
    const y = avgPool2d(x, {
      ...pooledOptions(c.meta),
      countIncludePad: (c.meta.count_include_pad as boolean | undefined) ?? true,
    });
    backwardWith(y, c);
    return new Map<string, Tensor | Data>([
      ['y', y],
      ['grad_x', gradOf(x)],
    ]);
  },
  global_avg_pool2d(c) {
    const x = c.tensor('x', true);
    const y = globalAvgPool2d(x);
    backwardWith(y, c);
    return new Map<string, Tensor | Data>([
      ['y', y],
      ['grad_x', gradOf(x)],
    ]);
  },
  global_max_pool2d(c) {
    const x = c.tensor('x', true);
    const y = globalMaxPool2d(x);
    backwardWith(y, c);
    return new Map<string, Tensor | Data>([
      ['y', y],
      ['grad_x', gradOf(x)],
    ]);
  },
  batch_norm(c) {
    const x = c.tensor('x', true);
    const gamma = c.tensor('gamma', true);
    const beta = c.tensor('beta', true);
    const runningMean = c.tensor('running_mean');
    const runningVar = c.tensor('running_var');
    const training = c.meta.training === true;
    const y = batchNorm(x, runningMean, runningVar, gamma, beta, {
      training,
      momentum: (c.meta.momentum as number | undefined) ?? 0.1,
      eps: (c.meta.eps as number | undefined) ?? 1e-5,
    });
    backwardWith(y, c);
    const result = new Map<string, Tensor | Data>([
      ['y', y],
      ['grad_x', gradOf(x)],
      ['grad_gamma', gradOf(gamma)],
      ['grad_beta', gradOf(beta)],
    ]);
    if (training) {
      result.set('running_mean_after', runningMean);
      result.set('running_var_after', runningVar);
    }
    return result;
  },
  cross_entropy(c) {
    const logits = c.tensor('logits', true);
    // Class indices are stored as I64, class probabilities as F32 [N, C].
    const targets = c.meta.target_kind === 'probabilities' ? c.tensor('target') : c.labels('target');
    const loss = crossEntropy(logits, targets, {
      labelSmoothing: (c.meta.label_smoothing as number | undefined) ?? 0,
      classWeights: c.has('weight') ? c.tensor('weight') : undefined,
      ignoreIndex: c.meta.ignore_index as number | undefined,
      reduction: reductionOf(c),
    });
    backwardLoss(loss, c);
    return new Map<string, Tensor | Data>([
      ['loss', loss.data],
      ['grad_logits', gradOf(logits)],
    ]);
  },
  bce_with_logits(c) {
    const logits = c.tensor('logits', true);
    const loss = binaryCrossEntropyWithLogits(logits, c.tensor('target'), {
      posWeight: c.has('pos_weight') ? c.tensor('pos_weight') : undefined,
      reduction: reductionOf(c),
    });
    backwardLoss(loss, c);
    return new Map<string, Tensor | Data>([
      ['loss', loss.data],
      ['grad_logits', gradOf(logits)],
    ]);
  },
  l1: (c) =>
    regressionLossCase(c, (prediction, target, reduction) => l1Loss(prediction, target, { reduction })),
  smooth_l1: (c) =>
    regressionLossCase(c, (prediction, target, reduction) =>
      smoothL1Loss(prediction, target, { reduction, beta: c.meta.beta as number }),
    ),
  huber: (c) =>
    regressionLossCase(c, (prediction, target, reduction) =>
      huberLoss(prediction, target, { reduction, delta: c.meta.delta as number }),
    ),
  mse(c) {
    const prediction = c.tensor('pred', true);
    const loss = mseLoss(prediction, c.tensor('target'));
    loss.backward();
    return new Map<string, Tensor | Data>([
      ['loss', loss.data],
      ['grad_pred', gradOf(prediction)],
    ]);
  },
  optimizer(c) {
    const parameter = new Parameter(c.tensor('p0'));
    const optimizer = optimizerFromCase(c.meta, [parameter]);
    const steps = (c.meta.steps as number | undefined) ?? 5;
    const result = new Map<string, Tensor | Data>();
    for (let s = 0; s < steps; s++) {
      parameter.grad = c.tensor(`grad_${s}`);
      optimizer.step();
      result.set(`p_${s + 1}`, parameter.data.slice());
    }
    return result;
  },
  model_train_step(c) {
    const architecture = c.meta.architecture as LayerConfig[];
    const batchNormSettings = (c.meta.batch_norm ?? {}) as { eps?: number; momentum?: number };
    const layers = architecture.map((layer) =>
      layer.type === 'batch_norm' ? { ...batchNormSettings, ...layer } : layer,
    );
    const model = modelFromConfig(layers as LayerConfig[], c.meta.input_shape as number[]);
    loadPrefixed(model, c, 'init.');
    model.train();
    const optimizerMeta = c.meta.optimizer as Record<string, unknown>;
    const optimizer = optimizerFromCase(
      { optimizer: optimizerMeta.name, hyperparameters: optimizerMeta },
      model.parameters(),
    );
    const loss = crossEntropy(model.forward(c.tensor('x')), c.labels('target'));
    optimizer.zeroGrad();
    loss.backward();
    const result = new Map<string, Tensor | Data>([['loss', loss.data]]);
    for (const [name, parameter] of model.namedParameters())
      result.set(`grad.${name}`, gradOf(parameter).slice());
    optimizer.step();
    for (const [name, value] of model.stateDict()) result.set(`after.${name}`, value);
    model.eval();
    result.set(
      'eval_logits',
      noGrad(() => model.forward(c.tensor('x'))),
    );
    return result;
  },
  model_forward(c) {
    // A pretrained network: build it from the case's architecture, load its weights by PyTorch name
    // (strictly: every name and shape must fit), and compare the inference-mode logits.
    const architecture = c.meta.architecture as {
      family?: string;
      block?: string;
      widths?: number[];
      layers?: number[];
      classes?: number;
      stem?: string;
    };
    if (architecture.family !== 'resnet') {
      throw new ParityCaseError(
        `model_forward: unknown architecture family '${String(architecture.family)}' (tensile builds 'resnet')`,
      );
    }
    const inputShape = c.meta.input_shape as number[];
    const model = resnet({
      block: (architecture.block ?? 'basic') as ResNetBlockKind,
      widths: architecture.widths,
      layers: architecture.layers,
      classes: architecture.classes,
      inChannels: inputShape[0],
      stem: architecture.stem === 'small' ? 'small' : 'imagenet',
    });
    loadPrefixed(model, c, 'weights.');
    model.eval();
    return new Map<string, Tensor | Data>([['logits', noGrad(() => model.forward(c.tensor('x')))]]);
  },
};

/** Loads tensors named prefix+NAME into a model's state_dict entries NAME. */
export function loadPrefixed(
  model: Module,
  c: { tensor(name: string): Tensor; names(): string[] },
  prefix: string,
): void {
  const values = new Map<string, Tensor>();
  for (const name of c.names()) {
    // PyTorch's batch-norm step counters are not weights; tensile has no such buffer.
    if (name.startsWith(prefix) && !name.endsWith('num_batches_tracked')) {
      values.set(name.slice(prefix.length), c.tensor(name));
    }
  }
  model.loadStateDict(values);
}

function optimizerFromCase(meta: Record<string, unknown>, parameters: Parameter[]): Optimizer {
  const h = (meta.hyperparameters ?? {}) as Record<string, unknown>;
  const betas = (h.betas as [number, number] | undefined) ?? [0.9, 0.999];
  const common = { lr: h.lr as number, weightDecay: (h.weight_decay as number | undefined) ?? 0 };
  switch (meta.optimizer) {
    case 'sgd':
      return new SGD(parameters, {
        ...common,
        momentum: (h.momentum as number | undefined) ?? 0,
        dampening: (h.dampening as number | undefined) ?? 0,
        nesterov: (h.nesterov as boolean | undefined) ?? false,
      });
    case 'adam':
      return new Adam(parameters, {
        ...common,
        beta1: betas[0],
        beta2: betas[1],
        eps: (h.eps as number | undefined) ?? 1e-8,
      });
    case 'adamw':
      return new AdamW(parameters, {
        ...common,
        weightDecay: (h.weight_decay as number | undefined) ?? 0.01,
        beta1: betas[0],
        beta2: betas[1],
        eps: (h.eps as number | undefined) ?? 1e-8,
      });
    default:
      throw new ParityCaseError(`unknown optimizer '${String(meta.optimizer)}'`);
  }
}

/** Registry of extra runners (e.g. model_forward for pretrained-model cases) added by other modules. */
export function registerParityRunner(op: string, runner: CaseRunner): void {
  runners[op] = runner;
}

export function compare(
  name: string,
  ours: Data,
  ref: Data,
  expectedShape: readonly number[],
  oursShape: readonly number[] | null,
  tolerance: Tolerance,
): Comparison {
  if (ours.length !== ref.length || (oursShape !== null && !shapesEqual(oursShape, expectedShape))) {
    throw new ParityCaseError(
      `tensor '${name}': shape ${oursShape === null ? `(${ours.length} values)` : formatShape(oursShape)} differs from the reference ${formatShape(expectedShape)}`,
    );
  }
  let maxAbsoluteError = 0;
  let worstRatio = 0;
  for (let i = 0; i < ref.length; i++) {
    const error = Math.abs(ours[i]! - ref[i]!);
    const ratio = error / (tolerance.atol + tolerance.rtol * Math.abs(ref[i]!));
    if (!(error <= maxAbsoluteError)) maxAbsoluteError = error; // NaN propagates as a failure
    if (!(ratio <= worstRatio)) worstRatio = ratio;
  }
  return { tensor: name, maxAbsoluteError, worstRatio, passed: worstRatio <= 1 };
}

/** Runs one case file on the current backend. Never throws: problems become a failed result. */
export function runParityCase(file: string): CaseResult {
  const result: CaseResult = {
    name: path.basename(file, '.safetensors'),
    op: '?',
    file,
    passed: false,
    comparisons: [],
  };
  try {
    const c = loadCase(file);
    result.op = String(c.meta.op);
    if (typeof c.meta.name === 'string') result.name = c.meta.name;
    const runner = runners[result.op];
    if (runner === undefined)
      throw new ParityCaseError(`unknown op '${result.op}' (tensile cannot run this case)`);
    const tolerance = (c.meta.tolerance ?? { rtol: 1e-4, atol: 1e-5 }) as Tolerance;
    const outputs = runner(c);
    for (const [name, value] of outputs) {
      if (!c.has(name)) continue; // a value the case does not check
      const ref = c.tensor(name);
      const oursShape = value instanceof Tensor ? value.shape : null;
      const oursData = value instanceof Tensor ? value.data : value;
      result.comparisons.push(compare(name, oursData, ref.data, ref.shape, oursShape, tolerance));
    }
    if (result.comparisons.length === 0)
      throw new ParityCaseError('the case has none of the tensors tensile computed');
    result.passed = result.comparisons.every((comparison) => comparison.passed);
  } catch (error) {
    result.error = error instanceof Error ? error.message : String(error);
    result.passed = false;
  }
  return result;
}

/** One line per case: status, name, op, largest error and the tensor it was in. */
export function formatCaseLine(result: CaseResult): string {
  const status = result.passed ? 'PASS' : 'FAIL';
  if (result.error !== undefined)
    return `${status}  ${result.name.padEnd(28)} ${result.op.padEnd(18)} error: ${result.error}`;
  const worst = result.comparisons.reduce((a, b) => (b.worstRatio > a.worstRatio ? b : a));
  const maxError = Math.max(...result.comparisons.map((comparison) => comparison.maxAbsoluteError));
  return `${status}  ${result.name.padEnd(28)} ${result.op.padEnd(18)} max abs error ${maxError.toExponential(2)}  (worst: ${worst.tensor} at ${(worst.worstRatio * 100).toFixed(1)}% of tolerance)`;
}
