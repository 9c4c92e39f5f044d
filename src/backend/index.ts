/**
 * Which backend runs the kernels. Tensors hold plain typed arrays, so switching backends between
 * calls is free and tensors never belong to a backend.
 */
import { referenceBackend } from './reference/index.js';
import type { Backend } from './types.js';

let current: Backend | null = null;
let chooseDefault: () => Backend = () => referenceBackend;

/** The backend ops use now (the default is chosen on first use). */
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

/** Installs the rule that picks the default backend (used by the package entry point). */
export function setDefaultBackendChooser(choose: () => Backend): void {
  chooseDefault = choose;
  current = null;
}

export type { Backend } from './types.js';
export { referenceBackend };
