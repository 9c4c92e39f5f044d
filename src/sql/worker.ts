/** Worker identity, stored with trials and runs: who ran them. */
import * as os from 'node:os';

/**
 * "host:pid" of this process. Stale-trial errors name it, and lost-run detection (src/track) splits
 * it at the last colon to ask whether the process still exists on this host.
 */
export function workerName(): string {
  return `${os.hostname()}:${process.pid}`;
}
