/**
 * Training checkpoints that resume exactly: one safetensors file holding everything a run's future
 * depends on, so that a run stopped after epoch k and resumed ends with bit-for-bit the weights of an
 * uninterrupted run.
 *
 * File layout (format 'tensile-checkpoint', version 1):
 *   tensors   `model.NAME`        every parameter and buffer, NAME the PyTorch state_dict name;
 *             `optimizer.G.P.KEY` optimizer state KEY (exp_avg, exp_avg_sq, step, momentum, …) of
 *                                 parameter P of group G;
 *   metadata  format, version; epoch (epochs completed = the epoch to resume at); scheduleStep
 *             (epoch · batchesPerEpoch, the position of a per-batch schedule); optimizer (JSON: type,
 *             step count, each group's settings, initial rate and parameter names); random (JSON: the
 *             loader's generator state); globalRandom (the generator manualSeed seeds, which dropout
 *             draws from); frozen (JSON: names of frozen parameters); history (JSON: epoch logs).
 * An epoch-based schedule needs nothing more than the epoch: fit applies it from initialEpoch on.
 *
 * Writes go through writeFileAtomic (temporary file, fsync, rename): a crash mid-write leaves the
 * previous checkpoint in place, never a torn file.
 */
import { assertFiniteState } from '../tensor/finite.js';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Data } from '../backend/types.js';
import { defaultRandom } from '../nn/init.js';
import type { Module } from '../nn/module.js';
import type { Optimizer } from '../optim/optimizer.js';
import { Random, type RandomState } from '../tensor/random.js';
import { readSafetensors, type SafetensorsInput, writeSafetensors } from '../io/safetensors.js';
import type { Callback, TrainingControl } from './callbacks.js';
import type { EpochLogs, TrainingEvent } from './events.js';

export const CHECKPOINT_FORMAT = 'tensile-checkpoint';
/** Bumped when the layout changes; readers accept this version and older ones they know. */
export const CHECKPOINT_VERSION = 1;

/** A checkpoint file that cannot be used: wrong format or version, or state that does not fit. */
export class CheckpointError extends Error {
  override name = 'CheckpointError';
}

export interface CheckpointState {
  /** Epochs completed; the resumed fit starts at this epoch (its initialEpoch). */
  epoch: number;
  /** The loader's generator as it is after `epoch` epochs (fit's `random`, or control.random in a callback). */
  random?: Random;
  /** Batches per epoch, to record a per-batch schedule's position. */
  batchesPerEpoch?: number;
  /** Logs of the epochs so far, returned by loadCheckpoint. */
  history?: readonly EpochLogs[];
  /** Extra string metadata (for people reading the file). */
  metadata?: Record<string, string>;
}

interface OptimizerRecord {
  type: string;
  stepCount: number;
  groups: { settings: Record<string, unknown>; initialLr: number; name?: string; parameters: string[] }[];
}

function parameterNames(model: Module): Map<unknown, string> {
  return new Map(model.namedParameters().map(([name, parameter]) => [parameter, name]));
}

/**
 * Writes model, optimizer and training position to file (atomically).
 *
 * @example
 * saveCheckpoint('run/checkpoint.safetensors', model, optimizer, { epoch: 3, random, batchesPerEpoch: 125 });
 */
