/**
 * tensile tune STUDY.yaml: tunes the seed CNN's training hyperparameters as the study file describes
 * (search space, sampler, pruner, number of trials, storage). `--workers N` runs N worker processes on
 * this machine; the same command on other machines against the same PostgreSQL storage joins the
 * study. Prints a line per finished trial: its state, where its values came from (the sampler's
 * startup or its model: startup: sobol / gp, startup: random / tpe), its result and the best so far.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { numberOption, parseArgs, UsageError } from './arguments.js';
import YAML from 'yaml';
import {
  formatNumber,
  imageFolder,
  imageListing,
  csvDataset,
  readCsvRecords,
  loadFashionMnist,
  loadMnist,
  openStorage,
  parseStudyConfig,
  prunerFromConfig,
  samplerFromConfig,
  storageUrlHelp,
  Study,
  suggestFromSpec,
  trainingHyperparameters,
  trainWithHyperparameters,
  tuningSplit,
  systemAttributeKeys,
  defaultStoreUrl,
  openRunStore,
  trackRun,
  type ImageDataset,
  type Storage,
  type FrozenTrial,
  type Sampler,
  type StudyConfig,
  type TrainingTask,
  type Callback,
  type JsonObject,
  type RunStore,
} from '../src/index.js';

/** Studies live beside the runs, so `tensile dashboard` with no options shows both. */
export const defaultStorage = defaultStoreUrl;

export const tuneHelp = `usage: tensile tune STUDY.yaml [options]

Tunes the seed CNN's training hyperparameters (lr, batchSize, optimizer, momentum, weightDecay,
dropout, epochs, schedule, shift) over the search space in STUDY.yaml (see examples/study.yaml).
Running the same command again, or on another machine against the same PostgreSQL, joins the study.

options:
  --storage URL     where the study lives (default: the file's storage, else ${defaultStorage});
                    ${storageUrlHelp}
  --workers N       worker processes on this machine (default 1; needs a SQLite or PostgreSQL storage)
  --trials N        study-wide number of trials (overrides the file)
  --study NAME      study name (overrides the file)
  --no-track        do not record each trial's training as a run (tensile dashboard shows them)
  --quiet           only the summary`;

function describeParams(params: Readonly<Record<string, unknown>>): string {
  return Object.entries(params)
    .map(([k, v]) => `${k}=${typeof v === 'number' ? formatNumber(v) : String(v)}`)
    .join(' ');
}

function trialLine(trial: FrozenTrial, best: FrozenTrial | null, metric: string): string {
  const seconds =
    trial.startedAt !== null && trial.completedAt !== null
      ? `${((trial.completedAt - trial.startedAt) / 1000).toFixed(1)} s`
      : '';
  const outcome =
    trial.state === 'complete'
      ? `${metric} ${trial.value!.toFixed(4)}`
      : trial.state === 'pruned'
        ? `after epoch ${Math.max(0, ...trial.intermediateValues.keys())} (${metric} ${trial.value?.toFixed(4) ?? '?'})`
        : `failed: ${(trial.error ?? '').split('\n')[0]}`;
  const bestText = best === null ? 'best: none yet' : `best ${best.value!.toFixed(4)} (trial ${best.number})`;
  // Where the values came from: the sampler's startup or its model (startup: sobol / gp, startup: random / tpe).
  const phase = trial.systemAttributes[systemAttributeKeys.samplerPhase];
  const from = typeof phase === 'string' ? phase : '';
  return `trial ${String(trial.number).padStart(3)}  ${trial.state.padEnd(8)} ${from.padEnd(15)} ${outcome}  [${describeParams(trial.params)}]  ${seconds}  ${bestText}`;
}

/**
 * What the sampler's startup means for this budget: model-based samplers propose quasi-random or
 * random values until startupTrials trials have finished (any state), and say so once.
 */
