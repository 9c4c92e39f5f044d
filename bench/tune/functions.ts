/**
 * Standard test functions for black-box optimizers (Surjanovic and Bingham, "Virtual Library of
 * Simulation Experiments", https://www.sfu.ca/~ssurjano/), with their known minima.
 */

export interface TestFunction {
  name: string;
  /** [low, high] per dimension. */
  bounds: readonly (readonly [number, number])[];
  minimum: number;
  evaluate(x: readonly number[]): number;
}

/** Branin–Hoo on [−5, 10] × [0, 15]; three global minima of 0.397887 (at (−π, 12.275), (π, 2.275), (9.42478, 2.475)). */
export const branin: TestFunction = {
  name: 'branin',
  bounds: [
    [-5, 10],
    [0, 15],
  ],
  minimum: 0.39788735772973816,
  evaluate([x1, x2]) {
    const a = 1;
    const b = 5.1 / (4 * Math.PI * Math.PI);
    const c = 5 / Math.PI;
    const r = 6;
    const s = 10;
    const t = 1 / (8 * Math.PI);
    return a * (x2! - b * x1! * x1! + c * x1! - r) ** 2 + s * (1 - t) * Math.cos(x1!) + s;
  },
};

const hartmannAlpha = [1.0, 1.2, 3.0, 3.2];
const hartmannA = [
  [10, 3, 17, 3.5, 1.7, 8],
  [0.05, 10, 17, 0.1, 8, 14],
  [3, 3.5, 1.7, 10, 17, 8],
  [17, 8, 0.05, 10, 0.1, 14],
];
const hartmannP = [
  [1312, 1696, 5569, 124, 8283, 5886],
  [2329, 4135, 8307, 3736, 1004, 9991],
  [2348, 1451, 3522, 2883, 3047, 6650],
  [4047, 8828, 8732, 5743, 1091, 381],
].map((row) => row.map((v) => v * 1e-4));

/** Hartmann 6-D on [0, 1]^6; global minimum −3.32237 at (0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573). */
export const hartmann6: TestFunction = {
  name: 'hartmann6',
  bounds: Array.from({ length: 6 }, () => [0, 1] as const),
  minimum: -3.3223680114155147,
  evaluate(x) {
    let sum = 0;
    for (let i = 0; i < 4; i++) {
      let inner = 0;
      for (let j = 0; j < 6; j++) inner += hartmannA[i]![j]! * (x[j]! - hartmannP[i]![j]!) ** 2;
      sum += hartmannAlpha[i]! * Math.exp(-inner);
    }
    return -sum;
  },
};

export const testFunctions: readonly TestFunction[] = [branin, hartmann6];
