/** Softmax and log-softmax over the last axis. */
import { record } from '../autograd/graph.js';
import { getBackend } from '../backend/index.js';
import { allocateUninitialized, Tensor } from '../tensor/tensor.js';
import { formatShape, ShapeError } from '../tensor/shape.js';

function softmaxOp(x: Tensor, log: boolean): Tensor {
  const name = log ? 'logSoftmax' : 'softmax';
  if (x.rank < 1) throw new ShapeError(`${name}: needs at least one axis, got shape ${formatShape(x.shape)}`);
  const cols = x.shape[x.rank - 1]!;
  const rows = x.size / cols;
  const out = allocateUninitialized(x.dtype, x.size);
  getBackend().softmaxForward(x.data, out, rows, cols, log);
  return record(new Tensor(out, x.shape), name, [x], (gradOut) => {
    const gradX = allocateUninitialized(x.dtype, x.size);
    getBackend().softmaxBackward(out, gradOut, gradX, rows, cols, log);
    return [gradX];
  });
}

/** exp(x)/Σexp(x) along the last axis, computed stably. */
export const softmax = (x: Tensor): Tensor => softmaxOp(x, false);
/** log softmax along the last axis, computed stably (x − max − log Σ exp(x − max)). */
export const logSoftmax = (x: Tensor): Tensor => softmaxOp(x, true);
