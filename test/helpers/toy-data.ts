/** Small deterministic data sets shared by the training, tuning and tracking tests. */
import { type ImageDataset, Random } from '../../src/index.js';

/**
 * Two classes of 4×4 one-channel images: class 0 bright in the top half, class 1 in the bottom
 * half, with Gaussian noise (σ 0.1) from `seed`. Labels alternate 0, 1, 0, ... A small network
 * learns it in a few epochs, so tests of the loop see a falling loss.
 */
export function toyDataset(count: number, seed: number): ImageDataset {
  const random = new Random(seed);
  const images = new Float32Array(count * 16);
  const labels = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    labels[i] = i % 2;
    for (let p = 0; p < 16; p++)
      images[i * 16 + p] = (p < 8 === (labels[i] === 0) ? 0.8 : 0.2) + 0.1 * random.normal();
  }
  return {
    images,
    labels,
    count,
    channels: 1,
    height: 4,
    width: 4,
    classes: 2,
    classNames: ['top', 'bottom'],
  };
}
