/**
 * Models from plain configuration objects (JSON, YAML, parity-case architectures): a list of layer
 * descriptions built into a Sequential. Input channels and features are inferred by running shapes
 * through the list, so a config only states what a user would write in Keras.
 */
import { formatShape } from '../tensor/shape.js';
import { type ActivationName, Activation, checkActivationName } from './layers/activation.js';
import { BatchNorm } from './layers/batchnorm.js';
import { Sequential } from './layers/containers.js';
import { Conv2d } from './layers/conv.js';
import { Dense } from './layers/dense.js';
import { Dropout } from './layers/dropout.js';
import { AvgPool2d, Flatten, GlobalAvgPool2d, GlobalMaxPool2d, MaxPool2d } from './layers/pooling.js';
import type { Module } from './module.js';
import { summary } from './summary.js';

export type LayerConfig =
  | {
      type: 'conv2d';
      filters: number;
      kernel: number;
      stride?: number;
      padding?: number | 'same' | 'valid';
      dilation?: number;
      bias?: boolean;
    }
  | { type: 'dense'; units: number; bias?: boolean; activation?: ActivationName }
  | { type: 'batch_norm'; eps?: number; momentum?: number }
  | { type: 'max_pool2d' | 'avg_pool2d'; kernel: number; stride?: number; padding?: number }
  | { type: 'global_avg_pool2d' | 'global_max_pool2d' | 'flatten' }
  | { type: 'dropout'; rate?: number }
  | { type: ActivationName };

const layerTypes = [
  'conv2d',
  'dense',
  'batch_norm',
  'max_pool2d',
  'avg_pool2d',
  'global_avg_pool2d',
  'global_max_pool2d',
  'flatten',
  'dropout',
];

/** Builds a Sequential from layer configs for inputs of inputShape (without the batch axis). */
export function modelFromConfig(layers: readonly LayerConfig[], inputShape: readonly number[]): Sequential {
  const model = new Sequential();
  let shape = [...inputShape];
  layers.forEach((config, index) => {
    const where = `layer ${index} (${String((config as { type?: unknown }).type)})`;
    const layer = buildLayer(config, shape, where);
    model.append(layer);
    shape = summary(new Sequential(layer), shape).outputShape;
  });
  return model;
}

function requireNumber(value: unknown, field: string, where: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new TypeError(`${where}: field '${field}' must be a number, got ${JSON.stringify(value)}`);
  }
  return value;
}

function buildLayer(config: LayerConfig, shape: number[], where: string): Module {
  const type = (config as { type?: unknown }).type;
  switch (config.type) {
    case 'conv2d': {
      if (shape.length !== 3)
        throw new TypeError(
          `${where}: conv2d needs [channels, height, width] input, got ${formatShape(shape)}`,
        );
      return new Conv2d(
        shape[0]!,
        requireNumber(config.filters, 'filters', where),
        requireNumber(config.kernel, 'kernel', where),
        {
          stride: config.stride ?? 1,
          padding: config.padding ?? 0,
          dilation: config.dilation ?? 1,
          bias: config.bias ?? true,
        },
      );
    }
    case 'dense': {
      if (shape.length !== 1)
        throw new TypeError(
          `${where}: dense needs [features] input (add a flatten), got ${formatShape(shape)}`,
        );
      return new Dense(shape[0]!, requireNumber(config.units, 'units', where), {
        bias: config.bias ?? true,
        activation: checkActivationName(config.activation ?? 'none', where),
      });
    }
    case 'batch_norm':
      return new BatchNorm(shape[0]!, { eps: config.eps ?? 1e-5, momentum: config.momentum ?? 0.1 });
    case 'max_pool2d':
    case 'avg_pool2d': {
      const kernel = requireNumber(config.kernel, 'kernel', where);
      const options = { stride: config.stride ?? kernel, padding: config.padding ?? 0 };
      return config.type === 'max_pool2d' ? new MaxPool2d(kernel, options) : new AvgPool2d(kernel, options);
    }
    case 'global_avg_pool2d':
      return new GlobalAvgPool2d();
    case 'global_max_pool2d':
      return new GlobalMaxPool2d();
    case 'flatten':
      return new Flatten();
    case 'dropout':
      return new Dropout(config.rate ?? 0.5);
    default:
      if (typeof type === 'string' && !layerTypes.includes(type)) {
        try {
          return new Activation(checkActivationName(type, where));
        } catch {
          throw new TypeError(
            `${where}: unknown layer type '${type}'; expected one of ${[...layerTypes, 'relu', 'sigmoid', '...activations'].join(', ')}`,
          );
        }
      }
      throw new TypeError(`${where}: layer config needs a 'type' string, got ${JSON.stringify(config)}`);
  }
}
