/**
 * The conformance suite (./suite.ts) on the wasm backend's plain SIMD build (build/wasm/kernels.wasm,
 * 4×8 GEMM tile without fused multiply-adds), which a process runs only where relaxed SIMD does not
 * or when TENSILE_WASM_RELAXED_SIMD=0: set here before the module is first compiled.
 */
import assert from 'node:assert/strict';

import { wasmKernelBuild } from '../../src/backend/wasm/index.js';
import { describeConformance } from './suite.js';
import { wasmVariant } from './variants.js';

process.env.TENSILE_WASM_RELAXED_SIMD = '0';
assert.equal(wasmKernelBuild(), 'simd');
describeConformance([wasmVariant()]);
