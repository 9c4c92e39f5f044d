/**
 * tensile predict: runs a whole-model file (saveModel; `tensile train --save`, `tensile finetune
 * --save`) on images and prints the most likely classes with their probabilities.
 *
 * Inputs: image files (PNG, JPEG, WebP, GIF; decoded, resized and coloured as the model's recorded
 * input), folders of them, IDX files ([N, H, W] or [N, C, H, W], uint8 scaled by 1/255 or float as
 * stored), and CSV tables read through the encoding saved with a table model.
 */
import * as fs from 'node:fs';
import { numberOption, parseArgs, UsageError } from './arguments.js';
import {
  applyEncoding,
  decodeImage,
  Dense,
  IdxError,
  IMAGE_EXTENSIONS,
  listImageFiles,
  loadModel,
  type ModelExtras,
  type Module,
  noGrad,
  parseIdx,
  readCsvRecords,
  Sequential,
  Softmax,
  type ResizeFit,
  type TableEncoding,
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
  --fit MODE        crop, pad or stretch: how images of another aspect ratio are fitted (default crop)

inputs: image files (PNG, JPEG, WebP, GIF: resized and coloured as the model's input, as in training),
folders of them (every image inside, sorted), IDX files ([N, H, W] or [N, C, H, W]; uint8 pixels are
scaled to [0, 1], float kept; .gz is fine) and, for a model trained on a table, CSV files (encoded
with the encoding saved in the model; the target column may be absent). The model's recorded
normalisation (mean, standard deviation) is applied. A regression model prints its prediction.`;

/** An image file by its first bytes (PNG, JPEG, GIF, WebP), whatever its name. */
function isImage(head: Uint8Array): boolean {
  const ascii = (from: number, to: number) => String.fromCharCode(...head.subarray(from, to));
  return (
    (head[0] === 0x89 && ascii(1, 4) === 'PNG') ||
    (head[0] === 0xff && head[1] === 0xd8 && head[2] === 0xff) ||
    ascii(0, 3) === 'GIF' ||
    (ascii(0, 4) === 'RIFF' && ascii(8, 12) === 'WEBP')
  );
}

/** The model's normalisation applied to [count, C, H, W] values in [0, 1] (or as stored), in place. */
function normalise(images: Float32Array, shape: readonly number[], extras: ModelExtras, file: string): void {
  const channels = shape[0]!;
  const plane = shape[1]! * shape[2]!;
  if (extras.normalization === undefined) return;
  const { mean, standardDeviation } = extras.normalization;
  if (mean.length !== channels)
    throw new Error(`${file}: the model's normalisation has ${mean.length} channels, the images ${channels}`);
  for (let i = 0; i < images.length; i++) {
    const channel = Math.floor(i / plane) % channels;
    images[i] = (images[i]! - mean[channel]!) / standardDeviation[channel]!;
  }
}

/** One input: its rows (named for the output lines) as model inputs of `shape`. */
interface Input {
  names: string[];
  values: Float32Array;
  shape: number[];
}

/** Image files decoded at the model's recorded input size and colour, one row each. */
async function readImageFiles(
  files: readonly string[],
  extras: ModelExtras,
  label: string,
  fit: ResizeFit,
): Promise<Input> {
  const shape = extras.inputShape;
  if (shape === undefined || shape.length !== 3)
    throw new Error(`${label}: the model file records no image input shape [C, H, W] to decode images to`);
  const [channels, height, width] = shape as [number, number, number];
  if (channels !== 1 && channels !== 3)
    throw new Error(`${label}: the model takes ${channels} channels; images decode to 1 (grey) or 3 (RGB)`);
  const size = channels * height * width;
  const values = new Float32Array(files.length * size);
  for (let i = 0; i < files.length; i++) {
    const image = await decodeImage(files[i]!, {
      size: [height, width],
      color: channels === 1 ? 'grayscale' : 'rgb',
      fit,
    });
    values.set(image.data, i * size);
  }
  normalise(values, shape, extras, label);
  return { names: [...files], values, shape: [...shape] };
}

/** Every image in a folder and its subfolders (listImageFiles), one or more. */
function imagesInFolder(folder: string): string[] {
  const found = listImageFiles(folder);
  if (found.length === 0)
    throw new Error(`${folder}: no images (${IMAGE_EXTENSIONS.join(', ')}) in the folder`);
  return found;
}

/** A CSV table's rows through the encoding saved with the model. */
function readTable(file: string, extras: ModelExtras): Input {
  const encoding = extras.tableEncoding as unknown as TableEncoding | undefined;
  if (encoding === undefined)
    throw new Error(`${file}: the model was not trained on a table (its file holds no table encoding)`);
  const { columns, rows, lines } = readCsvRecords(file);
  const { inputs } = applyEncoding(encoding, columns, rows, { lines, file });
  return { names: lines.map((line) => `${file}[line ${line}]`), values: inputs, shape: [encoding.features] };
}

/** Images of one input file as [count, C, H, W] values the model takes, normalised as recorded. */
function readIdxInput(file: string, bytes: Uint8Array, extras: ModelExtras): Input {
  let array;
  try {
    array = parseIdx(bytes, file);
  } catch (error) {
    if (error instanceof IdxError)
      throw new Error(`${error.message} (tensile predict reads image files, folders, IDX and CSV files)`);
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
  const values = new Float32Array(array.data.length);
  // In double precision, rounded to float32 once (before normalising, as training data was stored).
  for (let i = 0; i < values.length; i++) values[i] = Number(array.data[i]!) / divisor;
  normalise(values, shape, extras, file);
  return { names: Array.from({ length: count }, (_, i) => `${file}[${i}]`), values, shape };
}

/** Reads one INPUT argument by what it is: a folder, an image, a CSV table or an IDX file. */
async function readInput(input: string, extras: ModelExtras, fit: ResizeFit): Promise<Input> {
  if (fs.statSync(input).isDirectory()) return readImageFiles(imagesInFolder(input), extras, input, fit);
  const descriptor = fs.openSync(input, 'r');
  const head = new Uint8Array(16);
  fs.readSync(descriptor, head, 0, 16, 0);
  fs.closeSync(descriptor);
  if (isImage(head)) return readImageFiles([input], extras, input, fit);
  if (/\.(csv|tsv|txt)$/i.test(input) || extras.tableEncoding !== undefined) return readTable(input, extras);
  return readIdxInput(input, fs.readFileSync(input), extras);
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

export async function predictCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      model: { type: 'string' },
      top: { type: 'string', default: '5' },
      'batch-size': { type: 'string', default: '256' },
      fit: { type: 'string', default: 'crop' },
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
  const fit = values.fit as ResizeFit;
  if (!['crop', 'pad', 'stretch'].includes(fit))
    throw new UsageError(`tensile predict: --fit must be crop, pad or stretch, got '${values.fit}'`);
  const { model, extras } = loadModel(values.model);
  const alreadyProbabilities = endsInSoftmax(model);
  const encoding = extras.tableEncoding as unknown as TableEncoding | undefined;
  const regression = encoding?.target.task === 'regression' ? encoding.target : undefined;
  const classNames =
    encoding?.target.task === 'classification' ? encoding.target.classNames : extras.classNames;
  for (const file of positionals) {
    const { names: rowNames, values: images, shape } = await readInput(file, extras, fit);
    const count = rowNames.length;
    const size = shape.reduce((a, b) => a * b, 1);
    for (let start = 0; start < count; start += batchSize) {
      const batch = Math.min(batchSize, count - start);
      const input = new Tensor(images.slice(start * size, (start + batch) * size), [batch, ...shape]);
      const output = noGrad(() => model.call(input));
      if (output.shape.length !== 2)
        throw new Error(`the model gives outputs of shape [${output.shape.join(', ')}], not [N, classes]`);
      const classes = output.shape[1]!;
      if (regression !== undefined) {
        // Trained on the standardised target: back to its units.
        for (let row = 0; row < batch; row++) {
          const value = output.data[row * classes]! * regression.standardDeviation + regression.mean;
          console.log(`${rowNames[start + row]}: ${regression.name} ${value.toPrecision(6)}`);
        }
        continue;
      }
      const names = classNames ?? Array.from({ length: classes }, (_, k) => String(k));
      for (let row = 0; row < batch; row++) {
        const scores = Array.from(output.data.slice(row * classes, (row + 1) * classes) as ArrayLike<number>);
        const ranked = probabilities(scores, alreadyProbabilities)
          .map((probability, k) => ({ probability, k }))
          .sort((a, b) => b.probability - a.probability)
          .slice(0, top);
        const text = ranked.map(({ probability, k }) => `${names[k] ?? String(k)} ${probability.toFixed(4)}`);
        console.log(`${rowNames[start + row]}: ${text.join(', ')}`);
      }
    }
  }
  return 0;
}
