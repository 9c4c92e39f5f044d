/**
 * fastBackend (src/backend/kernels.ts): a kernel table becomes a whole Backend whose calls reach the
 * fast kernel only when every tensor argument is of the table's dtype and the kernel does not
 * decline, and the reference kernel otherwise.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { DECLINED, fastBackend, kernelNames, tensorArguments } from '../src/backend/kernels.js';
import { referenceBackend } from '../src/backend/reference/index.js';
import type { BatchNormGeometry } from '../src/backend/types.js';

test('float32 calls reach the fast kernel; float64 and mixed calls the reference', () => {
  const calls: string[] = [];
  const backend = fastBackend('test', {
    float32: {
      scaleShift(x, scale, shift, out) {
        calls.push('fast');
        out.fill(scale + shift + x.length);
      },
    },
  });
  const out32 = new Float32Array(2);
  backend.scaleShift(new Float32Array(2), 1, 2, out32);
  assert.deepEqual(Array.from(out32), [5, 5]);
  const out64 = new Float64Array(2);
  backend.scaleShift(Float64Array.of(1, 2), 3, 1, out64);
  assert.deepEqual(Array.from(out64), [4, 7]);
  const mixed = new Float32Array(2);
  backend.scaleShift(Float64Array.of(1, 2), 3, 1, mixed);
  assert.deepEqual(Array.from(mixed), [4, 7]);
  assert.deepEqual(calls, ['fast']);
  assert.equal(backend.name, 'test');
  assert.equal(backend.storage, undefined);
});

test('a declined call runs the reference kernel with the same arguments', () => {
  const backend = fastBackend('test', {
    float32: { activationForward: (kind) => (kind === 'relu' ? undefined : DECLINED) },
  });
  const x = Float32Array.of(-1, 0.5);
  const relu = new Float32Array(2).fill(9);
  backend.activationForward('relu', x, relu, 0);
  assert.deepEqual(Array.from(relu), [9, 9], 'the fast kernel ran (and wrote nothing)');
  const tanh = new Float32Array(2);
  const expected = new Float32Array(2);
  backend.activationForward('tanh', x, tanh, 0);
  referenceBackend.activationForward('tanh', x, expected, 0);
  assert.deepEqual(tanh, expected);
});

test('a null optional buffer counts as any dtype', () => {
  let reached = false;
  const backend = fastBackend('test', {
    float32: {
      sgdUpdate: () => {
        reached = true;
      },
    },
  });
  const step = { lr: 0.1, momentum: 0, dampening: 0, nesterov: false, weightDecay: 0, firstStep: true };
  backend.sgdUpdate(new Float32Array(1), new Float32Array(1), null, step);
  assert.ok(reached);
});

test('a float64 table and kernels the table leaves out', () => {
  let float64Calls = 0;
  const backend = fastBackend('test', {
    float64: {
      power: (x, _exponent, out) => {
        float64Calls++;
        out.set(x);
      },
    },
  });
  const out = new Float64Array(1);
  backend.power(Float64Array.of(3), 2, out);
  assert.deepEqual([float64Calls, out[0]], [1, 3]);
  const out32 = new Float32Array(1);
  backend.power(Float32Array.of(3), 2, out32);
  assert.deepEqual([float64Calls, out32[0]], [1, 9]);
  assert.equal(backend.transpose, referenceBackend.transpose);
});

test("reference kernels composed of others run the backend's own", () => {
  const used: string[] = [];
  const backend = fastBackend('test', {
    float32: {
      channelAffine: (_x, _scale, _shift, out) => {
        used.push('channelAffine');
        out.fill(-1);
      },
    },
  });
  // channelAffineRelu is not in the table: the reference composes channelAffine (the table's) and ReLU.
  const g: BatchNormGeometry = { batch: 1, channels: 1, spatial: 2 };
  const out = new Float32Array(2);
  backend.channelAffineRelu(Float32Array.of(1, 2), Float32Array.of(1), Float32Array.of(0), out, g);
  assert.deepEqual(used, ['channelAffine']);
  assert.deepEqual(Array.from(out), [0, 0]);
});

test('every kernel of the reference backend has its tensor parameters described', () => {
  for (const name of kernelNames) {
    assert.equal(typeof referenceBackend[name], 'function', name);
    assert.equal(tensorArguments[name].length, referenceBackend[name].length, name);
  }
});
