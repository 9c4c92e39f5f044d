/**
 * Optimizer base: parameter groups (each with its own learning rate and settings, for
 * discriminative learning rates), per-parameter state, and the step contract.
 *
 * Subclasses hold state and implement one pure per-parameter update; the algorithm is written in
 * each subclass's doc comment. Frozen parameters (requiresGrad false) and parameters without a
 * gradient are skipped entirely: no update and no weight decay.
 */
import type { Data } from '../backend/types.js';
import type { Parameter } from '../nn/module.js';
import { noGrad } from '../autograd/graph.js';

/** Settings every group has; subclasses add their own. */
export interface GroupSettings {
  lr: number;
  weightDecay: number;
}

export interface ParameterGroup<S extends GroupSettings> {
  parameters: Parameter[];
  settings: S;
  /** The learning rate the group was created with (schedules scale from it). */
  initialLr: number;
  /** Optional label, e.g. the layer group it stands for. */
  name?: string;
}

/** A group of parameters with settings overriding the optimizer's defaults. */
export type GroupSpec<S extends GroupSettings> = { parameters: Parameter[]; name?: string } & Partial<S>;

export abstract class Optimizer<S extends GroupSettings = GroupSettings> {
  readonly groups: ParameterGroup<S>[];
  /** Per-parameter state arrays (e.g. momentum buffers), created lazily on first update. */
  protected readonly state = new Map<Parameter, Record<string, Data>>();
  /** Number of step() calls made. */
  stepCount = 0;

  constructor(parameters: Parameter[] | GroupSpec<S>[], defaults: S) {
    const specs: GroupSpec<S>[] =
      parameters.length > 0 && !('parameters' in parameters[0]!)
        ? [{ parameters: parameters as Parameter[] } as GroupSpec<S>]
        : (parameters as GroupSpec<S>[]);
    this.groups = specs.map((spec) => {
      const { parameters: groupParameters, name, ...overrides } = spec;
      const settings = { ...defaults, ...overrides } as S;
      this.validate(settings);
      const group: ParameterGroup<S> = { parameters: groupParameters, settings, initialLr: settings.lr };
      if (name !== undefined) group.name = name;
      return group;
    });
  }

  /** Rejects bad settings with an error naming the setting (called per group). */
  protected validate(settings: S): void {
    if (!(settings.lr >= 0) || !Number.isFinite(settings.lr)) {
      throw new RangeError(`${this.constructor.name}: lr must be a finite number ≥ 0, got ${settings.lr}`);
    }
    if (!(settings.weightDecay >= 0)) {
      throw new RangeError(`${this.constructor.name}: weightDecay must be ≥ 0, got ${settings.weightDecay}`);
    }
  }

  /** Updates every trainable parameter that has a gradient. */
  step(): void {
    this.stepCount++;
    noGrad(() => {
      for (const group of this.groups) {
        for (const parameter of group.parameters) {
          const gradient = parameter.gradientData();
          if (!parameter.requiresGrad || gradient === null) continue;
          let state = this.state.get(parameter);
          if (state === undefined) {
            state = {};
            this.state.set(parameter, state);
          }
          this.update(parameter.data, gradient, state, group.settings);
        }
      }
    });
  }

  /** Clears the gradients of all parameters in all groups. */
  zeroGrad(): void {
    for (const group of this.groups) for (const parameter of group.parameters) parameter.clearGrad();
  }

  /** Sets every group's learning rate to factor × its initial rate (used by schedules). */
  scaleLearningRates(factor: number): void {
    for (const group of this.groups) group.settings.lr = group.initialLr * factor;
  }

  /** One parameter's update, in place. state persists across steps for this parameter. */
  protected abstract update(parameter: Data, gradient: Data, state: Record<string, Data>, settings: S): void;

  /** Optimizer state for checkpoints: arrays keyed `groupIndex.parameterIndex.name`, plus step count and settings. */
  stateDict(): { tensors: Map<string, Data>; stepCount: number; groups: S[] } {
    const tensors = new Map<string, Data>();
    this.groups.forEach((group, g) =>
      group.parameters.forEach((parameter, p) => {
        for (const [key, value] of Object.entries(this.state.get(parameter) ?? {}))
          tensors.set(`${g}.${p}.${key}`, value);
      }),
    );
    return {
      tensors,
      stepCount: this.stepCount,
      groups: this.groups.map((group) => ({ ...group.settings })),
    };
  }

  /** Restores what stateDict() returned (for the same parameters in the same order). */
  loadStateDict(saved: {
    tensors: ReadonlyMap<string, ArrayLike<number>>;
    stepCount: number;
    groups: S[];
  }): void {
    if (saved.groups.length !== this.groups.length) {
      throw new Error(
        `${this.constructor.name}.loadStateDict: saved state has ${saved.groups.length} groups, the optimizer has ${this.groups.length}`,
      );
    }
    this.stepCount = saved.stepCount;
    this.groups.forEach((group, g) => {
      Object.assign(group.settings, saved.groups[g]);
      group.parameters.forEach((parameter, p) => {
        const state: Record<string, Data> = {};
        for (const [key, value] of saved.tensors) {
          const prefix = `${g}.${p}.`;
          if (!key.startsWith(prefix)) continue;
          const name = key.slice(prefix.length);
          // The step counter is one float64; every other state array matches its parameter.
          const expected = name === 'step' ? 1 : parameter.size;
          if (value.length !== expected) {
            throw new Error(
              `${this.constructor.name}.loadStateDict: state '${key}' has ${value.length} values, expected ${expected}`,
            );
          }
          const array = name === 'step' ? new Float64Array(1) : parameter.newData(parameter.size);
          for (let i = 0; i < array.length; i++) array[i] = value[i]!;
          state[name] = array;
        }
        // A parameter without saved state gets none: the optimizer is then exactly as saved.
        if (Object.keys(state).length > 0) this.state.set(parameter, state);
        else this.state.delete(parameter);
      });
    });
  }
}
