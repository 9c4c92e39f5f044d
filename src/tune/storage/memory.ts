/**
 * In-process storage: studies live in this process's memory and end with it. The fastest storage, for
 * tests, benchmarks and studies that need neither persistence nor several processes.
 */
import type { Distribution, JsonValue, ParamValue } from '../distributions.js';
import {
  isFinished,
  type FinishedTrialState,
  type FrozenTrial,
  type StudyDirection,
  type StudyRecord,
  type StudySummary,
  type TrialState,
} from '../frozen-trial.js';
import {
  checkCompatible,
  checkFiniteValue,
  checkParamValue,
  checkStep,
  checkStudyName,
  retryDepth,
  retryTemplate,
  staleTrialError,
} from './common.js';
import {
  DuplicateStudyError,
  NotFoundError,
  TrialFinishedError,
  type CreateTrialOptions,
  type StaleTrialOptions,
  type Storage,
  type TrialTemplate,
} from './storage.js';
import { closeStorageResources } from './resources.js';

interface MutableStudy {
  id: number;
  name: string;
  direction: StudyDirection;
  userAttributes: Record<string, JsonValue>;
  systemAttributes: Record<string, JsonValue>;
  createdAt: number;
  trials: MutableTrial[];
}

interface MutableTrial {
  id: number;
  studyId: number;
  number: number;
  state: TrialState;
  value: number | null;
  params: Record<string, ParamValue>;
  distributions: Record<string, Distribution>;
  intermediateValues: Map<number, number>;
  userAttributes: Record<string, JsonValue>;
  systemAttributes: Record<string, JsonValue>;
  error: string | null;
  worker: string | null;
  retryOf: number | null;
  startedAt: number | null;
  completedAt: number | null;
  heartbeatAt: number | null;
}

/** Deep copy of JSON values, so callers cannot alter stored attributes through their references. */
function copyJson<T extends JsonValue>(value: T): T {
  return value === null || typeof value !== 'object' ? value : (JSON.parse(JSON.stringify(value)) as T);
}

function freeze(trial: MutableTrial): FrozenTrial {
  return {
    ...trial,
    params: { ...trial.params },
    distributions: { ...trial.distributions },
    intermediateValues: new Map(trial.intermediateValues),
    userAttributes: copyJson(trial.userAttributes),
    systemAttributes: copyJson(trial.systemAttributes),
  };
}

export class MemoryStorage implements Storage {
  readonly url = null;
  readonly synchronousWrites = true;
  private readonly studies = new Map<number, MutableStudy>();
  private readonly trials = new Map<number, MutableTrial>();
  private nextStudyId = 1;
  private nextTrialId = 1;
  private closed = false;

  private check(): void {
    if (this.closed) throw new Error('MemoryStorage: used after close()');
  }

  private study(studyId: number): MutableStudy {
    this.check();
    const study = this.studies.get(studyId);
    if (study === undefined) throw new NotFoundError(`study ${studyId}`);
    return study;
  }

  private trial(trialId: number): MutableTrial {
    this.check();
    const trial = this.trials.get(trialId);
    if (trial === undefined) throw new NotFoundError(`trial ${trialId}`);
    return trial;
  }

  private runningTrial(trialId: number): MutableTrial {
    const trial = this.trial(trialId);
    if (isFinished(trial.state)) throw new TrialFinishedError(trialId, trial.state);
    return trial;
  }

  private record(study: MutableStudy): StudyRecord {
    return {
      id: study.id,
      name: study.name,
      direction: study.direction,
      userAttributes: copyJson(study.userAttributes),
      systemAttributes: copyJson(study.systemAttributes),
      createdAt: study.createdAt,
    };
  }

  async createStudy(name: string, direction: StudyDirection): Promise<StudyRecord> {
    this.check();
    checkStudyName(name);
    for (const study of this.studies.values()) if (study.name === name) throw new DuplicateStudyError(name);
    const study: MutableStudy = {
      id: this.nextStudyId++,
      name,
      direction,
      userAttributes: {},
      systemAttributes: {},
      createdAt: Date.now(),
      trials: [],
    };
    this.studies.set(study.id, study);
    return this.record(study);
  }

  async getStudy(name: string): Promise<StudyRecord | null> {
    this.check();
    for (const study of this.studies.values()) if (study.name === name) return this.record(study);
    return null;
  }

  async getStudyById(studyId: number): Promise<StudyRecord> {
    return this.record(this.study(studyId));
  }

  async listStudies(): Promise<StudySummary[]> {
    this.check();
    return [...this.studies.values()].map((study) => {
      const trialCounts: Record<TrialState, number> = {
        waiting: 0,
        running: 0,
        complete: 0,
        pruned: 0,
        failed: 0,
      };
      let bestValue: number | null = null;
      for (const trial of study.trials) {
        trialCounts[trial.state]++;
        if (trial.state === 'complete' && trial.value !== null) {
          if (
            bestValue === null ||
            (study.direction === 'minimize' ? trial.value < bestValue : trial.value > bestValue)
          )
            bestValue = trial.value;
        }
      }
      return { ...this.record(study), trialCounts, bestValue };
    });
  }

  async deleteStudy(studyId: number): Promise<void> {
    const study = this.study(studyId);
    for (const trial of study.trials) this.trials.delete(trial.id);
    this.studies.delete(studyId);
  }

