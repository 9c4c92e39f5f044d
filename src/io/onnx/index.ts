/** ONNX: export tensile models for onnxruntime and other runtimes, import ONNX CNNs to train them. */
export {
  defaultOnnxOpset,
  exportOnnx,
  maximumOnnxOpset,
  minimumOnnxOpset,
  onnxModelBytes,
  type OnnxExportOptions,
} from './export.js';
export {
  Clip,
  ConstantArithmetic,
  GraphModule,
  type GraphStep,
  Permute,
  Reshape,
  ZeroPad2d,
} from './layers.js';
export {
  importOnnx,
  importOnnxBytes,
  type ImportedOnnxModel,
  type OnnxImportOptions,
  UnsupportedOnnxOperatorError,
} from './import.js';
