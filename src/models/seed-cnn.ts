/**
 * The seed CNN of the notes: two blocks of (3×3 conv → batch norm → ReLU) × 2 → 2×2 max-pool, with
 * more channels in the second block, then global average pooling and one dense layer. Batch norm sits
 * after each convolution and before the activation (DL0007), the convolutions have no bias (batch
 * norm's β replaces it), small 3×3 kernels are stacked (DL0004), and the head is GAP + a small FC
 * (DL0011).
 */
import { BatchNorm } from '../nn/layers/batchnorm.js';
import { ReLU } from '../nn/layers/activation.js';
import { Sequential } from '../nn/layers/containers.js';
import { Conv2d } from '../nn/layers/conv.js';
import { Dense } from '../nn/layers/dense.js';
import { Flatten, GlobalAvgPool2d, MaxPool2d } from '../nn/layers/pooling.js';

export interface SeedCnnOptions {
  /** Input channels (1 for MNIST). */
  inChannels?: number;
  /** Channels of the first and second block (default [32, 64]). */
  channels?: readonly [number, number];
  classes?: number;
  /** 'gap' (global average pooling + dense, default) or 'flatten' (flatten + dense; needs spatialSize). */
  head?: 'gap' | 'flatten';
  /** Input height = width, needed for the flatten head's feature count (default 28). */
  inputSize?: number;
}

/**
 * Input [N, inChannels, H, W] → logits [N, classes]. Layer indices (and so state_dict names) match
 * the equivalent PyTorch nn.Sequential: 0 conv, 1 bn, 2 relu, 3 conv, 4 bn, 5 relu, 6 pool, 7 conv, ...,
 * 13 pool, 14 GAP, 15 flatten, 16 dense.
 */
export function seedCnn(options: SeedCnnOptions = {}): Sequential {
  const [first, second] = options.channels ?? [32, 64];
  const classes = options.classes ?? 10;
  const layers = [];
  let inChannels = options.inChannels ?? 1;
  for (const width of [first, second]) {
    for (let repeat = 0; repeat < 2; repeat++) {
      layers.push(
        new Conv2d(inChannels, width, 3, { padding: 1, bias: false }),
        new BatchNorm(width),
        new ReLU(),
      );
      inChannels = width;
    }
    layers.push(new MaxPool2d(2));
  }
  if ((options.head ?? 'gap') === 'gap') {
    layers.push(new GlobalAvgPool2d(), new Flatten(), new Dense(second, classes));
  } else {
    const spatial = Math.floor(Math.floor((options.inputSize ?? 28) / 2) / 2);
    layers.push(new Flatten(), new Dense(second * spatial * spatial, classes));
  }
  return new Sequential(...layers);
}
