/**
 * A seeded fuzz pass over the file readers: mutated safetensors files, checkpoints with mutated
 * metadata, and IDX files (plain and gzip). Every input must end in a typed error that names the
 * file, or a correct load; never a crash of another kind, a hang, or memory out of proportion to the
 * input. Bounded in count and in time; the seed makes any failure reproducible
 * (TENSILE_FUZZ_SEED=N, TENSILE_FUZZ_CASES=N to run more).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import YAML from 'yaml';
import {
  CheckpointError,
  IdxError,
  loadCheckpoint,
  manualSeed,
  parseIdx,
  parseStudyConfig,
  parseSafetensors,
  Random,
  readSafetensors,
  saveCheckpoint,
  seedCnn,
  serializeIdx,
  serializeSafetensors,
  SafetensorsError,
  SGD,
  StateDictError,
} from '../src/index.js';

const seed = Number(process.env.TENSILE_FUZZ_SEED ?? 20261206);
const cases = Number(process.env.TENSILE_FUZZ_CASES ?? 300);
const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'tensile-fuzz-'));
const repositoryRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
/** Resident memory may grow by at most this much while one case runs (inputs are a few KiB). */
const memoryCap = 256 * 2 ** 20;

/** One random edit of `bytes`: bit flips, byte runs, truncation, insertion, or splicing a number. */
function mutate(bytes: Uint8Array, random: Random): Uint8Array {
  const out = Array.from(bytes);
  const edits = 1 + Math.floor(random.next() * 4);
  for (let e = 0; e < edits; e++) {
    const at = Math.floor(random.next() * Math.max(1, out.length));
    switch (Math.floor(random.next() * 6)) {
      case 0:
        out[at] = (out[at] ?? 0) ^ (1 << Math.floor(random.next() * 8));
        break;
      case 1:
        out[at] = Math.floor(random.next() * 256);
        break;
      case 2:
        out.length = at;
        break;
      case 3:
        out.splice(
          at,
          0,
          ...Array.from({ length: 1 + Math.floor(random.next() * 16) }, () =>
            Math.floor(random.next() * 256),
          ),
        );
        break;
      case 4:
        out.splice(at, Math.floor(random.next() * 8));
        break;
      default: {
        // Digits where a number was: large dimensions, offsets and lengths.
        const digits = String(Math.floor(random.next() * 10 ** (1 + Math.floor(random.next() * 12))));
        out.splice(at, 1, ...Array.from(digits, (c) => c.charCodeAt(0)));
      }
    }
  }
  return Uint8Array.from(out);
}

/** Runs `read` on each input; only `expected` errors, naming `source`, are allowed. */
function survive(
  inputs: Iterable<Uint8Array>,
  read: (bytes: Uint8Array, source: string) => unknown,
  expected: readonly (new (...args: never[]) => Error)[],
): { loaded: number; refused: number } {
  let loaded = 0;
  let refused = 0;
  let index = 0;
  for (const bytes of inputs) {
    const source = `case-${index++}.bin`;
    const before = process.memoryUsage().rss;
    try {
      read(bytes, source);
      loaded++;
    } catch (error) {
      const typed = expected.some((kind) => error instanceof kind);
      assert.ok(
        typed,
        `${source}: ${(error as Error).name}: ${(error as Error).message} (bytes ${Buffer.from(bytes).toString('base64').slice(0, 200)})`,
      );
      assert.ok((error as Error).message.length > 0);
      refused++;
    }
    assert.ok(process.memoryUsage().rss - before < memoryCap, `${source}: memory grew past the cap`);
  }
  return { loaded, refused };
}

function* mutations(base: Uint8Array, count: number, random: Random): Generator<Uint8Array> {
  for (let i = 0; i < count; i++) yield mutate(base, random);
}

