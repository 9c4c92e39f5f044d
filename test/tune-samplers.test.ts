/**
 * Samplers and their numerics: the normal tails, Sobol points against scipy, TPE's Parzen estimator
 * against Optuna 3.1, the GP's gradients against finite differences, and each sampler on small
 * problems.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Random } from '../src/tensor/random.js';
import {
  defaultGamma,
  defaultWeights,
  floatDistribution,
  GpSampler,
  GridSampler,
  NopPruner,
  RandomSampler,
  SobolEngine,
  SobolSampler,
  Study,
  TpeSampler,
  type Sampler,
} from '../src/tune/index.js';
import {
  fitHyperparameters,
  GaussianProcess,
  NegativeLogPosterior,
} from '../src/tune/gp/gaussian-process.js';
import { minimizeBox } from '../src/tune/math/lbfgs.js';
import {
  erfc,
  logExpectedImprovementFactor,
  logExpectedImprovementFactorDerivative,
  logNormalCdf,
} from '../src/tune/math/normal.js';
import { ParzenEstimator, parzenDimension } from '../src/tune/samplers/parzen-estimator.js';
import { logExpectedImprovementWithGradient } from '../src/tune/samplers/gp.js';

/** Relative closeness for values spanning many magnitudes. */
function assertClose(actual: number, expected: number, relative: number, what = ''): void {
  assert.ok(
    Math.abs(actual - expected) <= relative * Math.abs(expected) + 1e-300,
    `${what}: ${actual} vs ${expected}`,
  );
}

describe('normal distribution numerics', () => {
  it('erfc matches scipy to 1e-13 relative, far into the tail', () => {
    // scipy.special.erfc at these points (scipy 1.17).
    const expected: [number, number][] = [
      [-1, 1.8427007929497148],
      [0, 1],
      [0.5, 0.4795001221869535],
      [1.9, 0.007209570764742531],
      [2, 0.004677734981047266],
      [2.1, 0.0029794666563329845],
      [3, 2.2090496998585445e-5],
      [10, 2.0884875837625446e-45],
      [26, 5.663192408856145e-296],
    ];
    for (const [x, value] of expected) assertClose(erfc(x), value, 1e-13, `erfc(${x})`);
    assertClose(logNormalCdf(-40), -804.6084420137539, 1e-13, 'log Φ(-40)');
    assertClose(logNormalCdf(-6), -20.73676894997471, 1e-13, 'log Φ(-6)');
    assertClose(logNormalCdf(3), -0.0013508099647481925, 1e-12, 'log Φ(3)');
  });

  it('log EI factor log h(z) is accurate on both sides of its asymptotic switch, with its derivative', () => {
    // log(φ(z) + z·Φ(z)) from mpmath at 50 digits, rounded to doubles.
    const expected: [number, number][] = [
      [-30, -457.724653760598],
      [-10, -55.55312203612236],
      [-8.5, -41.36374474000803],
      [-8, -37.12236426169263],
      [-7.5, -33.1240943455347],
      [-2, -4.768783523917114],
      [0, -0.9189385332046727],
      [1.5, 0.4248145567622593],
    ];
    for (const [z, value] of expected)
      assertClose(logExpectedImprovementFactor(z), value, 1e-9, `log h(${z})`);
    for (const z of [-20, -8.2, -7.9, -3, 0.5, 2]) {
      const step = 1e-5;
      const numeric =
        (logExpectedImprovementFactor(z + step) - logExpectedImprovementFactor(z - step)) / (2 * step);
      assertClose(logExpectedImprovementFactorDerivative(z), numeric, 1e-5, `d log h(${z})`);
    }
  });
});

describe('Sobol', () => {
  it('reproduces scipy.stats.qmc.Sobol(d=5, scramble=False) point for point', () => {
    const expected = [
      [0, 0, 0, 0, 0],
      [0.5, 0.5, 0.5, 0.5, 0.5],
      [0.75, 0.25, 0.25, 0.25, 0.75],
      [0.25, 0.75, 0.75, 0.75, 0.25],
      [0.375, 0.375, 0.625, 0.875, 0.375],
      [0.875, 0.875, 0.125, 0.375, 0.875],
      [0.625, 0.125, 0.875, 0.625, 0.625],
      [0.125, 0.625, 0.375, 0.125, 0.125],
    ];
    const engine = new SobolEngine(5, null);
    expected.forEach((point, n) => assert.deepEqual(Array.from(engine.point(n)), point));
  });

  it('keeps the net property when scrambled: 16 points, one in each cell of a 4 × 4 grid', () => {
    for (const seed of [1, 2, 3]) {
      const engine = new SobolEngine(2, new Random(seed));
      const cells = new Set<number>();
      for (let n = 0; n < 16; n++) {
        const [u, v] = engine.point(n);
        assert.ok(u! >= 0 && u! < 1 && v! >= 0 && v! < 1);
        cells.add(Math.floor(u! * 4) * 4 + Math.floor(v! * 4));
      }
      assert.equal(cells.size, 16);
    }
    assert.notDeepEqual(
      Array.from(new SobolEngine(2, new Random(1)).point(0)),
      Array.from(new SobolEngine(2, new Random(2)).point(0)),
    );
  });
});

