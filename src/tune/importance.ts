/**
 * Hyperparameter importance: which parameters drive a study's objective, from its finished trials.
 *
 * The method is Optuna's fANOVA idea (Hutter, Hoos and Leyton-Brown, "An Efficient Approach for
 * Assessing Hyperparameter Importance", 2014) written out plainly:
 *
 *   1. Fit a random forest of regression trees to (parameters → objective): each tree is grown on a
 *      bootstrap sample of the trials, by least squares, until its leaves are pure or hold a single
 *      trial (or it has `maxLeaves` leaves). Equally good splits (two trials that any parameter
 *      separates) are drawn at random, so that no parameter wins them by its place in the list.
 *   2. A tree is a piecewise-constant function f: each leaf is a box (an interval per numeric
 *      parameter, a set of choices per categorical one) holding a value. Under a uniform measure
 *      (log parameters uniform in their logarithm; a numeric range from the lowest to the highest
 *      value tried, so that a few trials in one part of a wide range are not drowned by the flat,
 *      extrapolated rest of it), the variance of f and of its averages over some parameters are exact
 *      sums over pairs of leaves, with no sampling:
 *        E[E[f | x_S]²] = Σ_L Σ_M v_L v_M Π_{k∈S} |L_k ∩ M_k| Π_{k∉S} |L_k| |M_k|
 *      (sizes as fractions of each parameter's range; the mean is Σ_L v_L |L|).
 *   3. For parameter j the main effect is Var(E[f | x_j]) / Var(f) (what j explains alone) and the
 *      total effect is 1 − Var(E[f | x_-j]) / Var(f) (everything j takes part in, interactions
 *      included: Sobol's total index). Both are averaged over the trees.
 *
 * The ranking uses the total effect, scaled to sum to 1: a parameter that matters only through an
 * interaction (y = x·sign(z)) still ranks above one that does not matter, which the main effect
 * alone (what Optuna reports) would miss. The bootstrap and the tie draws are seeded: the same
 * trials always give the same numbers.
 *
 * Few trials: over 200 random draws of 8 trials, y = 10a + b (c idle) ranks a first every time
 * and y = a(4 + 3b) + 0.2c in 196; with 6 trials, 189 and 189 (test/tune-importance.test.ts checks
 * fixed draws). The smaller shares are rough, and a curved effect seen through a handful of trials
 * can lose to a chance pattern in another parameter; `roughBelowTrials` is the count under which
 * the dashboard says so.
 */
import { Random } from '../tensor/random.js';

/** Trials under which the dashboard marks importance as a rough guide. */
export const roughBelowTrials = 20;

/** One parameter's values over the trials (as the dashboard's study columns hold them). */
export interface ImportanceParameter {
  name: string;
  kind: 'float' | 'int' | 'categorical';
  /** Sampled uniformly in its logarithm: the forest and the measure work in log10 space. */
  log: boolean;
  /** The search range (numeric parameters); null: taken from the values. */
  low: number | null;
  high: number | null;
  /** Categorical: the choices; `values` then hold choice indices. */
  choices: readonly string[] | null;
  /** Value in each trial, null where the trial lacks the parameter. */
  values: readonly (number | null)[];
}

export interface ParameterImportance {
  name: string;
  /** Total effect scaled so that all parameters sum to 1 (0 for all when nothing varies). */
  importance: number;
  /** Share of the objective's variance this parameter explains alone, in [0, 1]. */
  mainEffect: number;
  /** Share of the variance it takes part in, interactions included, in [0, 1]. */
  totalEffect: number;
  /** False when some trials lack the parameter (a conditional space): it is then not rated. */
  rated: boolean;
}

export interface ImportanceResult {
  /** Largest importance first (ties by name). */
  parameters: ParameterImportance[];
  /** Trials the forest was fitted to (finite objective, every rated parameter present). */
  trials: number;
}

