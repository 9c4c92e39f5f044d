/**
 * PyTorch checkpoints in: torch.save'd state dicts (zip and legacy formats; float32, float16,
 * bfloat16, float64; non-contiguous views) read to exactly the tensors PyTorch holds, checked
 * against safetensors twins written by the same generator (test/fixtures/generators/
 * make_torch_checkpoints.py) without torch.save; the seed CNN and a ResNet loaded from them give
 * PyTorch's logits. Hostile or broken files are refused by name and nothing in them runs.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  loadTorchCheckpoint,
  loadWeights,
  noGrad,
  PickleError,
  readSafetensors,
  readTorchStateDict,
  resnet,
  resnet18,
  seedCnn,
  StateDictError,
  Tensor,
  TorchCheckpointError,
} from '../src/index.js';
import { unpickle } from '../src/io/pickle.js';
import { ZipArchive } from '../src/io/zip-archive.js';

const repositoryRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const fixtures = path.join(repositoryRoot, 'test', 'fixtures', 'torch-checkpoints');
const generators = path.join(repositoryRoot, 'test', 'fixtures', 'generators');
const fixture = (name: string) => path.join(fixtures, name);
const temporary = fs.mkdtempSync(path.join(os.tmpdir(), 'tensile-torch-checkpoint-'));

/** PyTorch 1.13 is installed on the development machines; elsewhere the tests that run it skip. */
const torchAvailable =
  spawnSync('/usr/bin/python3', ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;
const needsTorch = { skip: !torchAvailable && 'PyTorch (/usr/bin/python3 with torch) is not installed' };

/** Forward-pass agreement with PyTorch: float32 sums in a different order. */
const forwardTolerance = { relative: 1e-4, absolute: 1e-5 };

function bytesOf(data: ArrayBufferView): Buffer {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/** The checkpoint's tensors equal the twin's: same names in the same order, shapes, and bits. */
function assertSameAsTwin(
  checkpoint: string,
  twin: string,
  widen?: (data: ArrayBufferView) => ArrayBufferView,
) {
  const read = readTorchStateDict(fixture(checkpoint));
  const { tensors } = readSafetensors(fixture(twin));
  assert.deepEqual([...read.keys()], [...tensors.keys()], `${checkpoint}: names and order`);
  for (const [name, expected] of tensors) {
    const actual = read.get(name)!;
    assert.deepEqual(actual.shape, expected.shape, `${checkpoint}: ${name} shape`);
    const data =
      widen !== undefined && !(actual.data instanceof BigInt64Array) ? widen(actual.data) : actual.data;
    assert.ok(bytesOf(data).equals(bytesOf(expected.data)), `${checkpoint}: ${name} differs from ${twin}`);
  }
}

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, label: string) {
  assert.equal(actual.length, expected.length, `${label}: length`);
  for (let i = 0; i < expected.length; i++) {
    const difference = Math.abs(actual[i]! - expected[i]!);
    const allowed = forwardTolerance.absolute + forwardTolerance.relative * Math.abs(expected[i]!);
    assert.ok(difference <= allowed, `${label}[${i}]: ${actual[i]} vs PyTorch ${expected[i]}`);
  }
}

/** The model's logits for the generator's input equal PyTorch's. */
function assertForward(model: { eval(): { forward(x: Tensor): Tensor } }, forwardFile: string) {
  const { tensors } = readSafetensors(fixture(forwardFile));
  const input = tensors.get('input')!;
  const logits = noGrad(() => model.eval().forward(new Tensor(input.data as Float32Array, input.shape)));
  assertClose(logits.data as Float32Array, tensors.get('logits')!.data as Float32Array, forwardFile);
}

describe('readTorchStateDict', () => {
  it('reads a float32 seed CNN state dict (zip format) exactly as PyTorch holds it', () => {
    assertSameAsTwin('seed_cnn_float32.pt', 'seed_cnn.safetensors');
    const read = readTorchStateDict(fixture('seed_cnn_float32.pt'));
    assert.equal(read.get('0.weight')!.dtype, 'float32');
    assert.equal(read.get('1.num_batches_tracked')!.dtype, 'int64');
    assert.deepEqual([...(read.get('1.num_batches_tracked')!.data as BigInt64Array)], [7n]);
  });

  it('widens float16 and bfloat16 storages exactly, and reads float64', () => {
    assertSameAsTwin('seed_cnn_float16.pt', 'seed_cnn_float16.safetensors');
    assertSameAsTwin('resnet_small_bfloat16.pth', 'resnet_small_bfloat16.safetensors');
    assert.equal(
      readTorchStateDict(fixture('resnet_small_bfloat16.pth')).get('fc.weight')!.dtype,
      'bfloat16',
    );
    // float64 of float32 values narrows back to them exactly.
    assertSameAsTwin('seed_cnn_float64.pt', 'seed_cnn.safetensors', (data) =>
      Float32Array.from(data as Float64Array),
    );
    assert.ok(
      readTorchStateDict(fixture('seed_cnn_float64.pt')).get('0.weight')!.data instanceof Float64Array,
    );
  });

  it('reads the legacy (non-zip) format and archives with deflated entries', () => {
    assertSameAsTwin('seed_cnn_legacy.pt', 'seed_cnn.safetensors');
    assertSameAsTwin('seed_cnn_deflated.pt', 'seed_cnn.safetensors');
  });

  it('copies non-contiguous views (transpose, storage offset, strides), shares a tensor saved twice, reads an nn.Parameter', () => {
    assertSameAsTwin('views.pt', 'views.safetensors');
    const read = readTorchStateDict(fixture('views.pt'));
    assert.equal(read.get('shared_a')!.data, read.get('shared_b')!.data, 'one array for one tensor');
    // The transpose of [4, 6] counting up: row r of the transpose is column r of the original.
    assert.deepEqual(
      Array.from(read.get('transposed')!.data as Float32Array).slice(0, 4),
      [0, 6, 12, 18].map((v) => Math.fround(v / 7)),
    );
  });
});

describe('loading checkpoints into models', () => {
  it('the seed CNN from a .pt gives PyTorch logits, through loadWeights (by content) and loadTorchCheckpoint', () => {
    const model = seedCnn({ channels: [4, 8], classes: 3 });
    const metadata = loadWeights(model, fixture('seed_cnn_float32.pt'));
    assert.deepEqual(metadata, {});
    assertForward(model, 'seed_cnn_forward.safetensors');
    const again = seedCnn({ channels: [4, 8], classes: 3 });
    loadTorchCheckpoint(again, fixture('seed_cnn_legacy.pt'));
    assertForward(again, 'seed_cnn_forward.safetensors');
  });

  it('a torchvision-structured ResNet .pth loads into resnet() and gives PyTorch logits', () => {
    const model = resnet({ layers: [1, 1, 1, 1], widths: [4, 4, 8, 8], classes: 5 });
    loadWeights(model, fixture('resnet_small.pth'));
    assertForward(model, 'resnet_small_forward.safetensors');
  });

  it('weights that do not fit are refused with every offending name, nothing loaded', () => {
    const model = seedCnn({ channels: [4, 8], classes: 4 });
    const before = Float32Array.from(model.stateDict().get('0.weight')!.data as Float32Array);
    assert.throws(
      () => loadWeights(model, fixture('seed_cnn_float32.pt')),
      (error: Error) =>
        error instanceof StateDictError && /'16\.weight' expected \[4, 8\], got \[3, 8\]/.test(error.message),
    );
    assert.deepEqual(model.stateDict().get('0.weight')!.data, before);
  });

  it(
    "a full-size resnet18 state dict (torchvision's names and shapes) made by PyTorch loads into resnet18()",
    needsTorch,
    () => {
      const checkpoint = path.join(temporary, 'resnet18-like.pth');
      const twin = path.join(temporary, 'resnet18-like.safetensors');
      const script = [
        'import sys, torch',
        `sys.path.insert(0, ${JSON.stringify(generators)})`,
        'from make_parity_fixtures import save_safetensors',
        'from make_resnet_case import ResNet',
        'torch.manual_seed(3)',
        'state = ResNet([64, 128, 256, 512], [2, 2, 2, 2], 1000).state_dict()',
        `torch.save(state, ${JSON.stringify(checkpoint)})`,
        `save_safetensors(${JSON.stringify(twin)}, state, {})`,
      ].join('\n');
      const run = spawnSync('/usr/bin/python3', ['-c', script], { encoding: 'utf8' });
      assert.equal(run.status, 0, run.stderr);
      const model = resnet18();
      loadWeights(model, checkpoint);
      const expected = readSafetensors(twin).tensors;
      for (const [name, tensor] of model.stateDict())
        assert.ok(bytesOf(tensor.data as Float32Array).equals(bytesOf(expected.get(name)!.data)), name);
    },
  );
});

describe('hostile and broken checkpoints', () => {
  const marker = 'tensile-hostile-marker';

  it('a __reduce__ that would run os.system is refused, naming the global, and nothing runs', () => {
    const cwdMarker = path.join(process.cwd(), marker);
    fs.rmSync(cwdMarker, { force: true });
    assert.throws(
      () => readTorchStateDict(fixture('hostile_os_system.pt')),
      (error: Error) =>
        error instanceof TorchCheckpointError && /refusing global 'posix\.system'/.test(error.message),
    );
    assert.throws(
      () => loadWeights(seedCnn(), fixture('hostile_os_system.pt')),
      /refusing global 'posix\.system'/,
    );
    assert.equal(fs.existsSync(cwdMarker), false, 'the command ran');
  });

  it('the hostile fixture really runs its command under PyTorch’s own loader', needsTorch, () => {
    // Proves the refusal above is a refusal of something live, not of an inert file.
    const directory = fs.mkdtempSync(path.join(temporary, 'python-'));
    spawnSync(
      '/usr/bin/python3',
      ['-c', `import torch; torch.load(${JSON.stringify(fixture('hostile_os_system.pt'))})`],
      {
        cwd: directory,
        stdio: 'ignore',
      },
    );
    assert.equal(fs.existsSync(path.join(directory, marker)), true);
  });

  it('a whole pickled model (a global no state dict has) is refused with what to save instead', () => {
    assert.throws(
      () => readTorchStateDict(fixture('hostile_whole_model.pt')),
      /refusing global 'torch\.nn\.modules\.linear\.Linear'.*save model\.state_dict\(\)/,
    );
  });

  it('a truncated archive or legacy file is an error saying so', () => {
    for (const name of ['resnet_small.pth', 'seed_cnn_legacy.pt']) {
      const bytes = fs.readFileSync(fixture(name));
      for (const keep of [0.3, 0.9, 0.999]) {
        const file = path.join(temporary, `truncated-${keep}-${name}`);
        fs.writeFileSync(file, bytes.subarray(0, Math.floor(bytes.length * keep)));
        assert.throws(
          () => readTorchStateDict(file),
          (error: Error) => {
            assert.ok(error instanceof TorchCheckpointError, `${name} at ${keep}: ${error.name}`);
            assert.match(error.message, /truncated/, `${name} at ${keep}`);
            return true;
          },
        );
      }
    }
  });

  it('a storage declaring more elements than its record holds is refused before allocating them', () => {
    assert.throws(
      () => readTorchStateDict(fixture('storage_too_large.pt')),
      /storage '0' declares 1000000000 float32 elements \(4000000000 bytes\) but its record holds 72 bytes/,
    );
  });

  it('a zip entry declaring more bytes than the archive has, or failing its CRC, is refused', () => {
    const bytes = Buffer.from(fs.readFileSync(fixture('seed_cnn_float32.pt')));
    // The central directory entry of the first storage: sizes at +20 and +24 from its signature.
    const name = Buffer.from('seed_cnn_float32/data/0');
    const central = bytes.lastIndexOf(name) - 46;
    assert.equal(bytes.readUInt32LE(central), 0x02014b50, 'a central directory header');
    const oversized = Buffer.from(bytes);
    oversized.writeUInt32LE(0x7fffffff, central + 20);
    oversized.writeUInt32LE(0x7fffffff, central + 24);
    const oversizedFile = path.join(temporary, 'oversized.pt');
    fs.writeFileSync(oversizedFile, oversized);
    assert.throws(
      () => readTorchStateDict(oversizedFile),
      /entry 'seed_cnn_float32\/data\/0' declares 2147483647 bytes .* past the end/,
    );
    // One flipped bit in the storage data.
    const local = bytes.indexOf(name);
    const corrupt = Buffer.from(bytes);
    corrupt[local + name.length + 100] ^= 1;
    const corruptFile = path.join(temporary, 'corrupt.pt');
    fs.writeFileSync(corruptFile, corrupt);
    assert.throws(() => readTorchStateDict(corruptFile), /fails its CRC-32 check/);
  });

  it('reads zip64 archives (sizes and offsets in the zip64 fields, as over 4 GiB)', () => {
    // seed_cnn_float32.pt rewritten with every size and offset saturated in the 32-bit fields and
    // given in zip64 extra fields, with a zip64 end record and locator (APPNOTE 4.3.14–4.3.16, 4.5.3).
    const archive = ZipArchive.open(fixture('seed_cnn_float32.pt'));
    const entries = [...archive.entries.values()].map((entry) => ({ entry, data: archive.readEntry(entry) }));
    archive.close();
    const parts: Buffer[] = [];
    const central: Buffer[] = [];
    let offset = 0;
    for (const { entry, data } of entries) {
      const name = Buffer.from(entry.name);
      const local = Buffer.alloc(30);
      local.writeUInt32LE(0x04034b50, 0);
      local.writeUInt16LE(45, 4);
      local.writeUInt32LE(entry.crc32, 14);
      local.writeUInt32LE(data.length, 18);
      local.writeUInt32LE(data.length, 22);
      local.writeUInt16LE(name.length, 26);
      parts.push(local, name, Buffer.from(data));
      const header = Buffer.alloc(46);
      header.writeUInt32LE(0x02014b50, 0);
      header.writeUInt16LE(45, 4);
      header.writeUInt16LE(45, 6);
      header.writeUInt32LE(entry.crc32, 16);
      header.writeUInt32LE(0xffffffff, 20);
      header.writeUInt32LE(0xffffffff, 24);
      header.writeUInt16LE(name.length, 28);
      header.writeUInt16LE(28, 30);
      header.writeUInt32LE(0xffffffff, 42);
      const extra = Buffer.alloc(28);
      extra.writeUInt16LE(0x0001, 0);
      extra.writeUInt16LE(24, 2);
      extra.writeBigUInt64LE(BigInt(data.length), 4);
      extra.writeBigUInt64LE(BigInt(data.length), 12);
      extra.writeBigUInt64LE(BigInt(offset), 20);
      central.push(header, name, extra);
      offset += 30 + name.length + data.length;
    }
    const directory = Buffer.concat(central);
    const record = Buffer.alloc(56);
    record.writeUInt32LE(0x06064b50, 0);
    record.writeBigUInt64LE(44n, 4);
    record.writeBigUInt64LE(BigInt(entries.length), 24);
    record.writeBigUInt64LE(BigInt(entries.length), 32);
    record.writeBigUInt64LE(BigInt(directory.length), 40);
    record.writeBigUInt64LE(BigInt(offset), 48);
    const locator = Buffer.alloc(20);
    locator.writeUInt32LE(0x07064b50, 0);
    locator.writeBigUInt64LE(BigInt(offset + directory.length), 8);
    locator.writeUInt32LE(1, 16);
    const end = Buffer.alloc(22);
    end.writeUInt32LE(0x06054b50, 0);
    end.writeUInt16LE(0xffff, 8);
    end.writeUInt16LE(0xffff, 10);
    end.writeUInt32LE(0xffffffff, 12);
    end.writeUInt32LE(0xffffffff, 16);
    const file = path.join(temporary, 'zip64.pt');
    fs.writeFileSync(file, Buffer.concat([...parts, directory, record, locator, end]));
    const read = readTorchStateDict(file);
    const { tensors } = readSafetensors(fixture('seed_cnn.safetensors'));
    assert.deepEqual([...read.keys()], [...tensors.keys()]);
    for (const [name, expected] of tensors)
      assert.ok(bytesOf(read.get(name)!.data).equals(bytesOf(expected.data)), name);
  });

  it('a file that is no checkpoint says what it is not', () => {
    const file = path.join(temporary, 'notes.pth');
    fs.writeFileSync(file, 'not a checkpoint at all');
    assert.throws(() => readTorchStateDict(file), /is not a PyTorch checkpoint/);
  });

  it('the pickle reader refuses other object-building opcodes and reports truncation', () => {
    const options = { source: 'test', globals: new Map() };
    // Protocol 4: STACK_GLOBAL builtins.eval, then a call.
    const stackGlobal = Buffer.concat([
      Buffer.from([0x80, 0x04, 0x8c, 8]),
      Buffer.from('builtins'),
      Buffer.from([0x8c, 4]),
      Buffer.from('eval'),
      Buffer.from([0x93, 0x2e]),
    ]);
    assert.throws(() => unpickle(stackGlobal, options), /refusing global 'builtins\.eval'/);
    const instance = Buffer.from('\x80\x02(ios\nsystem\n.', 'latin1');
    assert.throws(() => unpickle(instance, options), /opcode INST at byte 3 is not allowed/);
    const truncated = Buffer.from([0x80, 0x02, 0x58, 0xff, 0xff, 0, 0, 0x41]);
    assert.throws(
      () => unpickle(truncated, options),
      (error: Error) => error instanceof PickleError && /truncated/.test(error.message),
    );
    const plain = Buffer.from([0x80, 0x02, 0x5d, 0x4b, 0x05, 0x61, 0x2e]); // [5]
    assert.deepEqual(unpickle(plain, options).value, [5]);
  });
});
