/**
 * Runs whose process died. A training killed with SIGKILL (or a crash, or a closed laptop lid) never
 * finishes its run, which would then show as running forever. A run records who runs it
 * ("host:pid"); on that same host we can ask the kernel whether the process still exists and, when
 * it does not, end the run as failed. Runs of other hosts are left alone: there is no way to tell a
 * slow run from a dead one from here (the dashboard shows how long ago such a run last wrote).
 */
import * as os from 'node:os';
import type { RunStore } from './types.js';

/** Whether process `pid` exists on this machine (one that is not ours to signal still exists). */
export function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Ends as failed every running run of this host whose process no longer exists; returns their ids.
 * A pid reused by an unrelated process keeps its run "running" (the safe side).
 */
export async function failLostRuns(store: RunStore, host = os.hostname()): Promise<number[]> {
  const ended: number[] = [];
  for (const run of await store.listRuns({ state: 'running' })) {
    if (run.worker === null) continue;
    const separator = run.worker.lastIndexOf(':');
    const runHost = run.worker.slice(0, separator);
    const pid = Number(run.worker.slice(separator + 1));
    if (runHost !== host || !Number.isInteger(pid) || pid <= 0 || processExists(pid)) continue;
    const message = `the process that ran it (${run.worker}) ended without finishing the run: killed or crashed`;
    if (await store.finishRun(run.id, 'failed', message)) ended.push(run.id);
  }
  return ended;
}
