/** A dataset module for WorkerPrefetcher tests: each worker thread builds these rows itself. */
import { Random, Tensor, tensorDataset, type WorkerDataset, type Example } from '../../src/index.js';

/** 50 rows of 16 seeded normal values, labelled by the sign of their sum: inputs [50, 16], classes [50]. */
export function prefetchRows(): WorkerDataset<Example>['dataset'] {
  const random = new Random(77);
  const inputs = new Float32Array(50 * 16).map(() => random.normal());
  const labels = Int32Array.from({ length: 50 }, (_, i) =>
    inputs.subarray(i * 16, (i + 1) * 16).reduce((a, b) => a + b, 0) > 0 ? 1 : 0,
  );
  return tensorDataset(new Tensor(inputs, [50, 16]), labels);
}

export function createDataset(): WorkerDataset<Example> {
  return { dataset: prefetchRows() };
}

export function failingDataset(): WorkerDataset<Example> {
  return {
    dataset: {
      length: 50,
      get: (index) => {
        throw new Error(`sample ${index} cannot be read`);
      },
    },
  };
}