export interface ImportanceOptions {
  /** Trees in the forest (default 64, as Optuna's fANOVA). */
  trees?: number;
  /** Seed of the bootstrap samples (default 0). */
  seed?: number;
  /**
   * Most leaves a tree grows, best split first (default 32). With maxSamplesPerTree this bounds the
   * cost on large studies (the variance sums grow with the square of the leaves): about 0.1 to
   * 0.2 s for 10,000 trials of 4 parameters on a busy 2-core machine. Studies of up to 32 trials
   * grow full trees.
   */
  maxLeaves?: number;
  /** Most trials a tree is fitted to, drawn with replacement (default 256). */
  maxSamplesPerTree?: number;
  /** Fewest distinct trials in a leaf (default 1, as Optuna's forest). */
  minLeafTrials?: number;
  /**
   * The range each numeric parameter's effect is measured over: 'explored' (default), from the
   * lowest to the highest value the trials tried; or 'search space', the declared low..high.
   */
  measure?: 'explored' | 'search space';
}

/** A parameter as the forest sees it: numeric (in log10 space for log ones) or categorical. */
interface Dimension {
  categorical: boolean;
  /** Numeric: the range [low, high] of the (transformed) values; width 0 for a constant. */
  low: number;
  high: number;
  /** Categorical: number of choices. */
  choiceCount: number;
}

/** A leaf's box: an interval per numeric dimension, a set of allowed choices per categorical one. */
interface Box {
  low: Float64Array;
  high: Float64Array;
  allowed: (Uint8Array | null)[];
}

interface Leaf {
  box: Box;
  /** Rows (into the data) in the leaf; their bootstrap weights are the tree's `weightOf`. */
  rows: number[];
  /** Per numeric dimension, the leaf's rows in increasing order of that parameter (null for categorical). */
  sorted: (Int32Array | null)[];
  value: number;
}

/** What every node of one tree reads: the data, and each row's bootstrap weight (0: not drawn). */
interface TreeData {
  dimensions: readonly Dimension[];
  columns: readonly Float64Array[];
  y: Float64Array;
  weightOf: Float64Array;
}

interface Split {
  gain: number;
  dimension: number;
  /** Numeric: rows with value ≤ threshold go left. */
  threshold: number;
  /** Categorical: the choices that go left. */
  leftChoices: Uint8Array | null;
}

/**
 * Importance of each parameter for `objective` (one value per trial; null or non-finite values,
 * e.g. pruned or failed trials, are left out).
 *
 * @example
 * const { parameters } = parameterImportance(
 *   [{ name: 'lr', kind: 'float', log: true, low: 1e-5, high: 1, choices: null, values: lrs }], losses);
 * parameters[0].name; // the parameter that matters most
 */
