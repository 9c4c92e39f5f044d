/**
 * tensile evaluate: a saved model (tensile train --save, finetune --save) measured on labelled data
 * read as its training data was: images at the model's input size and colour with its class names,
 * a table through the encoding saved with the model. Prints accuracy and the per-class report, or
 * the RMSE of a regression.
 */
import * as path from 'node:path';
import { numberOption, parseArgs, UsageError } from './arguments.js';
import {
  OptionalDependencyError,
  backendByName,
  ClassificationReport,
  ConfusionMatrix,
  confusionMatrixChart,
  evaluate,
  loadModel,
  mseLoss,
  predict,
  setBackend,
  writeFigure,
  writeFileAtomic,
  type TableEncoding,
} from '../src/index.js';
import { type DataValues, dataOptions, loadData } from './data-source.js';

export const evaluateHelp = `usage: tensile evaluate --model FILE --data DIR|FILE.csv [options]

Measures a saved model on labelled data: accuracy and a per-class report (precision, recall, F1,
support), or the RMSE for a numeric target. Images are resized and coloured as the model's input;
a table is encoded with the encoding saved in the model file.

options:
  --model FILE                    a model written by tensile train --save or finetune --save
  --data DIR|FILE.csv             class folders, a path,label listing, or a table with the target column
  --fit crop|pad|stretch          how images of other aspect ratios are fitted (default crop)
  --skip-bad-images               leave out unreadable images with a warning (default: fail)
  --figure PATH                   where the confusion matrix goes, as PATH.svg and PATH.png
                                  (default out/evaluate/confusion-matrix; --no-figure skips it)
  --batch-size N                  (default 256)
  --backend NAME                  reference, wasm or native (default: fastest available)`;

export async function evaluateCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      model: { type: 'string' },
      weights: { type: 'string' },
      figure: { type: 'string', default: 'out/evaluate/confusion-matrix' },
      'no-figure': { type: 'boolean', default: false },
      ...dataOptions,
      'batch-size': { type: 'string', default: '256' },
      backend: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(evaluateHelp);
    return 0;
  }
  const command = 'tensile evaluate';
  // --weights is the name PyTorch and Keras users reach for; the file is the same model file.
  const modelFile = values.model ?? values.weights;
  if (modelFile === undefined) throw new UsageError(`${command}: --model FILE is required`);
  if (values.data === undefined) throw new UsageError(`${command}: --data DIR|FILE.csv is required`);
  const batchSize = numberOption(values['batch-size'], 'batch-size', { integer: true, minimum: 1 })!;
  for (const name of ['image-size', 'grayscale', 'val-data', 'target', 'task', 'ignore'] as const)
    if (values[name] !== undefined && values[name] !== false)
      throw new UsageError(
        `${command}: --${name} is not needed: the model file records how its data was read`,
      );
  if (values.backend !== undefined) setBackend(backendByName(values.backend));
  const { model, extras } = loadModel(modelFile);
  const encoding = extras.tableEncoding as unknown as TableEncoding | undefined;
  const classNames = extras.classNames;
  if (encoding === undefined && (extras.inputShape?.length !== 3 || classNames === undefined))
    throw new UsageError(
      `${command}: ${modelFile} records no image input shape and class names (nor a table encoding) to read data for`,
    );
  const data = await loadData(values.data, values as DataValues, {
    command,
    heldOutFraction: 0,
    seed: 0,
    ...(encoding === undefined ? { classNames: classNames!, imageShape: extras.inputShape! } : { encoding }),
  });
  if (data.kind === 'table' && data.encoding.target.task === 'regression') {
    const { loss, samples } = evaluate(model, data.train, { loss: mseLoss, batchSize });
    const rmse = Math.sqrt(loss) * data.encoding.target.standardDeviation;
    console.log(`RMSE: ${rmse.toPrecision(4)} (${data.encoding.target.name}, ${samples} rows)`);
    return 0;
  }
  const names = data.kind === 'images' ? data.classNames : (classNames ?? []);
  const labels = data.kind === 'images' ? data.train.labels : (data.train.targets as Int32Array);
  const outputs = predict(model, data.train, { batchSize });
  const report = new ClassificationReport({ numClasses: names.length, classNames: names });
  report.update(outputs, labels);
  const { accuracy } = report.compute();
  console.log(
    `accuracy: ${(accuracy * 100).toFixed(2)}% (${Math.round(accuracy * labels.length)}/${labels.length})`,
  );
  console.log(report.toText());
  if (!values['no-figure']) {
    const matrix = new ConfusionMatrix({ numClasses: names.length });
    matrix.update(outputs, labels);
    const svg = confusionMatrixChart({
      title: `Confusion matrix: ${path.basename(modelFile)} on ${path.basename(values.data)} (${labels.length} samples)`,
      classNames: names,
      matrix: matrix.compute(),
    });
    try {
      const files = writeFigure(svg, values.figure!);
      console.log(`confusion matrix: ${files.svg}, ${files.png}`);
    } catch (error) {
      // PNG rendering is an optional package; the SVG alone is still the figure.
      if (!(error instanceof OptionalDependencyError)) throw error;
      writeFileAtomic(`${values.figure!}.svg`, new TextEncoder().encode(svg));
      console.log(`confusion matrix: ${values.figure!}.svg (PNG needs: npm install ${error.packageName})`);
    }
  }
  return 0;
}
