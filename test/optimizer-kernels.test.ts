/**
 * The fused optimizer kernels (Backend.adamUpdate, Backend.sgdUpdate) of every backend that loads,
 * against the reference backend: the same bits, since each element is computed in float64 and
 * rounded once on store, and the same bits on 1 and 2 threads.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { loadNativeBackend, getNativeThreads, setNativeThreads } from '../src/backend/native/index.js';
import { referenceBackend } from '../src/backend/reference/index.js';
import type { AdamStep, Backend, Data, SgdStep } from '../src/backend/types.js';
import { getWasmThreads, setWasmThreads, wasmBackend } from '../src/backend/wasm/index.js';

const native = loadNativeBackend();
const fastBackends: Backend[] = [wasmBackend, ...(native === null ? [] : [native])];

/** Deterministic uniform numbers in [-scale, scale) (mulberry32). */
function randomArray(length: number, seed: number, scale = 1): Float32Array {
  let state = seed >>> 0;
  const values = new Float32Array(length);
  for (let i = 0; i < length; i++) {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    values[i] = ((((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1) * scale;
  }
  return values;
}

/** Bitwise equality of two float arrays, naming the first differing element. */
function assertSameBits(actual: Data, expected: Data, label: string): void {
  assert.equal(actual.length, expected.length, `${label}: length`);
  for (let i = 0; i < actual.length; i++) {
    if (!Object.is(actual[i], expected[i])) {
      assert.fail(`${label}: element ${i} is ${actual[i]}, the reference gives ${expected[i]}`);
    }
  }
}

/** Sizes below and above the kernels' threading threshold, with ragged tails. */
const sizes = [1, 7, 33, 1000, 70_001];

const adamCases: { name: string; step: Omit<AdamStep, 'biasCorrection1' | 'biasCorrection2'> }[] = [
  {
    name: 'Adam with L2',
    step: { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, decoupledWeightDecay: false },
  },
  {
    name: 'AdamW',
    step: { lr: 5e-3, beta1: 0.8, beta2: 0.99, eps: 1e-6, weightDecay: 0.1, decoupledWeightDecay: true },
  },
  {
    name: 'Adam without decay',
    step: { lr: 0.1, beta1: 0, beta2: 0.5, eps: 0, weightDecay: 0, decoupledWeightDecay: false },
  },
];

/** Runs three Adam steps of backend on copies of the same state and returns the final arrays. */
function runAdam(backend: Backend, size: number, settings: (typeof adamCases)[number]['step']): Data[] {
  const parameter = randomArray(size, 1);
  const m = new Float32Array(size);
  const v = new Float32Array(size);
  for (let t = 1; t <= 3; t++) {
    const gradient = randomArray(size, 10 + t, 2);
    backend.adamUpdate(parameter, gradient, m, v, {
      ...settings,
      biasCorrection1: 1 - settings.beta1 ** t,
      biasCorrection2: 1 - settings.beta2 ** t,
    });
  }
  return [parameter, m, v];
}

const sgdCases: { name: string; step: Omit<SgdStep, 'firstStep'> }[] = [
  { name: 'plain SGD', step: { lr: 0.1, momentum: 0, dampening: 0, nesterov: false, weightDecay: 0 } },
  { name: 'momentum', step: { lr: 0.05, momentum: 0.9, dampening: 0.1, nesterov: false, weightDecay: 1e-3 } },
  { name: 'Nesterov', step: { lr: 0.01, momentum: 0.95, dampening: 0, nesterov: true, weightDecay: 0.05 } },
];

function runSgd(backend: Backend, size: number, settings: (typeof sgdCases)[number]['step']): Data[] {
  const parameter = randomArray(size, 2);
  const buffer = settings.momentum > 0 ? new Float32Array(size) : null;
  for (let t = 1; t <= 3; t++) {
    const gradient = randomArray(size, 20 + t, 2);
    backend.sgdUpdate(parameter, gradient, buffer, { ...settings, firstStep: t === 1 });
  }
  return buffer === null ? [parameter] : [parameter, buffer];
}

/** Runs body on 1 and on 2 threads of the native and wasm backends, restoring their thread counts. */
function onThreadCounts(body: (threads: number) => void): void {
  const nativeThreads = getNativeThreads();
  const wasmThreads = getWasmThreads();
  try {
    for (const threads of [1, 2]) {
      if (native !== null) setNativeThreads(threads);
      setWasmThreads(threads);
      body(threads);
    }
  } finally {
    if (native !== null) setNativeThreads(nativeThreads);
    setWasmThreads(wasmThreads);
  }
}

test('adamUpdate gives the reference bits on every backend and thread count', () => {
  onThreadCounts((threads) => {
    for (const { name, step } of adamCases) {
      for (const size of sizes) {
        const expected = runAdam(referenceBackend, size, step);
        for (const backend of fastBackends) {
          const actual = runAdam(backend, size, step);
          const label = `${backend.name} ${name}, ${size} elements, ${threads} threads`;
          ['parameter', 'm', 'v'].forEach((part, i) =>
            assertSameBits(actual[i]!, expected[i]!, `${label}: ${part}`),
          );
        }
      }
    }
  });
});

test('sgdUpdate gives the reference bits on every backend and thread count', () => {
  onThreadCounts((threads) => {
    for (const { name, step } of sgdCases) {
      for (const size of sizes) {
        const expected = runSgd(referenceBackend, size, step);
        for (const backend of fastBackends) {
          const actual = runSgd(backend, size, step);
          const label = `${backend.name} ${name}, ${size} elements, ${threads} threads`;
          expected.forEach((part, i) => assertSameBits(actual[i]!, part, `${label}: array ${i}`));
        }
      }
    }
  });
});

test('the optimizer kernels take float64 state on every backend (delegated to the reference)', () => {
  for (const backend of fastBackends) {
    const parameter = Float64Array.from([0.5, -0.25]);
    const m = new Float64Array(2);
    const v = new Float64Array(2);
    backend.adamUpdate(parameter, Float64Array.from([1, -1]), m, v, {
      lr: 0.1,
      beta1: 0.9,
      beta2: 0.999,
      eps: 1e-8,
      weightDecay: 0,
      decoupledWeightDecay: false,
      biasCorrection1: 0.1,
      biasCorrection2: 0.001,
    });
    // The first bias-corrected step moves each element by lr against the gradient's sign.
    assert.ok(Math.abs(parameter[0]! - 0.4) < 1e-7, `${backend.name}: ${parameter[0]}`);
    assert.ok(Math.abs(parameter[1]! + 0.15) < 1e-7, `${backend.name}: ${parameter[1]}`);
  }
});

test('native optimizer kernels reject buffers shorter than the parameter', (t) => {
  if (native === null) {
    t.skip('native addon not built');
    return;
  }
  const step: AdamStep = {
    lr: 0.1,
    beta1: 0.9,
    beta2: 0.999,
    eps: 1e-8,
    weightDecay: 0,
    decoupledWeightDecay: false,
    biasCorrection1: 0.1,
    biasCorrection2: 0.001,
  };
  assert.throws(
    () =>
      native.adamUpdate(
        new Float32Array(4),
        new Float32Array(4),
        new Float32Array(3),
        new Float32Array(4),
        step,
      ),
    RangeError,
  );
  assert.throws(
    () =>
      native.sgdUpdate(new Float32Array(4), new Float32Array(2), null, {
        lr: 0.1,
        momentum: 0,
        dampening: 0,
        nesterov: false,
        weightDecay: 0,
        firstStep: true,
      }),
    RangeError,
  );
});
