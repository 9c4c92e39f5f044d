/**
 * The browser build's stand-in for src/backend/native/index.ts, which loads a Node-API addon from a
 * file. A page has neither, so the default backend there is chosen from wasm and reference
 * (src/backend/registry.ts asks this module first, as it asks the addon loader on Node).
 */
import type { Backend } from '../backend/types.js';

/** Always null in a browser: there is no native addon to load. */
export function loadNativeBackend(): Backend | null {
  return null;
}

/** Why loadNativeBackend() returned null. */
export function nativeUnavailableReason(): string {
  return 'a browser cannot load the native addon';
}