export function saveCheckpoint(
  file: string,
  model: Module,
  optimizer: Optimizer | null,
  state: CheckpointState,
): void {
  if (!Number.isInteger(state.epoch) || state.epoch < 0)
    throw new RangeError(`saveCheckpoint: epoch must be a non-negative integer, got ${state.epoch}`);
  // A checkpoint of a diverged model would resume into NaN: refuse it, keeping the previous file.
  assertFiniteState(model.stateDict(), `write the checkpoint '${file}'`);
  const tensors = new Map<string, SafetensorsInput>();
  for (const [name, tensor] of model.stateDict())
    tensors.set(`model.${name}`, { shape: tensor.shape, data: tensor.data });
  const metadata: Record<string, string> = {
    ...state.metadata,
    format: CHECKPOINT_FORMAT,
    version: String(CHECKPOINT_VERSION),
    epoch: String(state.epoch),
    globalRandom: JSON.stringify(defaultRandom().getState()),
    frozen: JSON.stringify(
      model
        .namedParameters()
        .filter(([, parameter]) => !parameter.requiresGrad)
        .map(([name]) => name),
    ),
    history: JSON.stringify(state.history ?? []),
  };
  if (state.batchesPerEpoch !== undefined)
    metadata.scheduleStep = String(state.epoch * state.batchesPerEpoch);
  if (state.random !== undefined) metadata.random = JSON.stringify(state.random.getState());
  if (optimizer !== null) {
    const saved = optimizer.stateDict();
    for (const [key, data] of saved.tensors) tensors.set(`optimizer.${key}`, { shape: [data.length], data });
    const names = parameterNames(model);
    const record: OptimizerRecord = {
      type: optimizer.constructor.name,
      stepCount: saved.stepCount,
      groups: optimizer.groups.map((group, g) => ({
        settings: { ...saved.groups[g] },
        initialLr: group.initialLr,
        ...(group.name === undefined ? {} : { name: group.name }),
        parameters: group.parameters.map((parameter) => names.get(parameter) ?? '?'),
      })),
    };
    metadata.optimizer = JSON.stringify(record);
  }
  writeSafetensors(file, tensors, metadata);
}

export interface LoadedCheckpoint {
  /** Epochs completed: pass as fit's initialEpoch. */
  epoch: number;
  /** A generator in the saved state (pass as fit's random); undefined when none was saved. */
  random: Random | undefined;
  /** Position of a per-batch schedule (epoch · batchesPerEpoch), when recorded. */
  scheduleStep: number | null;
  history: EpochLogs[];
  metadata: Record<string, string>;
}

export interface LoadCheckpointOptions {
  /** Restore the generator manualSeed seeds (dropout draws from it). Default true. */
  restoreGlobalRandom?: boolean;
  /** Restore which parameters are frozen. Default true. */
  restoreFrozen?: boolean;
}

function parseJson<T>(metadata: Record<string, string>, key: string, file: string): T | undefined {
  const text = metadata[key];
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new CheckpointError(`${file}: metadata '${key}' is not valid JSON`);
  }
}

/**
 * Restores model and optimizer (which must be built as they were when saved: same architecture,
 * same optimizer type and parameter groups) from file, and returns the training position.
 * Everything is checked before anything changes: on any mismatch nothing is loaded and the error
 * lists the problems.
 *
 * @example
 * const resumed = loadCheckpoint('run/checkpoint.safetensors', model, optimizer);
 * fit(model, data, { optimizer, epochs: 10, initialEpoch: resumed.epoch, random: resumed.random });
 */
