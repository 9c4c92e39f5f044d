/**
 * The PostgreSQL connection handling both SQL storages share (studies in src/tune/storage, runs in
 * src/track): transactions on pooled connections that survive a database restart.
 */
import type pg from 'pg';
import { isConnectionError, type RetryPolicy } from './retry.js';

/**
 * Runs `action` in a transaction on one pooled connection, again from the start on a fresh
 * connection when the connection fails (see retry.ts), for up to the retry time.
 */
export async function retriedTransaction<T>(
  pool: pg.Pool,
  retry: RetryPolicy,
  action: (client: pg.PoolClient) => Promise<T>,
): Promise<T> {
  return retry.run(async () => {
    // A checked-out client whose connection dies between queries emits 'error' with no pool
    // listener attached: unhandled, that would end the process (the failing query reports it).
    // The listener goes on in the pool's callback, in the same tick as the checkout: with
    // `await pool.connect()` an error arriving in the same network packet as the connection's
    // readiness (a server shutting down) would be emitted before the await resumed.
    let broken: Error | undefined;
    const onError = (error: Error) => {
      broken = error;
    };
    const client = await new Promise<pg.PoolClient>((resolve, reject) => {
      pool.connect((error, connected) => {
        if (error || connected === undefined) {
          reject(error ?? new Error('no connection'));
          return;
        }
        connected.on('error', onError);
        resolve(connected);
      });
    });
    try {
      await client.query('BEGIN');
      const result = await action(client);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      if (isConnectionError(error)) broken ??= error as Error;
      else await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.removeListener('error', onError);
      // A broken connection is discarded rather than handed to the next caller.
      client.release(broken);
    }
  });
}