describe('TPE', () => {
  it("uses Optuna's default γ and weights", () => {
    assert.deepEqual([1, 10, 11, 100, 300].map(defaultGamma), [1, 1, 2, 10, 25]);
    assert.deepEqual(defaultWeights(3), [1, 1, 1]);
    const weights = defaultWeights(30);
    assert.equal(weights.length, 30);
    assertClose(weights[0]!, 1 / 30, 1e-12);
    assert.deepEqual(weights.slice(4), new Array(26).fill(1));
  });

  it('builds the Parzen estimator Optuna 3.1 builds (bandwidths and scores)', () => {
    // Generated with Optuna 3.1.0:
    //   _ParzenEstimator({'x': np.array([0.1, 0.5, 0.52, 2.0, -3.0])}, {'x': FloatDistribution(-5, 10)},
    //     _ParzenEstimatorParameters(True, 1.0, True, False, default_weights, False)).log_pdf({'x': points})
    const estimator = new ParzenEstimator(
      [parzenDimension(floatDistribution(-5, 10))],
      [[0.1], [0.5], [0.52], [2.0], [-3.0]],
      [1, 1, 1, 1, 1],
      {
        considerPrior: true,
        priorWeight: 1,
        considerMagicClip: true,
        considerEndpoints: false,
        multivariate: false,
        equalHeightKernels: true,
      },
    );
    const points = [-4.9, -3.1, 0.0, 0.5, 1.0, 5.0, 9.99];
    const optuna = [
      -1.373899252648899, -1.1115388907357362, -0.7541230689551321, -0.7449498135342965, -0.7574707125880585,
      -1.4507628190917303, -1.872083271905665,
    ];
    const scores = estimator.logPdf(points.map((p) => [p]));
    points.forEach((p, i) => assertClose(scores[i]!, optuna[i]!, 1e-9, `log l(${p})`));
  });
});

describe('Gaussian process', () => {
  const random = new Random(5);
  const n = 12;
  const d = 3;
  const x = Float64Array.from({ length: n * d }, () => random.next());
  const y = Float64Array.from(
    { length: n },
    (_, i) => Math.sin(5 * x[i * d]!) + x[i * d + 1]! ** 2 - 0.5 * x[i * d + 2]!,
  );

  it('has the exact gradient of its marginal-likelihood objective', () => {
    const objective = new NegativeLogPosterior(x, y, d, null);
    const theta = Float64Array.from([-0.9, -0.3, 0.4, 0.2, Math.log(1e-3)]);
    const gradient = new Float64Array(d + 2);
    objective.evaluate(theta, gradient);
    for (let j = 0; j < d + 2; j++) {
      const step = 1e-6;
      const plus = Float64Array.from(theta);
      const minus = Float64Array.from(theta);
      plus[j]! += step;
      minus[j]! -= step;
      const scratch = new Float64Array(d + 2);
      const numeric = (objective.evaluate(plus, scratch) - objective.evaluate(minus, scratch)) / (2 * step);
      assert.ok(
        Math.abs(gradient[j]! - numeric) < 1e-5 + 1e-4 * Math.abs(numeric),
        `θ_${j}: ${gradient[j]} vs ${numeric}`,
      );
    }
  });

  it('fits hyperparameters that interpolate the data and rank dimensions by relevance', () => {
    const many = 40;
    const points = Float64Array.from({ length: many * 2 }, () => random.next());
    // Only the first coordinate matters.
    const values = Float64Array.from({ length: many }, (_, i) => Math.sin(6 * points[i * 2]!));
    const hyperparameters = fitHyperparameters(points, values, 2, { random: new Random(1) });
    assert.ok(
      hyperparameters.lengthScales[1]! > 3 * hyperparameters.lengthScales[0]!,
      `length scales ${hyperparameters.lengthScales}`,
    );
    const gp = new GaussianProcess(points, values, 2, hyperparameters);
    for (let i = 0; i < 5; i++)
      assert.ok(Math.abs(gp.predict(points.subarray(i * 2, i * 2 + 2)).mean - values[i]!) < 0.05);
  });

  it('has the exact gradient of log expected improvement', () => {
    const gp = new GaussianProcess(x, y, d, {
      lengthScales: Float64Array.from([0.3, 0.5, 0.8]),
      signalVariance: 1.3,
      noiseVariance: 1e-4,
    });
    const best = Math.min(...y);
    for (const point of [
      [0.3, 0.6, 0.2],
      [0.9, 0.1, 0.5],
      [x[0]! + 0.01, x[1]!, x[2]! - 0.02],
    ]) {
      const { value, gradient } = logExpectedImprovementWithGradient(gp, point, best);
      assert.ok(Number.isFinite(value));
      for (let j = 0; j < d; j++) {
        const step = 1e-6;
        const plus = [...point];
        const minus = [...point];
        plus[j]! += step;
        minus[j]! -= step;
        const numeric =
          (logExpectedImprovementWithGradient(gp, plus, best).value -
            logExpectedImprovementWithGradient(gp, minus, best).value) /
          (2 * step);
        assert.ok(
          Math.abs(gradient[j]! - numeric) < 1e-5 + 1e-4 * Math.abs(numeric),
          `∂/∂x_${j} at ${point}: ${gradient[j]} vs ${numeric}`,
        );
      }
    }
  });

  it('L-BFGS finds minima inside the box and on its boundary', () => {
    const rosenbrock = (z: Float64Array, g: Float64Array) => {
      const [a, b] = z as unknown as [number, number];
      g[0] = -2 * (1 - a) - 400 * a * (b - a * a);
      g[1] = 200 * (b - a * a);
      return (1 - a) ** 2 + 100 * (b - a * a) ** 2;
    };
    const inside = minimizeBox(rosenbrock, [-1.2, 1], [-2, -2], [2, 2], { maxIterations: 200 });
    assert.ok(Math.abs(inside.x[0]! - 1) < 1e-3 && Math.abs(inside.x[1]! - 1) < 1e-3, `${inside.x}`);
    const boxed = minimizeBox(rosenbrock, [-1.2, 0.5], [-2, -2], [0.5, 2], { maxIterations: 200 });
    assert.ok(Math.abs(boxed.x[0]! - 0.5) < 1e-9 && Math.abs(boxed.x[1]! - 0.25) < 1e-3, `${boxed.x}`);
  });
});

