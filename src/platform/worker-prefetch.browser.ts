/**
 * The browser build's stand-in for src/data/worker-prefetch.ts, which prepares batches on Node
 * worker threads loaded from a module path. A page has no such module paths; DataLoader prepares
 * batches on the calling thread (the default InProcessPrefetcher), and constructing a
 * WorkerPrefetcher says so.
 */
export type WorkerDataset = never;
export type WorkerPrefetcherOptions = never;

export class WorkerPrefetcher {
  constructor() {
    throw new Error(
      'WorkerPrefetcher is not available in the browser build; DataLoader prepares batches on the calling thread',
    );
  }
}
