/**
 * tensile export: a saved model written as ONNX, for onnxruntime and the other ONNX runtimes. The
 * model file is a whole-model file (saveModel) or a weights file of a seed CNN or ResNet
 * (loadPretrained works out which).
 */
import { numberOption, parseArgs, UsageError } from './arguments.js';
import {
  assertWritableTarget,
  defaultOnnxOpset,
  exportOnnx,
  isModelFile,
  loadModel,
  loadPretrained,
  maximumOnnxOpset,
  minimumOnnxOpset,
  type Module,
  readSafetensors,
} from '../src/index.js';

export const exportHelp = `usage: tensile export --model FILE --onnx OUT [options]

Writes the model in FILE as an ONNX model (inference form: batch norm with its running statistics,
no dropout) with a dynamic batch axis. FILE is a whole-model file (saveModel, tensile train --save)
or a weights file of a seed CNN or a ResNet.

options:
  --model FILE            the model (.safetensors)
  --onnx OUT              the ONNX file to write
  --input-shape C,H,W     one example's shape (default: the model file's, else [C, 28, 28] for a
                          seed CNN and [C, 224, 224] for a ResNet)
  --opset N               ONNX operator set, ${minimumOnnxOpset} to ${maximumOnnxOpset} (default ${defaultOnnxOpset})`;

/** The model in file and the input shape it was saved with or its family's usual one. */
function loadForExport(file: string): { model: Module; inputShape: number[] | undefined } {
  const { metadata } = readSafetensors(file);
  if (isModelFile(metadata)) {
    const { model, extras } = loadModel(file);
    return { model, inputShape: extras.inputShape };
  }
  const { model, architecture } = loadPretrained(file);
  const channels = architecture.options.inChannels ?? (architecture.family === 'resnet' ? 3 : 1);
  const side =
    architecture.family === 'resnet'
      ? 224
      : architecture.options.head === 'flatten'
        ? (architecture.options.inputSize ?? 28)
        : 28;
  return { model, inputShape: [channels, side, side] };
}

export function exportCommand(args: string[]): number {
  const { values } = parseArgs({
    args,
    options: {
      model: { type: 'string' },
      onnx: { type: 'string' },
      'input-shape': { type: 'string' },
      opset: { type: 'string', default: String(defaultOnnxOpset) },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(exportHelp);
    return 0;
  }
  if (values.model === undefined || values.onnx === undefined)
    throw new UsageError(
      'tensile export: --model FILE and --onnx OUT are required (see tensile export --help)',
    );
  const opset = numberOption(values.opset, 'opset', {
    integer: true,
    minimum: minimumOnnxOpset,
    below: maximumOnnxOpset + 1,
  })!;
  let requestedShape: number[] | undefined;
  if (values['input-shape'] !== undefined) {
    requestedShape = values['input-shape'].split(',').map((part) => Number(part.trim()));
    if (requestedShape.some((d) => !Number.isInteger(d) || d < 1))
      throw new UsageError(
        `tensile export: --input-shape must be positive integers separated by commas (e.g. 1,28,28), got '${values['input-shape']}'`,
      );
  }
  assertWritableTarget(values.onnx);
  const { model, inputShape } = loadForExport(values.model);
  const shape = requestedShape ?? inputShape;
  if (shape === undefined)
    throw new UsageError(
      `tensile export: ${values.model} records no input shape; give one with --input-shape C,H,W`,
    );
  exportOnnx(model, values.onnx, { inputShape: shape, opset });
  console.log(`wrote ${values.onnx} (ONNX opset ${opset}, input [batch, ${shape.join(', ')}])`);
  return 0;
}