/** Best value after `trials` trials of sampler on a 2-D problem with a narrow optimum. */
async function bestAfter(sampler: Sampler, trials: number): Promise<number> {
  const study = await Study.create({ sampler, pruner: new NopPruner() });
  await study.optimize(
    (trial) => {
      const lr = trial.suggestFloat('lr', 1e-5, 1, { log: true });
      const width = trial.suggestInt('width', 8, 256, { log: true });
      const activation = trial.suggestCategorical('activation', ['relu', 'tanh', 'sigmoid']);
      return (
        (Math.log10(lr) + 2.5) ** 2 + (Math.log2(width) - 6) ** 2 / 4 + (activation === 'relu' ? 0 : 0.5)
      );
    },
    { nTrials: trials },
  );
  return study.bestValue();
}

describe('samplers on a small problem', () => {
  it('TPE and GP beat random search at an equal budget; Sobol covers the space', async () => {
    const budget = 30;
    const random: number[] = [];
    const tpe: number[] = [];
    const gp: number[] = [];
    for (const seed of [1, 2, 3]) {
      random.push(await bestAfter(new RandomSampler({ seed }), budget));
      tpe.push(await bestAfter(new TpeSampler({ seed }), budget));
      gp.push(await bestAfter(new GpSampler({ seed, candidates: 512 }), budget));
    }
    const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
    assert.ok(sum(tpe) < sum(random), `TPE ${tpe} vs random ${random}`);
    assert.ok(sum(gp) < sum(tpe), `GP ${gp} vs TPE ${tpe}`);
    assert.ok(Math.max(...gp) < 0.05, `GP ${gp}`);
    assert.ok((await bestAfter(new SobolSampler({ seed: 1 }), 32)) < 1.5);
  });

  it('samplers seeded alike propose alike', async () => {
    for (const make of [
      (s: number) => new SobolSampler({ seed: s }),
      (s: number) => new GpSampler({ seed: s, candidates: 256 }),
      (s: number) => new TpeSampler({ seed: s, multivariate: true }),
    ]) {
      assert.equal(await bestAfter(make(4), 14), await bestAfter(make(4), 14));
    }
  });

  it('the grid sampler covers every point once and hands parallel workers different points', async () => {
    const study = await Study.create({
      sampler: new GridSampler({ a: [1, 2, 3], b: [true, false] }, { seed: 3 }),
    });
    const first = await study.ask();
    const second = await study.ask();
    const pick = (t: typeof first) => `${t.suggestInt('a', 1, 3)}${t.suggestCategorical('b', [true, false])}`;
    assert.notEqual(pick(first), pick(second));
    await study.tell(first, 1);
    await study.tell(second, { state: 'failed' });
    await study.optimize((t) => (pick(t), 0), {});
    const covered = (await study.trials(['complete'])).map((t) => `${t.params.a}${t.params.b}`).sort();
    assert.deepEqual(covered, ['1false', '1true', '2false', '2true', '3false', '3true']);
    const missing = await Study.create({ sampler: new GridSampler({ a: [1] }) });
    await missing.optimize((t) => t.suggestFloat('c', 0, 1), { nTrials: 1 });
    assert.match((await missing.trials())[0]!.error!, /does not list/);
  });
});
