/**
 * tensile finetune: fine-tunes a pretrained model (any seed CNN or torchvision-style ResNet saved as
 * safetensors with PyTorch names) on a bundled dataset or an IDX file pair, with one of the transfer
 * strategies, and prints the test accuracy.
 */
import * as path from 'node:path';
import { numberOption, parseArgs, UsageError, type NumberRule } from './arguments.js';
import { openRunStoreIfAvailable } from './tracking.js';
import { saveTrainedModel } from './saving.js';
import { dataOptions, heldOutImages } from './data-source.js';
import {
  configFromOptions,
  defaultStoreUrl,
  trackRun,
  AdamW,
  architectureOf,
  assertWritableTarget,
  backendByName,
  buildArchitecture,
  classifierOutputs,
  evaluate,
  filterClasses,
  freezeSummary,
  getBackend,
  loadCheckpoint,
  loadFashionMnist,
  loadMnist,
  loadPretrained,
  manualSeed,
  Random,
  readIdxImages,
  readSafetensors,
  replaceHead,
  setBackend,
  splitDataset,
  summary,
  takePerClass,
  TrainingCheckpoint,
  transferStrategies,
  type RunTracker,
  type Callback,
  type BatchNormPolicy,
  type ImageDataset,
  type Module,
  type StrategyName,
  type TrainingControl,
  type TrainingEvent,
  type TransferOptions,
} from '../src/index.js';

export const finetuneHelp = `usage: tensile finetune --from FILE --strategy NAME [options]

Fine-tunes a pretrained model on labelled images and prints its test accuracy. The architecture (a
seed CNN or a torchvision-style ResNet) is read from the weight file's tensor names and shapes, and
the classifier is replaced by a new one for the data's classes (--keep-head keeps it, to continue
training on the same classes).

  npx tensile finetune --from pretrained/seed-cnn-fashion-mnist.safetensors --strategy freezeEarly --per-class 30

strategies:
  headOnly          freeze everything but the classifier (default lr 3e-3)
  freezeEarly       freeze the first --frozen-groups block groups (default 1; lr 1e-3)
  fullLowLr         everything trainable at a low rate (default lr 1e-4)
  gradualUnfreeze   unfreeze one block group at a time from the top (default lr 1e-3)
  fineTune          --freeze-epochs head-only epochs, then everything with discriminative rates (default)
  scratch           train the same architecture from a random start (weights of --from are not loaded)

data:
  --dataset mnist|fashion-mnist     bundled data (default mnist)
  --images FILE --labels FILE       an IDX pair instead ([N, H, W] uint8 images, [N] labels; .gz is fine)
  --test-images FILE --test-labels FILE
                                    a separate IDX test pair (default: hold out --test-fraction)
  --data DIR                        your images: one subfolder per class, or a path,label listing CSV
                                    (--image-size N, default 64; --grayscale for 1-channel models;
                                    --fit crop|pad|stretch; --skip-bad-images; --image-cache DIR)
  --test-fraction X                 held-out share when there is no test pair (default 0.2)
  --classes LIST                    keep these classes only, relabelled 0.. (e.g. 5,6,7,8,9)
  --per-class N                     train on N examples per class (default: all)

training:
  --epochs N                        epochs (default 10; fineTune: after its warm-up)
  --lr X                            learning rate (default: the strategy's)
  --batch-size N                    batch size (default 32)
  --frozen-groups K                 freezeEarly: groups to freeze (default 1)
  --freeze-epochs N                 fineTune: head-only warm-up epochs (default 1)
  --decay X                         fineTune / gradualUnfreeze: rate decay per block group (2.6 / 1)
  --batch-norm MODE                 frozen batch norm: inference (default), trainable, batchStatistics
  --seed N                          seed for the subset, the new head and the batch order (default 1)
  --backend NAME                    reference, wasm or native (default: fastest available)
  --save FILE                       write the fine-tuned model (architecture, weights with PyTorch names, class names)
  --checkpoint FILE                 write a resumable checkpoint after every epoch
  --resume FILE                     continue from such a checkpoint (not with fineTune)
  --keep-head                       keep the pretrained classifier (same classes, same meaning)
  --stop-after N                    stop after N epochs (of --epochs), e.g. to continue later with --resume
  --storage URL                     record the run there (default ${defaultStoreUrl}; postgres://... too)
  --no-track                        do not record the run
  --quiet                           no progress bars or summaries`;

