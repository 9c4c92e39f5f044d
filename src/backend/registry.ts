/**
 * The backends tensile ships, by name, and the default choice: the fastest one that loads here.
 */
import { referenceBackend } from './reference/index.js';
import type { Backend } from './types.js';

export type BackendName = 'reference' | 'wasm' | 'native';

const loaders: Record<BackendName, () => Backend | null> = {
  reference: () => referenceBackend,
  wasm: () => null,
  native: () => null,
};

/** Names of the backends that load on this machine, fastest last. */
export function availableBackends(): BackendName[] {
  return (['reference', 'wasm', 'native'] as const).filter((name) => loaders[name]() !== null);
}

/** The backend called name; throws naming the choices when it is unknown or cannot load here. */
export function backendByName(name: string): Backend {
  if (!(name in loaders)) {
    throw new TypeError(`unknown backend '${name}'; expected one of ${Object.keys(loaders).join(', ')}`);
  }
  const backend = loaders[name as BackendName]();
  if (backend === null) throw new Error(`backend '${name}' is not available on this machine`);
  return backend;
}

/** native if built, else wasm, else reference. */
export function chooseDefaultBackend(): Backend {
  return loaders.native() ?? loaders.wasm() ?? referenceBackend;
}
