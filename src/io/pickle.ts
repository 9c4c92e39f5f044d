/**
 * A reader for Python's pickle format (binary protocols 2 to 5) that treats the stream as data and
 * never runs anything: a pickle is a small stack-machine program, and Python's own unpickler calls
 * whatever function a GLOBAL opcode names (os.system included). Here every GLOBAL is looked up in an
 * allow-list the caller gives (see PickleGlobals) and anything else stops the read with an error
 * naming it, before a single further opcode — the same rule as torch.load(weights_only=True).
 *
 * Python values become: None → null, bool → boolean, int → number (bigint beyond 2^53), float →
 * number, str → string, bytes → Uint8Array, tuple and list → arrays, dict → PickleDict. Allowed
 * globals produce whatever their entry returns.
 *
 * The opcodes are those of the binary protocols (https://docs.python.org/3/library/pickle.html,
 * and the opcode table in CPython's Lib/pickletools.py); the text opcodes of protocols 0 and 1
 * and the object-building ones (INST, OBJ, NEWOBJ, EXT*) are refused by name.
 */

/** A value read from a pickle. */
export type PickleValue =
  null | boolean | number | bigint | string | Uint8Array | PickleValue[] | PickleDict | PickleObject;

/** A Python dict (or OrderedDict), in insertion order. Keys are strings or numbers in state dicts. */
export class PickleDict {
  readonly entries = new Map<PickleValue, PickleValue>();
}

/**
 * Anything an allowed global stands for, or returns when called: a storage type, a tensor, a
 * function. `call` (REDUCE) and `build` (BUILD) are refused unless the object defines them.
 */
export interface PickleObject {
  readonly kind: string;
  call?(args: PickleValue[]): PickleValue;
  build?(state: PickleValue): void;
}

/** The globals a stream may name, by `module.name` (e.g. 'collections.OrderedDict'). */
export type PickleGlobals = ReadonlyMap<string, PickleObject>;

export interface UnpickleOptions {
  globals: PickleGlobals;
  /** Resolves a persistent id (BINPERSID); without it persistent ids are refused. */
  persistentLoad?(id: PickleValue): PickleValue;
  /** Names the stream in errors. */
  source: string;
  /** Where the stream starts in bytes (default 0). */
  offset?: number;
  /** Added to the refusal of a global: what the caller expects instead. */
  refusalHint?: string;
}

/** A malformed pickle, or one that asks for something not allowed. */
export class PickleError extends Error {
  override name = 'PickleError';
}

const MARK = Symbol('mark');
type StackItem = PickleValue | typeof MARK;

/** Integers longer than this many bytes are refused (state dicts need at most 10: the legacy magic). */
const LONGEST_INTEGER_BYTES = 64;

const refusedOpcodes: Record<number, string> = {
  0x69: 'INST',
  0x6f: 'OBJ',
  0x81: 'NEWOBJ',
  0x92: 'NEWOBJ_EX',
  0x82: 'EXT1',
  0x83: 'EXT2',
  0x84: 'EXT4',
  0x50: 'PERSID (text)',
  0x49: 'INT (text)',
  0x4c: 'LONG (text)',
  0x46: 'FLOAT (text)',
  0x53: 'STRING (text)',
  0x56: 'UNICODE (text)',
  0x67: 'GET (text)',
  0x70: 'PUT (text)',
  0x8f: 'EMPTY_SET',
  0x90: 'ADDITEMS',
  0x91: 'FROZENSET',
  0x97: 'NEXT_BUFFER',
  0x98: 'READONLY_BUFFER',
};

/**
 * Reads one pickle from bytes (starting at options.offset) up to its STOP opcode. Returns the value
 * and the offset just after STOP, so streams of several pickles (PyTorch's legacy format) read in
 * turn.
 */
