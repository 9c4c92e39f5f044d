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

/**
 * Checks that every tensor the architecture's size depends on has exactly the shape that architecture
 * implies, before anything is built. Architecture detection reads only a few dimensions; without this
 * a small hostile file (say a 3,000-wide first block declared as a [3000, 1, 1, 1] tensor, or
 * thousands of block names with one value each) would make a model of gigabytes, only to be refused
 * by the strict load afterwards. With it, the largest layer built is one the file actually holds.
 */
export function checkArchitectureShapes(
  shapes: ReadonlyMap<string, readonly number[]>,
  architecture: Architecture,
): void {
  const expect = (name: string, expected: readonly number[], what: string) => {
    const actual = shapes.get(name);
    if (actual !== undefined && actual.some((dimension) => dimension < 1)) {
      throw new TypeError(
        `tensor '${name}' has shape [${actual.join(', ')}], with no elements; ${what} needs data`,
      );
    }
    if (
      actual === undefined ||
      actual.length !== expected.length ||
      actual.some((d, i) => d !== expected[i])
    ) {
      throw new TypeError(
        `tensor '${name}' has shape ${actual === undefined ? 'none (missing)' : `[${actual.join(', ')}]`}; ` +
          `${what} needs [${expected.join(', ')}]`,
      );
    }
  };
  if (architecture.family === 'resnet') {
    const { block, layers, widths, classes, inChannels, stem } = architecture.options;
    const kernel = stem === 'small' ? 3 : 7;
    const expansion = block === 'bottleneck' ? 4 : 1;
    expect(
      'conv1.weight',
      [widths![0]!, inChannels!, kernel, kernel],
      `a ResNet stem of width ${widths![0]}`,
    );
    let channels = widths![0]!;
    layers!.forEach((blocks, stage) => {
      const width = widths![stage]!;
      for (let index = 0; index < blocks; index++) {
        const prefix = `layer${stage + 1}.${index}`;
        const what = `a ${block} block of width ${width} after ${channels} channels`;
        if (block === 'bottleneck') {
          expect(`${prefix}.conv1.weight`, [width, channels, 1, 1], what);
          expect(`${prefix}.conv2.weight`, [width, width, 3, 3], what);
          expect(`${prefix}.conv3.weight`, [width * expansion, width, 1, 1], what);
        } else {
          expect(`${prefix}.conv1.weight`, [width, channels, 3, 3], what);
          expect(`${prefix}.conv2.weight`, [width, width, 3, 3], what);
        }
        channels = width * expansion;
      }
    });
    expect('fc.weight', [classes!, channels], `a ${classes}-class head after ${channels} channels`);
    return;
  }
  const { inChannels, channels, classes, head, inputSize } = architecture.options;
  const [first, second] = channels!;
  const what = `a seed CNN with channels ${first},${second}`;
  expect('0.weight', [first, inChannels!, 3, 3], what);
  expect('3.weight', [first, first, 3, 3], what);
  expect('7.weight', [second, first, 3, 3], what);
  expect('10.weight', [second, second, 3, 3], what);
  if (head === 'flatten') {
    const side = inputSize! / 4;
    if (!Number.isInteger(side) || side < 1) {
      throw new TypeError(
        `tensor '15.weight' has ${shapes.get('15.weight')![1]} inputs, not ${second}·k² for a whole k`,
      );
    }
    expect('15.weight', [classes!, second * side * side], `${what} and a flatten head`);
  } else {
    expect('16.weight', [classes!, second], `${what} and a pooled head`);
  }
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
    checkArchitectureShapes(shapes, architecture);
  } catch (error) {
    throw new TypeError(`${file}: ${(error as Error).message}`);
  }
  const model = buildArchitecture(architecture);
  const metadata = loadWeights(model, file);
  return { model, architecture, metadata };
}
