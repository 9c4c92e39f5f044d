/**
 * Tensors in the wasm module's memory (src/backend/wasm/heap.ts): the block allocator, training that
 * gives the same bits whether tensors live there or in JavaScript arrays, memory that stays flat over
 * steps, arrays user code holds that keep their values, operands that overlap, and arrays from that
 * memory used by the reference and native backends.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  Adam,
  Conv2d,
  crossEntropy,
  manualSeed,
  mean,
  Module,
  mul,
  randn,
  ReLU,
  resnet,
  seedCnn,
  Sequential,
  type Backend,
  type Tensor,
  withBackend,
} from '../src/index.js';
import { loadNativeBackend, nativeUnavailableReason } from '../src/backend/native/index.js';
import { referenceBackend } from '../src/backend/reference/index.js';
import { WasmHeap, WasmTensorStorage } from '../src/backend/wasm/heap.js';
import { wasmBackend, wasmTensorStorage } from '../src/backend/wasm/index.js';
import type { WasmMemory } from '../src/backend/wasm/runtime.js';

declare const WebAssembly: {
  Memory: new (descriptor: { initial: number; maximum: number; shared: boolean }) => WasmMemory;
};

/** The wasm backend with its tensors in JavaScript arrays, as with TENSILE_WASM_TENSORS=js. */
const wasmWithoutStorage: Backend = { ...wasmBackend, storage: undefined };

test('the heap reuses freed blocks, merges neighbours and gives back its top', () => {
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 64, shared: true });
  const heap = new WasmHeap(memory, 100);
  const a = heap.allocate(1000);
  assert.equal(a, 128, 'blocks start on a cache line above the base');
  const b = heap.allocate(2000);
  const c = heap.allocate(64);
  assert.equal(b, a + 1024);
  assert.equal(c, b + 2048);
  heap.release(b, 2000);
  assert.equal(heap.allocate(1500), b, 'a freed block takes a smaller request');
  heap.release(b, 1500);
  heap.release(a, 1000);
  // a and b's blocks merged: a request as large as both fits where a began.
  assert.equal(heap.allocate(3000), a);
  heap.release(a, 3000);
  heap.release(c, 64);
  assert.equal(heap.spanBytes, 128, 'freeing the top block lowers the top past the free blocks below');
  const big = heap.allocate(300_000);
  assert.equal(big, 128);
  assert.ok(memory.buffer.byteLength >= 128 + 300_032, 'the memory grew to hold the block');
});

test('the heap prefers the smallest free block that fits', () => {
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 64, shared: true });
  const heap = new WasmHeap(memory, 0);
  const blocks = [4096, 64, 1024, 64, 2048, 64].map((bytes) => [heap.allocate(bytes), bytes] as const);
  for (const index of [0, 2, 4]) heap.release(...blocks[index]!);
  assert.equal(heap.allocate(1000), blocks[2]![0]);
  assert.equal(heap.allocate(2048), blocks[4]![0]);
  assert.equal(heap.allocate(4096), blocks[0]![0]);
});

/** Losses, outputs and parameters of a few Adam steps of a model (the seed CNN) on `backend`. */
function train(
  backend: Backend,
  build: () => Module = () => seedCnn({ channels: [8, 16] }),
  inputShape: number[] = [6, 1, 28, 28],
) {
  return withBackend(backend, () => {
    manualSeed(11);
    const model = build();
    const input = randn(inputShape);
    const labels = new Int32Array(inputShape[0]!).map((_, i) => i % 4);
    const optimizer = new Adam(model.parameters(), { lr: 1e-2 });
    model.train();
    const losses: number[] = [];
    const outputs: Float32Array[] = [];
    const held: number[] = [];
    for (let step = 0; step < 5; step++) {
      const output = model.forward(input);
      const loss = crossEntropy(output, labels);
      optimizer.zeroGrad();
      loss.backward();
      optimizer.step();
      losses.push(loss.item());
      outputs.push(Float32Array.from(output.data));
      held.push(wasmTensorStorage.heldBytes);
      for (const parameter of model.parameters()) {
        assert.ok(!wasmTensorStorage.owns(parameter.grad!.data), '.grad stays out of the wasm memory');
      }
    }
    return { losses, outputs, held, parameters: model.parameters().map((p) => Float32Array.from(p.data)) };
  });
}

