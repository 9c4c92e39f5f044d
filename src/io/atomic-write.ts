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
  try {
    writeResolved(resolveDestination(filePath), chunks);
  } catch (error) {
    throw namingPath(error, filePath);
  }
}

/**
 * Node's errors for writes without a path (ENOSPC from write, EIO from fsync) or naming the
 * temporary file get the destination the caller asked for, so messages say which file could not be
 * written.
 */
function namingPath(error: unknown, filePath: string): unknown {
  if (error instanceof Error && typeof (error as { code?: unknown }).code === 'string') {
    const system = error as Error & { path?: string; syscall?: string };
    if (system.path === undefined || system.path.endsWith('.tmp')) {
      system.path = filePath;
      system.syscall = 'write';
    }
  }
  return error;
}

/**
 * Where a write to `filePath` goes. A symbolic link is written through to its target (the link
 * stays a link, as with `cp`/`>` in a shell), and the target is checked like any destination.
 */
function resolveDestination(filePath: string): string {
  let destination = path.resolve(filePath);
  for (let hops = 0; hops < 40; hops++) {
    let stats: fs.Stats;
    try {
      stats = fs.lstatSync(destination);
    } catch (error) {
      if ((error as { code?: string }).code === 'ENOENT') return destination;
      throw error;
    }
    if (stats.isSymbolicLink()) {
      destination = path.resolve(path.dirname(destination), fs.readlinkSync(destination));
      continue;
    }
    if (stats.isDirectory()) throw targetError(filePath, 'is a directory', 'EISDIR');
    if (!stats.isFile()) throw targetError(filePath, `is not a regular file (${kindOf(stats)})`, 'EINVAL');
    return destination;
  }
  throw targetError(filePath, 'has too many levels of symbolic links', 'ELOOP');
}

function kindOf(stats: fs.Stats): string {
  if (stats.isCharacterDevice()) return 'a character device';
  if (stats.isBlockDevice()) return 'a block device';
  if (stats.isFIFO()) return 'a named pipe';
  if (stats.isSocket()) return 'a socket';
  return 'not a file';
}

function targetError(filePath: string, what: string, code: string): Error {
  return Object.assign(new Error(`cannot write '${filePath}': it ${what}`), {
    code,
    path: filePath,
    syscall: 'write',
  });
}

/**
 * Checks, before long work, that writeFileAtomic could write `filePath`: not a directory or a device,
 * symbolic links followed, and the directory that would hold it writable (a probe file is created
 * and removed; missing directories are created, as the write would). Throws naming the path.
 */
export function assertWritableTarget(filePath: string): void {
  try {
    const destination = resolveDestination(filePath);
    const directory = path.dirname(destination);
    fs.mkdirSync(directory, { recursive: true });
    const probe = path.join(directory, `.${path.basename(destination)}.${process.pid}.probe`);
    fs.closeSync(fs.openSync(probe, 'wx', 0o600));
    fs.rmSync(probe, { force: true });
  } catch (error) {
    const system = error as { code?: string; path?: string };
    if (typeof system.code === 'string' && system.path !== undefined && system.path !== filePath) {
      // Name the file the user gave, not the probe or a directory on the way.
      throw Object.assign(new Error(`cannot write '${filePath}': ${(error as Error).message}`), {
        code: system.code,
        path: filePath,
        syscall: 'write',
      });
    }
    throw error;
  }
}

function writeResolved(filePath: string, chunks: Uint8Array | readonly Uint8Array[]): void {
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
