/**
 * The SQLite helper's retry around switching a file to WAL (src/sql/sqlite.ts): SQLite answers
 * SQLITE_BUSY at once, without its busy handler, when the switch could deadlock with another
 * connection waiting to write, which happens when several tuning workers open a new file together.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { enableWriteAheadLog } from '../src/sql/sqlite.js';

/** A stand-in connection whose pragma fails with `failures` errors in turn, then succeeds. */
function connection(failures: Error[]) {
  const calls: string[] = [];
  return {
    calls,
    pragma(source: string) {
      calls.push(source);
      const failure = failures.shift();
      if (failure !== undefined) throw failure;
      return 'wal';
    },
  };
}

function sqliteError(code: string): Error {
  return Object.assign(new Error(code === 'SQLITE_BUSY' ? 'database is locked' : 'disk I/O error'), { code });
}

describe('enableWriteAheadLog', () => {
  it('retries while the file is busy, then switches', () => {
    const db = connection([
      sqliteError('SQLITE_BUSY'),
      sqliteError('SQLITE_BUSY'),
      sqliteError('SQLITE_BUSY'),
    ]);
    const started = Date.now();
    enableWriteAheadLog(db as never);
    assert.deepEqual(db.calls, Array(4).fill('journal_mode = WAL'));
    assert.ok(Date.now() - started >= 50, 'it waited between tries');
  });

  it('does not retry any other error', () => {
    const db = connection([sqliteError('SQLITE_IOERR')]);
    assert.throws(() => enableWriteAheadLog(db as never), /disk I\/O error/);
    assert.equal(db.calls.length, 1);
  });
});