const strategyNames = Object.keys(transferStrategies) as StrategyName[];

function loadData(
  values: Record<string, string | boolean | undefined>,
  seed: number,
): { train: ImageDataset; test: ImageDataset; source: string } {
  const string = (name: string) => values[name] as string | undefined;
  let train: ImageDataset;
  let test: ImageDataset | undefined;
  let source: string;
  if (string('images') !== undefined || string('labels') !== undefined) {
    if (string('images') === undefined || string('labels') === undefined)
      throw new Error('--images and --labels go together');
    train = readIdxImages(string('images')!, string('labels')!);
    source = string('images')!;
    if (string('test-images') !== undefined || string('test-labels') !== undefined) {
      if (string('test-images') === undefined || string('test-labels') === undefined)
        throw new Error('--test-images and --test-labels go together');
      test = readIdxImages(string('test-images')!, string('test-labels')!);
      // Both sides need the same class count even when the test file lacks the highest labels.
      const classes = Math.max(train.classes, test.classes);
      const names = Array.from({ length: classes }, (_, i) => String(i));
      train = { ...train, classes, classNames: names };
      test = { ...test, classes, classNames: names };
    }
  } else {
    const dataset = string('dataset') ?? 'mnist';
    if (dataset === 'mnist') train = loadMnist();
    else if (dataset === 'fashion-mnist') train = loadFashionMnist();
    else throw new Error(`--dataset must be mnist or fashion-mnist, got '${dataset}'`);
    source = dataset;
  }
  if (test === undefined) {
    const fraction = Number(string('test-fraction') ?? '0.2');
    ({ train, test } = splitDataset(train, fraction, new Random(seed), { stratify: true }));
  }
  const classes = string('classes');
  if (classes !== undefined) {
    const kept = classes.split(',').map(Number);
    train = filterClasses(train, kept, { relabel: true });
    test = filterClasses(test, kept, { relabel: true });
  }
  const perClass = string('per-class');
  if (perClass !== undefined) train = takePerClass(train, Number(perClass), new Random(seed));
  return { train, test, source };
}

/** --data: the folder (or listing) with a held-out test split, then --classes and --per-class as for IDX data. */
async function heldOutFolder(
  values: Record<string, string | boolean | undefined>,
  seed: number,
  fraction: number,
): Promise<{ train: ImageDataset; test: ImageDataset; source: string }> {
  if (values.dataset !== undefined || values.images !== undefined)
    throw new UsageError('tensile finetune: --data, --dataset and --images are alternatives; give one');
  const read = await heldOutImages(values.data as string, values, {
    command: 'tensile finetune',
    fraction,
    seed,
  });
  let { train, test } = read;
  const classes = values.classes as string | undefined;
  if (classes !== undefined) {
    const kept = classes.split(',').map(Number);
    train = filterClasses(train, kept, { relabel: true });
    test = filterClasses(test, kept, { relabel: true });
  }
  const perClass = values['per-class'] as string | undefined;
  if (perClass !== undefined) train = takePerClass(train, Number(perClass), new Random(seed));
  return { train, test, source: read.source };
}

