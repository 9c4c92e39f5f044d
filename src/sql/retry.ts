/**
 * Riding out a database that goes away for a while (a restart, a failover, a dropped connection).
 *
 * A tuning trial can train for an hour; losing its result because PostgreSQL restarted during the
 * last second is not acceptable. Operations on a network storage therefore retry, with backoff, for
 * a stated time (60 s by default, `TENSILE_STORAGE_RETRY_SECONDS` to change it) when the error says
 * the connection, not the request, failed. Only then does the caller see a StorageUnavailableError.
 *
 * A retried operation runs again from the start in a fresh transaction: an operation whose first try
 * failed before COMMIT left nothing behind. The one case that can repeat a write is a COMMIT whose
 * reply was lost with the connection; a metric point may then be stored twice, never lost.
 */

/** Seconds an operation keeps retrying while the database is unreachable. */
export const defaultRetrySeconds = 60;

/** The retry time from TENSILE_STORAGE_RETRY_SECONDS (seconds, >= 0), else the default. */
export function retrySecondsFromEnvironment(): number {
  const text = process.env.TENSILE_STORAGE_RETRY_SECONDS;
  if (text === undefined || text.trim() === '') return defaultRetrySeconds;
  const seconds = Number(text);
  if (!Number.isFinite(seconds) || seconds < 0)
    throw new RangeError(`TENSILE_STORAGE_RETRY_SECONDS must be a number of seconds >= 0, got '${text}'`);
  return seconds;
}

/** The database stayed unreachable for the whole retry time. */
export class StorageUnavailableError extends Error {
  override readonly name = 'StorageUnavailableError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** Socket-level failures: the server is down, restarting or unreachable. */
const networkCodes = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
]);

/**
 * PostgreSQL SQLSTATEs that mean "try again on a new connection": class 08 (connection exception),
 * 57P01-57P03 (administrator or crash shutdown, cannot connect now: the server is stopping or
 * starting), 53300 (too many connections), 40001/40P01 (serialization failure, deadlock: the
 * transaction was rolled back and is safe to run again).
 */
function retryableSqlState(code: string): boolean {
  return (
    code.startsWith('08') ||
    code === '57P01' ||
    code === '57P02' ||
    code === '57P03' ||
    code === '53300' ||
    code === '40001' ||
    code === '40P01'
  );
}

/** node-postgres's own messages for a connection that died under it. */
const droppedConnection =
  /Connection terminated|connection error and is not queryable|Client was closed and is not queryable|timeout exceeded when trying to connect/i;

/** Whether `error` says the database could not be reached (as opposed to a bad request). */
export function isConnectionError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && (networkCodes.has(code) || retryableSqlState(code))) return true;
  if (droppedConnection.test(error.message)) return true;
  // AggregateError from a host name that resolves to several addresses (localhost: ::1 and 127.0.0.1).
  if (error instanceof AggregateError) return error.errors.some(isConnectionError);
  return false;
}

export interface RetryOptions {
  /** Keep retrying for this many seconds (default: retrySecondsFromEnvironment()). */
  seconds?: number;
  /** What the operation is, for the messages ("PostgreSQL study storage"). */
  what: string;
  /** Called once when an outage starts and once when it ends (default: a line on stderr). */
  notify?: (line: string) => void;
}

/** Outages in progress in this process, by the policy that saw them (for a dashboard to report). */
const outages = new Map<RetryPolicy, { what: string; since: number; reason: string }>();

/** A database outage this process is riding out now, or null: what, since when (ms, performance.now()), why. */
export function currentOutage(): { what: string; since: number; reason: string } | null {
  for (const outage of outages.values()) return outage;
  return null;
}

/** When (performance.now()) the last outage this process saw ended. */
let lastOutageEnded = -Infinity;

/**
 * Whether this process is in a database outage or saw one end less than `seconds` ago. Heartbeats
 * could not be stamped during it, so stale-looking trials may belong to live workers: judging them
 * waits until the workers have had a grace period to stamp again.
 */
export function outageWithin(seconds: number): boolean {
  return outages.size > 0 || performance.now() - lastOutageEnded < seconds * 1000;
}

/** Shared by every operation of one storage, so an outage is announced once, not per operation. */
export class RetryPolicy {
  readonly seconds: number;
  readonly what: string;
  private readonly notify: (line: string) => void;
  private outageSince: number | null = null;

  constructor(options: RetryOptions) {
    this.seconds = options.seconds ?? retrySecondsFromEnvironment();
    if (!(this.seconds >= 0)) throw new RangeError(`retry seconds must be >= 0, got ${this.seconds}`);
    this.what = options.what;
    this.notify = options.notify ?? ((line) => console.error(line));
  }

  /** Runs `action`, running it again after connection errors until it succeeds or time runs out. */
  async run<T>(action: () => Promise<T>): Promise<T> {
    let delay = 100;
    for (;;) {
      try {
        const result = await action();
        if (this.outageSince !== null) {
          const seconds = ((performance.now() - this.outageSince) / 1000).toFixed(1);
          this.outageSince = null;
          outages.delete(this);
          lastOutageEnded = performance.now();
          this.notify(`tensile: ${this.what} reachable again after ${seconds} s`);
        }
        return result;
      } catch (error) {
        if (!isConnectionError(error)) throw error;
        const now = performance.now();
        if (this.outageSince === null) {
          this.outageSince = now;
          outages.set(this, { what: this.what, since: now, reason: errorSummary(error) });
          this.notify(
            `tensile: ${this.what} unavailable (${errorSummary(error)}); retrying for up to ${this.seconds} s`,
          );
        }
        // The retry time counts from the start of the outage, not of this operation: writes queued
        // behind each other must not wait the retry time one after the other.
        const deadline = this.outageSince + this.seconds * 1000;
        if (now + delay > deadline) {
          throw new StorageUnavailableError(
            `${this.what} unavailable for ${this.seconds} s: ${errorSummary(error)}`,
            { cause: error },
          );
        }
        await new Promise((resolve) => setTimeout(resolve, delay));
        // Doubling to at most 2 s: quick after a blip, and at most 2 s late after a restart.
        delay = Math.min(delay * 2, 2000);
      }
    }
  }
}

function errorSummary(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) return errorSummary(error.errors[0]);
  if (!(error instanceof Error)) return String(error);
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && !error.message.includes(code)
    ? `${code}: ${error.message}`
    : error.message;
}
