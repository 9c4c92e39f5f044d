/**
 * Block groups: the coarse stages of a network that transfer learning freezes, unfreezes and gives
 * learning rates to as units (ULMFiT's "layer groups", fastai's param groups).
 */
import { Module, type Parameter } from '../nn/module.js';
import { Sequential } from '../nn/layers/containers.js';
import { AvgPool2d, MaxPool2d } from '../nn/layers/pooling.js';
import { ResNet } from '../models/resnet.js';

/** One block group: named modules (with their state_dict prefixes) and their parameters. */
export interface BlockGroup {
  /** 'block1', 'block2', …, 'head' for a Sequential; 'stem', 'layer1', …, 'head' for a ResNet. */
  name: string;
  /** The group's modules with their state_dict prefixes (e.g. ['7', Conv2d] or ['layer1', Sequential]). */
  modules: [string, Module][];
  /** Every parameter of the group's modules, in state_dict order. */
  parameters: Parameter[];
}

function group(name: string, modules: [string, Module][]): BlockGroup {
  return { name, modules, parameters: modules.flatMap(([, module]) => module.parameters()) };
}

/** Consecutive runs that each hold one module with parameters, parameter-free modules joining the run before them. */
function runsByParameters(named: [string, Module][]): [string, Module][][] {
  const runs: [string, Module][][] = [];
  const hasParameters = (module: Module) => module.parameters().length > 0;
  for (const entry of named) {
    const last = runs.at(-1);
    if (last === undefined || (hasParameters(entry[1]) && last.some(([, module]) => hasParameters(module))))
      runs.push([entry]);
    else last.push(entry);
  }
  return runs;
}

const isPooling = (module: Module): boolean => module instanceof MaxPool2d || module instanceof AvgPool2d;

/**
 * A Sequential cut after each window-pooling layer (MaxPool2d, AvgPool2d): each cut ends a
 * convolutional block, and the layers after the last one are the head. For the seed CNN that gives
 * block1 = layers 0–6 (conv, bn, relu, conv, bn, relu, pool), block2 = 7–13 and head = 14–16
 * (GAP, flatten, dense), or 14–15 with the flatten head. A Sequential without pooling (an MLP) gets
 * one group per layer with parameters, parameter-free layers joining the group before them.
 */
function sequentialGroups(model: Sequential): BlockGroup[] {
  const named = model.namedChildren();
  const runs: [string, Module][][] = [];
  if (model.layers.some(isPooling)) {
    let current: [string, Module][] = [];
    for (const entry of named) {
      current.push(entry);
      if (isPooling(entry[1])) {
        runs.push(current);
        current = [];
      }
    }
    if (current.length > 0) runs.push(current);
  } else {
    runs.push(...runsByParameters(named));
  }
  return runs.map((modules, index) =>
    group(index === runs.length - 1 && runs.length > 1 ? 'head' : `block${index + 1}`, modules),
  );
}

/** stem (conv1, bn1, relu, maxpool), layer1 … layerN, head (avgpool, fc), as fastai splits a ResNet. */
function resnetGroups(model: ResNet): BlockGroup[] {
  const named = new Map(model.namedChildren());
  const pick = (names: string[]): [string, Module][] =>
    names.filter((name) => named.has(name)).map((name) => [name, named.get(name)!]);
  return [
    group('stem', pick(['conv1', 'bn1', 'relu', 'maxpool'])),
    ...model.stages.map((_, index) => group(`layer${index + 1}`, pick([`layer${index + 1}`]))),
    group('head', pick(['avgpool', 'fc'])),
  ];
}

/**
 * The block groups of model, from input to output (the last one is the head that a new task
 * replaces). Sequential models are cut at their pooling layers, ResNets into stem, stages and head
 * (see above); any other module gets one group per direct child that has parameters, parameter-free
 * children joining the group before them.
 *
 * @example
 * blockGroups(seedCnn()).map((g) => g.name); // ['block1', 'block2', 'head']
 * blockGroups(resnet18()).map((g) => g.name); // ['stem', 'layer1', 'layer2', 'layer3', 'layer4', 'head']
 */
export function blockGroups(model: Module): BlockGroup[] {
  if (model instanceof ResNet) return resnetGroups(model);
  if (model instanceof Sequential) return sequentialGroups(model);
  const runs = runsByParameters(model.namedChildren());
  if (runs.length === 0)
    throw new TypeError(`blockGroups: ${model.constructor.name} has no child modules to group`);
  return runs.map((modules) => group(modules.map(([name]) => name).join('+'), modules));
}
