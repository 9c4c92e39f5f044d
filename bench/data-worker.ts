/**
 * One worker thread of bench/data.ts: decodes and augments its share of the images (a listing CSV)
 * when told to start, and says how many it made.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { augmentAll, type DecodeJob, decodeJob } from './data-jobs.js';

const job = workerData as DecodeJob;
parentPort!.postMessage({ ready: true });
parentPort!.once('message', () => {
  void (async () => {
    const dataset = await decodeJob(job);
    augmentAll(dataset, job.augment, job.seed);
    parentPort!.postMessage({ images: dataset.count });
  })();
});
