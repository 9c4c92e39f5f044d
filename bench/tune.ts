/**
 * npm run bench:tune [-- --json] [--trials N] [--seeds N] [--samplers a,b] [--functions a,b] [--no-optuna]
 *
 * The quality benchmark of issue #5: random, Sobol, TPE and GP search for 100 trials × 10 seeds on
 * Branin and Hartmann6. Prints the median simple regret (best value found − the known minimum) after
 * 25, 50 and 100 trials and the median time per suggestion (ask plus the suggest calls), overall and
 * over trials 91–100. Where /usr/bin/python3 (or python3) can import optuna, Optuna's TPE runs on the
 * same functions and seeds and is printed beside tensile's.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  GpSampler,
  NopPruner,
  RandomSampler,
  SobolSampler,
  Study,
  TpeSampler,
  type Sampler,
} from '../src/tune/index.js';
import { testFunctions, type TestFunction } from './tune/functions.js';

const samplerFactories: Record<string, (seed: number) => Sampler> = {
  random: (seed) => new RandomSampler({ seed }),
  sobol: (seed) => new SobolSampler({ seed }),
  tpe: (seed) => new TpeSampler({ seed }),
  'tpe-multivariate': (seed) => new TpeSampler({ seed, multivariate: true }),
  gp: (seed) => new GpSampler({ seed }),
};

/** The issue's targets for median regret after 100 trials, and suggestion time. */
const targets: Record<string, { regret: Record<string, number>; suggestMs?: number }> = {
  gp: { regret: { branin: 1e-3, hartmann6: 0.01 }, suggestMs: 500 },
  tpe: { regret: { branin: 0.0163, hartmann6: 0.277 }, suggestMs: 20 },
};

const checkpoints = [25, 50, 100];

interface Run {
  best: number[];
  suggestMs: number[];
}

