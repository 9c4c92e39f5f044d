/** Floating-point operations of a forward pass, counted from the layers (multiply-adds × 2). */
import {
  Conv2d,
  Dense,
  type HookHandle,
  type Module,
  noGrad,
  Sequential,
  summary,
  zeros,
} from '../src/index.js';

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

/**
 * Forward FLOPs per sample of any module (a ResNet, say): runs one forward pass on a zero sample in
 * inference mode and counts each Conv2d and Dense it goes through (other layers are counted as free).
 */
export function forwardFlops(model: Module, inputShape: number[]): number {
  let total = 0;
  const handles: HookHandle[] = [];
  for (const [, layer] of model.namedModules()) {
    if (layer instanceof Conv2d) {
      handles.push(
        layer.registerForwardHook((conv, _x, y) => {
          const out = y.shape.slice(1).reduce((a, b) => a * b, 1);
          total += 2 * out * conv.inChannels * conv.kernelSize[0] * conv.kernelSize[1];
        }),
      );
    } else if (layer instanceof Dense) {
      handles.push(
        layer.registerForwardHook((dense) => {
          total += 2 * dense.inFeatures * dense.outFeatures;
        }),
      );
    }
  }
  const training = model.training;
  model.eval();
  try {
    noGrad(() => model.call(zeros([1, ...inputShape])));
  } finally {
    for (const handle of handles) handle.remove();
    model.train(training);
  }
  return total;
}
