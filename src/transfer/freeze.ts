/**
 * Freezing and unfreezing parts of a network, and what happens to the batch norms inside them.
 *
 * A frozen parameter has requiresGrad false. That has three consequences, each relied on and tested:
 * - optimizers skip it entirely: no update, no weight decay, no change to its optimizer state;
 * - no gradient is computed for it, and an op whose inputs all need no gradient records nothing, so
 *   a frozen prefix of the network (the first layers, fed by the data) runs forward only: no backward
 *   kernel touches it (bench/transfer.ts measures the time this saves);
 * - a BatchNorm whose γ and β are frozen runs in inference mode (running statistics, kept unchanged),
 *   Keras's behaviour, unless a batch-norm policy below says otherwise.
 */
import type { Module, Parameter } from '../nn/module.js';
import { BatchNorm } from '../nn/layers/batchnorm.js';
import { blockGroups } from './groups.js';

/**
 * What parameters to freeze or unfreeze:
 * - a module of the model, or several: all their parameters;
 * - a string: a pattern over state_dict names. A plain name selects that parameter or everything
 *   under that prefix ('layer1' selects 'layer1.0.conv1.weight' but not 'layer10.…'); `*` matches
 *   within one dotted segment and `**` across segments ('layer*.0.bn1', '**.bn2');
 * - a RegExp tested against each parameter name;
 * - `{ firstLayers: k }`: the first k direct children (layers 0…k−1 of a Sequential, as Python's model[:k]);
 * - `{ firstGroups: k }`: the first k block groups (see blockGroups);
 * - `{ groups: [...] }`: block groups by name ('block1', 'stem', 'layer2', 'head', …).
 */
export type FreezeSelector =
  | Module
  | readonly Module[]
  | string
  | RegExp
  | { firstLayers: number }
  | { firstGroups: number }
  | { groups: readonly string[] };

/**
 * What a freeze does to the batch-norm layers inside the frozen part.
 * - 'inference' (default, as Keras): they are frozen with the rest, normalise with their running
 *   statistics and never change them, so the frozen features stay exactly the ones that were learnt.
 * - 'trainable' (fastai's train_bn): their γ and β stay trainable, so they keep normalising with
 *   batch statistics and updating their running statistics: the body adapts its feature scales to
 *   the new data while its convolutions stay fixed.
 * - 'batchStatistics': γ and β are frozen but the layers still normalise with batch statistics and
 *   update their running statistics (what setting requires_grad=False does in PyTorch while the
 *   model is in train mode). Offered for comparison; it silently shifts the frozen features.
 */
export type BatchNormPolicy = 'inference' | 'trainable' | 'batchStatistics';

export interface FreezeOptions {
  /** Default 'inference'. */
  batchNorm?: BatchNormPolicy;
}

function globToRegExp(pattern: string): RegExp {
  let source = '';
  for (let i = 0; i < pattern.length; i++) {
    const char = pattern[i]!;
    if (char === '*' && pattern[i + 1] === '*') {
      source += '.*';
      i++;
    } else if (char === '*') source += '[^.]*';
    else source += char.replace(/[\\^$.|?+()[\]{}]/g, '\\$&');
  }
  // A name also selects everything below it, as a module prefix.
  return new RegExp(`^${source}(\\..*)?$`);
}

function underPrefix(name: string, prefix: string): boolean {
  return prefix === '' || name === prefix || name.startsWith(`${prefix}.`);
}

function prefixesOf(model: Module, selector: FreezeSelector, what: string): string[] | RegExp {
  if (typeof selector === 'string') return globToRegExp(selector);
  if (selector instanceof RegExp) return selector;
  if ('firstLayers' in selector) {
    const children = model.namedChildren();
    const count = selector.firstLayers;
    if (!Number.isInteger(count) || count < 0 || count > children.length) {
      throw new RangeError(
        `${what}: firstLayers must be an integer in [0, ${children.length}], got ${count}`,
      );
    }
    return children.slice(0, count).map(([name]) => name);
  }
  if ('firstGroups' in selector || 'groups' in selector) {
    const groups = blockGroups(model);
    let chosen;
    if ('firstGroups' in selector) {
      const count = selector.firstGroups;
      if (!Number.isInteger(count) || count < 0 || count > groups.length) {
        throw new RangeError(
          `${what}: firstGroups must be an integer in [0, ${groups.length}] (groups ${groups.map((g) => g.name).join(', ')}), got ${count}`,
        );
      }
      chosen = groups.slice(0, count);
    } else {
      chosen = selector.groups.map((name) => {
        const found = groups.find((g) => g.name === name);
        if (found === undefined)
          throw new RangeError(
            `${what}: no block group '${name}'; the groups are ${groups.map((g) => g.name).join(', ')}`,
          );
        return found;
      });
    }
    return chosen.flatMap((g) => g.modules.map(([prefix]) => prefix));
  }
  const modules: readonly Module[] = Array.isArray(selector) ? selector : [selector as Module];
  const named = model.namedModules();
  return modules.map((module) => {
    const entry = named.find(([, candidate]) => candidate === module);
    if (entry === undefined) throw new RangeError(`${what}: ${module.describe()} is not part of the model`);
    return entry[0];
  });
}