export function loadCheckpoint(
  file: string,
  model: Module,
  optimizer: Optimizer | null,
  options: LoadCheckpointOptions = {},
): LoadedCheckpoint {
  const { tensors, metadata } = readSafetensors(file);
  if (metadata.format !== CHECKPOINT_FORMAT) {
    const hint = metadata.format === 'tensile-weights' ? ' (it holds weights only: use loadWeights)' : '';
    throw new CheckpointError(
      `${file}: not a tensile checkpoint; metadata format is '${metadata.format ?? '(none)'}'${hint}`,
    );
  }
  const version = Number(metadata.version);
  if (!Number.isInteger(version) || version < 1 || version > CHECKPOINT_VERSION) {
    throw new CheckpointError(
      `${file}: checkpoint version '${metadata.version}' is not one this tensile reads (1 to ${CHECKPOINT_VERSION})`,
    );
  }
  const epoch = Number(metadata.epoch);
  if (!Number.isInteger(epoch) || epoch < 0)
    throw new CheckpointError(`${file}: metadata epoch '${metadata.epoch}' is not a non-negative integer`);

  const modelValues = new Map<string, { shape: number[]; data: ArrayLike<number> }>();
  const optimizerValues = new Map<string, Data>();
  for (const [name, entry] of tensors) {
    if (!(entry.data instanceof Float32Array || entry.data instanceof Float64Array)) {
      throw new CheckpointError(`${file}: tensor '${name}' has dtype ${entry.dtype}, expected F32 or F64`);
    }
    if (name.startsWith('model.'))
      modelValues.set(name.slice('model.'.length), { shape: entry.shape, data: entry.data });
    else if (name.startsWith('optimizer.')) optimizerValues.set(name.slice('optimizer.'.length), entry.data);
  }

  // Check the optimizer and every metadata entry before the model loads anything, so a mismatch or
  // a damaged entry leaves model, optimizer and generators untouched.
  const record = checkedOptimizerRecord(parseJson<unknown>(metadata, 'optimizer', file), file);
  const frozenNames = parseJson<unknown>(metadata, 'frozen', file);
  if (frozenNames !== undefined && !isStringList(frozenNames)) {
    throw new CheckpointError(`${file}: metadata 'frozen' must be a list of parameter names`);
  }
  const globalRandom = checkedRandom(metadata, 'globalRandom', file);
  const random = checkedRandom(metadata, 'random', file);
  const history = parseJson<unknown>(metadata, 'history', file) ?? [];
  if (!Array.isArray(history) || history.some((logs) => logs === null || typeof logs !== 'object')) {
    throw new CheckpointError(`${file}: metadata 'history' must be a list of epoch records`);
  }
  const scheduleStep = metadata.scheduleStep === undefined ? null : Number(metadata.scheduleStep);
  if (scheduleStep !== null && !(Number.isInteger(scheduleStep) && scheduleStep >= 0)) {
    throw new CheckpointError(
      `${file}: metadata scheduleStep '${metadata.scheduleStep}' is not a non-negative integer`,
    );
  }
  const problems: string[] = [];
  if (optimizer !== null) {
    if (record === undefined) problems.push('the checkpoint holds no optimizer state');
    else {
      if (record.type !== optimizer.constructor.name)
        problems.push(`optimizer type: saved ${record.type}, given ${optimizer.constructor.name}`);
      if (record.groups.length !== optimizer.groups.length) {
        problems.push(`optimizer groups: saved ${record.groups.length}, given ${optimizer.groups.length}`);
      } else {
        const names = parameterNames(model);
        optimizer.groups.forEach((group, g) => {
          const saved = record.groups[g]!.parameters;
          const given = group.parameters.map((parameter) => names.get(parameter) ?? '?');
          if (saved.length !== given.length || saved.some((name, i) => name !== given[i])) {
            problems.push(
              `optimizer group ${g}: saved parameters [${saved.join(', ')}], given [${given.join(', ')}]`,
            );
          }
          group.parameters.forEach((parameter, p) => {
            for (const [key, data] of optimizerValues) {
              if (!key.startsWith(`${g}.${p}.`)) continue;
              const expected = key.endsWith('.step') ? 1 : parameter.size;
              if (data.length !== expected)
                problems.push(`optimizer state '${key}': ${data.length} values, expected ${expected}`);
            }
          });
        });
      }
    }
  }
  if (problems.length > 0)
    throw new CheckpointError(
      `${file}: the checkpoint does not fit; nothing was loaded:\n  ${problems.join('\n  ')}`,
    );

  model.loadStateDict(modelValues); // strict; checks every name and shape before copying
  if (optimizer !== null && record !== undefined) {
    optimizer.loadStateDict({
      tensors: optimizerValues,
      stepCount: record.stepCount,
      groups: record.groups.map((group) => group.settings) as never,
    });
    optimizer.groups.forEach((group, g) => (group.initialLr = record.groups[g]!.initialLr));
  }
  if (options.restoreFrozen ?? true) {
    const frozen = new Set((frozenNames as string[] | undefined) ?? []);
    for (const [name, parameter] of model.namedParameters()) parameter.requiresGrad = !frozen.has(name);
  }
  if ((options.restoreGlobalRandom ?? true) && globalRandom !== undefined) {
    defaultRandom().setState(globalRandom.getState());
  }
  return { epoch, random, scheduleStep, history: history as EpochLogs[], metadata };
}

function isStringList(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((item) => typeof item === 'string');
}

/** A generator state from the metadata, checked by building a generator from it. */
function checkedRandom(metadata: Record<string, string>, key: string, file: string): Random | undefined {
  const state = parseJson<unknown>(metadata, key, file);
  if (state === undefined) return undefined;
  try {
    return Random.fromState(state as RandomState);
  } catch (error) {
    throw new CheckpointError(
      `${file}: metadata '${key}' is not a generator state (${(error as Error).message})`,
    );
  }
}