export function unpickle(bytes: Uint8Array, options: UnpickleOptions): { value: PickleValue; end: number } {
  const { source } = options;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let position = options.offset ?? 0;
  const stack: StackItem[] = [];
  const memo = new Map<number, PickleValue>();
  const fail = (message: string): never => {
    throw new PickleError(`${source}: ${message}`);
  };
  const need = (count: number, what: string) => {
    if (count < 0 || position + count > bytes.byteLength)
      fail(
        `the pickle ends inside ${what} at byte ${position} (${count} bytes needed, ${bytes.byteLength - position} left): it is truncated`,
      );
  };
  const take = (count: number, what: string): Uint8Array => {
    need(count, what);
    const slice = bytes.subarray(position, position + count);
    position += count;
    return slice;
  };
  const u8 = (what: string) => take(1, what)[0]!;
  const u16 = (what: string) => {
    need(2, what);
    position += 2;
    return view.getUint16(position - 2, true);
  };
  const u32 = (what: string) => {
    need(4, what);
    position += 4;
    return view.getUint32(position - 4, true);
  };
  const u64 = (what: string) => {
    need(8, what);
    position += 8;
    const value = view.getBigUint64(position - 8, true);
    if (value > BigInt(bytes.byteLength)) fail(`${what} declares ${value} bytes, more than the whole stream`);
    return Number(value);
  };
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  const text = (count: number, what: string): string => {
    const data = take(count, what);
    try {
      return utf8.decode(data);
    } catch {
      return fail(`${what} at byte ${position - count} is not valid UTF-8`);
    }
  };
  const latin1 = (data: Uint8Array) =>
    Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('latin1');
  const line = (what: string): string => {
    const end = bytes.indexOf(0x0a, position);
    if (end < 0 || end - position > 1024) fail(`${what} at byte ${position} has no end of line`);
    return latin1(take(end - position + 1, what).subarray(0, -1));
  };
  const pop = (what: string): PickleValue => {
    const item = stack.pop();
    if (item === undefined || item === MARK)
      fail(`${what} needs a value on the stack, found ${item === MARK ? 'a mark' : 'none'}`);
    return item as PickleValue;
  };
  const top = (what: string): PickleValue => {
    const item = stack[stack.length - 1];
    if (item === undefined || item === MARK) fail(`${what} needs a value on the stack`);
    return item as PickleValue;
  };
  const popToMark = (what: string): PickleValue[] => {
    const index = stack.lastIndexOf(MARK);
    if (index < 0) fail(`${what} without a MARK`);
    const items = stack.splice(index) as PickleValue[];
    items.shift();
    return items;
  };
  const integer = (data: Uint8Array): number | bigint => {
    if (data.byteLength === 0) return 0;
    let value = 0n;
    for (let i = data.byteLength - 1; i >= 0; i--) value = (value << 8n) | BigInt(data[i]!);
    if (data[data.byteLength - 1]! & 0x80) value -= 1n << BigInt(8 * data.byteLength);
    return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER)
      ? Number(value)
      : value;
  };
  const lookUp = (module: string, name: string): PickleObject => {
    const found = options.globals.get(`${module}.${name}`);
    if (found === undefined)
      fail(
        `refusing global '${module}.${name}': it is not one a state dict needs, and nothing it names is run` +
          (options.refusalHint === undefined ? '' : ` (${options.refusalHint})`),
      );
    return found!;
  };
  const setItems = (target: PickleValue, items: PickleValue[], what: string) => {
    if (!(target instanceof PickleDict)) fail(`${what} on something that is not a dict`);
    if (items.length % 2 !== 0) fail(`${what} with an odd number of items`);
    for (let i = 0; i < items.length; i += 2) (target as PickleDict).entries.set(items[i]!, items[i + 1]!);
  };
  const append = (target: PickleValue, items: PickleValue[], what: string) => {
    if (!Array.isArray(target)) fail(`${what} on something that is not a list`);
    (target as PickleValue[]).push(...items);
  };

  for (;;) {
    const at = position;
    const opcode = u8('an opcode');
    switch (opcode) {
      case 0x80: // PROTO
        if (u8('PROTO') > 5) fail(`pickle protocol ${bytes[position - 1]} is newer than 5`);
        break;
      case 0x95: // FRAME: a length hint only
        u64('FRAME');
        break;
      case 0x2e: {
        // STOP
        const value = pop('STOP');
        if (stack.length !== 0) fail(`STOP with ${stack.length} values left on the stack`);
        return { value, end: position };
      }
      case 0x28: // MARK
        stack.push(MARK);
        break;
      case 0x30: // POP
        if (stack.pop() === undefined) fail('POP on an empty stack');
        break;
      case 0x31: // POP_MARK
        popToMark('POP_MARK');
        break;
      case 0x32: // DUP
        stack.push(top('DUP'));
        break;
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x4a: // BININT
        need(4, 'BININT');
        stack.push(view.getInt32(position, true));
        position += 4;
        break;
      case 0x4b: // BININT1
        stack.push(u8('BININT1'));
        break;
      case 0x4d: // BININT2
        stack.push(u16('BININT2'));
        break;
      case 0x8a: // LONG1
      case 0x8b: {
        // LONG4
        const length = opcode === 0x8a ? u8('LONG1') : u32('LONG4');
        if (length > LONGEST_INTEGER_BYTES)
          fail(`an integer of ${length} bytes at byte ${at} (at most ${LONGEST_INTEGER_BYTES})`);
        stack.push(integer(take(length, 'an integer')));
        break;
      }
      case 0x47: // BINFLOAT (big-endian)
        need(8, 'BINFLOAT');
        stack.push(view.getFloat64(position, false));
        position += 8;
        break;
      case 0x58: // BINUNICODE
        stack.push(text(u32('BINUNICODE'), 'a string'));
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(text(u8('SHORT_BINUNICODE'), 'a string'));
        break;
      case 0x8d: // BINUNICODE8
        stack.push(text(u64('BINUNICODE8'), 'a string'));
        break;
      case 0x54: // BINSTRING (Python 2 str, read as Latin-1)
        stack.push(latin1(take(u32('BINSTRING'), 'a string')));
        break;
      case 0x55: // SHORT_BINSTRING
        stack.push(latin1(take(u8('SHORT_BINSTRING'), 'a string')));
        break;
      case 0x42: // BINBYTES
        stack.push(take(u32('BINBYTES'), 'bytes').slice());
        break;
      case 0x43: // SHORT_BINBYTES
        stack.push(take(u8('SHORT_BINBYTES'), 'bytes').slice());
        break;
      case 0x8e: // BINBYTES8
      case 0x96: // BYTEARRAY8
        stack.push(take(u64('BINBYTES8'), 'bytes').slice());
        break;
      case 0x29: // EMPTY_TUPLE
        stack.push([]);
        break;
      case 0x74: // TUPLE
        stack.push(popToMark('TUPLE'));
        break;
      case 0x85: // TUPLE1
        stack.push([pop('TUPLE1')]);
        break;
      case 0x86: {
        // TUPLE2
        const second = pop('TUPLE2');
        stack.push([pop('TUPLE2'), second]);
        break;
      }
      case 0x87: {
        // TUPLE3
        const third = pop('TUPLE3');
        const second = pop('TUPLE3');
        stack.push([pop('TUPLE3'), second, third]);
        break;
      }
      case 0x5d: // EMPTY_LIST
        stack.push([]);
        break;
      case 0x6c: // LIST
        stack.push(popToMark('LIST'));
        break;
      case 0x61: {
        // APPEND
        const item = pop('APPEND');
        append(top('APPEND'), [item], 'APPEND');
        break;
      }
      case 0x65: {
        // APPENDS
        const items = popToMark('APPENDS');
        append(top('APPENDS'), items, 'APPENDS');
        break;
      }
      case 0x7d: // EMPTY_DICT
        stack.push(new PickleDict());
        break;
      case 0x64: {
        // DICT
        const dict = new PickleDict();
        setItems(dict, popToMark('DICT'), 'DICT');
        stack.push(dict);
        break;
      }
      case 0x73: {
        // SETITEM
        const value = pop('SETITEM');
        const key = pop('SETITEM');
        setItems(top('SETITEM'), [key, value], 'SETITEM');
        break;
      }
      case 0x75: {
        // SETITEMS
        const items = popToMark('SETITEMS');
        setItems(top('SETITEMS'), items, 'SETITEMS');
        break;
      }
      case 0x68: // BINGET
      case 0x6a: {
        // LONG_BINGET
        const index = opcode === 0x68 ? u8('BINGET') : u32('LONG_BINGET');
        if (!memo.has(index)) fail(`memo entry ${index} read at byte ${at} was never stored`);
        stack.push(memo.get(index)!);
        break;
      }
      case 0x71: // BINPUT
        memo.set(u8('BINPUT'), top('BINPUT'));
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32('LONG_BINPUT'), top('LONG_BINPUT'));
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top('MEMOIZE'));
        break;
      case 0x63: {
        // GLOBAL
        const module = line('a GLOBAL module name');
        const name = line('a GLOBAL name');
        stack.push(lookUp(module, name));
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop('STACK_GLOBAL');
        const module = pop('STACK_GLOBAL');
        if (typeof module !== 'string' || typeof name !== 'string') fail('STACK_GLOBAL needs two strings');
        stack.push(lookUp(module as string, name as string));
        break;
      }
      case 0x52: {
        // REDUCE
        const args = pop('REDUCE');
        const callable = pop('REDUCE');
        if (!Array.isArray(args)) fail(`REDUCE at byte ${at} needs an argument tuple`);
        const object = callable as PickleObject | null;
        if (object === null || typeof object !== 'object' || !('kind' in object) || object.call === undefined)
          fail(`REDUCE at byte ${at} calls something that is not an allowed function`);
        stack.push(object!.call!(args as PickleValue[]));
        break;
      }
      case 0x62: {
        // BUILD
        const state = pop('BUILD');
        const target = top('BUILD');
        // A dict's BUILD sets Python attributes (an OrderedDict's _metadata): nothing tensile reads.
        if (target instanceof PickleDict) break;
        const object = target as PickleObject;
        if (
          object === null ||
          typeof object !== 'object' ||
          !('kind' in object) ||
          object.build === undefined
        )
          fail(`BUILD at byte ${at} on something that takes no state`);
        object.build!(state);
        break;
      }
      case 0x51: {
        // BINPERSID
        const id = pop('BINPERSID');
        if (options.persistentLoad === undefined)
          fail(`a persistent id at byte ${at}, which this stream may not hold`);
        stack.push(options.persistentLoad!(id));
        break;
      }
      default: {
        const name = refusedOpcodes[opcode];
        fail(
          name === undefined
            ? `unknown opcode 0x${opcode.toString(16).padStart(2, '0')} at byte ${at}: not a pickle, or a corrupt one`
            : `opcode ${name} at byte ${at} is not allowed in a state dict`,
        );
      }
    }
  }
}