function startupNote(config: StudyConfig, sampler: Sampler): string | null {
  const section = config.sampler as { name?: unknown } | string | null | undefined;
  const name =
    typeof section === 'string' ? section : typeof section?.name === 'string' ? section.name : 'tpe';
  const startup = (sampler as { startupTrials?: unknown }).startupTrials;
  if (typeof startup !== 'number' || (name !== 'gp' && name !== 'tpe')) return null;
  const model = name === 'gp' ? 'the Gaussian process' : 'TPE';
  const values = name === 'gp' ? 'Sobol points' : 'random values';
  const line = `sampler ${name}: ${values} until ${startup} trials have finished (complete, pruned or failed), then ${model}`;
  return startup >= config.trials
    ? `${line}\n  note: with ${config.trials} trials no suggestion comes from ${model}; lower sampler.startupTrials`
    : line;
}

/** What the trials train, for the first line. */
function describeData(config: StudyConfig): string {
  const { path, target, dataset, imageSize, grayscale, trainSamples, validationSamples } = config.data;
  const held = `${config.metric} on ${validationSamples ?? 'a fifth'}`;
  if (path === null)
    return `seed CNN ${config.model.channels.join('-')} on ${trainSamples} ${dataset} images, ${held}`;
  if (target !== null) return `a perceptron (64 hidden) predicting '${target}' of ${path}, ${held}`;
  return `seed CNN ${config.model.channels.join('-')} on ${path} (${imageSize}×${imageSize}${grayscale ? ' gray' : ''}), ${held}`;
}

/** A table at data.path with data.target: encoded on the training rows, a fifth (or validationSamples) held out. */
function tableTask(config: StudyConfig, path: string, target: string): TrainingTask {
  const rows = readCsvRecords(path).rows.length;
  const held = config.data.validationSamples ?? Math.max(1, Math.round(rows / 5));
  if (held >= rows)
    throw new RangeError(
      `tensile tune: ${path} has ${rows} rows; data.validationSamples ${held} leaves none to train on`,
    );
  const table = csvDataset(path, { target, validationSplit: held / rows, seed: config.data.seed });
  const encoded = table.encoding.target;
  if (encoded.task === 'regression' && config.metric.endsWith('ccuracy'))
    throw new UsageError(
      `tensile tune: '${target}' is a regression target: metric must be validationLoss or loss, not ${config.metric}`,
    );
  return {
    train: table.train,
    validation: table.validation!,
    outputs: encoded.task === 'classification' ? encoded.classNames.length : 1,
    channels: config.model.channels,
    seed: config.data.seed,
    metric: config.metric,
  };
}

/** The study's data: MNIST, Fashion-MNIST, or the images (folder, listing) or table at data.path. */
async function loadTask(config: StudyConfig): Promise<TrainingTask> {
  const { path, imageSize, grayscale, target } = config.data;
  if (path !== null && !fs.existsSync(path))
    throw new UsageError(`tensile tune: data.path '${path}' does not exist`);
  if (path !== null && target !== null) return tableTask(config, path, target);
  let data: ImageDataset;
  if (path === null) data = config.data.dataset === 'fashion-mnist' ? loadFashionMnist() : loadMnist();
  else {
    let isFile: boolean;
    try {
      isFile = fs.statSync(path).isFile();
    } catch {
      throw new UsageError(`tensile tune: data.path '${path}' does not exist`);
    }
    const read = isFile ? imageListing : imageFolder;
    data = (await read(path, { imageSize, color: grayscale ? 'grayscale' : 'rgb' })).all;
  }
  // Own data: all of it by default, a fifth (stratified, seeded) held out for validation.
  const validationSamples = config.data.validationSamples ?? Math.max(1, Math.round(data.count / 5));
  const trainSamples = config.data.trainSamples ?? data.count - validationSamples;
  if (trainSamples < 1 || trainSamples + validationSamples > data.count)
    throw new RangeError(
      `tensile tune: data has ${data.count} images; data.trainSamples ${trainSamples} + data.validationSamples ${validationSamples} do not fit`,
    );
  const { train, validation } = tuningSplit(data, {
    trainSamples,
    validationSamples,
    seed: config.data.seed,
  });
  return {
    train,
    validation,
    channels: config.model.channels,
    seed: config.data.seed,
    metric: config.metric,
  };
}

