/**
 * Every Backend kernel on every backend variant this machine has (reference, wasm with the build this
 * process loads, native per instruction set) against the reference backend; see ./suite.ts.
 * ./wasm-plain.test.ts runs the wasm backend's other build.
 */
import { describeConformance } from './suite.js';
import { nativeVariants, referenceVariant, wasmVariant } from './variants.js';

describeConformance([referenceVariant, wasmVariant(), ...nativeVariants()]);