export function parameterImportance(
  parameters: readonly ImportanceParameter[],
  objective: readonly (number | null)[],
  options: ImportanceOptions = {},
): ImportanceResult {
  const trees = options.trees ?? 64;
  const maxLeaves = options.maxLeaves ?? 32;
  const maxSamples = options.maxSamplesPerTree ?? 256;
  const minLeaf = Math.max(1, options.minLeafTrials ?? 1);
  const searchSpace = options.measure === 'search space';
  const finite = (i: number) => {
    const y = objective[i];
    return y !== null && y !== undefined && Number.isFinite(y);
  };
  const usable = objective.map((_, i) => i).filter(finite);
  // Rated: parameters every usable trial has (Optuna's intersection search space).
  const rated = parameters.map((parameter) =>
    usable.every((i) => {
      const v = parameter.values[i];
      return v !== null && v !== undefined && Number.isFinite(v);
    }),
  );
  const ratedIndex = parameters.map((_, p) => p).filter((p) => rated[p]);
  const rows = usable;
  const zero = (): ImportanceResult => ({
    parameters: parameters
      .map((parameter, p) => ({
        name: parameter.name,
        importance: 0,
        mainEffect: 0,
        totalEffect: 0,
        rated: rated[p] ?? false,
      }))
      .sort((a, b) => a.name.localeCompare(b.name)),
    trials: rows.length,
  });
  if (rows.length < 2 || ratedIndex.length === 0) return zero();

  const dimensions: Dimension[] = [];
  const columns: Float64Array[] = [];
  for (const p of ratedIndex) {
    const parameter = parameters[p]!;
    const raw = rows.map((i) => parameter.values[i]!);
    if (parameter.kind === 'categorical') {
      const choiceCount = Math.max(parameter.choices?.length ?? 0, ...raw.map((v) => v + 1));
      dimensions.push({ categorical: true, low: 0, high: 0, choiceCount });
      columns.push(Float64Array.from(raw));
      continue;
    }
    const logScale = parameter.log && raw.every((v) => v > 0);
    const transform = (v: number) => (logScale ? Math.log10(v) : v);
    const values = Float64Array.from(raw, transform);
    let low = Math.min(...values);
    let high = Math.max(...values);
    if (
      searchSpace &&
      parameter.low !== null &&
      parameter.high !== null &&
      (!logScale || parameter.low > 0)
    ) {
      low = Math.min(low, transform(parameter.low));
      high = Math.max(high, transform(parameter.high));
    }
    dimensions.push({ categorical: false, low, high, choiceCount: 0 });
    columns.push(values);
  }
  const y = Float64Array.from(rows, (i) => objective[i]!);
  // Rows sorted by each numeric parameter once; a node's order is its parent's, partitioned, so no
  // node sorts (a 10,000-trial study's forest is fitted in a fraction of a second).
  const order = columns.map((column, d) =>
    dimensions[d]!.categorical
      ? null
      : Int32Array.from(rows, (_, k) => k).sort((a, b) => column[a]! - column[b]!),
  );

  const random = new Random(options.seed ?? 0);
  const main = new Float64Array(dimensions.length);
  const total = new Float64Array(dimensions.length);
  let treesCounted = 0;
  const sampleSize = Math.min(rows.length, maxSamples);
  for (let t = 0; t < trees; t++) {
    const counts = new Map<number, number>();
    for (let s = 0; s < sampleSize; s++) {
      const row = Math.min(rows.length - 1, Math.floor(random.next() * rows.length));
      counts.set(row, (counts.get(row) ?? 0) + 1);
    }
    const weightOf = new Float64Array(rows.length);
    for (const [row, count] of counts) weightOf[row] = count;
    const sampleRows = [...counts.keys()].sort((a, b) => a - b);
    const sorted = order.map((rowOrder) =>
      rowOrder === null ? null : rowOrder.filter((row) => weightOf[row]! > 0),
    );
    const leaves = growTree(
      { dimensions, columns, y, weightOf },
      sampleRows,
      sorted,
      maxLeaves,
      minLeaf,
      random,
    );
    const effects = varianceDecomposition(dimensions, leaves);
    if (effects === null) continue;
    treesCounted++;
    for (let d = 0; d < dimensions.length; d++) {
      main[d]! += effects.main[d]!;
      total[d]! += effects.total[d]!;
    }
  }
  if (treesCounted === 0) return zero();
  const totalSum = total.reduce((a, b) => a + b, 0);
  const result: ParameterImportance[] = parameters.map((parameter, p) => {
    const d = ratedIndex.indexOf(p);
    if (d < 0) return { name: parameter.name, importance: 0, mainEffect: 0, totalEffect: 0, rated: false };
    const mainEffect = clamp01(main[d]! / treesCounted);
    const totalEffect = clamp01(total[d]! / treesCounted);
    return {
      name: parameter.name,
      importance: totalSum > 0 ? total[d]! / totalSum : 0,
      mainEffect,
      totalEffect: Math.max(mainEffect, totalEffect),
      rated: true,
    };
  });
  result.sort((a, b) => b.importance - a.importance || a.name.localeCompare(b.name));
  return { parameters: result, trials: rows.length };
}

