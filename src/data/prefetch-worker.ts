/**
 * The thread of a WorkerPrefetcher (see worker-prefetch.ts): builds its own copy of the dataset from
 * the module the main thread named, then answers each job (sample indices) with the collated batch,
 * its arrays transferred rather than copied back.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Tensor } from '../tensor/tensor.js';
import { type Batch, collateExamples, type Dataset } from './protocol.js';
import type { BatchMessage, JobMessage, WorkerDataset } from './worker-prefetch.js';

const { module, exportName } = workerData as { module: string; exportName: string };

async function load(): Promise<WorkerDataset<unknown>> {
  const loaded = (await import(module)) as Record<string, unknown>;
  const factory = loaded[exportName];
  if (typeof factory !== 'function')
    throw new TypeError(`WorkerPrefetcher: '${module}' has no function export '${exportName}'`);
  return (await (factory as () => WorkerDataset<unknown> | Promise<WorkerDataset<unknown>>)()) ?? {};
}

const ready = load();
// A failed load is reported with the first job; it must not also be an unhandled rejection.
ready.catch(() => undefined);

/** A fresh copy of a view, so that transferring it never detaches the dataset's own memory. */
function own<T extends Float32Array | Float64Array | Int32Array>(data: T): T {
  return data.slice() as T;
}

function reply(id: number, batch: Batch): void {
  const input = own(batch.input.data as Float32Array);
  const target =
    batch.target instanceof Tensor
      ? {
          kind: 'floats' as const,
          data: own(batch.target.data as Float32Array),
          shape: [...batch.target.shape],
        }
      : { kind: 'classes' as const, data: own(batch.target) };
  const message: BatchMessage = {
    id,
    size: batch.size,
    input: { data: input, shape: [...batch.input.shape] },
    target,
  };
  // slice() made new, unshared buffers.
  parentPort!.postMessage(message, [input.buffer as ArrayBuffer, target.data.buffer as ArrayBuffer]);
}

parentPort!.on('message', (job: JobMessage) => {
  void ready.then(
    ({ dataset, collate }: { dataset: Dataset<unknown>; collate?: (samples: unknown[]) => Batch }) => {
      try {
        const samples = Array.from(job.indices, (index) => dataset.get(index));
        reply(
          job.id,
          collate === undefined
            ? collateExamples(samples as Parameters<typeof collateExamples>[0])
            : collate(samples),
        );
      } catch (error) {
        parentPort!.postMessage({
          id: job.id,
          error: error instanceof Error ? error.message : String(error),
        });
      }
    },
    (error: unknown) =>
      parentPort!.postMessage({ id: job.id, error: error instanceof Error ? error.message : String(error) }),
  );
});
