/**
 * Things that live only while a storage is open: the heartbeat thread of a study's trials, say. A
 * script that ends with `storage.close()` (and never calls `study.close()`) must still exit, so
 * closing a storage closes what was opened on its behalf.
 */

type Closer = () => Promise<void>;

const held = new WeakMap<object, Set<Closer>>();

/** Registers `close` to run when `storage` closes; returns a function that unregisters it. */
export function closeWithStorage(storage: object, close: Closer): () => void {
  let closers = held.get(storage);
  if (closers === undefined) {
    closers = new Set();
    held.set(storage, closers);
  }
  closers.add(close);
  return () => void closers.delete(close);
}

/** Runs every closer registered for `storage` (each once), waiting for all of them. */
export async function closeStorageResources(storage: object): Promise<void> {
  const closers = held.get(storage);
  if (closers === undefined) return;
  held.delete(storage);
  await Promise.allSettled([...closers].map((close) => close()));
}