function clamp01(value: number): number {
  return Math.min(1, Math.max(0, value));
}

/**
 * Grows one regression tree, best split first, and returns its leaves (boxes with mean values).
 * Leaves stop splitting when pure, when no split separates two distinct values, or at maxLeaves.
 */
function growTree(
  data: TreeData,
  rows: number[],
  sorted: (Int32Array | null)[],
  maxLeaves: number,
  minLeaf: number,
  random: Random,
): Leaf[] {
  const { dimensions } = data;
  const rootBox: Box = {
    low: Float64Array.from(dimensions, (d) => d.low),
    high: Float64Array.from(dimensions, (d) => d.high),
    allowed: dimensions.map((d) => (d.categorical ? new Uint8Array(d.choiceCount).fill(1) : null)),
  };
  const done: Leaf[] = [];
  const open: { leaf: Leaf; split: Split | null }[] = [];
  const consider = (leaf: Leaf) => {
    const split = bestSplit(data, leaf, minLeaf, random);
    if (split === null) done.push(leaf);
    else open.push({ leaf, split });
  };
  consider(makeLeaf(data, rootBox, rows, sorted));
  while (open.length > 0 && done.length + open.length < maxLeaves) {
    let pick = 0;
    for (let k = 1; k < open.length; k++) if (open[k]!.split!.gain > open[pick]!.split!.gain) pick = k;
    const { leaf, split } = open.splice(pick, 1)[0]!;
    const [left, right] = applySplit(data, leaf, split!);
    consider(left);
    consider(right);
  }
  return [...done, ...open.map((entry) => entry.leaf)];
}

function makeLeaf(data: TreeData, box: Box, rows: number[], sorted: (Int32Array | null)[]): Leaf {
  let sum = 0;
  let weight = 0;
  for (const row of rows) {
    sum += data.weightOf[row]! * data.y[row]!;
    weight += data.weightOf[row]!;
  }
  return { box, rows, sorted, value: weight > 0 ? sum / weight : 0 };
}

