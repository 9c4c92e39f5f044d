/**
 * The backends tensile ships, by name, and the default choice: the fastest one that loads here.
 */
import { referenceBackend } from './reference/index.js';
import type { Backend } from './types.js';
import { loadNativeBackend, nativeUnavailableReason } from './native/index.js';
import { wasmBackend } from './wasm/index.js';
import { wasmRuntime } from './wasm/runtime.js';

export type BackendName = 'reference' | 'wasm' | 'native';

/** Why a backend did not load, by name (for the one-time notice). */
export const unavailableReasons = new Map<BackendName, string>();

/** Loads once; remembers failure as null with the reason. */
function once(name: BackendName, load: () => Backend): () => Backend | null {
  let cached: Backend | null | undefined;
  return () => {
    if (cached === undefined) {
      try {
        cached = load();
      } catch (error) {
        cached = null;
        unavailableReasons.set(name, error instanceof Error ? error.message : String(error));
      }
    }
    return cached;
  };
}

const loaders: Record<BackendName, () => Backend | null> = {
  reference: () => referenceBackend,
  wasm: once('wasm', () => {
    wasmRuntime(); // compiles the module now, so a missing build shows here rather than mid-training
    return wasmBackend;
  }),
  native: once('native', () => {
    const backend = loadNativeBackend();
    if (backend === null) throw new Error(nativeUnavailableReason() ?? 'the native addon is not built');
    return backend;
  }),
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
  if (backend === null)
    throw new Error(
      `backend '${name}' is not available on this machine: ${unavailableReasons.get(name as BackendName) ?? 'unknown reason'}`,
    );
  return backend;
}

/**
 * native if built, else wasm, else reference. When the native backend cannot load, says so once on
 * stderr (set TENSILE_QUIET=1 to silence it) and falls back.
 */
export function chooseDefaultBackend(): Backend {
  const native = loaders.native();
  if (native !== null) return native;
  const fallback = loaders.wasm() ?? referenceBackend;
  if (process.env.TENSILE_QUIET !== '1') {
    process.stderr.write(
      `tensile: native backend unavailable (${unavailableReasons.get('native')}); using the ${fallback.name} backend\n`,
    );
  }
  return fallback;
}
