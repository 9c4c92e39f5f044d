/**
 * The conformance suite: every Backend kernel (./kernels.ts) on a backend variant against the
 * reference backend, with, as properties of the suite rather than of each case:
 * - the same bits on 1 and 2 threads, for variants that have threads;
 * - float64 data giving exactly the reference's float64 bits (fast backends pass it on);
 * - fused kernels giving exactly the bits of their unfused composition on the same backend.
 */
import { after, before, describe, it } from 'node:test';

import { kernelNames, type KernelName } from '../../src/backend/kernels.js';
import { referenceBackend } from '../../src/backend/reference/index.js';
import type { Backend } from '../../src/backend/types.js';
import { kernelCases, type KernelCase, type Outputs } from './kernels.js';
import { assertClose, assertSameBits, exact, type Tolerance } from './tolerance.js';

/** A backend as the suite runs it: a native instruction set, a wasm build, or the reference. */
export interface Variant {
  readonly name: string;
  readonly backend: Backend;
  /** Puts the variant in place (an instruction set, say); returns what restores the previous state. */
  enter?(): () => void;
  /** Sets the backend's thread count; returns the previous count. Absent: the backend has no threads. */
  setThreads?(count: number): number;
}

/** Reference results, computed once per case and shared by every variant. */
const expectedResults = new Map<KernelCase, Outputs>();

function expected(kernelCase: KernelCase): Outputs {
  let outputs = expectedResults.get(kernelCase);
  if (outputs === undefined) {
    outputs = kernelCase.run(referenceBackend, 'float32');
    expectedResults.set(kernelCase, outputs);
  }
  return outputs;
}

function toleranceOf(kernelCase: KernelCase, output: string): Tolerance {
  const tolerance = kernelCase.tolerance;
  return 'kind' in tolerance ? (tolerance as Tolerance) : (tolerance[output] ?? exact);
}

function compare(actual: Outputs, reference: Outputs, kernelCase: KernelCase, what: string): void {
  for (const [output, values] of Object.entries(reference)) {
    const tolerance = values instanceof Int32Array ? exact : toleranceOf(kernelCase, output);
    assertClose(actual[output]!, values, tolerance, `${what}: ${output}`);
  }
}

function compareBits(actual: Outputs, reference: Outputs, what: string): void {
  for (const [output, values] of Object.entries(reference))
    assertSameBits(actual[output]!, values, `${what}: ${output}`);
}

/**
 * Checks one kernel's cases on variant. A threaded variant runs all of them on 2 threads, then all on
 * 1 (changing the count stops or starts workers, so it is changed twice per kernel, not per case).
 */
function checkKernel(variant: Variant, kernel: KernelName): void {
  const cases = kernelCases[kernel]();
  const name = (kernelCase: KernelCase) => `${variant.name} ${kernel} ${kernelCase.name}`;
  const runAll = () => cases.map((kernelCase) => kernelCase.run(variant.backend, 'float32'));
  const onThreads = (count: number): Outputs[] => {
    const previous = variant.setThreads!(count);
    try {
      return runAll();
    } finally {
      variant.setThreads!(previous);
    }
  };
  const results = variant.setThreads === undefined ? runAll() : onThreads(2);
  cases.forEach((kernelCase, index) => {
    if (kernelCase.againstReference !== false) {
      compare(results[index]!, expected(kernelCase), kernelCase, name(kernelCase));
    }
  });
  if (variant.setThreads !== undefined) {
    const single = onThreads(1);
    cases.forEach((kernelCase, index) =>
      compareBits(single[index]!, results[index]!, `${name(kernelCase)}: 1 thread against 2`),
    );
  }
  for (const kernelCase of cases) {
    if (kernelCase.unfused === undefined) continue;
    compareBits(
      kernelCase.run(variant.backend, 'float32'),
      kernelCase.unfused(variant.backend),
      `${name(kernelCase)}: fused against unfused`,
    );
  }
  // One case per kernel is enough to see float64 go to the reference kernel.
  const first = cases[0]!;
  compareBits(
    first.run(variant.backend, 'float64'),
    first.run(referenceBackend, 'float64'),
    `${name(first)} in float64`,
  );
}

/** Registers the conformance tests of every kernel on each variant. */
export function describeConformance(variants: readonly Variant[]): void {
  for (const variant of variants) {
    describe(`conformance: ${variant.name}`, () => {
      let restore: (() => void) | undefined;
      before(() => {
        restore = variant.enter?.();
      });
      after(() => restore?.());
      for (const kernel of kernelNames) it(kernel, () => checkKernel(variant, kernel));
    });
  }
}
