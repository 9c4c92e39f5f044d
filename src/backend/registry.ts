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
 * native if it loads (built at install, or the package's prebuilt), else wasm, else reference.
 * Falling back is said once on stderr, with the reason: native → wasm can be silenced with
 * TENSILE_QUIET=1; falling to the reference backend (about 100× slower) is always said.
 */
export function chooseDefaultBackend(): Backend {
  const native = loaders.native();
  if (native !== null) return native;
  const nativeReason = unavailableReasons.get('native') ?? 'unknown reason';
  const wasm = loaders.wasm();
  if (wasm !== null) {
    if (process.env.TENSILE_QUIET !== '1') {
      process.stderr.write(
        `tensile: using the wasm backend; the native backend is unavailable: ${nativeReason}\n`,
      );
    }
    return wasm;
  }
  process.stderr.write(
    `tensile: using the reference backend (about 100× slower); the native backend is unavailable: ` +
      `${nativeReason}; the wasm backend too: ${unavailableReasons.get('wasm') ?? 'unknown reason'}\n`,
  );
  return referenceBackend;
}
