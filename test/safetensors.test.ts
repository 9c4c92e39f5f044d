import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  int64ToInt32,
  parseSafetensors,
  readSafetensors,
  SafetensorsError,
  serializeSafetensors,
  writeSafetensors,
  type SafetensorsInput,
} from '../src/io/safetensors.js';

/** The directory holding package.json, found by walking up (works from dist/test and from test/). */
function findRepoRoot(): string {
  let directory = path.dirname(fileURLToPath(import.meta.url));
  while (!fs.existsSync(path.join(directory, 'package.json'))) {
    const parent = path.dirname(directory);
    if (parent === directory) throw new Error('package.json not found above the test file');
    directory = parent;
  }
  return directory;
}

const fixturesDirectory = path.resolve(findRepoRoot(), 'test', 'fixtures', 'torch-parity');

/** A safetensors file from a header (object, or raw JSON text) and data bytes, without padding. */
function buildFile(
  header: object | string,
  data: Uint8Array = new Uint8Array(0),
  lengthField?: bigint,
): Uint8Array {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.byteLength + data.byteLength);
  new DataView(out.buffer).setBigUint64(0, lengthField ?? BigInt(json.byteLength), true);
  out.set(json, 8);
  out.set(data, 8 + json.byteLength);
  return out;
}

const temporaryDirectories: string[] = [];

/** A fresh directory, removed after the file's tests even when a test fails midway. */
function temporaryDirectory(): string {
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'tensile-safetensors-'));
  temporaryDirectories.push(directory);
  return directory;
}

after(() => {
  for (const directory of temporaryDirectories) fs.rmSync(directory, { recursive: true, force: true });
});

function assertSafetensorsError(run: () => unknown, pattern: RegExp): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof SafetensorsError, `expected a SafetensorsError, got ${String(error)}`);
    assert.match(error.message, pattern);
    return true;
  });
}

