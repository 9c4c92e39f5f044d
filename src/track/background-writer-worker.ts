/** The writer thread of ./background-writer.ts: applies writes to its own store connection, in order. */
import { parentPort, workerData } from 'node:worker_threads';
import type { WriteMessage, WriteReply } from './background-writer.js';
import { openRunStore } from './open.js';

const { url } = workerData as { url: string };
const store = await openRunStore(url);
let queue: Promise<void> = Promise.resolve();

async function apply(message: WriteMessage): Promise<void> {
  switch (message.method) {
    case 'logMetrics':
      return store.logMetrics(message.runId, message.points);
    case 'updateConfig':
      return store.updateConfig(message.runId, message.values);
    case 'updateSummary':
      return store.updateSummary(message.runId, message.values);
    case 'finishRun':
      await store.finishRun(message.runId, message.state, message.error);
      return;
    case 'addArtifact':
      await store.addArtifact(message.runId, message.artifact);
      return;
    case 'close':
      return store.close();
  }
}

parentPort!.on('message', (message: WriteMessage) => {
  // Chained, so writes land in the order they were posted (a run's finish after its last points).
  queue = queue.then(async () => {
    let error: string | null = null;
    try {
      await apply(message);
    } catch (caught) {
      error = caught instanceof Error ? caught.message : String(caught);
    }
    parentPort!.postMessage({ id: message.id, error } satisfies WriteReply);
  });
});
