/**
 * ResNets with torchvision's structure and state_dict names, so that weights saved from
 * `torchvision.models.resnet18()` (or any ResNet built the same way) load into `resnet18()` by name,
 * and back.
 *
 * Structure (torchvision.models.resnet.ResNet):
 *   conv1 (7×7, stride 2, padding 3, no bias) → bn1 → relu → maxpool (3×3, stride 2, padding 1)
 *   → layer1 … layerN (each a Sequential of blocks; the first block of every stage but the first has
 *     stride 2, and a `downsample` 1×1 convolution + batch norm whenever its shape changes)
 *   → avgpool (global average) → fc.
 * BasicBlock: conv1 3×3 (stride) → bn1 → relu → conv2 3×3 → bn2, plus the shortcut, then relu.
 * Bottleneck (ResNet-50 and deeper, torchvision's "v1.5" with the stride on the 3×3): conv1 1×1 →
 * bn1 → relu → conv2 3×3 (stride) → bn2 → relu → conv3 1×1 (4× wider) → bn3, plus the shortcut, relu.
 *
 * The `small` stem (a 3×3 stride-1 conv1 and no max-pool) is for 28×28 and 32×32 inputs, where the
 * ImageNet stem would shrink the image 4× before the first block; it keeps every state_dict name
 * except that conv1's weight is 3×3.
 */
import { add, pair, relu } from '../ops/index.js';
import { allocationCount } from '../tensor/memory.js';
import type { Tensor } from '../tensor/tensor.js';
import { kaimingNormal } from '../nn/init.js';
import { convBatchNormInference, inferenceFusionApplies } from '../nn/inference.js';
import { markInner } from '../nn/chain.js';
import { Module } from '../nn/module.js';
import { BatchNorm } from '../nn/layers/batchnorm.js';
import { ReLU } from '../nn/layers/activation.js';
import { Sequential } from '../nn/layers/containers.js';
import { Conv2d } from '../nn/layers/conv.js';
import { Dense } from '../nn/layers/dense.js';
import { GlobalAvgPool2d, MaxPool2d } from '../nn/layers/pooling.js';

export type ResNetBlockKind = 'basic' | 'bottleneck';

export interface ResNetOptions {
  /** 'basic' (ResNet-18/34) or 'bottleneck' (ResNet-50/101/152). Default 'basic'. */
  block?: ResNetBlockKind;
  /** Blocks per stage, e.g. [2, 2, 2, 2] for ResNet-18 (default). One entry per stage, any number of stages. */
  layers?: readonly number[];
  /** Width of each stage, e.g. [64, 128, 256, 512] (default); bottleneck stages output 4× these. */
  widths?: readonly number[];
  /** Outputs of fc (default 1000, ImageNet). */
  classes?: number;
  /** Input channels (default 3). */
  inChannels?: number;
  /** 'imagenet' (7×7 stride-2 conv and a max-pool, default) or 'small' (3×3 stride-1 conv, no max-pool). */
  stem?: 'imagenet' | 'small';
  /**
   * Start the last batch norm of every block at γ = 0, so each block begins as the identity (Goyal et
   * al.; torchvision's zero_init_residual). Default false, as torchvision.
   */
  zeroInitResidual?: boolean;
}

/** A residual block's constructor arguments, as plain JSON (see BasicBlock.config()). */
export interface ResidualBlockConfig {
  inChannels: number;
  width: number;
  stride: number;
}

/**
 * What a ResNet is, as plain JSON (see ResNet.config()): ResNetOptions with every default filled in.
 * zeroInitResidual is left out: it only decides the initial values, which a saved model replaces.
 */
export type ResNetConfig = Required<Omit<ResNetOptions, 'zeroInitResidual' | 'layers' | 'widths'>> & {
  layers: number[];
  widths: number[];
};

/** He-normal initialisation with fan-out, as torchvision initialises ResNet convolutions. */
function initializeConvolution(conv: Conv2d): void {
  const [kernelHeight, kernelWidth] = conv.kernelSize;
  const fanOut = conv.outChannels * kernelHeight * kernelWidth;
  conv.weight.data.set(kaimingNormal(conv.weight.shape, fanOut).data);
}

function convolution(inChannels: number, outChannels: number, kernel: number, stride: number): Conv2d {
  const conv = new Conv2d(inChannels, outChannels, kernel, {
    stride,
    padding: (kernel - 1) / 2,
    bias: false,
  });
  initializeConvolution(conv);
  return conv;
}