describe('safetensors round trip', () => {
  test('every dtype, metadata, scalars and empty tensors survive serialize → parse', () => {
    const tensors: Record<string, SafetensorsInput> = {
      weight: { shape: [2, 3], data: new Float32Array([1, -2.5, 3, 4e-8, 5, 6]) },
      double: { shape: [3], data: new Float64Array([Math.PI, -1e300, 5e-324]) },
      index: { shape: [2], data: new BigInt64Array([-(2n ** 62n), 7n]) },
      count: { shape: [2, 2], data: new Int32Array([-2147483648, 0, 1, 2147483647]) },
      mask: { shape: [5], data: new Uint8Array([0, 1, 128, 254, 255]) },
      half: { dtype: 'F16', shape: [3], data: new Float32Array([1, -2, 0.333251953125]) },
      brain: { dtype: 'BF16', shape: [2], data: new Float32Array([65536, 0.333984375]) },
      scalar: { shape: [], data: new Float32Array([42]) },
      empty: { shape: [0, 4], data: new Float32Array(0) },
    };
    const bytes = serializeSafetensors(tensors, { format: 'pt', note: 'ünïcode ✓' });
    const { tensors: read, metadata } = parseSafetensors(bytes);
    assert.deepEqual(metadata, { format: 'pt', note: 'ünïcode ✓' });
    assert.equal(read.size, Object.keys(tensors).length);
    for (const [name, input] of Object.entries(tensors)) {
      const entry = read.get(name);
      assert.ok(entry, name);
      assert.deepEqual(entry.shape, [...input.shape], name);
      assert.equal(entry.data.constructor, input.data.constructor, name);
      // Every value above is exactly representable in its dtype, so equality is exact here.
      assert.deepEqual(
        Array.from(entry.data as ArrayLike<unknown>),
        Array.from(input.data as ArrayLike<unknown>),
        name,
      );
    }
    assert.equal(read.get('half')!.dtype, 'F16');
    assert.equal(read.get('brain')!.dtype, 'BF16');
    assert.equal(read.get('mask')!.dtype, 'U8');
    assert.equal(read.get('index')!.dtype, 'I64');
  });

  test('the header is padded with spaces to a multiple of 8 and every tensor is aligned to its item size', () => {
    const bytes = serializeSafetensors({
      a: { shape: [3], data: new Uint8Array([1, 2, 3]) },
      b: { shape: [1], data: new Float64Array([1]) },
      c: { shape: [1], data: new Float32Array([1]) },
    });
    const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    assert.equal(headerLength % 8, 0);
    const headerText = new TextDecoder().decode(bytes.subarray(8, 8 + headerLength));
    assert.match(headerText, /^\{.*\} *$/);
    const header = JSON.parse(headerText) as Record<string, { data_offsets: [number, number] }>;
    assert.deepEqual(header.b!.data_offsets, [0, 8]);
    assert.deepEqual(header.c!.data_offsets, [8, 12]);
    assert.deepEqual(header.a!.data_offsets, [12, 15]);
    assert.equal(bytes.byteLength, 8 + headerLength + 15);
    // Parsed arrays are fresh copies, not views of the file buffer.
    const parsed = parseSafetensors(bytes).tensors.get('b')!.data;
    assert.notEqual(parsed.buffer, bytes.buffer);
  });

  test('parsing works on an unaligned view into a larger buffer', () => {
    const bytes = serializeSafetensors({ w: { shape: [2], data: new Float32Array([1.5, -3]) } });
    const larger = new Uint8Array(bytes.byteLength + 3);
    larger.set(bytes, 3);
    const entry = parseSafetensors(larger.subarray(3)).tensors.get('w')!;
    assert.deepEqual(Array.from(entry.data as Float32Array), [1.5, -3]);
  });

  test('F16 and BF16 narrow with round-to-nearest-even and saturate to infinity, bit-exact against PyTorch', () => {
    // Includes ties (65520, 1 + 2^-11, 1 + 3·2^-11, 1 + 2^-8, 1 + 3·2^-8) that must round to the even neighbour.
    const values = [
      ...[1, -2, 65504, 65520, 2 ** -24, 2 ** -25, 3 * 2 ** -26, 1 / 3, 1e-7, 6.1e-5, Infinity, -0, 1e5],
      ...[1 + 2 ** -11, 1 + 3 * 2 ** -11, 1 + 2 ** -8, 1 + 3 * 2 ** -8],
    ];
    // torch.tensor(values).half() / .bfloat16(), viewed as int16 (PyTorch 1.13).
    const halfBits = [
      0x3c00, 0xc000, 0x7bff, 0x7c00, 0x1, 0x0, 0x1, 0x3555, 0x2, 0x3ff, 0x7c00, 0x8000, 0x7c00, 0x3c00,
      0x3c02, 0x3c04, 0x3c0c,
    ];
    const brainBits = [
      0x3f80, 0xc000, 0x4780, 0x4780, 0x3380, 0x3300, 0x3340, 0x3eab, 0x33d7, 0x3880, 0x7f80, 0x8000, 0x47c3,
      0x3f80, 0x3f80, 0x3f80, 0x3f82,
    ];
    for (const [dtype, expected] of [
      ['F16', halfBits],
      ['BF16', brainBits],
    ] as const) {
      const bytes = serializeSafetensors({
        x: { dtype, shape: [values.length], data: new Float32Array(values) },
      });
      const dataStart = bytes.byteLength - 2 * values.length;
      const bits = Array.from(new Uint16Array(bytes.slice(dataStart).buffer));
      assert.deepEqual(
        bits.map((b) => b.toString(16)),
        expected.map((b) => b.toString(16)),
        dtype,
      );
    }
  });

  test('F16 and BF16 written by PyTorch widen to the values PyTorch reports', () => {
    const halfBits = new Uint16Array([0x3c00, 0xc000, 0x7bff, 0x1, 0x3555, 0x3ff, 0x7c00, 0x8000, 0x7e00]);
    const brainBits = new Uint16Array([0x3f80, 0xc000, 0x4780, 0x3380, 0x3eab, 0x47c3, 0xff80]);
    const file = buildFile(
      {
        h: { dtype: 'F16', shape: [9], data_offsets: [0, 18] },
        b: { dtype: 'BF16', shape: [7], data_offsets: [18, 32] },
      },
      new Uint8Array([...new Uint8Array(halfBits.buffer), ...new Uint8Array(brainBits.buffer)]),
    );
    const { tensors } = parseSafetensors(file);
    const half = Array.from(tensors.get('h')!.data as Float32Array);
    assert.deepEqual(half.slice(0, 8), [
      1,
      -2,
      65504,
      2 ** -24,
      0.333251953125,
      6.097555160522461e-5,
      Infinity,
      -0,
    ]);
    assert.ok(Number.isNaN(half[8]));
    assert.deepEqual(Array.from(tensors.get('b')!.data as Float32Array), [
      1,
      -2,
      65536,
      5.960464477539063e-8,
      0.333984375,
      99840,
      -Infinity,
    ]);
  });
});