/** The split with the largest drop in weighted squared error, or null when none helps. */
function bestSplit(data: TreeData, leaf: Leaf, minLeaf: number, random: Random): Split | null {
  const { dimensions, columns, y, weightOf } = data;
  const { rows } = leaf;
  if (rows.length < 2 * minLeaf) return null;
  let sum = 0;
  let weight = 0;
  let low = Infinity;
  let high = -Infinity;
  for (const row of rows) {
    sum += weightOf[row]! * y[row]!;
    weight += weightOf[row]!;
    low = Math.min(low, y[row]!);
    high = Math.max(high, y[row]!);
  }
  // A pure leaf: nothing left to explain.
  if (!(high - low > 1e-12 * Math.max(1, Math.abs(high)))) return null;
  const baseline = (sum * sum) / weight;
  let best: Split | null = null;
  let ties = 0;
  const tolerance = 1e-9 * Math.max(1, baseline);
  const consider = (gain: number, split: Omit<Split, 'gain'>) => {
    if (!(gain > tolerance)) return;
    if (best === null || gain > best.gain + tolerance) {
      best = { gain, ...split };
      ties = 1;
    } else if (gain >= best.gain - tolerance) {
      // Equally good splits (two trials that any parameter separates) are chosen at random, so that
      // no parameter wins them by its place in the list.
      ties++;
      if (random.next() * ties < 1) best = { gain, ...split };
    }
  };
  dimensions.forEach((dimension, d) => {
    const column = columns[d]!;
    if (dimension.categorical) {
      // Choices ordered by their mean objective: the best subset split is a prefix of that order
      // (Breiman et al. 1984, for squared error), so c−1 candidates instead of 2^c.
      const choiceSum = new Map<number, number>();
      const choiceWeight = new Map<number, number>();
      const choiceRows = new Map<number, number>();
      for (const row of rows) {
        const choice = column[row]!;
        choiceRows.set(choice, (choiceRows.get(choice) ?? 0) + 1);
        choiceSum.set(choice, (choiceSum.get(choice) ?? 0) + weightOf[row]! * y[row]!);
        choiceWeight.set(choice, (choiceWeight.get(choice) ?? 0) + weightOf[row]!);
      }
      const seen = [...choiceSum.keys()].sort(
        (a, b) =>
          choiceSum.get(a)! / choiceWeight.get(a)! - choiceSum.get(b)! / choiceWeight.get(b)! || a - b,
      );
      let leftSum = 0;
      let leftWeight = 0;
      let leftRows = 0;
      for (let k = 0; k < seen.length - 1; k++) {
        leftSum += choiceSum.get(seen[k]!)!;
        leftWeight += choiceWeight.get(seen[k]!)!;
        leftRows += choiceRows.get(seen[k]!)!;
        if (leftRows < minLeaf || rows.length - leftRows < minLeaf) continue;
        const rightSum = sum - leftSum;
        const rightWeight = weight - leftWeight;
        const gain = (leftSum * leftSum) / leftWeight + (rightSum * rightSum) / rightWeight - baseline;
        const leftChoices = new Uint8Array(dimension.choiceCount);
        for (let m = 0; m <= k; m++) leftChoices[seen[m]!] = 1;
        // Choices allowed here but absent from the data go with the heavier side.
        const allowed = leaf.box.allowed[d]!;
        if (leftWeight >= rightWeight)
          for (let c = 0; c < allowed.length; c++) if (allowed[c] && !choiceSum.has(c)) leftChoices[c] = 1;
        consider(gain, { dimension: d, threshold: 0, leftChoices });
      }
      return;
    }
    const order = leaf.sorted[d]!;
    let leftSum = 0;
    let leftWeight = 0;
    for (let k = 0; k < order.length - 1; k++) {
      const here = order[k]!;
      leftSum += weightOf[here]! * y[here]!;
      leftWeight += weightOf[here]!;
      const value = column[here]!;
      const next = column[order[k + 1]!]!;
      if (!(next > value) || k + 1 < minLeaf || order.length - k - 1 < minLeaf) continue;
      const rightSum = sum - leftSum;
      const rightWeight = weight - leftWeight;
      const gain = (leftSum * leftSum) / leftWeight + (rightSum * rightSum) / rightWeight - baseline;
      consider(gain, { dimension: d, threshold: (value + next) / 2, leftChoices: null });
    }
  });
  return best;
}

function applySplit(data: TreeData, leaf: Leaf, split: Split): [Leaf, Leaf] {
  const d = split.dimension;
  const column = data.columns[d]!;
  const leftBox: Box = {
    low: leaf.box.low.slice(),
    high: leaf.box.high.slice(),
    allowed: leaf.box.allowed.map((set) => (set === null ? null : set.slice())),
  };
  const rightBox: Box = {
    low: leaf.box.low.slice(),
    high: leaf.box.high.slice(),
    allowed: leaf.box.allowed.map((set) => (set === null ? null : set.slice())),
  };
  const goesLeft = (row: number) =>
    split.leftChoices !== null ? split.leftChoices[column[row]!] === 1 : column[row]! <= split.threshold;
  if (split.leftChoices !== null) {
    const parent = leaf.box.allowed[d]!;
    const left = leftBox.allowed[d]!;
    const right = rightBox.allowed[d]!;
    for (let c = 0; c < parent.length; c++) {
      left[c] = parent[c]! && split.leftChoices[c]! ? 1 : 0;
      right[c] = parent[c]! && !split.leftChoices[c] ? 1 : 0;
    }
  } else {
    leftBox.high[d] = split.threshold;
    rightBox.low[d] = split.threshold;
  }
  const side = new Uint8Array(data.y.length);
  const leftRows: number[] = [];
  const rightRows: number[] = [];
  for (const row of leaf.rows) {
    const left = goesLeft(row);
    side[row] = left ? 1 : 0;
    (left ? leftRows : rightRows).push(row);
  }
  // Each side keeps its parent's order by every parameter (a stable partition).
  const leftSorted = leaf.sorted.map((order) =>
    order === null ? null : order.filter((row) => side[row] === 1),
  );
  const rightSorted = leaf.sorted.map((order) =>
    order === null ? null : order.filter((row) => side[row] === 0),
  );
  return [makeLeaf(data, leftBox, leftRows, leftSorted), makeLeaf(data, rightBox, rightRows, rightSorted)];
}

