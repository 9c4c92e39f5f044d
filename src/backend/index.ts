/**
 * Which backend runs the kernels. Tensors hold plain typed arrays, so switching backends between
 * calls is free and tensors never belong to a backend.
 *
 * The default is the fastest backend that loads here (./registry.ts), chosen on the first
 * getBackend() that finds none set, whichever of the package's entry points was imported.
 */
import { referenceBackend } from './reference/index.js';
import { chooseDefaultBackend } from './registry.js';
import type { Backend } from './types.js';

let current: Backend | null = null;
let chooseDefault: () => Backend = chooseDefaultBackend;

/** The backend ops use now (the default is chosen on first use: native, else wasm, else reference). */
export function getBackend(): Backend {
  if (current === null) current = chooseDefault();
  return current;
}

/** Makes backend the one ops use from now on. */
export function setBackend(backend: Backend): void {
  current = backend;
}

/** Runs fn with backend, restoring the previous one afterwards. */
export function withBackend<T>(backend: Backend, fn: () => T): T {
  const previous = getBackend();
  current = backend;
  try {
    return fn();
  } finally {
    current = previous;
  }
}

/**
 * Replaces the rule that picks the default backend (./registry.ts's chooseDefaultBackend unless
 * changed) and forgets the current choice, so the next getBackend() applies it.
 */
export function setDefaultBackendChooser(choose: () => Backend): void {
  chooseDefault = choose;
  current = null;
}

export type { Backend } from './types.js';
export { referenceBackend };
