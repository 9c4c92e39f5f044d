/**
 * summary(): a table of layers with output shape, trainable and frozen parameter counts and
 * receptive field, with totals — what Keras's model.summary() shows, plus the receptive field the
 * seed's small-kernel note reasons about.
 */
import { noGrad } from '../autograd/graph.js';
import { formatShape, sizeOf } from '../tensor/shape.js';
import { type Tensor, zeros } from '../tensor/tensor.js';
import { Sequential } from './layers/containers.js';
import { Module, type ReceptiveField } from './module.js';

export interface SummaryRow {
  /** Dotted state_dict prefix of the layer. */
  name: string;
  description: string;
  /** Output shape without the batch axis. */
  outputShape: number[];
  trainableParameters: number;
  frozenParameters: number;
  /**
   * Receptive field (in input pixels) of one output position after this layer; NaN inside a
   * composite module (a residual block) and after one that does not define receptiveField.
   */
  receptiveField: number;
}

export interface ModelSummary {
  rows: SummaryRow[];
  trainableParameters: number;
  frozenParameters: number;
  bufferElements: number;
  inputShape: number[];
  outputShape: number[];
  /** The table as text. */
  text: string;
}

function ownCounts(module: Module): { trainable: number; frozen: number } {
  let trainable = 0;
  let frozen = 0;
  for (const parameter of module.parameters()) {
    if (parameter.requiresGrad) trainable += parameter.size;
    else frozen += parameter.size;
  }
  return { trainable, frozen };
}

/**
 * Summarises model for inputs of inputShape (without the batch axis, e.g. [1, 28, 28]).
 * Runs one forward pass on zeros in inference mode without recording gradients; the model's mode is
 * restored afterwards.
 */
export function summary(model: Module, inputShape: readonly number[]): ModelSummary {
  const rows: SummaryRow[] = [];
  const modes = model.namedModules().map(([, module]) => [module, module.training] as const);
  model.eval();
  // NaN once the chain is lost: after a composite module that cannot say how it maps the field.
  let field: ReceptiveField = { size: 1, jump: 1 };
  const leafRow = (module: Module, name: string, y: Tensor, receptiveField: number) => {
    const counts = ownCounts(module);
    rows.push({
      name,
      description: module.describe(),
      outputShape: y.shape.slice(1),
      trainableParameters: counts.trainable,
      frozenParameters: counts.frozen,
      receptiveField,
    });
  };
  const walk = (module: Module, name: string, x: Tensor): Tensor => {
    if (module instanceof Sequential) {
      let y = x;
      module.layers.forEach((layer, i) => {
        y = walk(layer, name === '' ? String(i) : `${name}.${i}`, y);
      });
      return y;
    }
    if (module.children().length === 0) {
      const y = module.call(x);
      field = module.receptiveField(field);
      leafRow(module, name, y, field.size);
      return y;
    }
    return traceComposite(module, name, x);
  };
  /**
   * A module whose forward is its own code (a residual block, a ResNet): its layers are listed in
   * the order the forward pass calls them, seen by a forward hook on each leaf for the one call
   * (a hook also makes a fused BatchNorm + ReLU run as its two layers, see BatchNormRelu).
   * Inside it the receptive field is not a chain (a shortcut branches off), so those rows show
   * none; the composite's last row gets its field when the composite defines receptiveField.
   */
  const traceComposite = (module: Module, name: string, x: Tensor): Tensor => {
    const leaves = module.namedModules().filter(([, child]) => child.children().length === 0);
    const first = rows.length;
    const handles = leaves.map(([childName, leaf]) => {
      const fullName = [name, childName].filter((part) => part !== '').join('.');
      return leaf.registerForwardHook((_, _input, y) => leafRow(leaf, fullName, y, Number.NaN));
    });
    let y: Tensor;
    try {
      y = module.call(x);
    } finally {
      for (const handle of handles) handle.remove();
    }
    const defined = module.receptiveField !== Module.prototype.receptiveField;
    field = defined ? module.receptiveField(field) : { size: Number.NaN, jump: Number.NaN };
    if (rows.length > first) rows[rows.length - 1]!.receptiveField = field.size;
    return y;
  };
  let output: Tensor;
  try {
    output = noGrad(() => walk(model, '', zeros([1, ...inputShape])));
  } finally {
    for (const [module, training] of modes) module.training = training;
  }
  const totals = ownCounts(model);
  const bufferElements = model.namedBuffers().reduce((sum, [, buffer]) => sum + buffer.size, 0);
  const result: ModelSummary = {
    rows,
    trainableParameters: totals.trainable,
    frozenParameters: totals.frozen,
    bufferElements,
    inputShape: [...inputShape],
    outputShape: output.shape.slice(1),
    text: '',
  };
  result.text = formatSummary(result);
  return result;
}

const number = (n: number): string => n.toLocaleString('en-US');

function formatSummary(s: ModelSummary): string {
  const header = ['Layer', 'Output shape', 'Trainable', 'Frozen', 'Receptive field'];
  const body = s.rows.map((row) => [
    `${row.name.padEnd(2)} ${row.description}`,
    formatShape(row.outputShape),
    number(row.trainableParameters),
    number(row.frozenParameters),
    Number.isNaN(row.receptiveField) ? '–' : `${row.receptiveField}×${row.receptiveField}`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((cells) => cells[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (i === 0 || i === 1 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!)))
      .join('  ');
  const rule = '─'.repeat(widths.reduce((a, b) => a + b + 2, -2));
  const total = s.trainableParameters + s.frozenParameters;
  return [
    `Input ${formatShape(s.inputShape)} (${number(sizeOf(s.inputShape))} values per sample)`,
    rule,
    line(header),
    rule,
    ...body.map(line),
    rule,
    `Parameters: ${number(total)} (trainable ${number(s.trainableParameters)}, frozen ${number(s.frozenParameters)})`,
    `Buffers: ${number(s.bufferElements)} values (batch-norm running statistics; saved, not trained)`,
  ].join('\n');
}
