/**
 * Storage URLs, mapped to storage classes in this one place (the CLI, study.yaml and the heartbeat
 * thread all come through here):
 *
 *   memory                        MemoryStorage (this process only)
 *   sqlite:PATH  or  PATH.db      SqliteStorage (a file; several processes on one machine)
 *   postgres://USER@HOST/DB       PostgresStorage (many machines); also postgresql://
 */
import { MemoryStorage } from './memory.js';
import { PostgresStorage } from './postgres.js';
import { SqliteStorage } from './sqlite.js';
import type { Storage } from './storage.js';

export const storageUrlHelp =
  "'memory', 'sqlite:PATH' (or a path ending in .db, .sqlite or .sqlite3) or 'postgres://USER@HOST:PORT/DATABASE'";

/** Opens the storage a URL names; throws with the accepted forms for anything else. */
export async function openStorage(url: string): Promise<Storage> {
  if (url === 'memory' || url === 'memory:') return new MemoryStorage();
  if (url.startsWith('sqlite:')) {
    const file = url.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '');
    if (file.length === 0)
      throw new Error(`storage '${url}': the SQLite URL needs a file path, as in sqlite:out/tune/study.db`);
    return new SqliteStorage(file);
  }
  if (/\.(db|sqlite|sqlite3)$/i.test(url) && !url.includes('://')) return new SqliteStorage(url);
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) return PostgresStorage.connect(url);
  throw new Error(`unknown storage '${url}': use ${storageUrlHelp}`);
}