/** The parameters (by state_dict name) that selector picks out of model. */
export function selectParameters(
  model: Module,
  selector: FreezeSelector,
  what = 'selectParameters',
): Map<string, Parameter> {
  const rule = prefixesOf(model, selector, what);
  const all = model.namedParameters();
  const matches = (name: string) =>
    rule instanceof RegExp ? rule.test(name) : rule.some((prefix) => underPrefix(name, prefix));
  const selected = new Map(all.filter(([name]) => matches(name)));
  if (selected.size === 0 && (typeof selector === 'string' || selector instanceof RegExp)) {
    const examples = all
      .slice(0, 6)
      .map(([name]) => `'${name}'`)
      .join(', ');
    const shown = typeof selector === 'string' ? `'${selector}'` : String(selector);
    throw new RangeError(
      `${what}: ${shown} matches no parameter; names look like ${examples}${all.length > 6 ? ', …' : ''}`,
    );
  }
  return selected;
}

/**
 * Freezes the selected parameters (all of them when selector is omitted) and returns their names.
 * Batch norms inside the selection follow options.batchNorm (see BatchNormPolicy).
 *
 * @example
 * freeze(model, { firstGroups: 1 });          // the seed CNN's first conv block (layers 0–6)
 * freeze(model, 'layer1');                    // a ResNet's first stage
 * freeze(model, { firstLayers: 14 }, { batchNorm: 'trainable' }); // fastai-style: BN stays trainable
 */
export function freeze(
  model: Module,
  selector: FreezeSelector = model,
  options: FreezeOptions = {},
): string[] {
  const policy = options.batchNorm ?? 'inference';
  if (policy !== 'inference' && policy !== 'trainable' && policy !== 'batchStatistics') {
    throw new TypeError(
      `freeze: batchNorm must be 'inference', 'trainable' or 'batchStatistics', got '${String(policy)}'`,
    );
  }
  const selected = selectParameters(model, selector, 'freeze');
  const selectedSet = new Set(selected.values());
  const keepTrainable = new Set<Parameter>();
  for (const [, module] of model.namedModules()) {
    if (!(module instanceof BatchNorm)) continue;
    const own = module.parameters();
    if (own.length === 0 || !own.every((parameter) => selectedSet.has(parameter))) continue;
    module.trainStatisticsWhenFrozen = policy === 'batchStatistics';
    if (policy === 'trainable') for (const parameter of own) keepTrainable.add(parameter);
  }
  const frozen: string[] = [];
  for (const [name, parameter] of selected) {
    if (keepTrainable.has(parameter)) {
      parameter.requiresGrad = true;
      continue;
    }
    parameter.requiresGrad = false;
    frozen.push(name);
  }
  return frozen;
}

/** Makes the selected parameters (all when selector is omitted) trainable again; returns their names. */
export function unfreeze(model: Module, selector: FreezeSelector = model): string[] {
  const selected = selectParameters(model, selector, 'unfreeze');
  for (const parameter of selected.values()) parameter.requiresGrad = true;
  return [...selected.keys()];
}

/** State_dict names of the trainable parameters, in order. */
export function trainableParameterNames(model: Module): string[] {
  return model
    .namedParameters()
    .filter(([, parameter]) => parameter.requiresGrad)
    .map(([name]) => name);
}

export interface GroupFreezeState {
  name: string;
  trainableParameters: number;
  frozenParameters: number;
  /** How the group's batch norms compute in training mode (empty when it has none). */
  batchNorm: ('batch statistics' | 'running statistics')[];
}

/**
 * Trainable and frozen parameter counts per block group, and how each group's batch norms will
 * normalise in training mode — the quick check before a fine-tuning run. `text` is a small table.
 */
export function freezeSummary(model: Module): { groups: GroupFreezeState[]; text: string } {
  const groups = blockGroups(model).map((group) => {
    let trainable = 0;
    let frozen = 0;
    for (const parameter of group.parameters) {
      if (parameter.requiresGrad) trainable += parameter.size;
      else frozen += parameter.size;
    }
    const batchNorm: GroupFreezeState['batchNorm'] = [];
    for (const [, module] of group.modules) {
      for (const [, inner] of module.namedModules()) {
        if (inner instanceof BatchNorm)
          batchNorm.push(
            !inner.frozen || inner.trainStatisticsWhenFrozen ? 'batch statistics' : 'running statistics',
          );
      }
    }
    return { name: group.name, trainableParameters: trainable, frozenParameters: frozen, batchNorm };
  });
  const number = (n: number) => n.toLocaleString('en-US');
  const rows = groups.map((g) => {
    const modes = [...new Set(g.batchNorm)];
    return [
      g.name,
      number(g.trainableParameters),
      number(g.frozenParameters),
      modes.length === 0 ? '-' : modes.join(' + '),
    ];
  });
  const header = ['Group', 'Trainable', 'Frozen', 'Batch norm in training'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (i === 1 || i === 2 ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return { groups, text: [line(header), ...rows.map(line)].join('\n') };
}
