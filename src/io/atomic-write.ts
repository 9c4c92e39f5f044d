/**
 * Crash-safe file replacement, shared by the safetensors writer and the dataset caches.
 *
 * The bytes go to a temporary file in the destination's directory (same file system, so the final
 * rename is atomic), are flushed to disk with fsync, and only then renamed over the destination. A
 * crash at any point leaves either the old file or the complete new one, never a torn mix.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * Writes `chunks` (concatenated) to `filePath` atomically, creating the directory when missing.
 *
 * @example
 * writeFileAtomic('/tmp/model.safetensors', [header, data]);
 */
export function writeFileAtomic(filePath: string, chunks: Uint8Array | readonly Uint8Array[]): void {
  const directory = path.dirname(path.resolve(filePath));
  fs.mkdirSync(directory, { recursive: true });
  // The pid and a random suffix keep concurrent writers (two processes, or two calls racing) from
  // sharing a temporary file; the leading dot keeps it out of casual directory listings.
  removeAbandonedTemporaries(directory, path.basename(filePath));
  const suffix = `${process.pid}.${Math.floor(Math.random() * 0x100000000).toString(16)}`;
  const temporaryPath = path.join(directory, `.${path.basename(filePath)}.${suffix}.tmp`);
  const parts = chunks instanceof Uint8Array ? [chunks] : chunks;
  let descriptor = fs.openSync(temporaryPath, 'wx', 0o644);
  try {
    for (const part of parts) {
      let written = 0;
      while (written < part.byteLength) {
        written += fs.writeSync(descriptor, part, written, part.byteLength - written);
      }
    }
    fs.fsyncSync(descriptor);
    fs.closeSync(descriptor);
    descriptor = -1;
    fs.renameSync(temporaryPath, filePath);
  } catch (error) {
    if (descriptor >= 0) fs.closeSync(descriptor);
    fs.rmSync(temporaryPath, { force: true });
    throw error;
  }
  syncDirectory(directory);
}

/**
 * Removes temporary files that an earlier writer of the same destination left behind when it was
 * killed mid-write (`.NAME.PID.HEX.tmp` whose process no longer exists). A live writer's file is left
 * alone, so two processes saving to one path never delete each other's work.
 */
function removeAbandonedTemporaries(directory: string, baseName: string): void {
  let names: string[];
  try {
    names = fs.readdirSync(directory);
  } catch {
    return;
  }
  const prefix = `.${baseName}.`;
  for (const name of names) {
    if (!name.startsWith(prefix) || !name.endsWith('.tmp')) continue;
    const match = /^(\d+)\.[0-9a-f]+\.tmp$/.exec(name.slice(prefix.length));
    if (match === null || processIsAlive(Number(match[1]))) continue;
    fs.rmSync(path.join(directory, name), { force: true });
  }
}

function processIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return (error as { code?: string }).code === 'EPERM';
  }
}

/**
 * Makes the rename itself durable. Some platforms (Windows) cannot open a directory for fsync; the
 * file's contents are already on disk there, so failing to sync the directory entry is not an error.
 */
function syncDirectory(directory: string): void {
  let descriptor: number;
  try {
    descriptor = fs.openSync(directory, 'r');
  } catch {
    return;
  }
  try {
    fs.fsyncSync(descriptor);
  } catch {
    // See above: best effort only.
  } finally {
    fs.closeSync(descriptor);
  }
}