export async function finetuneCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      from: { type: 'string' },
      strategy: { type: 'string', default: 'fineTune' },
      dataset: { type: 'string' },
      images: { type: 'string' },
      labels: { type: 'string' },
      'test-images': { type: 'string' },
      'test-labels': { type: 'string' },
      'test-fraction': { type: 'string' },
      classes: { type: 'string' },
      'per-class': { type: 'string' },
      epochs: { type: 'string', default: '10' },
      lr: { type: 'string' },
      'batch-size': { type: 'string', default: '32' },
      'frozen-groups': { type: 'string' },
      'freeze-epochs': { type: 'string' },
      decay: { type: 'string' },
      'batch-norm': { type: 'string' },
      seed: { type: 'string', default: '1' },
      backend: { type: 'string' },
      save: { type: 'string' },
      checkpoint: { type: 'string' },
      resume: { type: 'string' },
      'stop-after': { type: 'string' },
      'keep-head': { type: 'boolean', default: false },
      quiet: { type: 'boolean', default: false },
      storage: { type: 'string', default: defaultStoreUrl },
      'no-track': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
      ...dataOptions,
    },
  });
  if (values.help) {
    console.log(finetuneHelp);
    return 0;
  }
  const strategy = values.strategy as StrategyName;
  if (!strategyNames.includes(strategy))
    throw new Error(`--strategy must be one of ${strategyNames.join(', ')}, got '${values.strategy}'`);
  if (values.from === undefined)
    throw new Error(`--from FILE is required (the pretrained weights; see tensile finetune --help)`);
  const from = values.from;
  // Every number is checked before data or weights are read: a mistake found after minutes of
  // training costs the run.
  const rules: Partial<Record<keyof typeof values, NumberRule>> = {
    seed: { integer: true, minimum: 0 },
    epochs: { integer: true, minimum: 1 },
    'batch-size': { integer: true, minimum: 1 },
    lr: { above: 0 },
    'frozen-groups': { integer: true, minimum: 0 },
    'freeze-epochs': { integer: true, minimum: 0 },
    decay: { above: 0 },
    'stop-after': { integer: true, minimum: 1 },
    'per-class': { integer: true, minimum: 1 },
    'test-fraction': { above: 0, below: 1 },
  };
  const checked = new Map<string, number | undefined>();
  for (const [name, rule] of Object.entries(rules)) {
    checked.set(name, numberOption(values[name as keyof typeof values] as string | undefined, name, rule));
  }
  const number = (name: keyof typeof values): number | undefined => checked.get(name);
  if (values.classes !== undefined && !/^\d+(,\d+)*$/.test(values.classes)) {
    throw new UsageError(
      `tensile finetune: --classes must be class numbers like 0,1,2, got '${values.classes}'`,
    );
  }
  if (values.backend !== undefined) setBackend(backendByName(values.backend));
  for (const target of [values.save, values.checkpoint])
    if (target !== undefined) assertWritableTarget(target);
  const seed = number('seed')!;
  const log = (line: string) => {
    if (!values.quiet) console.log(line);
  };
  const started = performance.now();
  const { train, test, source } =
    values.data === undefined
      ? loadData(values, seed)
      : await heldOutFolder(values, seed, number('test-fraction') ?? 0.2);
  if (train.count < 1 || test.count < 1) {
    throw new UsageError(
      `tensile finetune: the data leaves ${train.count} samples to train on and ${test.count} to test ` +
        `(--per-class, --classes and --test-fraction decide this); both need at least one`,
    );
  }

  manualSeed(seed);
  let model: Module;
  if (strategy === 'scratch') {
    const shapes = new Map(
      [...readSafetensors(values.from).tensors].map(([name, entry]) => [name, entry.shape]),
    );
    model = buildArchitecture(architectureOf(shapes));
    log(`tensile finetune: ${values.from}'s architecture, randomly initialised (scratch)`);
  } else {
    const loaded = loadPretrained(values.from);
    model = loaded.model;
    const accuracy =
      loaded.metadata.test_accuracy === undefined
        ? ''
        : `, its test accuracy ${loaded.metadata.test_accuracy}`;
    log(`tensile finetune: ${values.from} (${loaded.architecture.family}${accuracy})`);
  }
  if (values['keep-head'] && classifierOutputs(model) !== train.classes) {
    throw new Error(
      `--keep-head: the classifier has ${classifierOutputs(model)} outputs but the data has ${train.classes} classes`,
    );
  }
  if (!values['keep-head'] && strategy !== 'scratch') {
    // A new task's labels mean something else even when their number is the same.
    log(`a new ${train.classes}-way classifier replaces the pretrained ${classifierOutputs(model)}-way one`);
    replaceHead(model, train.classes, { random: new Random(seed) });
  } else if (strategy === 'scratch' && classifierOutputs(model) !== train.classes) {
    replaceHead(model, train.classes, { random: new Random(seed) });
  }
  if (
    train.channels !== (model.stateDict().get('0.weight') ?? model.stateDict().get('conv1.weight'))!.shape[1]
  ) {
    throw new Error(
      `the data has ${train.channels} channel(s) but the model expects ${(model.stateDict().get('0.weight') ?? model.stateDict().get('conv1.weight'))!.shape[1]}`,
    );
  }
  log(
    `${source}: ${train.count} training / ${test.count} test images, ${train.classes} classes, backend ${getBackend().name}`,
  );

  const options: TransferOptions & Record<string, unknown> = {
    epochs: number('epochs')!,
    batchSize: number('batch-size')!,
    seed,
    progress: !values.quiet,
  };
  if (values.lr !== undefined) options.lr = number('lr')!;
  if (values['frozen-groups'] !== undefined) options.frozenGroups = number('frozen-groups');
  if (values['freeze-epochs'] !== undefined) options.freezeEpochs = number('freeze-epochs');
  if (values.decay !== undefined) options.decay = number('decay');
  if (values['batch-norm'] !== undefined) options.batchNorm = values['batch-norm'] as BatchNormPolicy;
  const callbacks: Callback[] = [];
  if (values.checkpoint !== undefined) callbacks.push(new TrainingCheckpoint({ path: values.checkpoint }));
  const stopAfter = number('stop-after');
  if (stopAfter !== undefined) {
    callbacks.push({
      handle(event: TrainingEvent, control: TrainingControl) {
        if (event.type === 'epochEnd' && event.epoch + 1 >= stopAfter)
          control.stop(`--stop-after ${stopAfter}`);
      },
    });
  }
  options.callbacks = callbacks;
  if (values.resume !== undefined) {
    if (strategy === 'fineTune')
      throw new Error(
        '--resume works with one-phase strategies; fineTune runs two fits (resume its phases with the library)',
      );
    // The strategy builds its optimizer; restoring the checkpoint into it gives the exact state.
    const resumeFrom = values.resume;
    const { metadata } = readSafetensors(resumeFrom);
    options.initialEpoch = Number(metadata.epoch);
    options.optimizer = (groups) => {
      const optimizer = new AdamW(groups);
      const resumed = loadCheckpoint(resumeFrom, model, optimizer);
      if (resumed.random !== undefined) options.random?.setState(resumed.random.getState());
      return optimizer;
    };
    options.random = new Random(seed);
    log(`resuming from ${resumeFrom} after epoch ${options.initialEpoch}`);
  }

  // Trains, tests and saves; with a tracker, the test result and the saved weights go into the run too.
  const work = async (tracker: RunTracker | null) => {
    if (tracker !== null) options.callbacks = [...(options.callbacks ?? []), tracker];
    const history = transferStrategies[strategy](model, train, options);
    const result = evaluate(model, test);
    if (values.save !== undefined) {
      saveTrainedModel(
        model,
        values.save,
        { inputShape: [train.channels, train.height, train.width], classNames: train.classNames },
        { finetuned_from: from, strategy, dataset: source, test_accuracy: result.accuracy.toFixed(4) },
      );
      log(`model written to ${values.save}`);
    }
    if (tracker !== null) {
      const seconds = (performance.now() - started) / 1000;
      tracker.updateSummary({ testAccuracy: result.accuracy, testLoss: result.loss, seconds });
      if (values.save !== undefined)
        await tracker.addArtifact({
          name: 'weights',
          kind: 'weights',
          mediaType: 'application/octet-stream',
          path: path.resolve(values.save),
        });
    }
    return { history, result };
  };
  // Recorded in the run store by default, like `tensile train` (the dashboard shows it).
  const store = values['no-track'] ? null : await openRunStoreIfAvailable(values.storage!);
  let outcome: Awaited<ReturnType<typeof work>>;
  try {
    outcome =
      store === null
        ? await work(null)
        : await trackRun(
            store,
            {
              name: `finetune ${strategy}`,
              kind: 'finetune',
              config: configFromOptions(values, ['help', 'quiet', 'no-track']),
            },
            work,
          );
  } finally {
    await store?.close();
  }
  const { history, result } = outcome;
  if (!values.quiet) {
    console.log(freezeSummary(model).text);
    if (model.stateDict().has('0.weight'))
      console.log(
        summary(model, [train.channels, train.height, train.width]).text.split('\n').slice(-2).join('\n'),
      );
  }
  const seconds = (performance.now() - started) / 1000;
  console.log(
    `test accuracy: ${(result.accuracy * 100).toFixed(2)}% (${Math.round(result.accuracy * test.count)}/${test.count}), test loss ${result.loss.toFixed(4)}, ${history.epochs.length} epochs, ${seconds.toFixed(0)} s`,
  );
  return 0;
}