/** The 1×1 convolution + batch norm that reshapes the shortcut (torchvision's `downsample`). */
function downsample(inChannels: number, outChannels: number, stride: number): Sequential {
  return new Sequential(convolution(inChannels, outChannels, 1, stride), new BatchNorm(outChannels));
}

/** A residual block: the last batch norm (for zeroInitResidual) and the output channels. */
export interface ResidualBlock extends Module {
  readonly outChannels: number;
  readonly lastBatchNorm: BatchNorm;
}

/**
 * relu(batchNorm.call(x)) as one op (BatchNorm.forwardRelu: the same values and gradients, one pass
 * over memory and one tensor fewer), unless hooks on the batch norm must see its own output.
 */
function batchNormRelu(batchNorm: BatchNorm, x: Tensor): Tensor {
  return batchNorm.hasForwardHooks() ? relu(batchNorm.call(x)) : batchNorm.forwardRelu(x);
}

/**
 * Two 3×3 convolutions with a shortcut. x: [N, inChannels, H, W] → [N, outChannels, ⌈H/stride⌉, ⌈W/stride⌉].
 * Names: conv1, bn1, conv2, bn2, downsample.0 (conv), downsample.1 (batch norm).
 */
export class BasicBlock extends Module implements ResidualBlock {
  /** Its forward keeps no tensor once it returns (see Module.keepsNoTensors). */
  static override readonly keepsNoTensors = true;
  static readonly expansion = 1;
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm;
  readonly downsample: Sequential | null;
  readonly outChannels: number;

  constructor(inChannels: number, width: number, stride = 1) {
    super();
    this.outChannels = width;
    this.conv1 = this.addModule('conv1', convolution(inChannels, width, 3, stride));
    this.bn1 = this.addModule('bn1', new BatchNorm(width));
    this.addModule('relu', new ReLU());
    this.conv2 = this.addModule('conv2', convolution(width, width, 3, 1));
    this.bn2 = this.addModule('bn2', new BatchNorm(width));
    this.downsample =
      stride !== 1 || inChannels !== width
        ? this.addModule('downsample', downsample(inChannels, width, stride))
        : null;
  }

  get lastBatchNorm(): BatchNorm {
    return this.bn2;
  }

  forward(x: Tensor): Tensor {
    const since = allocationCount();
    const shortcut = this.downsample === null ? x : this.downsample.call(x);
    if (inferenceFusionApplies(x, [this.conv1, this.bn1, this.conv2, this.bn2], shortcut)) {
      // The inference rewrite (src/nn/inference.ts): two fused convolutions, the second adding the
      // shortcut before its ReLU; the same bits as the lines below.
      const h = convBatchNormInference(x, this.conv1, this.bn1, { relu: true });
      const out = convBatchNormInference(h, this.conv2, this.bn2, { relu: true, residual: shortcut });
      markInner(this, [shortcut, h], out, since);
      return out;
    }
    const a = this.conv1.call(x);
    const b = batchNormRelu(this.bn1, a);
    const c = this.conv2.call(b);
    const d = this.bn2.call(c);
    const sum = add(d, shortcut);
    const out = relu(sum);
    markInner(this, [shortcut, a, b, c, d, sum], out, since);
    return out;
  }

  /** The constructor's arguments (saveModel and exporters read this). */
  config(): ResidualBlockConfig {
    const [stride] = pair(this.conv1.convolution.stride ?? 1);
    return { inChannels: this.conv1.inChannels, width: this.conv1.outChannels, stride };
  }

  override describe(): string {
    return `BasicBlock(${this.conv1.inChannels}→${this.outChannels}${this.conv1.convolution.stride !== 1 ? ', stride 2' : ''})`;
  }
}

/**
 * 1×1 reduce, 3×3 (with the stride), 1×1 expand to 4·width, with a shortcut.
 * x: [N, inChannels, H, W] → [N, 4·width, ⌈H/stride⌉, ⌈W/stride⌉].
 * Names: conv1, bn1, conv2, bn2, conv3, bn3, downsample.0, downsample.1.
 */
export class Bottleneck extends Module implements ResidualBlock {
  /** Its forward keeps no tensor once it returns (see Module.keepsNoTensors). */
  static override readonly keepsNoTensors = true;
  static readonly expansion = 4;
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm;
  readonly conv3: Conv2d;
  readonly bn3: BatchNorm;
  readonly downsample: Sequential | null;
  readonly outChannels: number;

