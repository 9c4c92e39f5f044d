/**
 * One worker thread of bench/data.ts: decodes and augments its share of the images (a listing CSV)
 * each time it is told to start, and says how many it made.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { augmentAll, type DecodeJob, decodeJob } from './data-jobs.js';

const job = workerData as DecodeJob;
parentPort!.postMessage({ ready: true });
// Told 'go' once to warm up (compile the code) and once more to be timed.
parentPort!.on('message', () => {
  void (async () => {
    const dataset = await decodeJob(job);
    augmentAll(dataset, job.augment, job.seed);
    parentPort!.postMessage({ images: dataset.count });
  })();
});
