/**
 * tensile train --data: trains on the user's own images or table (see data-source.ts), holding out
 * --test-fraction of it, and prints the held-out accuracy (or RMSE for a numeric target).
 */
import { saveTrainedModel } from './saving.js';
import * as path from 'node:path';
import { numberOption, UsageError } from './arguments.js';
import {
  type DataValues,
  loadData,
  type LoadedData,
  loadStreamedImages,
  type StreamedImages,
  tableModel,
} from './data-source.js';
import { openRunStoreIfAvailable } from './tracking.js';
import {
  AdamW,
  assertWritableTarget,
  backendByName,
  colorJitter,
  DataLoader,
  evaluate,
  fit,
  fitAsync,
  getBackend,
  horizontalFlip,
  manualSeed,
  MetricsLogger,
  mseLoss,
  oneCycleSchedule,
  Random,
  randomErasing,
  randomResizedCrop,
  randomRotation,
  randomShift,
  resnet18,
  seedCnn,
  setBackend,
  summary,
  verticalFlip,
  configFromOptions,
  RunTracker,
  type Callback,
  type ConfigValue,
  type Dataset,
  type Example,
  type ModelExtras,
  type Module,
  type SampleTransform,
} from '../src/index.js';

/** The --augment names, each with the transform it adds (in this order, whatever order is given). */
const augmentations: Record<string, () => SampleTransform> = {
  crop: () => randomResizedCrop({ scale: [0.5, 1] }),
  shift: () => randomShift(2),
  rotate: () => randomRotation(15),
  flip: () => horizontalFlip(),
  vflip: () => verticalFlip(),
  jitter: () => colorJitter({ brightness: 0.2, contrast: 0.2, saturation: 0.2 }),
  erase: () => randomErasing(),
};

export const trainDataHelp = `
  --model seed-cnn|resnet18|mlp   seed-cnn (default for images), resnet18 (small stem up to 64 pixels),
                                  mlp (tables, the default: one hidden layer of 64)
  --augment LIST                  images: some of ${Object.keys(augmentations).join(',')} (default none)`;

export function parseAugment(text: string | undefined): SampleTransform[] {
  if (text === undefined || text === '' || text === 'none') return [];
  const names = text.split(',');
  for (const name of names)
    if (!(name in augmentations))
      throw new UsageError(
        `tensile train: --augment takes some of ${Object.keys(augmentations).join(', ')}, got '${name}'`,
      );
  return Object.keys(augmentations)
    .filter((name) => names.includes(name))
    .map((name) => augmentations[name]!());
}