/** One worker: joins the study and runs trials until the study-wide budget is spent. */
async function runWorker(
  config: StudyConfig,
  log: (line: string) => void,
  track: boolean,
  afterwards?: (storage: Storage) => Promise<void>,
): Promise<void> {
  const storage = await openStorage(config.storage);
  // Each trial's training is also a run (kind 'trial') in the same store, with its curves.
  let runs: RunStore | null = null;
  try {
    runs = track ? await openRunStore(config.storage) : null;
    const study = await Study.create({
      name: config.study,
      storage,
      direction: config.direction,
      loadIfExists: true,
      sampler: samplerFromConfig(config.sampler, config.search),
      pruner: prunerFromConfig(config.pruner),
      maxRetries: config.retries,
      ...(config.heartbeat === null ? {} : { heartbeat: config.heartbeat }),
    });
    const task = await loadTask(config);
    await study.optimize(
      async (trial) => {
        const values = suggestFromSpec(trial, config.search);
        const hyperparameters = trainingHyperparameters(values);
        const train = (callbacks: Callback[]) => {
          const outcome = trainWithHyperparameters(task, hyperparameters, { trial, callbacks });
          trial.setUserAttribute('seconds', Number(outcome.seconds.toFixed(2)));
          return outcome.value;
        };
        if (runs === null) return train([]);
        return trackRun(
          runs,
          {
            kind: 'trial',
            name: `${config.study} trial ${trial.number}`,
            study: config.study,
            trialNumber: trial.number,
            config: {
              ...(hyperparameters as unknown as JsonObject),
              dataset: config.data.path ?? config.data.dataset!,
            },
          },
          (tracker) => {
            trial.setUserAttribute('runId', tracker.runId);
            return train([tracker]);
          },
        );
      },
      {
        totalTrials: config.trials,
        ...(config.timeout === null ? {} : { timeout: config.timeout }),
        callbacks: [
          async (s, trial) => {
            const best = await s.bestTrial().catch(() => null);
            log(trialLine(trial, best, config.metric));
          },
        ],
      },
    );
    // Before the storage closes: an in-memory study is gone once it does.
    await afterwards?.(storage);
  } finally {
    await runs?.close();
    await storage.close();
  }
}

/** The study's counts and best trial, read from `given` (left open) or from a storage opened here. */
async function summarize(config: StudyConfig, started: number, given?: Storage): Promise<void> {
  const storage = given ?? (await openStorage(config.storage));
  try {
    const study = await Study.load(config.study, storage, { heartbeat: null });
    const trials = await study.trials();
    const counts = ['complete', 'pruned', 'failed', 'running', 'waiting']
      .map((s) => `${trials.filter((t) => t.state === s).length} ${s}`)
      .join(', ');
    console.log(
      `\nstudy '${config.study}' in ${config.storage}: ${trials.length} trials (${counts}), ${((performance.now() - started) / 1000).toFixed(0)} s`,
    );
    const best = await study.bestTrial().catch(() => null);
    if (best === null) console.log('no complete trial yet');
    else
      console.log(
        `best: trial ${best.number}, ${config.metric} ${best.value!.toFixed(4)}\n  ${describeParams(best.params)}`,
      );
  } finally {
    if (given === undefined) await storage.close();
  }
}

