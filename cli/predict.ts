/**
 * tensile predict: runs a whole-model file (saveModel; `tensile train --save`, `tensile finetune
 * --save`) on images and prints the most likely classes with their probabilities.
 *
 * Inputs today are IDX files ([N, H, W] or [N, C, H, W], uint8 scaled by 1/255 or float as stored),
 * the format of MNIST-style data. Image files (PNG, JPEG) and CSV rows need decoders tensile does not
 * have yet; such inputs are refused by name rather than misread.
 */
import * as fs from 'node:fs';
import { numberOption, parseArgs, UsageError } from './arguments.js';
import {
  Dense,
  IdxError,
  loadModel,
  type ModelExtras,
  type Module,
  noGrad,
  parseIdx,
  Sequential,
  Softmax,
  Tensor,
} from '../src/index.js';

export const predictHelp = `usage: tensile predict --model FILE [--top K] INPUT...

Prints, for every image of every INPUT, the K most likely classes with their probabilities:
  INPUT[i]: name probability, name probability, ...

  npx tensile train --save digits.safetensors
  npx tensile predict --model digits.safetensors t10k-images-idx3-ubyte.gz

options:
  --model FILE      a whole-model file (written by saveModel, tensile train --save, tensile finetune --save)
  --top K           classes to print per image (default 5, at most the number of classes)
  --batch-size N    images per forward pass (default 256)

inputs: IDX files ([N, H, W] or [N, C, H, W]; uint8 pixels are scaled to [0, 1], float kept; .gz is
fine). The model's recorded normalisation (mean, standard deviation) is applied. PNG, JPEG and CSV
inputs are not supported yet.`;

/** Recognises inputs that tensile cannot decode yet, by their first bytes or their name. */
function unsupportedKind(file: string, head: Uint8Array): string | undefined {
  if (head[0] === 0x89 && head[1] === 0x50 && head[2] === 0x4e && head[3] === 0x47) return 'PNG images';
  if (head[0] === 0xff && head[1] === 0xd8 && head[2] === 0xff) return 'JPEG images';
  if (head[0] === 0x47 && head[1] === 0x49 && head[2] === 0x46) return 'GIF images';
  if (/\.(csv|tsv)$/i.test(file)) return 'CSV files';
  return undefined;
}

/** Images of one input file as [count, C, H, W] values the model takes, normalised as recorded. */
function readImages(
  file: string,
  extras: ModelExtras,
): { images: Float32Array; count: number; shape: number[] } {
  const bytes = fs.readFileSync(file);
  const kind = unsupportedKind(file, bytes);
  if (kind !== undefined)
    throw new Error(`${file}: ${kind} are not supported yet (tensile predict reads IDX files today)`);
  let array;
  try {
    array = parseIdx(bytes, file);
  } catch (error) {
    if (error instanceof IdxError) throw new Error(`${error.message} (tensile predict reads IDX files)`);
    throw error;
  }
  const dimensions = array.shape;
  if (dimensions.length !== 3 && dimensions.length !== 4)
    throw new Error(`${file}: expected images [N, H, W] or [N, C, H, W], got [${dimensions.join(', ')}]`);
  const count = dimensions[0]!;
  const shape = dimensions.length === 3 ? [1, ...dimensions.slice(1)] : dimensions.slice(1);
  const expected = extras.inputShape;
  if (expected !== undefined && shape.join(',') !== expected.join(',')) {
    const size = dimensions.length === 3 ? dimensions.slice(1).join('×') : `[${shape.join(', ')}]`;
    throw new Error(`${file} holds ${size} images, the model takes [${expected.join(', ')}]`);
  }
  if (array.dtype !== 'uint8' && array.dtype !== 'float32' && array.dtype !== 'float64')
    throw new Error(`${file}: images must be uint8 or float32/float64, got ${array.dtype}`);
  const divisor = array.dtype === 'uint8' ? 255 : 1;
  const channels = shape[0]!;
  const plane = shape[1]! * shape[2]!;
  const { mean, standardDeviation } = extras.normalization ?? {
    mean: new Array<number>(channels).fill(0),
    standardDeviation: new Array<number>(channels).fill(1),
  };
  if (mean.length !== channels)
    throw new Error(`${file}: the model's normalisation has ${mean.length} channels, the images ${channels}`);
  const images = new Float32Array(array.data.length);
  for (let i = 0; i < images.length; i++) {
    const channel = Math.floor(i / plane) % channels;
    // In double precision, rounded to float32 once.
    images[i] = (Number(array.data[i]!) / divisor - mean[channel]!) / standardDeviation[channel]!;
  }
  return { images, count, shape };
}

/** Whether the model's last layer already gives probabilities (a softmax), so none is applied again. */
function endsInSoftmax(model: Module): boolean {
  let last: Module = model;
  while (last instanceof Sequential && last.length > 0) last = last.layers[last.length - 1]!;
  return last instanceof Softmax || (last instanceof Dense && last.activation === 'softmax');
}

/** Probabilities of one row of outputs, in double precision. */
function probabilities(row: readonly number[], alreadyProbabilities: boolean): number[] {
  if (alreadyProbabilities) return [...row];
  const largest = Math.max(...row);
  const exponentials = row.map((value) => Math.exp(value - largest));
  const total = exponentials.reduce((sum, value) => sum + value, 0);
  return exponentials.map((value) => value / total);
}

export function predictCommand(args: string[]): number {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      model: { type: 'string' },
      top: { type: 'string', default: '5' },
      'batch-size': { type: 'string', default: '256' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(predictHelp);
    return 0;
  }
  if (values.model === undefined)
    throw new UsageError(`tensile predict: --model FILE is required (see tensile predict --help)`);
  if (positionals.length === 0)
    throw new UsageError(`tensile predict: give at least one INPUT file (see tensile predict --help)`);
  const top = numberOption(values.top, 'top', { integer: true, minimum: 1 })!;
  const batchSize = numberOption(values['batch-size'], 'batch-size', { integer: true, minimum: 1 })!;
  const { model, extras } = loadModel(values.model);
  const alreadyProbabilities = endsInSoftmax(model);
  for (const file of positionals) {
    const { images, count, shape } = readImages(file, extras);
    const size = shape.reduce((a, b) => a * b, 1);
    for (let start = 0; start < count; start += batchSize) {
      const batch = Math.min(batchSize, count - start);
      const input = new Tensor(images.slice(start * size, (start + batch) * size), [batch, ...shape]);
      const output = noGrad(() => model.forward(input));
      if (output.shape.length !== 2)
        throw new Error(`the model gives outputs of shape [${output.shape.join(', ')}], not [N, classes]`);
      const classes = output.shape[1]!;
      const names = extras.classNames ?? Array.from({ length: classes }, (_, k) => String(k));
      for (let row = 0; row < batch; row++) {
        const scores = Array.from(output.data.slice(row * classes, (row + 1) * classes) as ArrayLike<number>);
        const ranked = probabilities(scores, alreadyProbabilities)
          .map((probability, k) => ({ probability, k }))
          .sort((a, b) => b.probability - a.probability)
          .slice(0, top);
        const text = ranked.map(({ probability, k }) => `${names[k] ?? String(k)} ${probability.toFixed(4)}`);
        console.log(`${file}[${start + row}]: ${text.join(', ')}`);
      }
    }
  }
  return 0;
}
