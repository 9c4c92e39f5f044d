/**
 * Model weights as safetensors files with PyTorch state_dict names, so a model saved by PyTorch
 * (`safetensors.torch.save_file(model.state_dict(), ...)`) loads into the equivalent tensile model,
 * and back.
 */
import type { Module } from '../nn/module.js';
import { assertFiniteState } from '../tensor/finite.js';
import { readSafetensors, type SafetensorsEntry, SafetensorsError, writeSafetensors } from './safetensors.js';
import { isTorchCheckpoint, loadTorchCheckpoint } from './torch-checkpoint.js';

/** Version of tensile's weight-file conventions, stored in the metadata. */
export const WEIGHTS_FORMAT_VERSION = '1';

/**
 * Writes model's parameters and buffers (float32) atomically to file. Refuses (NonFiniteError, nothing
 * written) when any of them holds a NaN or infinity: a diverged model is not a result to keep.
 */
export function saveWeights(model: Module, file: string, metadata: Record<string, string> = {}): void {
  assertFiniteState(model.stateDict(), `write '${file}'`);
  const tensors = new Map(
    [...model.stateDict()].map(([name, t]) => [name, { shape: t.shape, data: t.data }]),
  );
  writeSafetensors(file, tensors, {
    format: 'tensile-weights',
    version: WEIGHTS_FORMAT_VERSION,
    ...metadata,
  });
}

/** Converts a file entry to numbers, rejecting non-float dtypes with the tensor's name. */
function asFloat(
  name: string,
  entry: SafetensorsEntry,
  file: string,
): { shape: number[]; data: ArrayLike<number> } {
  if (entry.data instanceof Float32Array || entry.data instanceof Float64Array)
    return { shape: entry.shape, data: entry.data };
  throw new SafetensorsError(
    `${file}: tensor '${name}' has dtype ${entry.dtype}, expected a float dtype (F32, F64, F16, BF16)`,
    file,
    name,
  );
}

/**
 * Loads weights from file into model. Every name and shape is checked first; on any mismatch
 * nothing is loaded and the error lists each offending tensor (see Module.loadStateDict).
 * PyTorch's `num_batches_tracked` counters are ignored. Returns the file's metadata.
 *
 * The file is safetensors (tensile's weights or whole-model files, PyTorch's safetensors) or a
 * state dict saved with torch.save (.pt/.pth), told apart by content, not by name; a .pth file has
 * no metadata, so {} is returned for it (see loadTorchCheckpoint).
 */
export function loadWeights(
  model: Module,
  file: string,
  options: { strict?: boolean } = {},
): Record<string, string> {
  if (isTorchCheckpoint(file)) {
    loadTorchCheckpoint(model, file, options);
    return {};
  }
  const { tensors, metadata } = readSafetensors(file);
  const values = new Map<string, { shape: number[]; data: ArrayLike<number> }>();
  for (const [name, entry] of tensors) {
    if (name.endsWith('num_batches_tracked')) continue;
    values.set(name, asFloat(name, entry, file));
  }
  model.loadStateDict(values, options.strict ?? true);
  return metadata;
}