/** The optimizer record's structure, checked field by field (a damaged file must not half-load). */
function checkedOptimizerRecord(value: unknown, file: string): OptimizerRecord | undefined {
  if (value === undefined) return undefined;
  const fail = (what: string): never => {
    throw new CheckpointError(`${file}: metadata 'optimizer' ${what}`);
  };
  if (value === null || typeof value !== 'object') return fail('must be an object');
  const record = value as Partial<OptimizerRecord>;
  if (typeof record.type !== 'string') fail('has no optimizer type');
  if (!Number.isInteger(record.stepCount) || record.stepCount! < 0)
    fail('has a step count that is not a count');
  if (!Array.isArray(record.groups)) return fail('has no list of parameter groups');
  record.groups.forEach((group, g) => {
    if (group === null || typeof group !== 'object') fail(`group ${g} is not an object`);
    if (!isStringList(group.parameters)) fail(`group ${g} has no list of parameter names`);
    if (typeof group.initialLr !== 'number' || !Number.isFinite(group.initialLr)) {
      fail(`group ${g} has no finite initial learning rate`);
    }
    if (group.settings === null || typeof group.settings !== 'object') fail(`group ${g} has no settings`);
    for (const [name, setting] of Object.entries(group.settings)) {
      const fine = typeof setting === 'boolean' || (typeof setting === 'number' && Number.isFinite(setting));
      if (!fine) fail(`group ${g} setting '${name}' is ${JSON.stringify(setting)}, not a number or a flag`);
    }
  });
  return record as OptimizerRecord;
}

export interface TrainingCheckpointOptions {
  /** File to write; `{epoch}` is replaced by the number of epochs completed (default: one file, overwritten). */
  path: string;
  /** Save every this many epochs (default 1); the last epoch of a fit is always saved. */
  everyEpochs?: number;
  /** Logs of earlier epochs (a resumed run's loadCheckpoint().history), kept in front of this run's. */
  history?: readonly EpochLogs[];
  metadata?: Record<string, string>;
}

/**
 * A fit callback that writes a full checkpoint (saveCheckpoint) after epochs, so an interrupted run
 * can resume exactly where the last checkpoint was taken.
 *
 * @example
 * fit(model, data, { optimizer, epochs: 10, callbacks: [new TrainingCheckpoint({ path: 'run/checkpoint.safetensors' })] });
 */
export class TrainingCheckpoint implements Callback {
  readonly saved: string[] = [];
  private history: EpochLogs[] = [];
  private lastSavedEpoch = -1;
  private lastEpoch = -1;

  constructor(readonly options: TrainingCheckpointOptions) {
    const every = options.everyEpochs ?? 1;
    if (!Number.isInteger(every) || every < 1)
      throw new RangeError(`TrainingCheckpoint: everyEpochs must be a positive integer, got ${every}`);
  }

  private save(control: TrainingControl, epochsCompleted: number): void {
    const file = this.options.path.replaceAll('{epoch}', String(epochsCompleted));
    fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    const state: CheckpointState = {
      epoch: epochsCompleted,
      random: control.random,
      batchesPerEpoch: control.batchesPerEpoch,
      history: [...(this.options.history ?? []), ...this.history],
    };
    if (this.options.metadata !== undefined) state.metadata = this.options.metadata;
    saveCheckpoint(file, control.model, control.optimizer, state);
    this.lastSavedEpoch = epochsCompleted;
    this.saved.push(file);
  }

  handle(event: TrainingEvent, control: TrainingControl): void {
    if (event.type === 'fitStart') {
      this.history = [];
      this.lastEpoch = event.epochs;
    } else if (event.type === 'epochEnd') {
      this.history.push(event.logs);
      const completed = event.epoch + 1;
      if (completed % (this.options.everyEpochs ?? 1) === 0 || completed === this.lastEpoch)
        this.save(control, completed);
    } else if (event.type === 'fitEnd' && event.outcome !== 'failed') {
      // A run stopped early between saves keeps its last epochs too. A failed one does not: the
      // weights are then mid-epoch, and a checkpoint claiming the last whole epoch could not resume.
      const completed = event.history.at(-1)?.epoch;
      if (completed !== undefined && completed + 1 !== this.lastSavedEpoch) this.save(control, completed + 1);
    }
  }
}
