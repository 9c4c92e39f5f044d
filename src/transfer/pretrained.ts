/**
 * Pretrained models from weight files alone: the architecture (seed CNN or torchvision-style ResNet,
 * with its widths, depths and class count) is read off the state_dict names and shapes, so a file
 * saved by tensile or by PyTorch loads with one call and no separate configuration.
 */
import { readSafetensors } from '../io/safetensors.js';
import { loadWeights } from '../io/weights.js';
import { type ResNetOptions, resnet } from '../models/resnet.js';
import { type SeedCnnOptions, seedCnn } from '../models/seed-cnn.js';
import type { Module } from '../nn/module.js';

export type Architecture =
  { family: 'seed-cnn'; options: SeedCnnOptions } | { family: 'resnet'; options: ResNetOptions };

/**
 * Works out which built-in architecture a state_dict (name → shape) belongs to.
 * Throws, naming what it looked for, when it is neither a seed CNN nor a ResNet.
 */
export function architectureOf(shapes: ReadonlyMap<string, readonly number[]>): Architecture {
  const shape = (name: string) => shapes.get(name);
  const conv1 = shape('conv1.weight');
  if (conv1 !== undefined && shape('fc.weight') !== undefined) {
    const bottleneck = shapes.has('layer1.0.conv3.weight');
    const layers: number[] = [];
    const widths: number[] = [];
    for (let stage = 1; shapes.has(`layer${stage}.0.conv1.weight`); stage++) {
      let blocks = 0;
      while (shapes.has(`layer${stage}.${blocks}.conv1.weight`)) blocks++;
      layers.push(blocks);
      // The first convolution of a stage's blocks has the stage's width (before a bottleneck's expansion).
      widths.push(shape(`layer${stage}.0.${bottleneck ? 'conv1' : 'conv2'}.weight`)![0]!);
    }
    return {
      family: 'resnet',
      options: {
        block: bottleneck ? 'bottleneck' : 'basic',
        layers,
        widths,
        classes: shape('fc.weight')![0]!,
        inChannels: conv1[1]!,
        stem: conv1[2] === 3 ? 'small' : 'imagenet',
      },
    };
  }
  const first = shape('0.weight');
  const third = shape('7.weight');
  const gapHead = shape('16.weight');
  const flattenHead = shape('15.weight');
  if (first?.length === 4 && third?.length === 4 && (gapHead !== undefined || flattenHead !== undefined)) {
    const channels: [number, number] = [first[0]!, third[0]!];
    if (gapHead !== undefined)
      return {
        family: 'seed-cnn',
        options: { inChannels: first[1]!, channels, classes: gapHead[0]!, head: 'gap' },
      };
    const side = Math.sqrt(flattenHead![1]! / channels[1]);
    return {
      family: 'seed-cnn',
      options: {
        inChannels: first[1]!,
        channels,
        classes: flattenHead![0]!,
        head: 'flatten',
        inputSize: side * 4,
      },
    };
  }
  throw new TypeError(
    "the weights are neither a seed CNN (tensors '0.weight', '7.weight', '16.weight') nor a torchvision-style ResNet ('conv1.weight', 'layer1.0.conv1.weight', 'fc.weight')",
  );
}

/** Builds the architecture (freshly initialised). */
export function buildArchitecture(architecture: Architecture): Module {
  return architecture.family === 'resnet' ? resnet(architecture.options) : seedCnn(architecture.options);
}

/**
 * Builds the model a weights file describes and loads the weights into it (strictly: every name and
 * shape must fit). Returns the model (in training mode, everything trainable), its architecture and
 * the file's metadata.
 *
 * @example
 * const { model, metadata } = loadPretrained('pretrained/seed-cnn-fashion-mnist.safetensors');
 * metadata.test_accuracy; // '0.9…'
 */
export function loadPretrained(file: string): {
  model: Module;
  architecture: Architecture;
  metadata: Record<string, string>;
} {
  const { tensors } = readSafetensors(file);
  const shapes = new Map([...tensors].map(([name, entry]) => [name, entry.shape]));
  let architecture: Architecture;
  try {
    architecture = architectureOf(shapes);
  } catch (error) {
    throw new TypeError(`${file}: ${(error as Error).message}`);
  }
  const model = buildArchitecture(architecture);
  const metadata = loadWeights(model, file);
  return { model, architecture, metadata };
}
