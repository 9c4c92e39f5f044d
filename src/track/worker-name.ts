import * as os from 'node:os';

/** "host:pid" of this process: who runs a run. */
export function workerName(): string {
  return `${os.hostname()}:${process.pid}`;
}