  constructor(inChannels: number, width: number, stride = 1) {
    super();
    this.outChannels = width * Bottleneck.expansion;
    this.conv1 = this.addModule('conv1', convolution(inChannels, width, 1, 1));
    this.bn1 = this.addModule('bn1', new BatchNorm(width));
    this.conv2 = this.addModule('conv2', convolution(width, width, 3, stride));
    this.bn2 = this.addModule('bn2', new BatchNorm(width));
    this.conv3 = this.addModule('conv3', convolution(width, this.outChannels, 1, 1));
    this.bn3 = this.addModule('bn3', new BatchNorm(this.outChannels));
    this.addModule('relu', new ReLU());
    this.downsample =
      stride !== 1 || inChannels !== this.outChannels
        ? this.addModule('downsample', downsample(inChannels, this.outChannels, stride))
        : null;
  }

  get lastBatchNorm(): BatchNorm {
    return this.bn3;
  }

  forward(x: Tensor): Tensor {
    const since = allocationCount();
    const shortcut = this.downsample === null ? x : this.downsample.call(x);
    const layers = [this.conv1, this.bn1, this.conv2, this.bn2, this.conv3, this.bn3];
    if (inferenceFusionApplies(x, layers, shortcut)) {
      // The inference rewrite (src/nn/inference.ts); the same bits as the lines below.
      const h = convBatchNormInference(x, this.conv1, this.bn1, { relu: true });
      const h2 = convBatchNormInference(h, this.conv2, this.bn2, { relu: true });
      const out = convBatchNormInference(h2, this.conv3, this.bn3, { relu: true, residual: shortcut });
      markInner(this, [shortcut, h, h2], out, since);
      return out;
    }
    const a = this.conv1.call(x);
    const b = batchNormRelu(this.bn1, a);
    const c = this.conv2.call(b);
    const d = batchNormRelu(this.bn2, c);
    const e = this.conv3.call(d);
    const f = this.bn3.call(e);
    const sum = add(f, shortcut);
    const out = relu(sum);
    markInner(this, [shortcut, a, b, c, d, e, f, sum], out, since);
    return out;
  }

  /** The constructor's arguments (saveModel and exporters read this). */
  config(): ResidualBlockConfig {
    const [stride] = pair(this.conv2.convolution.stride ?? 1);
    return { inChannels: this.conv1.inChannels, width: this.conv1.outChannels, stride };
  }

  override describe(): string {
    return `Bottleneck(${this.conv1.inChannels}→${this.outChannels}${this.conv2.convolution.stride !== 1 ? ', stride 2' : ''})`;
  }
}

/**
 * A ResNet. x: [N, inChannels, H, W] → logits [N, classes].
 * The stages are `stages[i]` (state_dict prefix `layer${i + 1}`); `fc` is the classifier.
 */
export class ResNet extends Module {
  /** Its forward keeps no tensor once it returns (see Module.keepsNoTensors). */
  static override readonly keepsNoTensors = true;
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm;
  readonly maxpool: MaxPool2d | null;
  readonly stages: Sequential[];
  readonly avgpool: GlobalAvgPool2d;
  private classifier: Dense;
  readonly block: ResNetBlockKind;
  /** Channels entering fc. */
  readonly features: number;
  /** The options with defaults filled in, for config(). */
  private readonly resolvedOptions: Omit<ResNetConfig, 'classes'>;

  constructor(options: ResNetOptions = {}) {
    super();
    const block = options.block ?? 'basic';
    const layers = options.layers ?? [2, 2, 2, 2];
    const widths = options.widths ?? [64, 128, 256, 512].slice(0, layers.length);
    const classes = options.classes ?? 1000;
    const inChannels = options.inChannels ?? 3;
    if (block !== 'basic' && block !== 'bottleneck')
      throw new TypeError(`ResNet: block must be 'basic' or 'bottleneck', got '${String(block)}'`);
    if (layers.length === 0 || widths.length !== layers.length) {
      throw new RangeError(
        `ResNet: layers and widths need one entry per stage and the same length, got layers [${layers.join(', ')}], widths [${widths.join(', ')}]`,
      );
    }
    for (const [name, values] of [
      ['layers', layers],
      ['widths', widths],
    ] as const) {
      if (!values.every((value) => Number.isInteger(value) && value >= 1))
        throw new RangeError(`ResNet: ${name} must be positive integers, got [${values.join(', ')}]`);
    }
    this.block = block;
    const small = options.stem === 'small';
    this.resolvedOptions = {
      block,
      layers: [...layers],
      widths: [...widths],
      inChannels,
      stem: small ? 'small' : 'imagenet',
    };
    this.conv1 = this.addModule(
      'conv1',
      small ? convolution(inChannels, widths[0]!, 3, 1) : convolution(inChannels, widths[0]!, 7, 2),
    );
    this.bn1 = this.addModule('bn1', new BatchNorm(widths[0]!));
    this.addModule('relu', new ReLU());
    this.maxpool = small ? null : this.addModule('maxpool', new MaxPool2d(3, { stride: 2, padding: 1 }));
    let channels = widths[0]!;
    this.stages = layers.map((count, stage) => {
      const blocks = new Sequential();
      for (let index = 0; index < count; index++) {
        const stride = index === 0 && stage > 0 ? 2 : 1;
        const made: ResidualBlock =
          block === 'basic'
            ? new BasicBlock(channels, widths[stage]!, stride)
            : new Bottleneck(channels, widths[stage]!, stride);
        if (options.zeroInitResidual === true) made.lastBatchNorm.weight?.data.fill(0);
        blocks.append(made);
        channels = made.outChannels;
      }
      return this.addModule(`layer${stage + 1}`, blocks);
    });
    this.avgpool = this.addModule('avgpool', new GlobalAvgPool2d());
    this.features = channels;
    this.classifier = this.addModule('fc', new Dense(channels, classes));
  }