export async function trainOnData(
  values: DataValues & Record<string, string | boolean | undefined>,
): Promise<number> {
  const string = (name: string) => values[name] as string | undefined;
  const seed = numberOption(string('seed'), 'seed', { integer: true, minimum: 0 })!;
  const epochs = numberOption(string('epochs'), 'epochs', { integer: true, minimum: 1 })!;
  const batchSize = numberOption(string('batch-size'), 'batch-size', { integer: true, minimum: 1 })!;
  const learningRate = numberOption(string('lr'), 'lr', { above: 0 })!;
  const weightDecay = numberOption(string('weight-decay'), 'weight-decay', { minimum: 0 })!;
  const testFraction = numberOption(string('test-fraction'), 'test-fraction', { above: 0, below: 1 })!;
  const transforms = parseAugment(string('augment'));
  const channelsOption = (string('channels') ?? '32,64').split(',').map(Number) as [number, number];
  if (channelsOption.length !== 2 || channelsOption.some((c) => !Number.isInteger(c) || c < 1))
    throw new UsageError(
      `tensile train: --channels must be two positive integers like 32,64, got '${string('channels')}'`,
    );
  const modelName = string('model');
  if (modelName !== undefined && !['seed-cnn', 'resnet18', 'mlp'].includes(modelName))
    throw new UsageError(`tensile train: --model must be seed-cnn, resnet18 or mlp, got '${modelName}'`);
  if (values.backend !== undefined) setBackend(backendByName(string('backend')!));
  if (values.save !== undefined) assertWritableTarget(string('save')!);
  const log = (line: string) => {
    if (values.quiet !== true) console.log(line);
  };
  const started = performance.now();
  const command = 'tensile train';
  const streamed =
    values.stream === true
      ? await loadStreamedImages(string('data')!, values, { command, heldOutFraction: testFraction, seed })
      : null;
  try {
    return await trainOn(
      streamed === null
        ? await loadData(string('data')!, values, { command, heldOutFraction: testFraction, seed })
        : { kind: 'streamed', ...streamed },
    );
  } finally {
    streamed?.close();
  }

  async function trainOn(data: LoadedData | ({ kind: 'streamed' } & StreamedImages)): Promise<number> {
    const trainCount = data.kind === 'images' ? data.train.count : data.train.length;
    const testCount = data.kind === 'images' ? data.heldOut!.count : data.heldOut!.length;
    if (trainCount < 1 || testCount < 1)
      throw new UsageError(
        `${command}: --test-fraction ${testFraction} of ${trainCount + testCount} samples leaves ${trainCount} to train on ` +
          `and ${testCount} to test; both need at least one`,
      );
    const validationLocation = string('val-data');
    const streamedValidation =
      validationLocation === undefined || data.kind !== 'streamed'
        ? undefined
        : await loadStreamedImages(validationLocation, values, {
            command,
            heldOutFraction: 0,
            seed,
            classNames: data.classNames,
          });
    const validation =
      validationLocation === undefined || data.kind === 'streamed'
        ? undefined
        : await loadData(validationLocation, values, {
            command,
            heldOutFraction: 0,
            seed,
            ...(data.kind === 'images' ? { classNames: data.classNames } : { encoding: data.encoding }),
          });

    manualSeed(seed);
    let model: Module;
    let extras: ModelExtras;
    const regression = data.kind === 'table' && data.encoding.target.task === 'regression';
    if (data.kind === 'images' || data.kind === 'streamed') {
      if (modelName === 'mlp')
        throw new UsageError(`${command}: --model mlp is for tables; images take seed-cnn or resnet18`);
      const [channels, height, width] =
        data.kind === 'streamed' ? data.shape : [data.train.channels, data.train.height, data.train.width];
      const widths = channelsOption;
      const classes = data.classNames.length;
      model =
        modelName === 'resnet18'
          ? resnet18({
              inChannels: channels,
              classes,
              stem: Math.max(height, width) <= 64 ? 'small' : 'imagenet',
            })
          : seedCnn({ inChannels: channels, channels: widths, classes });
      extras = { inputShape: [channels, height, width], classNames: data.classNames };
      log(
        `${command}: ${modelName ?? 'seed-cnn'} on ${data.source} (${trainCount} train / ${testCount} test images of ` +
          `${channels}×${height}×${width}, ${classes} classes: ${data.classNames.join(', ')}${data.kind === 'streamed' ? ', streamed from disk' : ''}), backend ${getBackend().name}`,
      );
      log(summary(model, [channels, height, width]).text);
    } else {
      if (modelName !== undefined && modelName !== 'mlp')
        throw new UsageError(`${command}: a table trains an mlp, not ${modelName}`);
      if (transforms.length > 0) throw new UsageError(`${command}: --augment is for images, not tables`);
      const target = data.encoding.target;
      const outputs = target.task === 'classification' ? target.classNames.length : 1;
      model = tableModel(data.encoding.features, outputs);
      extras = {
        inputShape: [data.encoding.features],
        classNames: target.task === 'classification' ? target.classNames : [target.name],
        tableEncoding: data.encoding as unknown as ConfigValue,
      };
      log(
        `${command}: mlp on ${data.source} (${trainCount} train / ${testCount} test rows, ${data.encoding.features} features, ` +
          `${target.task} of '${target.name}'), backend ${getBackend().name}`,
      );
    }

    const optimizer = new AdamW(model.parameters(), { lr: learningRate, weightDecay });
    const callbacks: Callback[] = [];
    if (values.log !== undefined) callbacks.push(new MetricsLogger(string('log')!));
    const store = values['no-track'] === true ? null : await openRunStoreIfAvailable(string('storage')!);
    const tracker =
      store === null
        ? null
        : await RunTracker.start(store, {
            name: `train ${path.basename(data.source)}`,
            config: configFromOptions(values, ['help', 'quiet', 'no-track']),
          });
    if (tracker !== null) {
      callbacks.push(tracker);
      log(
        `recording run #${tracker.runId} in ${string('storage')} (tensile dashboard shows it; --no-track skips this)`,
      );
    }
    const loss = regression ? { loss: mseLoss } : {};
    const common = {
      optimizer,
      epochs,
      batchSize,
      seed,
      ...loss,
      schedule: oneCycleSchedule(epochs * Math.ceil(trainCount / batchSize)),
      callbacks,
      progress: values.quiet !== true,
    };
    try {
      if (data.kind === 'streamed') {
        // Batches are read from disk a few ahead, between training steps; the shuffled order is the
        // one fit draws for the in-memory dataset from the same seed.
        const loader = new DataLoader(augmented(data.train, transforms, data.shape, seed), {
          batchSize,
          shuffle: true,
          seed,
          prefetch: 4,
        });
        await fitAsync(model, loader, {
          ...common,
          ...(streamedValidation === undefined ? {} : { validationData: streamedValidation.train }),
        });
      } else
        fit(model, data.train, {
          ...common,
          ...(transforms.length > 0 ? { transforms } : {}),
          ...(validation === undefined ? {} : { validationData: validation.train }),
        });
    } catch (error) {
      await tracker?.fail(error);
      await tracker?.close();
      await store?.close();
      throw error;
    } finally {
      streamedValidation?.close();
    }
    const result = evaluate(model, data.heldOut!, loss);
    const seconds = (performance.now() - started) / 1000;
    const target = data.kind === 'table' ? data.encoding.target : undefined;
    // The loss is the mean squared error of the standardised target: back in the target's units.
    const rmse =
      target?.task === 'regression' ? Math.sqrt(result.loss) * target.standardDeviation : undefined;
    if (values.save !== undefined) {
      const metadata: Record<string, string> = {
        dataset: data.source,
        ...(rmse === undefined
          ? { test_accuracy: result.accuracy!.toFixed(4) }
          : { test_rmse: rmse.toPrecision(6) }),
      };
      try {
        saveTrainedModel(model, string('save')!, extras, metadata);
      } catch (error) {
        await tracker?.fail(error);
        await tracker?.close();
        await store?.close();
        throw error;
      }
      log(`model written to ${string('save')}`);
    }
    if (tracker !== null) {
      tracker.updateSummary({
        ...(rmse === undefined ? { testAccuracy: result.accuracy! } : { testRmse: rmse }),
        testLoss: result.loss,
        seconds,
      });
      if (values.save !== undefined)
        await tracker.addArtifact({
          name: 'weights',
          kind: 'weights',
          mediaType: 'application/octet-stream',
          path: path.resolve(string('save')!),
        });
      await tracker.close();
      await store!.close();
    }
    if (rmse !== undefined) {
      console.log(
        `test RMSE: ${rmse.toPrecision(4)} (${target!.name}, ${testCount} rows; the target's deviation is ${(target as { standardDeviation: number }).standardDeviation.toPrecision(4)}), ${seconds.toFixed(0)} s`,
      );
    } else {
      const accuracy = result.accuracy!;
      console.log(
        `test accuracy: ${(accuracy * 100).toFixed(2)}% (${Math.round(accuracy * testCount)}/${testCount}), test loss ${result.loss.toFixed(4)}, ${seconds.toFixed(0)} s`,
      );
    }
    return 0;
  }
}

/** Applies the --augment transforms to every sample a streamed dataset gives (its own generator). */
function augmented(
  dataset: Dataset<Example>,
  transforms: readonly SampleTransform[],
  shape: readonly [number, number, number],
  seed: number,
): Dataset<Example> {
  if (transforms.length === 0) return dataset;
  const random = new Random(seed + 2);
  const [channels, height, width] = shape;
  return {
    length: dataset.length,
    get(index) {
      const example = dataset.get(index);
      const input = Float32Array.from(example.input as Float32Array);
      for (const transform of transforms) transform.apply(input, { channels, height, width }, random);
      return { ...example, input };
    },
  };
}