export interface BenchResult {
  function: string;
  sampler: string;
  median_regret: Record<string, number>;
  median_suggest_ms: number;
  median_suggest_ms_last10: number;
  seeds: number;
  trials: number;
  target_regret_100?: number;
  target_suggest_ms?: number;
  meets_target?: boolean;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

async function runOne(fn: TestFunction, sampler: Sampler, trials: number): Promise<Run> {
  const study = await Study.create({ sampler, pruner: new NopPruner() });
  const run: Run = { best: [], suggestMs: [] };
  let best = Infinity;
  for (let i = 0; i < trials; i++) {
    const started = performance.now();
    const trial = await study.ask();
    const x = fn.bounds.map(([low, high], d) => trial.suggestFloat(`x${d}`, low, high));
    run.suggestMs.push(performance.now() - started);
    const value = fn.evaluate(x);
    await study.tell(trial, value);
    best = Math.min(best, value);
    run.best.push(best);
  }
  return run;
}

function summarize(
  fn: string,
  sampler: string,
  minimum: number,
  runs: readonly Run[],
  trials: number,
): BenchResult {
  const median_regret: Record<string, number> = {};
  for (const checkpoint of checkpoints.filter((c) => c <= trials)) {
    median_regret[String(checkpoint)] = median(
      runs.map((r) => Math.max(0, r.best[checkpoint - 1]! - minimum)),
    );
  }
  const result: BenchResult = {
    function: fn,
    sampler,
    median_regret,
    median_suggest_ms: median(runs.flatMap((r) => r.suggestMs)),
    median_suggest_ms_last10: median(runs.flatMap((r) => r.suggestMs.slice(-10))),
    seeds: runs.length,
    trials,
  };
  const target = targets[sampler];
  if (target !== undefined && trials >= 100) {
    result.target_regret_100 = target.regret[fn]!;
    if (target.suggestMs !== undefined) result.target_suggest_ms = target.suggestMs;
    result.meets_target =
      median_regret['100']! <= target.regret[fn]! &&
      (target.suggestMs === undefined || result.median_suggest_ms_last10 < target.suggestMs);
  }
  return result;
}

/** Optuna's TPE through bench/python/optuna_tpe.py, or null (with the reason) when unavailable. */
function runOptuna(
  functions: readonly TestFunction[],
  seeds: readonly number[],
  trials: number,
): { results: BenchResult[]; version: string } | { error: string } {
  const script = path.resolve(
    path.dirname(fileURLToPath(import.meta.url)),
    '../../bench/python/optuna_tpe.py',
  );
  for (const python of ['/usr/bin/python3', 'python3']) {
    const probe = spawnSync(python, ['-c', 'import optuna'], { encoding: 'utf8' });
    if (probe.status !== 0) continue;
    const config = JSON.stringify({ functions: functions.map((f) => f.name), seeds, trials });
    const result = spawnSync(python, [script, config], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    if (result.status !== 0) return { error: `optuna run failed: ${result.stderr.trim().split('\n').pop()}` };
    const output = JSON.parse(result.stdout) as {
      version: string;
      runs: { function: string; seed: number; best: number[]; suggest_ms: number[] }[];
    };
    return {
      version: output.version,
      results: functions.map((fn) => {
        const runs = output.runs
          .filter((r) => r.function === fn.name)
          .map((r) => ({ best: r.best, suggestMs: r.suggest_ms }));
        return summarize(fn.name, `optuna-tpe`, fn.minimum, runs, trials);
      }),
    };
  }
  return { error: 'no python3 with optuna found (Debian: apt-get install python3-optuna)' };
}

function formatRegret(value: number): string {
  return value === 0 ? '0' : value.toExponential(2);
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      json: { type: 'boolean', default: false },
      trials: { type: 'string', default: '100' },
      seeds: { type: 'string', default: '10' },
      samplers: { type: 'string', default: 'random,sobol,tpe,gp' },
      functions: { type: 'string', default: 'branin,hartmann6' },
      'no-optuna': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(
      `usage: npm run bench:tune -- [--json] [--trials N] [--seeds N] [--samplers ${Object.keys(samplerFactories).join(',')}] [--functions branin,hartmann6] [--no-optuna]`,
    );
    return 0;
  }
  const trials = Number(values.trials);
  const seeds = Array.from({ length: Number(values.seeds) }, (_, i) => i);
  const samplers = values.samplers!.split(',');
  for (const name of samplers)
    if (!(name in samplerFactories))
      throw new Error(`unknown sampler '${name}' (known: ${Object.keys(samplerFactories).join(', ')})`);
  const functions = values.functions!.split(',').map((name) => {
    const fn = testFunctions.find((f) => f.name === name);
    if (fn === undefined)
      throw new Error(`unknown function '${name}' (known: ${testFunctions.map((f) => f.name).join(', ')})`);
    return fn;
  });
  const log = (line: string) => {
    if (!values.json) console.log(line);
  };
  const started = performance.now();
  const results: BenchResult[] = [];
  log(
    `tensile bench:tune: ${trials} trials × ${seeds.length} seeds; median simple regret and median ms per suggestion`,
  );
  for (const fn of functions) {
    for (const sampler of samplers) {
      const runStarted = performance.now();
      const runs: Run[] = [];
      for (const seed of seeds) runs.push(await runOne(fn, samplerFactories[sampler]!(seed), trials));
      const result = summarize(fn.name, sampler, fn.minimum, runs, trials);
      results.push(result);
      log(
        `  ${fn.name.padEnd(10)} ${sampler.padEnd(17)} ${checkpoints.map((c) => `@${c} ${formatRegret(result.median_regret[String(c)] ?? NaN).padEnd(9)}`).join(' ')} ` +
          `${result.median_suggest_ms.toFixed(1).padStart(7)} ms (trials 91-100: ${result.median_suggest_ms_last10.toFixed(1)} ms)` +
          `${result.meets_target === undefined ? '' : result.meets_target ? '  meets target' : '  MISSES target'}  [${((performance.now() - runStarted) / 1000).toFixed(0)} s]`,
      );
    }
  }
  let optunaVersion: string | null = null;
  let optunaError: string | null = null;
  if (!values['no-optuna']) {
    const optuna = runOptuna(functions, seeds, trials);
    if ('error' in optuna) {
      optunaError = optuna.error;
      log(`  (Optuna side-by-side skipped: ${optuna.error})`);
    } else {
      optunaVersion = optuna.version;
      results.push(...optuna.results);
      log(
        `\nside by side with Optuna ${optuna.version} (same functions and seeds; regret after ${checkpoints.join(' / ')} trials):`,
      );
      for (const fn of functions) {
        for (const sampler of [...samplers.filter((s) => s.startsWith('tpe')), 'optuna-tpe']) {
          const r = results.find((x) => x.function === fn.name && x.sampler === sampler);
          if (r === undefined) continue;
          log(
            `  ${fn.name.padEnd(10)} ${sampler.padEnd(17)} ${checkpoints.map((c) => formatRegret(r.median_regret[String(c)] ?? NaN).padEnd(9)).join(' ')} ${r.median_suggest_ms.toFixed(1).padStart(7)} ms`,
          );
        }
      }
    }
  }
  const seconds = (performance.now() - started) / 1000;
  log(`\n${seconds.toFixed(0)} s in all`);
  if (values.json)
    console.log(
      JSON.stringify({
        results,
        trials,
        seeds: seeds.length,
        optuna: optunaVersion,
        optuna_error: optunaError,
        seconds: Number(seconds.toFixed(1)),
      }),
    );
  return 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`bench:tune: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  },
);
