/** study.yaml: parsing, the name → class mapping, declarative search spaces and training hyperparameters. */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { describe, it } from 'node:test';
import YAML from 'yaml';
import { GridSampler, MedianPruner, RandomSampler, Study, TpeSampler } from '../src/tune/index.js';
import { parseStudyConfig, prunerFromConfig, samplerFromConfig } from '../src/tune/config.js';
import { gridFromSpec, parseSearchSpec, suggestFromSpec } from '../src/tune/search-spec.js';
import { trainingHyperparameters } from '../src/tune/training-objective.js';

const example = new URL('../../examples/study.yaml', import.meta.url);

describe('study configuration', () => {
  it('reads examples/study.yaml into samplers, pruners and a conditional search space', () => {
    const config = parseStudyConfig(YAML.parse(fs.readFileSync(example, 'utf8')), { storage: 'memory' });
    assert.equal(config.study, 'mnist-seed-cnn');
    assert.equal(config.direction, 'maximize');
    assert.equal(config.metric, 'validationAccuracy');
    assert.deepEqual(config.model.channels, [8, 16]);
    const sampler = samplerFromConfig(config.sampler, config.search);
    assert.ok(sampler instanceof TpeSampler && sampler.multivariate && sampler.constantLiar);
    assert.ok(prunerFromConfig(config.pruner) instanceof MedianPruner);
    const momentum = config.search.find((e) => e.name === 'momentum')!;
    assert.deepEqual(momentum.when, { optimizer: ['sgd'] });
    assert.equal(config.search.find((e) => e.name === 'shift')!.value, 0);
  });

  it('reads data.path (own images) and names the field of a wrong type', () => {
    const parse = (data: unknown) => parseStudyConfig({ data }, { storage: 'memory' });
    const own = parse({ path: 'photos/', imageSize: 32, grayscale: true });
    assert.deepEqual(own.data, {
      dataset: null,
      path: 'photos/',
      target: null,
      imageSize: 32,
      grayscale: true,
      trainSamples: null,
      validationSamples: null,
      seed: 1,
    });
    assert.equal(parse({ path: 'photos/', validationSamples: 20 }).data.validationSamples, 20);
    assert.equal(parse({}).data.dataset, 'mnist');
    assert.equal(parse({}).data.path, null);
    assert.throws(() => parse({ path: 5 }), /^Error: data\.path: must be .*, got the number 5/);
    assert.throws(
      () => parse({ path: 'p', imageSize: '32' }),
      /^Error: data\.imageSize: must be a positive integer/,
    );
    assert.throws(() => parse({ path: 'p', imageSize: 0 }), /data\.imageSize: must be a positive integer/);
    assert.throws(() => parse({ path: 'p', grayscale: 'yes' }), /data\.grayscale: must be true or false/);
    assert.throws(() => parse({ path: 'p', dataset: 'mnist' }), /data: give dataset or path, not both/);
    assert.throws(() => parse({ imageSize: 32 }), /data\.imageSize: goes with data\.path/);
    const table = parse({ path: 'houses.csv', target: 'price', validationSamples: 50 }).data;
    assert.equal(table.target, 'price');
    assert.equal(table.validationSamples, 50);
    assert.throws(
      () => parse({ path: 'h.csv', target: 3 }),
      /^Error: data\.target: must be the name of the table column/,
    );
    assert.throws(() => parse({ target: 'price' }), /data\.target: goes with data\.path/);
    assert.throws(
      () => parse({ path: 'h.csv', target: 'price', imageSize: 8 }),
      /data\.imageSize: not for a table/,
    );
    assert.throws(() => parse({ path: 'p', size: 3 }), /data: unknown key 'size'/);
  });

  it('names unknown samplers, pruners, options and keys with the known ones', () => {
    assert.throws(
      () => samplerFromConfig('cma-es', []),
      /unknown sampler 'cma-es' \(known: random, grid, sobol, tpe, gp\)/,
    );
    assert.throws(() => prunerFromConfig({ name: 'patient' }), /unknown pruner 'patient'/);
    assert.throws(() => samplerFromConfig({ name: 'tpe', seeed: 1 }, []), /tpe: unknown option 'seeed'/);
    assert.throws(() => samplerFromConfig({ name: 'gp', seed: 'one' }, []), /option 'seed' must be a number/);
    assert.throws(() => parseStudyConfig({ trails: 3 }, { storage: 'memory' }), /unknown key 'trails'/);
    assert.ok(samplerFromConfig(undefined, []) instanceof TpeSampler);
    assert.ok(samplerFromConfig({ name: 'random', seed: 3 }, []) instanceof RandomSampler);
  });

  it('builds grids from stepped and categorical entries and refuses continuous ones', () => {
    const spec = parseSearchSpec({
      lr: { categorical: [0.01, 0.1] },
      epochs: { int: [1, 3] },
      dropout: { float: [0, 0.2], step: 0.1 },
    });
    assert.deepEqual(gridFromSpec(spec), { lr: [0.01, 0.1], epochs: [1, 2, 3], dropout: [0, 0.1, 0.2] });
    assert.ok(samplerFromConfig('grid', spec) instanceof GridSampler);
    assert.throws(
      () => gridFromSpec(parseSearchSpec({ lr: { float: [1e-4, 1], log: true } })),
      /grid search needs a finite list for 'lr'/,
    );
  });

  it('rejects malformed search entries and conditions on later entries', () => {
    assert.throws(() => parseSearchSpec({ lr: { float: [1] } }), /needs \[low, high\]/);
    assert.throws(() => parseSearchSpec({ lr: { float: [0, 1], int: [0, 1] } }), /exactly one of/);
    assert.throws(
      () => parseSearchSpec({ momentum: { float: [0, 1], when: { optimizer: 'sgd' } }, optimizer: 'sgd' }),
      /must be listed before it/,
    );
    assert.throws(() => parseSearchSpec({ lr: { float: [0, 1], log: true } }), /low > 0/);
  });

  it('suggests conditional entries only when their condition holds', async () => {
    const spec = parseSearchSpec({
      optimizer: { categorical: ['sgd', 'adam'] },
      momentum: { float: [0.5, 0.99], when: { optimizer: 'sgd' } },
      epochs: 2,
    });
    const study = await Study.create({ sampler: new RandomSampler({ seed: 5 }) });
    await study.optimize(
      (trial) => {
        const values = suggestFromSpec(trial, spec);
        assert.equal(values.epochs, 2);
        assert.equal('momentum' in values, values.optimizer === 'sgd');
        return 0;
      },
      { nTrials: 12 },
    );
    const kinds = new Set((await study.trials()).map((t) => t.params.optimizer));
    assert.equal(kinds.size, 2);
  });

  it('checks training hyperparameters by name, type and range', () => {
    assert.equal(trainingHyperparameters({ lr: 0.1, optimizer: 'sgd' }).momentum, 0.9);
    assert.throws(
      () => trainingHyperparameters({ learningRate: 0.1 }),
      /unknown training hyperparameter 'learningRate'/,
    );
    assert.throws(() => trainingHyperparameters({ lr: '0.1' }), /lr must be a number/);
    assert.throws(
      () => trainingHyperparameters({ optimizer: 'rmsprop' }),
      /optimizer must be sgd, adam or adamw/,
    );
    assert.throws(() => trainingHyperparameters({ batchSize: 12.5 }), /batchSize must be a positive integer/);
  });
});