test('training gives the same bits with tensors in wasm memory and in JavaScript arrays', () => {
  const inMemory = train(wasmBackend);
  const inArrays = train(wasmWithoutStorage);
  assert.deepEqual(inMemory.losses, inArrays.losses);
  assert.deepEqual(inMemory.outputs, inArrays.outputs);
  assert.deepEqual(inMemory.parameters, inArrays.parameters);
  // Every step frees what the one before allocated: the memory held does not grow.
  assert.equal(inMemory.held[4], inMemory.held[1], `held bytes per step: ${inMemory.held.join(', ')}`);
});

test('residual networks hand every tensor of a training step back to the wasm memory', () => {
  // The activations inside a block (and between the stem and the stages) are declared internal, so
  // the backward pass frees them: before, ResNet-18 filled the 512 MiB of tensor memory in 3 steps.
  for (const block of ['basic', 'bottleneck'] as const) {
    const build = () => resnet({ block, layers: [1, 2], widths: [8, 16], classes: 4, stem: 'small' });
    const inMemory = train(wasmBackend, build, [4, 3, 16, 16]);
    const inArrays = train(wasmWithoutStorage, build, [4, 3, 16, 16]);
    assert.deepEqual(inMemory.losses, inArrays.losses);
    assert.deepEqual(inMemory.parameters, inArrays.parameters);
    assert.deepEqual(inMemory.held, [0, 0, 0, 0, 0], `${block}: held bytes per step`);
  }
});

test('a convolution output lives in wasm memory, and arrays user code holds keep their values', () => {
  withBackend(wasmBackend, () => {
    manualSeed(3);
    class Probe extends Module {
      kept: Tensor | null = null;
      forward(x: Tensor): Tensor {
        this.kept = x;
        return x;
      }
    }
    const probe = new Probe();
    const model = new Sequential(
      new Conv2d(1, 8, 3, { padding: 1 }),
      new ReLU(),
      probe,
      new Conv2d(8, 8, 3, { padding: 1 }),
      new ReLU(),
    );
    const input = randn([4, 1, 20, 20]);
    const output = model.forward(input);
    assert.ok(wasmTensorStorage.owns(output.data));
    const outputCopy = Float32Array.from(output.data);
    const kept = probe.kept!;
    assert.ok(wasmTensorStorage.owns(kept.data));
    const keptCopy = Float32Array.from(kept.data);
    mean(mul(output, output)).backward();
    const again = model.forward(randn([4, 1, 20, 20]));
    mean(mul(again, again)).backward();
    assert.deepEqual(Float32Array.from(output.data), outputCopy);
    assert.deepEqual(Float32Array.from(kept.data), keptCopy);
  });
});

/** An array in wasm memory holding `values`. */
function stored(values: Float32Array): Float32Array {
  const data = wasmTensorStorage.allocate(values.length)!;
  data.set(values);
  return data;
}

function sequence(count: number, scale = 0.01): Float32Array {
  return Float32Array.from({ length: count }, (_, i) => Math.sin(i * 0.37) * scale * 100);
}

test('an output that overlaps an input in wasm memory gets the result computed from the input', () => {
  const n = 48;
  // out is the second half of the block that holds a in its first half and beyond.
  const block = stored(sequence(2 * n * n));
  const a = block.subarray(0, n * n);
  const out = block.subarray((n * n) / 2, (n * n) / 2 + n * n);
  const b = stored(sequence(n * n, 0.02));
  const expected = new Float32Array(n * n);
  referenceBackend.matmul(a.slice(), b.slice(), expected, n, n, n, false, false, false);
  wasmBackend.matmul(a, b, out, n, n, n, false, false, false);
  const got = Float32Array.from(out);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(got[i]! - expected[i]!) <= 1e-4 * (1 + Math.abs(expected[i]!)), `element ${i}`);
  }
  wasmTensorStorage.free(block);
  wasmTensorStorage.free(b);
});