describe('fuzzing the file readers', () => {
  it('mutated safetensors files end in a SafetensorsError naming the file, or load', () => {
    const base = serializeSafetensors(
      {
        weight: { shape: [4, 3], data: Float32Array.from({ length: 12 }, (_, i) => i / 7) },
        bias: { shape: [4], data: new Float64Array(4).fill(0.5) },
        steps: { shape: [], data: BigInt64Array.from([3n]) },
        half: { dtype: 'F16', shape: [2], data: Float32Array.from([1, -2]) },
      },
      { note: 'fuzz base', nested: '{"a": [1, 2]}' },
    );
    const random = new Random(seed);
    const result = survive(
      mutations(base, cases, random),
      (bytes, source) => {
        try {
          parseSafetensors(bytes, source);
        } catch (error) {
          if (error instanceof SafetensorsError)
            assert.match(error.message, new RegExp(source.replace('.', '\\.')));
          throw error;
        }
      },
      [SafetensorsError],
    );
    assert.ok(result.refused > cases / 2, `most mutations are refused (${result.refused} of ${cases})`);
    // The same inputs through the file reader (header-first, no whole-file read).
    const file = path.join(directory, 'mutated.safetensors');
    survive(
      mutations(base, Math.floor(cases / 3), new Random(seed + 1)),
      (bytes) => {
        fs.writeFileSync(file, bytes);
        readSafetensors(file);
      },
      [SafetensorsError],
    );
  });

  it('checkpoints with mutated metadata end in a typed error, and a failed load changes nothing', () => {
    manualSeed(1);
    const model = seedCnn({ channels: [2, 4] });
    const optimizer = new SGD(model.parameters(), { lr: 0.1, momentum: 0.9 });
    const file = path.join(directory, 'checkpoint.safetensors');
    saveCheckpoint(file, model, optimizer, { epoch: 2, random: new Random(3), batchesPerEpoch: 5 });
    const original = fs.readFileSync(file);
    const { metadata, tensors } = readSafetensorsFromBytes(original);
    const random = new Random(seed + 2);
    const weightsBefore = model.parameters().map((p) => p.data.slice());
    const keys = Object.keys(metadata);
    const inputs: Uint8Array[] = [];
    for (let i = 0; i < Math.floor(cases / 3); i++) {
      const edited = { ...metadata };
      const key = keys[Math.floor(random.next() * keys.length)]!;
      const text = edited[key]!;
      edited[key] = Buffer.from(mutate(Buffer.from(text), random)).toString('latin1');
      inputs.push(serializeSafetensors(tensors, edited));
    }
    survive(
      inputs,
      (bytes) => {
        fs.writeFileSync(file, bytes);
        loadCheckpoint(file, model, optimizer);
      },
      [CheckpointError, SafetensorsError, StateDictError],
    );
    // Loads that succeeded restored the same weights; none left the model half-loaded.
    model.parameters().forEach((p, i) => assert.deepEqual(p.data, weightsBefore[i]));
  });

  it('mutated IDX files, plain and gzip, end in an IdxError naming the file, or load', () => {
    const base = serializeIdx({
      dtype: 'uint8',
      shape: [3, 4, 5],
      data: Uint8Array.from({ length: 60 }, (_, i) => (i * 37) % 256),
    });
    const random = new Random(seed + 3);
    const plain = [...mutations(base, cases, random)];
    const gzip = [...mutations(gzipSync(base), Math.floor(cases / 2), random)];
    const zipped = plain.slice(0, Math.floor(cases / 3)).map((bytes) => gzipSync(bytes));
    const result = survive(
      [...plain, ...gzip, ...zipped],
      (bytes, source) => {
        try {
          parseIdx(bytes, source);
        } catch (error) {
          if (error instanceof IdxError) assert.match(error.message, new RegExp(source.replace('.', '\\.')));
          throw error;
        }
      },
      [IdxError],
    );
    assert.ok(result.refused > cases / 2);
  });
});

describe('fuzzing study files', () => {
  it('mutated study YAML ends in an error naming the field (or a YAML syntax error), never a crash', () => {
    const base = fs.readFileSync(path.join(repositoryRoot, 'examples', 'study.yaml'));
    const random = new Random(seed + 4);
    // What a crash looks like, as opposed to a message written for the user.
    const engineMessage =
      /Cannot read propert|Cannot convert|is not a function|is not iterable|Maximum call stack|Invalid array length/;
    let refused = 0;
    for (let index = 0; index < cases; index++) {
      const text = Buffer.from(mutate(base, random)).toString('utf8');
      try {
        parseStudyConfig(YAML.parse(text), { storage: 'memory' });
      } catch (error) {
        assert.ok(error instanceof Error, `case ${index}: threw a non-Error`);
        assert.doesNotMatch(
          error.message,
          engineMessage,
          `case ${index}: ${error.name}: ${error.message}\n${text}`,
        );
        refused++;
      }
    }
    assert.ok(refused > 0);
    // Typed values in the wrong places, field by field.
    const config = YAML.parse(base.toString('utf8')) as Record<string, unknown>;
    const oddValues: unknown[] = [
      null,
      5,
      -1,
      'x',
      [],
      {},
      true,
      1e308,
      Number.NaN,
      [1, 'a'],
      { a: { b: {} } },
    ];
    for (const key of Object.keys(config)) {
      for (const value of oddValues) {
        try {
          parseStudyConfig({ ...config, [key]: value }, { storage: 'memory' });
        } catch (error) {
          assert.doesNotMatch((error as Error).message, engineMessage, `${key}: ${JSON.stringify(value)}`);
        }
      }
    }
  });
});

function readSafetensorsFromBytes(bytes: Uint8Array): {
  metadata: Record<string, string>;
  tensors: Map<
    string,
    { dtype: 'F32' | 'F64' | 'I64'; shape: number[]; data: Float32Array | Float64Array | BigInt64Array }
  >;
} {
  const parsed = parseSafetensors(bytes);
  const tensors = new Map(
    [...parsed.tensors].map(([name, entry]) => [
      name,
      {
        dtype: entry.dtype as 'F32' | 'F64' | 'I64',
        shape: entry.shape,
        data: entry.data as Float32Array | Float64Array | BigInt64Array,
      },
    ]),
  );
  return { metadata: parsed.metadata, tensors };
}
