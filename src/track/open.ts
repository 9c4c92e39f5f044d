/**
 * Run store URLs, the same ones the study storage accepts (`--storage`), so runs and studies end up
 * in one database:
 *
 *   memory                        MemoryRunStore (this process only)
 *   sqlite:PATH  or  PATH.db      SqliteRunStore (default: sqlite:./tensile.db)
 *   postgres://USER@HOST/DB       PostgresRunStore; also postgresql://, with ?schema=NAME
 */
import { MemoryRunStore } from './memory.js';
import { PostgresRunStore } from './postgres.js';
import { SqliteRunStore } from './sqlite.js';
import type { RunStore } from './types.js';

/** Where CLI commands record runs when --storage is not given. */
export const defaultStoreUrl = 'sqlite:./tensile.db';

export const runStoreUrlHelp =
  "'memory', 'sqlite:PATH' (or a path ending in .db, .sqlite or .sqlite3) or 'postgres://USER@HOST:PORT/DATABASE'";

/** The SQLite file a URL names, or null when it names another kind of store. */
export function sqliteFile(url: string): string | null {
  if (url.startsWith('sqlite:')) {
    const file = url.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '');
    if (file.length === 0)
      throw new Error(`storage '${url}': the SQLite URL needs a file path, as in sqlite:./tensile.db`);
    return file;
  }
  if (/\.(db|sqlite|sqlite3)$/i.test(url) && !url.includes('://')) return url;
  return null;
}

/** Opens the run store a URL names; throws with the accepted forms for anything else. */
export async function openRunStore(url: string): Promise<RunStore> {
  if (url === 'memory' || url === 'memory:') return new MemoryRunStore();
  const file = sqliteFile(url);
  if (file !== null) return new SqliteRunStore(file);
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) return PostgresRunStore.connect(url);
  throw new Error(`unknown storage '${url}': use ${runStoreUrlHelp}`);
}
