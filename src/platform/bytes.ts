/**
 * Raw memory for tensors, on Node. The browser build swaps this module for ./bytes.browser.ts (see
 * scripts/build-browser.mjs): every module in src/platform/ with a `.browser.ts` twin is chosen that
 * way, so library code imports one path and never tests which platform it runs on.
 */
import { Buffer } from 'node:buffer';

/**
 * An ArrayBuffer of `bytes` bytes whose contents are undefined (old memory). Buffer.allocUnsafeSlow
 * skips the zero-fill and takes its memory from malloc, so blocks freed by earlier training steps
 * come back instead of fresh, zeroed pages.
 */
export function uninitializedBytes(bytes: number): ArrayBuffer {
  return Buffer.allocUnsafeSlow(bytes).buffer as ArrayBuffer;
}