export async function tuneCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      storage: { type: 'string' },
      workers: { type: 'string', default: '1' },
      trials: { type: 'string' },
      study: { type: 'string' },
      quiet: { type: 'boolean', default: false },
      'no-track': { type: 'boolean', default: false },
      'worker-id': { type: 'string' },
      'parent-pid': { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help || positionals.length !== 1) {
    console.log(tuneHelp);
    return values.help ? 0 : 2;
  }
  const file = positionals[0]!;
  const text = fs.readFileSync(file, 'utf8');
  let config: StudyConfig;
  try {
    // Every field and every value the trainer would refuse is checked here, before any trial runs:
    // a mistake in the study file is a usage error (exit 2), not a study of failed trials.
    config = parseStudyConfig(YAML.parse(text), { storage: defaultStorage });
  } catch (error) {
    throw new UsageError(`tensile tune: ${file}: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (values.storage !== undefined) config.storage = values.storage;
  if (values.study !== undefined) config.study = values.study;
  if (values.trials !== undefined) {
    config.trials = numberOption(values.trials, 'trials', { integer: true, minimum: 1 })!;
  }
  const workers = numberOption(values.workers, 'workers', { integer: true, minimum: 1 })!;
  if (workers > 1 && config.storage.startsWith('memory'))
    throw new UsageError(
      'tensile tune: --workers needs a storage that processes can share (sqlite:PATH or postgres://...)',
    );
  const log = (line: string) => {
    if (!values.quiet) console.log(line);
  };
  const track = !values['no-track'];
  let failedWorkers: string[] = [];

  if (values['worker-id'] !== undefined) {
    // A worker started by `--workers N` ends with its parent: nobody would read its lines or wait for it.
    if (values['parent-pid'] !== undefined) exitWithParent(Number(values['parent-pid']));
    await runWorker(config, (line) => log(`[worker ${values['worker-id']}] ${line}`), track);
    return 0;
  }
  const started = performance.now();
  log(
    `tensile tune: study '${config.study}' in ${config.storage}, ${config.trials} trials, ${workers} worker${workers > 1 ? 's' : ''}; ` +
      describeData(config),
  );
  const note = startupNote(config, samplerFromConfig(config.sampler, config.search));
  if (note !== null) log(note);
  if (workers === 1) {
    await runWorker(config, log, track, (storage) => summarize(config, started, storage));
    return 0;
  } else {
    const main = fileURLToPath(new URL('./main.js', import.meta.url));
    const forwarded = [
      'tune',
      file,
      '--storage',
      config.storage,
      '--study',
      config.study,
      '--trials',
      String(config.trials),
      ...(values.quiet ? ['--quiet'] : []),
      ...(track ? [] : ['--no-track']),
      '--parent-pid',
      String(process.pid),
    ];
    const codes = await Promise.all(
      Array.from({ length: workers }, (_, i) => {
        const child = spawn(process.execPath, [main, ...forwarded, '--worker-id', String(i + 1)], {
          stdio: ['ignore', 'inherit', 'inherit'],
        });
        return new Promise<number>((resolve) => {
          child.once('error', () => resolve(1));
          child.once('exit', (code) => resolve(code ?? 1));
        });
      }),
    );
    failedWorkers = codes
      .map((code, i) => ({ worker: i + 1, code }))
      .filter(({ code }) => code !== 0)
      .map(({ worker, code }) => `worker ${worker} (exit ${code})`);
    if (failedWorkers.length > 0)
      console.error(`tensile tune: ${failedWorkers.length} worker(s) failed: ${failedWorkers.join(', ')}`);
  }
  await summarize(config, started);
  // The study may well be complete (other workers took over), but a worker that failed is a fault to report.
  return failedWorkers.length > 0 ? 1 : 0;
}

/**
 * Ends this process when process `parent` has gone (it was killed, or crashed). The check runs on a
 * thread of its own because training blocks the main thread for a whole trial; the thread polls the
 * parent's id, which changes when the parent dies and this process is handed to init (or a
 * subreaper). The running trial's heartbeats stop with the process, so the study fails it (and
 * retries it, when retries are allowed) as for any dead worker.
 */
function exitWithParent(parent: number): void {
  if (!Number.isInteger(parent) || parent <= 0) return;
  if (process.ppid !== parent) process.exit(1);
  const watcher = new Worker(
    `const { workerData } = require('node:worker_threads');
     const fs = require('node:fs');
     setInterval(() => {
       if (process.ppid !== workerData.parent) {
         fs.writeSync(2, 'tensile tune: worker ' + process.pid + ': the parent process ' + workerData.parent + ' has gone; exiting\\n');
         process.kill(process.pid, 'SIGTERM');
       }
     }, ${parentPollMilliseconds});`,
    { eval: true, workerData: { parent }, execArgv: [] },
  );
  // The watcher must not keep a finished worker alive.
  watcher.unref();
}

/** How often a worker checks that its parent is alive. */
const parentPollMilliseconds = 250;
