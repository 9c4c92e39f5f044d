/**
 * A forward convolution of a batch gives, for every sample, the bits of that sample convolved
 * alone, on every backend variant and thread count. The native backend picks the GEMM's orientation
 * from the image size and runs strided convolutions on phase planes; neither may change a sum.
 */
import { describe, it } from 'node:test';

import type { Backend, Conv2dGeometry } from '../src/backend/types.js';
import { convGeometry, randomArray } from './conformance/shapes.js';
import { assertSameBits } from './conformance/tolerance.js';
import { nativeVariants, referenceVariant, wasmVariant } from './conformance/variants.js';

const geometries: { name: string; geometry: Conv2dGeometry }[] = [
  {
    name: '7x7 image, 512 channels (positions as the GEMM rows)',
    geometry: convGeometry({
      batch: 5,
      inChannels: 32,
      inHeight: 7,
      inWidth: 7,
      outChannels: 512,
      kernel: [3, 3],
      pad: [1, 1],
    }),
  },
  {
    // Blocks of tile rows span samples in the batch, never one sample alone.
    name: '7x9 image, 48 to 64 channels (native: Winograd)',
    geometry: convGeometry({
      batch: 5,
      inChannels: 48,
      inHeight: 7,
      inWidth: 9,
      outChannels: 64,
      kernel: [3, 3],
      pad: [1, 1],
    }),
  },
  {
    name: '5x5 image, 136 to 144 channels (native: Winograd, shared blocks)',
    geometry: convGeometry({
      batch: 3,
      inChannels: 136,
      inHeight: 5,
      inWidth: 5,
      outChannels: 144,
      kernel: [3, 3],
      pad: [1, 1],
    }),
  },
  {
    name: '4x4 image, 17 to 33 channels',
    geometry: convGeometry({
      batch: 7,
      inChannels: 17,
      inHeight: 4,
      inWidth: 4,
      outChannels: 33,
      kernel: [3, 3],
      pad: [1, 1],
    }),
  },
  {
    name: '14x14 image, 32 channels, batch 6 (native: Winograd, blocks of whole samples)',
    geometry: convGeometry({
      batch: 6,
      inChannels: 32,
      inHeight: 14,
      inWidth: 14,
      outChannels: 32,
      kernel: [3, 3],
      pad: [1, 1],
    }),
  },
  {
    // Native: the batch's product skips each panel's taps that read only padding (a panel per
    // position), a sample alone reads every tap (one panel for all its positions).
    name: '4x4 image, 64 to 20 channels, batch 33 (native: padding taps skipped)',
    geometry: convGeometry({
      batch: 33,
      inChannels: 64,
      inHeight: 4,
      inWidth: 4,
      outChannels: 20,
      kernel: [3, 3],
      pad: [1, 1],
    }),
  },
  {
    name: '3x3 stride 2 (phase planes)',
    geometry: convGeometry({
      batch: 4,
      inChannels: 8,
      inHeight: 15,
      inWidth: 13,
      outChannels: 24,
      kernel: [3, 3],
      stride: [2, 2],
      pad: [1, 1],
    }),
  },
  {
    name: '7x7 stride 2, 3 input channels (a ResNet stem)',
    geometry: convGeometry({
      batch: 3,
      inChannels: 3,
      inHeight: 30,
      inWidth: 30,
      outChannels: 16,
      kernel: [7, 7],
      stride: [2, 2],
      pad: [3, 3],
    }),
  },
];

/** out of the whole batch, and out of each sample alone, concatenated. */
function batchAndSingles(backend: Backend, g: Conv2dGeometry): [Float32Array, Float32Array] {
  const inputSize = g.inChannels * g.inHeight * g.inWidth;
  const outputSize = g.outChannels * g.outHeight * g.outWidth;
  const x = randomArray('float32', g.batch * inputSize, 31) as Float32Array;
  const weight = randomArray('float32', g.outChannels * g.inChannels * g.kernelHeight * g.kernelWidth, 32);
  const whole = new Float32Array(g.batch * outputSize);
  backend.conv2dForward(x, weight, whole, g);
  const singles = new Float32Array(g.batch * outputSize);
  for (let n = 0; n < g.batch; n++) {
    backend.conv2dForward(
      x.subarray(n * inputSize, (n + 1) * inputSize),
      weight,
      singles.subarray(n * outputSize, (n + 1) * outputSize),
      { ...g, batch: 1 },
    );
  }
  return [whole, singles];
}

describe('forward convolution is batch-invariant', () => {
  for (const variant of [referenceVariant, wasmVariant(), ...nativeVariants()]) {
    it(variant.name, () => {
      const leave = variant.enter?.();
      try {
        for (const threads of variant.setThreads === undefined ? [0] : [1, 2]) {
          const previous = variant.setThreads?.(threads);
          try {
            for (const { name, geometry } of geometries) {
              const [whole, singles] = batchAndSingles(variant.backend, geometry);
              assertSameBits(whole, singles, `${variant.name}, ${threads} threads, ${name}`);
            }
          } finally {
            if (previous !== undefined) variant.setThreads!(previous);
          }
        }
      } finally {
        leave?.();
      }
    });
  }
});
