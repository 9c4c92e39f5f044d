/**
 * Saving what a command trained. The target was checked before training (assertWritableTarget),
 * but a disk can fill up or a mount go read-only during hours of training: the trained model is
 * then written to a fallback file whose path the error names, so the work is not lost.
 */
import * as os from 'node:os';
import * as path from 'node:path';
import { describeFailure } from './arguments.js';
import { type ModelExtras, type Module, saveModel } from '../src/index.js';

/** saveModel, or on failure a fallback file and an error naming both paths. */
export function saveTrainedModel(
  model: Module,
  file: string,
  extras: ModelExtras,
  metadata: Record<string, string>,
): void {
  try {
    saveModel(model, file, extras, metadata);
  } catch (error) {
    const fallback = saveFallback(model, file, extras, metadata);
    const { line } = describeFailure(error, false);
    throw new Error(
      `${line.replace(/^tensile: /, '')}; ` +
        (fallback === null
          ? 'the trained model could not be written anywhere else either'
          : `the trained model was written to '${fallback}' instead`),
    );
  }
}

/**
 * Writes the model where it can be recovered from: the working directory, then the system's
 * temporary directory. Returns the path, or null.
 */
function saveFallback(
  model: Module,
  requested: string,
  extras: ModelExtras,
  metadata: Record<string, string>,
): string | null {
  const name = `tensile-unsaved-${path.basename(requested, '.safetensors')}-${Date.now()}.safetensors`;
  for (const directory of [process.cwd(), os.tmpdir()]) {
    const candidate = path.join(directory, name);
    try {
      saveModel(model, candidate, extras, metadata);
      return candidate;
    } catch {
      // try the next place
    }
  }
  return null;
}