  async setStudyUserAttribute(studyId: number, key: string, value: JsonValue): Promise<void> {
    this.study(studyId).userAttributes[key] = copyJson(value);
  }

  async setStudySystemAttribute(studyId: number, key: string, value: JsonValue): Promise<void> {
    this.study(studyId).systemAttributes[key] = copyJson(value);
  }

  async createTrial(
    studyId: number,
    template: TrialTemplate = {},
    options: CreateTrialOptions = {},
  ): Promise<FrozenTrial | null> {
    return this.insertTrial(this.study(studyId), template, options);
  }

  private insertTrial(
    study: MutableStudy,
    template: TrialTemplate,
    options: CreateTrialOptions,
  ): FrozenTrial | null {
    if (options.maxTrials !== undefined) {
      const retries = study.trials.filter((t) => t.retryOf !== null).length;
      if (study.trials.length - retries >= options.maxTrials) return null;
    }
    const state = template.state ?? 'running';
    const now = Date.now();
    const trial: MutableTrial = {
      id: this.nextTrialId++,
      studyId: study.id,
      number: study.trials.length,
      state,
      value: null,
      params: {},
      distributions: {},
      intermediateValues: new Map(),
      userAttributes: copyJson(template.userAttributes ?? {}),
      systemAttributes: copyJson(template.systemAttributes ?? {}),
      error: null,
      worker: state === 'running' ? (template.worker ?? null) : null,
      retryOf: template.retryOf ?? null,
      startedAt: state === 'running' ? now : null,
      completedAt: null,
      heartbeatAt: state === 'running' ? now : null,
    };
    for (const [name, { distribution, value }] of Object.entries(template.params ?? {})) {
      checkParamValue(name, distribution, value);
      trial.params[name] = value;
      trial.distributions[name] = distribution;
    }
    study.trials.push(trial);
    this.trials.set(trial.id, trial);
    return freeze(trial);
  }

  async claimWaitingTrial(studyId: number, worker: string): Promise<FrozenTrial | null> {
    const trial = this.study(studyId).trials.find((t) => t.state === 'waiting');
    if (trial === undefined) return null;
    const now = Date.now();
    trial.state = 'running';
    trial.worker = worker;
    trial.startedAt = now;
    trial.heartbeatAt = now;
    return freeze(trial);
  }

  async setTrialParam(
    trialId: number,
    name: string,
    distribution: Distribution,
    value: ParamValue,
  ): Promise<void> {
    const trial = this.runningTrial(trialId);
    checkParamValue(name, distribution, value);
    if (name in trial.params) return;
    for (const other of this.study(trial.studyId).trials)
      checkCompatible(name, distribution, other.distributions[name]);
    trial.params[name] = value;
    trial.distributions[name] = distribution;
  }

  async setTrialIntermediateValue(trialId: number, step: number, value: number): Promise<void> {
    checkStep(step);
    checkFiniteValue('intermediate value', value);
    this.runningTrial(trialId).intermediateValues.set(step, value);
  }

  async setTrialUserAttribute(trialId: number, key: string, value: JsonValue): Promise<void> {
    this.runningTrial(trialId).userAttributes[key] = copyJson(value);
  }

  async setTrialSystemAttribute(trialId: number, key: string, value: JsonValue): Promise<void> {
    this.runningTrial(trialId).systemAttributes[key] = copyJson(value);
  }

  async finishTrial(
    trialId: number,
    state: FinishedTrialState,
    value: number | null,
    error: string | null = null,
  ): Promise<boolean> {
    const trial = this.trial(trialId);
    if (isFinished(trial.state)) return false;
    if (state === 'complete') checkFiniteValue('the value of a complete trial', value as number);
    trial.state = state;
    trial.value = value;
    trial.error = error;
    trial.completedAt = Date.now();
    return true;
  }

  async recordHeartbeat(trialId: number): Promise<void> {
    const trial = this.trial(trialId);
    if (trial.state === 'running') trial.heartbeatAt = Date.now();
  }

  async failStaleTrials(studyId: number, options: StaleTrialOptions): Promise<FrozenTrial[]> {
    const study = this.study(studyId);
    const cutoff = Date.now() - options.graceSeconds * 1000;
    const failed: FrozenTrial[] = [];
    const byNumber = new Map(study.trials.map((t) => [t.number, t] as const));
    for (const trial of [...study.trials]) {
      if (trial.state !== 'running' || (trial.heartbeatAt ?? 0) >= cutoff) continue;
      trial.state = 'failed';
      trial.error = staleTrialError(trial.worker, options.graceSeconds);
      trial.completedAt = Date.now();
      const frozen = freeze(trial);
      failed.push(frozen);
      if (retryDepth(trial, byNumber) < (options.maxRetries ?? 0))
        this.insertTrial(study, retryTemplate(frozen), {});
    }
    return failed;
  }

  async getTrial(trialId: number): Promise<FrozenTrial> {
    return freeze(this.trial(trialId));
  }

  async getAllTrials(studyId: number, states?: readonly TrialState[]): Promise<FrozenTrial[]> {
    const trials = this.study(studyId).trials;
    return (states === undefined ? trials : trials.filter((t) => states.includes(t.state))).map(freeze);
  }

  async close(): Promise<void> {
    await closeStorageResources(this);
    this.closed = true;
  }
}