describe('safetensors errors name the file, the field, expected and actual', () => {
  const f32 = (count: number): Uint8Array => new Uint8Array(count * 4);

  test('file shorter than 8 bytes', () => {
    assertSafetensorsError(
      () => parseSafetensors(new Uint8Array(5), 'tiny.safetensors'),
      /tiny\.safetensors: file has 5 bytes.*8-byte header length/,
    );
  });

  test('header length larger than the file', () => {
    const file = buildFile({}, new Uint8Array(0), 1000n);
    assertSafetensorsError(
      () => parseSafetensors(file, 'f.safetensors'),
      /f\.safetensors: header length field says 1000 bytes, but only 2 bytes follow it/,
    );
    // A length that does not even fit in a double is reported, not wrapped around.
    const huge = buildFile({}, new Uint8Array(0), 2n ** 63n);
    assertSafetensorsError(() => parseSafetensors(huge, 'f.safetensors'), /says 9223372036854775808 bytes/);
  });

  test('header not JSON, or not an object', () => {
    assertSafetensorsError(
      () => parseSafetensors(buildFile('{"a": '), 'f.safetensors'),
      /f\.safetensors: header is not valid JSON/,
    );
    assertSafetensorsError(
      () => parseSafetensors(buildFile('[1, 2]'), 'f.safetensors'),
      /header must be a JSON object.*got array/,
    );
    assertSafetensorsError(
      () => parseSafetensors(buildFile('null'), 'f.safetensors'),
      /header must be a JSON object.*got null/,
    );
    const notUtf8 = buildFile('{}');
    notUtf8[8] = 0xff;
    assertSafetensorsError(() => parseSafetensors(notUtf8, 'f.safetensors'), /not valid UTF-8/);
  });

  test('entry missing dtype, shape or data_offsets', () => {
    for (const field of ['dtype', 'shape', 'data_offsets']) {
      const entry: Record<string, unknown> = { dtype: 'F32', shape: [1], data_offsets: [0, 4] };
      delete entry[field];
      assertSafetensorsError(
        () => parseSafetensors(buildFile({ x: entry }, f32(1)), 'f.safetensors'),
        new RegExp(`tensor 'x' in f\\.safetensors: missing field '${field}'`),
      );
    }
    assertSafetensorsError(
      () => parseSafetensors(buildFile({ x: 3 }), 'f.safetensors'),
      /tensor 'x'.*expected an object/,
    );
  });

  test('unknown dtype and valid-but-unsupported dtype', () => {
    assertSafetensorsError(
      () =>
        parseSafetensors(
          buildFile({ x: { dtype: 'Q7', shape: [1], data_offsets: [0, 4] } }, f32(1)),
          'f.safetensors',
        ),
      /tensor 'x' in f\.safetensors: unknown dtype 'Q7' \(expected one of F64, F32, F16, BF16, I64, I32, U8\)/,
    );
    assertSafetensorsError(
      () =>
        parseSafetensors(
          buildFile({ x: { dtype: 'I16', shape: [2], data_offsets: [0, 4] } }, f32(1)),
          'f.safetensors',
        ),
      /dtype 'I16' is valid safetensors but not supported by tensile/,
    );
  });

  test('shape with a negative or non-integer dimension', () => {
    assertSafetensorsError(
      () =>
        parseSafetensors(
          buildFile({ x: { dtype: 'F32', shape: [2, -1], data_offsets: [0, 0] } }),
          'f.safetensors',
        ),
      /tensor 'x' in f\.safetensors: shape \[2,-1\] has a negative dimension at index 1/,
    );
    assertSafetensorsError(
      () =>
        parseSafetensors(
          buildFile({ x: { dtype: 'F32', shape: [1.5], data_offsets: [0, 0] } }),
          'f.safetensors',
        ),
      /shape \[1\.5\] has a non-integer dimension at index 0/,
    );
    assertSafetensorsError(
      () =>
        parseSafetensors(
          buildFile({ x: { dtype: 'F32', shape: ['2'], data_offsets: [0, 8] } }, f32(2)),
          'f.safetensors',
        ),
      /non-integer dimension at index 0/,
    );
    assertSafetensorsError(
      () =>
        parseSafetensors(
          buildFile({ x: { dtype: 'F32', shape: 4, data_offsets: [0, 16] } }, f32(4)),
          'f.safetensors',
        ),
      /shape must be an array of integers, got number 4/,
    );
  });

  test('data_offsets span different from product(shape) · itemsize', () => {
    assertSafetensorsError(
      () =>
        parseSafetensors(
          buildFile({ x: { dtype: 'F32', shape: [2, 3], data_offsets: [0, 20] } }, f32(6)),
          'f.safetensors',
        ),
      /tensor 'x' in f\.safetensors: shape \[2,3\] F32 needs 24 bytes, data_offsets span 20/,
    );
    assertSafetensorsError(
      () =>
        parseSafetensors(
          buildFile({ x: { dtype: 'F32', shape: [1], data_offsets: [4] } }, f32(1)),
          'f.safetensors',
        ),
      /data_offsets must be two non-negative integers \[begin, end\], got array \[4\]/,
    );
    assertSafetensorsError(
      () =>
        parseSafetensors(
          buildFile({ x: { dtype: 'F32', shape: [1], data_offsets: [8, 4] } }, f32(3)),
          'f.safetensors',
        ),
      /data_offsets \[8,4\] end before they begin/,
    );
  });

  test('offsets beyond the data section: the file is truncated', () => {
    const file = buildFile(
      { w: { dtype: 'F32', shape: [1024], data_offsets: [0, 4096] } },
      new Uint8Array(1000),
    );
    assertSafetensorsError(
      () => parseSafetensors(file, 'f.safetensors'),
      /tensor 'w' in f\.safetensors ends at byte 4096 of the data section but the file has only 1000 bytes after the header — the file is truncated/,
    );
  });

  test('overlapping tensors', () => {
    const file = buildFile(
      {
        a: { dtype: 'F32', shape: [6], data_offsets: [0, 24] },
        b: { dtype: 'F32', shape: [6], data_offsets: [16, 40] },
      },
      f32(10),
    );
    assertSafetensorsError(
      () => parseSafetensors(file, 'f.safetensors'),
      /tensors 'a' \(bytes 0–24\) and 'b' \(bytes 16–40\) in f\.safetensors overlap/,
    );
    // Empty tensors anywhere in range overlap nothing.
    const empty = buildFile(
      {
        a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
        b: { dtype: 'F32', shape: [0], data_offsets: [4, 4] },
      },
      f32(2),
    );
    assert.deepEqual(parseSafetensors(empty).tensors.get('b')!.shape, [0]);
  });

  test('a name given twice in the header is refused, naming it', () => {
    const header =
      '{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "w" : {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}';
    assertSafetensorsError(
      () => parseSafetensors(buildFile(header, f32(1)), 'f.safetensors'),
      /f\.safetensors: header names 'w' twice/,
    );
    // Nested keys may repeat across tensors (every entry has a dtype); only top-level names count.
    const fine =
      '{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}';
    assert.equal(parseSafetensors(buildFile(fine, f32(2)), 'f.safetensors').tensors.size, 2);
  });

  test('deeply nested header JSON is refused with the file named, not a stack overflow', () => {
    const deep = `{"__metadata__": ${'['.repeat(200_000)}${']'.repeat(200_000)}}`;
    assertSafetensorsError(
      () => parseSafetensors(buildFile(deep), 'deep.safetensors'),
      /deep\.safetensors: header JSON nests deeper than 32 levels/,
    );
    // Brackets inside strings are text, not nesting.
    const quoted = `{"__metadata__": {"note": "${'['.repeat(100)}"}}`;
    assert.deepEqual(parseSafetensors(buildFile(quoted), 'f.safetensors').metadata, {
      note: '['.repeat(100),
    });
  });

  test('bytes after the last tensor are refused, and readSafetensors does not read them', () => {
    const file = buildFile({ w: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, f32(3));
    assertSafetensorsError(
      () => parseSafetensors(file, 'f.safetensors'),
      /f\.safetensors: 4 bytes follow the last tensor's data \(the header describes 8 bytes of data\)/,
    );
    // On disk: a header followed by 1 GiB of (sparse) extra bytes is refused from the header alone.
    const directory = temporaryDirectory();
    const filePath = path.join(directory, 'padded.safetensors');
    fs.writeFileSync(filePath, buildFile({ w: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, f32(2)));
    fs.truncateSync(filePath, fs.statSync(filePath).size + 2 ** 30);
    const before = process.memoryUsage().rss;
    assertSafetensorsError(() => readSafetensors(filePath), /1073741824 bytes follow the last tensor's data/);
    assert.ok(process.memoryUsage().rss - before < 2 ** 28, 'the extra gigabyte was not read into memory');
    fs.rmSync(directory, { recursive: true });
  });

  test('bad __metadata__', () => {
    assertSafetensorsError(
      () => parseSafetensors(buildFile({ __metadata__: { epoch: 3 } }), 'f.safetensors'),
      /__metadata__ entry 'epoch' must be a string, got number 3/,
    );
    assertSafetensorsError(
      () => parseSafetensors(buildFile({ __metadata__: 'x' }), 'f.safetensors'),
      /__metadata__ must be an object/,
    );
  });

  test('the file name reaches the message from readSafetensors', () => {
    const directory = temporaryDirectory();
    const filePath = path.join(directory, 'broken.safetensors');
    fs.writeFileSync(filePath, buildFile({ w: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, f32(2)));
    assertSafetensorsError(
      () => readSafetensors(filePath),
      /tensor 'w' in .*broken\.safetensors ends at byte 16 .* only 8 bytes/,
    );
    assert.throws(
      () => readSafetensors(filePath),
      (error: SafetensorsError) => error.source === filePath && error.tensorName === 'w',
    );
    fs.rmSync(directory, { recursive: true });
  });

  test('serialize rejects invalid tensors, naming them, and accepts a pooled Buffer as U8', () => {
    assertSafetensorsError(
      () => serializeSafetensors({ w: { shape: [2, 2], data: new Float32Array(3) } }),
      /tensor 'w'.*shape \[2,2\] has 4 elements but data has 3/,
    );
    assertSafetensorsError(
      () => serializeSafetensors({ w: { dtype: 'F64', shape: [2], data: new Float32Array(2) } }),
      /dtype F64 is held in a Float64Array, got a Float32Array/,
    );
    // A Buffer is a Uint8Array.
    const fromBuffer = serializeSafetensors({ bytes: { shape: [2], data: Buffer.from([7, 9]) } });
    assert.deepEqual(
      Array.from(parseSafetensors(fromBuffer).tensors.get('bytes')!.data as Uint8Array),
      [7, 9],
    );
    assertSafetensorsError(
      () => serializeSafetensors({ __metadata__: { shape: [1], data: new Float32Array(1) } }),
      /reserved/,
    );
    assertSafetensorsError(
      () => serializeSafetensors({ w: { shape: [-1], data: new Float32Array(0) } }),
      /invalid dimension at index 0/,
    );
  });
});

describe('writeSafetensors', () => {
  test('writes atomically: the result reads back, an existing file is replaced, no temporary files remain', () => {
    const directory = temporaryDirectory();
    const filePath = path.join(directory, 'model.safetensors');
    writeSafetensors(filePath, new Map([['w', { shape: [2], data: new Float32Array([1, 2]) }]]), {
      step: '1',
    });
    writeSafetensors(filePath, { w: { shape: [3], data: new Float32Array([3, 4, 5]) } }, { step: '2' });
    const { tensors, metadata } = readSafetensors(filePath);
    assert.deepEqual(metadata, { step: '2' });
    assert.deepEqual(Array.from(tensors.get('w')!.data as Float32Array), [3, 4, 5]);
    assert.deepEqual(fs.readdirSync(directory), ['model.safetensors']);
    fs.rmSync(directory, { recursive: true });
  });

  test("a killed writer's temporary file is removed by the next save to that path; a live one is kept", () => {
    const directory = temporaryDirectory();
    const filePath = path.join(directory, 'model.safetensors');
    // No process has pid 999999999 (Linux caps pids at 2^22); this process is alive.
    const abandoned = path.join(directory, '.model.safetensors.999999999.1a2b3c.tmp');
    const live = path.join(directory, `.model.safetensors.${process.pid}.4d5e6f.tmp`);
    const other = path.join(directory, '.other.safetensors.999999999.1a2b3c.tmp');
    for (const file of [abandoned, live, other]) fs.writeFileSync(file, 'partial');
    writeSafetensors(filePath, { w: { shape: [1], data: new Float32Array([1]) } });
    assert.equal(fs.existsSync(abandoned), false);
    assert.equal(fs.existsSync(live), true, "a live writer's file stays");
    assert.equal(fs.existsSync(other), true, 'files of other destinations stay');
    fs.rmSync(directory, { recursive: true });
  });

  test('a failed write leaves the previous file intact', () => {
    const directory = temporaryDirectory();
    const filePath = path.join(directory, 'model.safetensors');
    writeSafetensors(filePath, { w: { shape: [1], data: new Float32Array([7]) } });
    const before = fs.readFileSync(filePath);
    assert.throws(
      () => writeSafetensors(filePath, { w: { shape: [2], data: new Float32Array(1) } }),
      SafetensorsError,
    );
    assert.deepEqual(fs.readFileSync(filePath), before);
    assert.deepEqual(fs.readdirSync(directory), ['model.safetensors']);
    fs.rmSync(directory, { recursive: true });
  });
});

test('int64ToInt32 converts in range and names the element out of range', () => {
  assert.deepEqual(
    Array.from(int64ToInt32(new BigInt64Array([0n, -5n, 2147483647n, -2147483648n]))),
    [0, -5, 2147483647, -2147483648],
  );
  assert.throws(
    () => int64ToInt32(new BigInt64Array([1n, 2147483648n]), "tensor 'target'"),
    /tensor 'target': element 1 is 2147483648, outside the int32 range/,
  );
});

const fixtureFiles = fs.existsSync(fixturesDirectory)
  ? fs.readdirSync(fixturesDirectory).filter((name) => name.endsWith('.safetensors'))
  : [];

test('reads every PyTorch parity fixture, and re-serialising it gives the same tensors', () => {
  assert.ok(fixtureFiles.length >= 30, `expected the parity fixtures in ${fixturesDirectory}`);
  for (const name of fixtureFiles) {
    const filePath = path.join(fixturesDirectory, name);
    const file = readSafetensors(filePath);
    assert.ok(file.tensors.size > 0, name);
    const testCase = JSON.parse(file.metadata.case!) as { op?: unknown; tolerance?: { rtol?: unknown } };
    assert.equal(typeof testCase.op, 'string', name);
    assert.equal(typeof testCase.tolerance?.rtol, 'number', name);
    for (const [tensorName, entry] of file.tensors) {
      assert.ok(entry.dtype === 'F32' || entry.dtype === 'I64', `${name} ${tensorName} ${entry.dtype}`);
      assert.equal(
        entry.data.length,
        entry.shape.reduce((a, b) => a * b, 1),
        `${name} ${tensorName}`,
      );
      if (entry.dtype === 'I64') int64ToInt32(entry.data as BigInt64Array, `${tensorName} in ${name}`);
    }
    const again = parseSafetensors(serializeSafetensors(file.tensors, file.metadata));
    assert.deepEqual(again.metadata, file.metadata, name);
    for (const [tensorName, entry] of file.tensors) {
      assert.deepEqual(again.tensors.get(tensorName), entry, `${name} ${tensorName}`);
    }
  }
});

test('cross-entropy fixture: targets are I64 class indices within the logits width', () => {
  const { tensors } = readSafetensors(path.join(fixturesDirectory, 'cross_entropy_ls0.0.safetensors'));
  const logits = tensors.get('logits')!;
  const target = tensors.get('target')!;
  assert.equal(target.dtype, 'I64');
  const classes = int64ToInt32(target.data as BigInt64Array);
  assert.equal(classes.length, logits.shape[0]);
  for (const value of classes) assert.ok(value >= 0 && value < logits.shape[1]!);
});
