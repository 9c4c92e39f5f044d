/**
 * Whole-model files on disk: saveModel and loadModel, the file-system side of ./model-format.ts
 * (which holds the layout, the module table and the bytes-level modelToBytes and modelFromBytes).
 */
import type { Module } from '../nn/module.js';
import { readSafetensors, writeSafetensors } from './safetensors.js';
import {
  type LoadedModel,
  type ModelExtras,
  modelFileContents,
  modelFromSafetensors,
} from './model-format.js';

export {
  type BuiltInModuleType,
  type ChildBuilder,
  type ConfigurableModule,
  type ConfigValue,
  describeModule,
  isModelFile,
  type LoadedModel,
  MODEL_FORMAT,
  MODEL_FORMAT_VERSION,
  type ModelExtras,
  ModelFileError,
  modelFromBytes,
  modelToBytes,
  moduleFromDescription,
  type ModuleDescription,
  type ModuleRegistration,
  registeredModuleTypes,
  registerModule,
} from './model-format.js';

/**
 * Writes model (architecture, parameters, buffers) and extras to one safetensors file, atomically.
 * Refuses, writing nothing, when a module is not registered (see registerModule) or a weight is NaN
 * or infinite. metadata adds string entries (a test accuracy, the dataset) to the file's metadata.
 *
 * @example
 * saveModel(seedCnn(), 'digits.safetensors', { inputShape: [1, 28, 28], classNames: ['0', '1', ...] });
 * const { model, extras } = loadModel('digits.safetensors');
 */
export function saveModel(
  model: Module,
  file: string,
  extras: ModelExtras = {},
  metadata: Record<string, string> = {},
): void {
  const contents = modelFileContents(model, extras, metadata, file);
  writeSafetensors(file, contents.tensors, contents.metadata);
}

/**
 * Reads a file written by saveModel: rebuilds the architecture, checks that the rebuilt model
 * describes itself exactly as recorded, and loads every parameter and buffer strictly (names and
 * shapes must all fit). Errors name the file and what is wrong: a weights-only file, a newer format
 * version, an unregistered module type.
 */
export function loadModel(file: string): LoadedModel {
  return modelFromSafetensors(readSafetensors(file), file);
}
