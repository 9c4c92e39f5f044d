/**
 * The trial thread (see heartbeat.ts): opens its own connection to the study storage, stamps every
 * running trial of this process each interval, and performs the trial writes the main thread posts,
 * in the order posted, answering each.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { applyTrialWrite, type TrialThreadReply, type TrialThreadRequest } from './heartbeat.js';
import { openStorage } from './storage/open.js';

const { url, intervalMs } = workerData as { url: string; intervalMs: number };
const storage = await openStorage(url);
const active = new Set<number>();
let beating = false;
let writes: Promise<void> = Promise.resolve();

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

async function beat(): Promise<void> {
  // Skip a beat rather than queue them when the database is slow.
  if (beating) return;
  beating = true;
  try {
    for (const id of active) await storage.recordHeartbeat(id);
  } catch (error) {
    console.error(`tensile: heartbeat failed: ${errorMessage(error)}`);
  } finally {
    beating = false;
  }
}

const timer = setInterval(() => void beat(), intervalMs);

parentPort!.on('message', (message: TrialThreadRequest) => {
  switch (message.type) {
    case 'start':
      active.add(message.trialId);
      break;
    case 'stop':
      active.delete(message.trialId);
      break;
    case 'write':
      writes = writes.then(async () => {
        let reply: TrialThreadReply;
        try {
          await applyTrialWrite(storage, message.write);
          reply = { type: 'written', id: message.id, error: null };
        } catch (error) {
          reply = {
            type: 'written',
            id: message.id,
            error: { name: error instanceof Error ? error.name : 'Error', message: errorMessage(error) },
          };
        }
        parentPort!.postMessage(reply);
      });
      break;
    case 'close':
      clearInterval(timer);
      active.clear();
      void writes.then(() => storage.close()).finally(() => parentPort!.close());
      break;
  }
});
