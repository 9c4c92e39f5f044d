/**
 * The wasm backend's fused optimizer steps (assembly/optim.ts): Adam/AdamW and SGD over a parameter,
 * its gradient and its state, computed in float64 per element like the reference, so the results are
 * the reference's bits.
 *
 * They run on the calling thread: an update is a few flops per element, about what the copies in and
 * out of wasm memory cost, so waking the workers would not pay.
 */
import { DECLINED } from '../kernels.js';
import type { AdamStep, SgdStep } from '../types.js';
import { requireLength } from './plan.js';
import { type Pointer, wasmRuntime } from './runtime.js';

/** The exports of assembly/optim.ts (see there for the semantics). */
interface OptimizerExports {
  adamUpdate(
    parameter: Pointer,
    gradient: Pointer,
    m: Pointer,
    v: Pointer,
    start: number,
    end: number,
    lr: number,
    beta1: number,
    beta2: number,
    eps: number,
    weightDecay: number,
    decoupled: boolean,
    biasCorrection1: number,
    biasCorrection2: number,
  ): void;
  sgdUpdate(
    parameter: Pointer,
    gradient: Pointer,
    buffer: Pointer,
    hasMomentum: boolean,
    start: number,
    end: number,
    lr: number,
    momentum: number,
    dampening: number,
    nesterov: boolean,
    weightDecay: number,
    firstStep: boolean,
  ): void;
}

function hasOptimizerExports(kernels: object): kernels is OptimizerExports {
  const record = kernels as Record<string, unknown>;
  return typeof record.adamUpdate === 'function' && typeof record.sgdUpdate === 'function';
}

/** The optimizer kernels, or null when kernels.wasm predates them (then the reference runs: DECLINED). */
function optimizerKernels(): OptimizerExports | null {
  const { kernels } = wasmRuntime();
  return hasOptimizerExports(kernels) ? kernels : null;
}

/** Backend.adamUpdate: one Adam/AdamW step in place. */
export function adamUpdate(
  parameter: Float32Array,
  gradient: Float32Array,
  m: Float32Array,
  v: Float32Array,
  step: AdamStep,
): typeof DECLINED | void {
  const kernels = optimizerKernels();
  if (kernels === null) return DECLINED;
  const count = parameter.length;
  requireLength('gradient', gradient, count);
  requireLength('m', m, count);
  requireLength('v', v, count);
  const { arena } = wasmRuntime();
  arena.reset();
  const parameterAt = arena.copyIn(parameter, count);
  const gradientAt = arena.copyIn(gradient, count);
  const mAt = arena.copyIn(m, count);
  const vAt = arena.copyIn(v, count);
  kernels.adamUpdate(
    parameterAt,
    gradientAt,
    mAt,
    vAt,
    0,
    count,
    step.lr,
    step.beta1,
    step.beta2,
    step.eps,
    step.weightDecay,
    step.decoupledWeightDecay,
    step.biasCorrection1,
    step.biasCorrection2,
  );
  arena.copyOut(parameterAt, parameter, count);
  arena.copyOut(mAt, m, count);
  arena.copyOut(vAt, v, count);
}

/** Backend.sgdUpdate: one SGD step in place. */
export function sgdUpdate(
  parameter: Float32Array,
  gradient: Float32Array,
  momentumBuffer: Float32Array | null,
  step: SgdStep,
): typeof DECLINED | void {
  const kernels = optimizerKernels();
  if (kernels === null) return DECLINED;
  const count = parameter.length;
  requireLength('gradient', gradient, count);
  if (momentumBuffer !== null) requireLength('momentumBuffer', momentumBuffer, count);
  const { arena } = wasmRuntime();
  arena.reset();
  const parameterAt = arena.copyIn(parameter, count);
  const gradientAt = arena.copyIn(gradient, count);
  const bufferAt = momentumBuffer === null ? 0 : arena.copyIn(momentumBuffer, count);
  kernels.sgdUpdate(
    parameterAt,
    gradientAt,
    bufferAt,
    momentumBuffer !== null,
    0,
    count,
    step.lr,
    step.momentum,
    step.dampening,
    step.nesterov,
    step.weightDecay,
    step.firstStep,
  );
  arena.copyOut(parameterAt, parameter, count);
  if (momentumBuffer !== null) arena.copyOut(bufferAt, momentumBuffer, count);
}