test('arrays in wasm memory work on the reference backend and after the memory grows', () => {
  const x = stored(sequence(4 * 3 * 10 * 10));
  const weight = stored(sequence(5 * 3 * 3 * 3, 0.05));
  const geometry = {
    batch: 4,
    inChannels: 3,
    inHeight: 10,
    inWidth: 10,
    outChannels: 5,
    kernelHeight: 3,
    kernelWidth: 3,
    strideHeight: 1,
    strideWidth: 1,
    padTop: 1,
    padLeft: 1,
    dilationHeight: 1,
    dilationWidth: 1,
    outHeight: 10,
    outWidth: 10,
  };
  const viaWasm = new Float32Array(4 * 5 * 100);
  wasmBackend.conv2dForward(x, weight, viaWasm, geometry);
  // Grow the memory by 64 MiB: arrays made before stay valid views of the same memory.
  const large = wasmTensorStorage.allocate(16 * 2 ** 20)!;
  const viaReference = withBackend(referenceBackend, () => {
    const out = new Float32Array(4 * 5 * 100);
    referenceBackend.conv2dForward(x, weight, out, geometry);
    return out;
  });
  const again = new Float32Array(4 * 5 * 100);
  wasmBackend.conv2dForward(x, weight, again, geometry);
  assert.deepEqual(again, viaWasm);
  for (let i = 0; i < viaWasm.length; i++) {
    assert.ok(Math.abs(viaWasm[i]! - viaReference[i]!) <= 1e-4, `element ${i}`);
  }
  for (const data of [x, weight, large]) assert.ok(wasmTensorStorage.free(data));
  assert.equal(wasmTensorStorage.free(x), false, 'an array is freed once');
});

test('arrays in wasm memory are valid operands of the native backend', (t) => {
  const native = loadNativeBackend();
  if (native === null) {
    t.skip(`native addon not built: ${nativeUnavailableReason()}`);
    return;
  }
  const n = 40;
  const a = stored(sequence(n * n));
  const b = stored(sequence(n * n, 0.03));
  const out = stored(new Float32Array(n * n));
  native.matmul(a, b, out, n, n, n, false, true, false);
  const expected = new Float32Array(n * n);
  referenceBackend.matmul(a.slice(), b.slice(), expected, n, n, n, false, true, false);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(out[i]! - expected[i]!) <= 1e-4 * (1 + Math.abs(expected[i]!)), `element ${i}`);
  }
  for (const data of [a, b, out]) wasmTensorStorage.free(data);
});

test('past its byte limit the storage declines, and takes arrays again once some are freed', () => {
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 64, shared: true });
  const heap = new WasmHeap(memory, 0);
  const storage = new WasmTensorStorage(() => heap, 64 * 1024);
  const quiet = process.env.TENSILE_QUIET;
  process.env.TENSILE_QUIET = '1';
  try {
    const first = storage.allocate(10_000)!;
    const second = storage.allocate(6_000)!;
    assert.ok(storage.owns(first) && storage.owns(second));
    assert.equal(storage.allocate(1_000), null, '64 KiB limit: 64,000 bytes held, 4,000 more refused');
    assert.ok(storage.free(first));
    assert.equal(storage.heldBytes, 24_000);
    const third = storage.allocate(1_000)!;
    assert.ok(storage.owns(third));
    assert.ok(!storage.owns(first));
  } finally {
    if (quiet === undefined) delete process.env.TENSILE_QUIET;
    else process.env.TENSILE_QUIET = quiet;
  }
});