  /** The classifier (state_dict prefix `fc`): Dense(features → classes). */
  get fc(): Dense {
    return this.classifier;
  }

  /** Puts layer in place of fc (head surgery); it must accept `features` inputs. */
  replaceClassifier(layer: Dense): void {
    if (layer.inFeatures !== this.features) {
      throw new RangeError(
        `ResNet.replaceClassifier: the new layer takes ${layer.inFeatures} features, the network gives ${this.features}`,
      );
    }
    this.classifier = this.addModule('fc', layer);
  }

  /**
   * The options that rebuild this network (saveModel and exporters read this). classes is read from
   * the current classifier, so a network whose head was replaced describes its new head; fc itself is
   * a child with its own config.
   */
  config(): ResNetConfig {
    return {
      ...this.resolvedOptions,
      layers: [...this.resolvedOptions.layers],
      widths: [...this.resolvedOptions.widths],
      classes: this.classifier.outFeatures,
    };
  }

  /** Feature maps before pooling: x [N, C, H, W] → [N, features, H/32, W/32] (H/8 with the small stem). */
  forwardFeatures(x: Tensor): Tensor {
    const since = allocationCount();
    const inner: Tensor[] = [];
    let y: Tensor;
    if (inferenceFusionApplies(x, [this.conv1, this.bn1])) {
      y = convBatchNormInference(x, this.conv1, this.bn1, { relu: true });
    } else {
      const stem = this.conv1.call(x);
      inner.push(stem);
      y = batchNormRelu(this.bn1, stem);
    }
    if (this.maxpool !== null) {
      inner.push(y);
      y = this.maxpool.call(y);
    }
    for (const stage of this.stages) {
      inner.push(y);
      y = stage.call(y);
    }
    markInner(this, inner, y, since);
    return y;
  }

  forward(x: Tensor): Tensor {
    const since = allocationCount();
    const features = this.forwardFeatures(x);
    const pooled = this.avgpool.call(features);
    const logits = this.classifier.call(pooled);
    markInner(this, [features, pooled], logits, since);
    return logits;
  }

  override describe(): string {
    const depth =
      this.stages.reduce((sum, stage) => sum + stage.length, 0) * (this.block === 'basic' ? 2 : 3) + 2;
    return `ResNet-${depth}(${this.block}, ${this.stages.map((stage) => stage.length).join('-')})`;
  }
}

/** Any ResNet: `resnet({ block: 'basic', layers: [1, 1, 1, 1], widths: [16, 32, 64, 128], classes: 10 })`. */
export function resnet(options: ResNetOptions = {}): ResNet {
  return new ResNet(options);
}

/** torchvision's resnet18: basic blocks [2, 2, 2, 2], widths 64–512. Input [N, 3, 224, 224] → [N, classes]. */
export function resnet18(options: Omit<ResNetOptions, 'block' | 'layers'> = {}): ResNet {
  return new ResNet({ ...options, block: 'basic', layers: [2, 2, 2, 2] });
}

/** torchvision's resnet34: basic blocks [3, 4, 6, 3]. */
export function resnet34(options: Omit<ResNetOptions, 'block' | 'layers'> = {}): ResNet {
  return new ResNet({ ...options, block: 'basic', layers: [3, 4, 6, 3] });
}

/** torchvision's resnet50: bottleneck blocks [3, 4, 6, 3], output features 2048. */
export function resnet50(options: Omit<ResNetOptions, 'block' | 'layers'> = {}): ResNet {
  return new ResNet({ ...options, block: 'bottleneck', layers: [3, 4, 6, 3] });
}
