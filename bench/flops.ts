/** Floating-point operations of a forward pass, counted from the layers (multiply-adds × 2). */
import { Conv2d, Dense, type Module, Sequential, summary } from '../src/index.js';

/** Forward FLOPs per sample of a Sequential of Conv2d/Dense (other layers are counted as free). */
export function flopsPerSample(model: Module, inputShape: number[]): number {
  if (!(model instanceof Sequential)) throw new Error('flopsPerSample: expects a Sequential');
  const rows = summary(model, inputShape).rows;
  let total = 0;
  model.layers.forEach((layer, i) => {
    const out = rows[i]!.outputShape;
    if (layer instanceof Conv2d) {
      total +=
        2 * out.reduce((a, b) => a * b, 1) * layer.inChannels * layer.kernelSize[0] * layer.kernelSize[1];
    } else if (layer instanceof Dense) {
      total += 2 * layer.inFeatures * layer.outFeatures;
    }
  });
  return total;
}