/**
 * Main and total effect of each dimension for one tree, as shares of its variance (null for a tree
 * that predicts a constant). Sizes are fractions of each dimension's range (a constant numeric
 * dimension has size 1: it is a single point).
 */
function varianceDecomposition(
  dimensions: readonly Dimension[],
  leaves: readonly Leaf[],
): { main: Float64Array; total: Float64Array } | null {
  const count = leaves.length;
  const dims = dimensions.length;
  // size[l * dims + d]: the fraction of dimension d's range that leaf l covers.
  const size = new Float64Array(count * dims);
  // overlap[(l * count + m) * dims + d]: the fraction that leaves l and m share.
  const overlap = new Float64Array(count * count * dims);
  const fraction = (dimension: Dimension, low: number, high: number) => {
    const width = dimension.high - dimension.low;
    return width > 0 ? Math.max(0, high - low) / width : 1;
  };
  const shared = (d: number, a: Box, b: Box) => {
    const dimension = dimensions[d]!;
    if (dimension.categorical) {
      const x = a.allowed[d]!;
      const z = b.allowed[d]!;
      let both = 0;
      for (let c = 0; c < x.length; c++) if (x[c] && z[c]) both++;
      return both / Math.max(1, dimension.choiceCount);
    }
    if (!(dimension.high > dimension.low)) return 1;
    return fraction(dimension, Math.max(a.low[d]!, b.low[d]!), Math.min(a.high[d]!, b.high[d]!));
  };
  leaves.forEach((leaf, l) => {
    for (let d = 0; d < dims; d++) size[l * dims + d] = shared(d, leaf.box, leaf.box);
  });
  for (let l = 0; l < count; l++)
    for (let m = 0; m < count; m++)
      for (let d = 0; d < dims; d++)
        overlap[(l * count + m) * dims + d] = shared(d, leaves[l]!.box, leaves[m]!.box);
  const volume = (l: number) => {
    let v = 1;
    for (let d = 0; d < dims; d++) v *= size[l * dims + d]!;
    return v;
  };
  let mean = 0;
  let square = 0;
  leaves.forEach((leaf, l) => {
    const v = volume(l);
    mean += leaf.value * v;
    square += leaf.value * leaf.value * v;
  });
  const variance = square - mean * mean;
  if (!(variance > 1e-14 * Math.max(1, square))) return null;
  /** E[E[f | x_S]²] for S given by a membership test. */
  const conditionalSquare = (inSubset: (d: number) => boolean) => {
    let result = 0;
    for (let l = 0; l < count; l++) {
      for (let m = 0; m < count; m++) {
        let product = leaves[l]!.value * leaves[m]!.value;
        for (let d = 0; d < dims && product !== 0; d++) {
          product *= inSubset(d)
            ? overlap[(l * count + m) * dims + d]!
            : size[l * dims + d]! * size[m * dims + d]!;
        }
        result += product;
      }
    }
    return result;
  };
  const main = new Float64Array(dims);
  const total = new Float64Array(dims);
  for (let j = 0; j < dims; j++) {
    main[j] = (conditionalSquare((d) => d === j) - mean * mean) / variance;
    total[j] = 1 - (conditionalSquare((d) => d !== j) - mean * mean) / variance;
  }
  return { main, total };
}
