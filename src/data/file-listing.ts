/**
 * Many file paths held compactly, for datasets of hundreds of thousands of files whose paths must be
 * kept (to read a file again, or to name it in an error) but not as one JS string each: a string in
 * V8 costs its characters plus about 20 bytes, and an array slot 8 more, for every file. Here each
 * path is split at its last separator; the folder part is stored once per folder, and the name's
 * UTF-8 bytes go into one growing byte array with an end offset and a folder index per file: about
 * the name's length plus 8 bytes a file (a 9-character name: 17 bytes instead of ~100).
 */

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: false });
/** A UTF-16 surrogate without its partner: such a string does not survive UTF-8. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** File paths by index, stored compactly; `at(i)` gives back the exact string added. */
export class FileListing implements Iterable<string> {
  private folders: string[] = [];
  private readonly folderIds = new Map<string, number>();
  private lastFolder = '';
  private lastFolderId = -1;
  private folderOf = new Uint32Array(16);
  private ends = new Uint32Array(16);
  private bytes = new Uint8Array(256);
  private used = 0;
  /** Names that UTF-8 cannot carry exactly (a lone UTF-16 surrogate), by index: kept as strings. */
  private readonly irregular = new Map<number, string>();
  private count = 0;

  /** A listing of `paths`, in order. */
  static from(paths: Iterable<string>): FileListing {
    const listing = new FileListing();
    for (const file of paths) listing.add(file);
    return listing;
  }

  get length(): number {
    return this.count;
  }

  /** Appends one path. */
  add(file: string): void {
    const split = Math.max(file.lastIndexOf('/'), file.lastIndexOf('\\')) + 1;
    const folder = file.slice(0, split);
    if (folder !== this.lastFolder || this.lastFolderId < 0) {
      let id = this.folderIds.get(folder);
      if (id === undefined) {
        id = this.folders.length;
        this.folders.push(folder);
        this.folderIds.set(folder, id);
      }
      this.lastFolder = folder;
      this.lastFolderId = id;
    }
    if (this.count === this.ends.length) {
      this.ends = grow(this.ends, this.ends.length * 2);
      this.folderOf = grow(this.folderOf, this.folderOf.length * 2);
    }
    const name = file.slice(split);
    if (LONE_SURROGATE.test(name)) this.irregular.set(this.count, name);
    else {
      // A UTF-16 code unit takes at most 3 UTF-8 bytes.
      if (this.used + name.length * 3 > this.bytes.length)
        this.bytes = grow(this.bytes, Math.max(this.bytes.length * 2, this.used + name.length * 3));
      this.used += encoder.encodeInto(name, this.bytes.subarray(this.used)).written;
      if (this.used > 0xffffffff) throw new RangeError('FileListing: more than 4 GiB of file names');
    }
    this.folderOf[this.count] = this.lastFolderId;
    this.ends[this.count] = this.used;
    this.count++;
  }

  /** The path at `index`, exactly as added. */
  at(index: number): string {
    if (!Number.isInteger(index) || index < 0 || index >= this.count)
      throw new RangeError(`FileListing: index ${index} is outside [0, ${this.count})`);
    const folder = this.folders[this.folderOf[index]!]!;
    const irregular = this.irregular.get(index);
    if (irregular !== undefined) return folder + irregular;
    const start = index === 0 ? 0 : this.ends[index - 1]!;
    return folder + decoder.decode(this.bytes.subarray(start, this.ends[index]!));
  }

  /** The paths at `indices`, in that order, as a new listing. */
  select(indices: ArrayLike<number>): FileListing {
    const chosen = new FileListing();
    for (let i = 0; i < indices.length; i++) chosen.add(this.at(indices[i]!));
    chosen.trim();
    return chosen;
  }

  /** Gives back the room reserved for growth (call once every path is added). */
  trim(): void {
    this.ends = this.ends.slice(0, this.count);
    this.folderOf = this.folderOf.slice(0, this.count);
    this.bytes = this.bytes.slice(0, this.used);
  }

  /** Bytes held, roughly (the arrays, and the folder strings at two bytes a character). */
  get byteLength(): number {
    const folderBytes = this.folders.reduce((sum, folder) => sum + 2 * folder.length + 32, 0);
    return this.ends.byteLength + this.folderOf.byteLength + this.bytes.byteLength + folderBytes;
  }

  *[Symbol.iterator](): Iterator<string> {
    for (let i = 0; i < this.count; i++) yield this.at(i);
  }
}

function grow<T extends Uint8Array | Uint32Array>(array: T, length: number): T {
  const larger = new (array.constructor as new (length: number) => T)(length);
  larger.set(array);
  return larger;
}
