/** The wasm backend's matrix product: planning of Backend.matmul onto the GEMM kernels. */
import { ARGUMENTS as A, scratchOf, type ChunkRunner, type KernelFileJobs } from './jobs.js';
import {
  apart,
  blockFor,
  chunkTarget,
  itemStages,
  requireLength,
  reserveScratch,
  roundUp,
  setArguments,
  setGrid,
} from './plan.js';
import { wasmRuntime } from './runtime.js';
import { getWasmThreads, jobParameters, runJob, wasmTuning, type JobStages } from './threads.js';

/**
 * Scratch of one register tile (at most 6×8, see assembly/gemm.ts), where gemmPackedBlock assembles
 * the tiles at C's edges.
 */
const EDGE_TILE_BYTES = 6 * 8 * 4;

/**
 * Row and column block sizes that cut an M×N product into about `chunks` blocks: halves the larger
 * block (rows in multiples of the register tile's `tileRows`, columns of its 8 columns) until there
 * are enough.
 */
function gemmBlocks(m: number, n: number, chunks: number, tileRows: number): [rows: number, columns: number] {
  let rows = Math.max(m, 1);
  let columns = Math.max(n, 1);
  while (Math.ceil(m / rows) * Math.ceil(n / columns) < chunks) {
    if (rows >= columns && rows > tileRows) rows = roundUp(Math.ceil(rows / 2), tileRows);
    else if (columns > 8) columns = roundUp(Math.ceil(columns / 2), 8);
    else if (rows > tileRows) rows = roundUp(Math.ceil(rows / 2), tileRows);
    else break;
  }
  return [rows, columns];
}

/**
 * out[M,N] (+)= op(A)[M,K]·op(B)[K,N]; see Backend.matmul for the layouts.
 *
 * On one thread (or for a small product) this is one gemmStrided call. On several, the threads first
 * pack op(A) and op(B) once, in row and column pieces (job gemmPack, staged by operand: workers pack
 * A while the calling thread copies B into wasm memory), then share the blocks of C
 * (job gemmPackedBlocks), which read the packed panels: no panel is packed twice, so C can be cut
 * finely enough that no thread waits long for the last block. Each element is summed in the same
 * order either way, so the results are the same bits.
 */
export function matmul(
  a: Float32Array,
  b: Float32Array,
  out: Float32Array,
  m: number,
  n: number,
  k: number,
  transposeA: boolean,
  transposeB: boolean,
  accumulate: boolean,
): void {
  a = apart(a, out);
  b = apart(b, out);
  requireLength('a', a, m * k);
  requireLength('b', b, k * n);
  requireLength('out', out, m * n);
  const { kernels, arena } = wasmRuntime();
  arena.reset();
  const aAt = arena.place(a, m * k);
  const bAt = arena.place(b, k * n);
  const outAt = arena.place(out, m * n);
  const p = jobParameters();
  const chunks = chunkTarget(m * n * k, wasmTuning.parallelMultiplyAdds);
  const stagesOfC = (): JobStages => itemStages(p, accumulate ? [[out, outAt, n]] : [], [[out, outAt, n]]);
  if (chunks === 1 || k === 0 || m === 0 || n === 0) {
    arena.copyInRange(aAt, a, 0, m * k);
    arena.copyInRange(bAt, b, 0, k * n);
    setGrid(p, m, Math.max(m, 1), n, Math.max(n, 1));
    reserveScratch(p, kernels.gemmWorkspaceBytes(m, n, k));
    setArguments(p, aAt, bAt, outAt, m, n, k, +transposeA, +transposeB, +accumulate);
    runJob(matmulChunk, stagesOfC());
    return;
  }
  const threads = getWasmThreads();
  const tileRows = kernels.gemmTileRows();
  const packedA = arena.allocate(kernels.gemmPackedFloats(m, k, tileRows) * 4);
  const packedB = arena.allocate(kernels.gemmPackedFloats(n, k, 8) * 4);
  // The packing job is a 2 × pieces grid: row 0 packs A's row pieces, row 1 B's column pieces. Staged
  // by operand, so the workers pack A while the calling thread still copies B in.
  const pieces = threads * 2;
  const rowsPerPiece = blockFor(m, pieces, tileRows);
  const columnsPerPiece = blockFor(n, pieces, 8);
  setGrid(p, 2, 1, pieces, 1);
  setArguments(
    p,
    aAt,
    bAt,
    m,
    n,
    k,
    +transposeA,
    +transposeB,
    packedA,
    packedB,
    rowsPerPiece,
    columnsPerPiece,
  );
  const operands: [Float32Array, number, number][] = [
    [a, aAt, m * k],
    [b, bAt, k * n],
  ];
  runJob(gemmPackChunk, {
    stageIn: (operand) => {
      const [data, at, count] = operands[operand]!;
      arena.copyInRange(at, data, 0, count);
    },
    stageOut: () => {},
  });
  // Four times the usual chunks: blocks of C pack nothing, so finer blocks cost little, and they even
  // out the end of the job, where a thread with nothing left to claim waits for the others.
  const [rows, columns] = gemmBlocks(m, n, chunks * 4, tileRows);
  setGrid(p, m, rows, n, columns);
  reserveScratch(p, EDGE_TILE_BYTES);
  setArguments(p, packedA, packedB, outAt, m, n, k, +accumulate);
  runJob(gemmPackedBlocksChunk, stagesOfC());
}

declare module './runtime.js' {
  /** The exports of assembly/gemm.ts (see there for the semantics). */
  interface KernelExports {
    gemmWorkspaceBytes(m: number, n: number, k: number): number;
    gemmStrided(
      m: number,
      n: number,
      k: number,
      a: Pointer,
      lda: number,
      transposeA: boolean,
      b: Pointer,
      ldb: number,
      transposeB: boolean,
      c: Pointer,
      ldc: number,
      accumulate: boolean,
      work: Pointer,
    ): void;
    gemmPackA(
      a: Pointer,
      lda: number,
      transposeA: boolean,
      m: number,
      k: number,
      rowStart: number,
      rowEnd: number,
      packed: Pointer,
    ): void;
    gemmPackB(
      b: Pointer,
      ldb: number,
      transposeB: boolean,
      n: number,
      k: number,
      colStart: number,
      colEnd: number,
      packed: Pointer,
    ): void;
    gemmPackedFloats(rows: number, k: number, strip: number): number;
    gemmTileRows(): number;
    gemmPackedBlock(
      packedA: Pointer,
      packedB: Pointer,
      m: number,
      n: number,
      k: number,
      c: Pointer,
      ldc: number,
      accumulate: boolean,
      rowStart: number,
      rowEnd: number,
      colStart: number,
      colEnd: number,
      edgeTile: Pointer,
    ): void;
  }
}

/**
 * matmul: arguments a, b, c, m, n, k, transposeA, transposeB, accumulate; first = rows of C,
 * second = columns of C. A block of C needs only its rows of op(A) and columns of op(B), which are
 * sub-matrices with the original leading dimensions.
 */
const matmulChunk: ChunkRunner = (kernels, p, chunk, thread) => {
  const a = p[A]!;
  const b = p[A + 1]!;
  const c = p[A + 2]!;
  const m = p[A + 3]!;
  const n = p[A + 4]!;
  const k = p[A + 5]!;
  const transposeA = p[A + 6] !== 0;
  const transposeB = p[A + 7] !== 0;
  const lda = transposeA ? m : k;
  const ldb = transposeB ? k : n;
  const aBlock = a + (transposeA ? chunk.firstStart : chunk.firstStart * lda) * 4;
  const bBlock = b + (transposeB ? chunk.secondStart * ldb : chunk.secondStart) * 4;
  kernels.gemmStrided(
    chunk.firstEnd - chunk.firstStart,
    chunk.secondEnd - chunk.secondStart,
    k,
    aBlock,
    lda,
    transposeA,
    bBlock,
    ldb,
    transposeB,
    c + (chunk.firstStart * n + chunk.secondStart) * 4,
    n,
    p[A + 8] !== 0,
    scratchOf(p, thread),
  );
};

/**
 * gemmPack: arguments a, b, m, n, k, transposeA, transposeB, packedA, packedB, rows per A piece,
 * columns per B piece; first = operand (0: A, 1: B), second = piece (pieces past the operand's end
 * pack nothing).
 */
const gemmPackChunk: ChunkRunner = (kernels, p, chunk) => {
  const m = p[A + 2]!;
  const n = p[A + 3]!;
  const k = p[A + 4]!;
  const transposeA = p[A + 5] !== 0;
  const transposeB = p[A + 6] !== 0;
  if (chunk.firstStart === 0) {
    const rows = p[A + 9]!;
    const start = chunk.secondStart * rows;
    if (start < m)
      kernels.gemmPackA(
        p[A]!,
        transposeA ? m : k,
        transposeA,
        m,
        k,
        start,
        Math.min(m, start + rows),
        p[A + 7]!,
      );
  } else {
    const columns = p[A + 10]!;
    const start = chunk.secondStart * columns;
    if (start < n)
      kernels.gemmPackB(
        p[A + 1]!,
        transposeB ? k : n,
        transposeB,
        n,
        k,
        start,
        Math.min(n, start + columns),
        p[A + 8]!,
      );
  }
};

/**
 * gemmPackedBlocks: arguments packedA, packedB, c, m, n, k, accumulate; first = rows of C, second =
 * columns of C; this thread's scratch holds its edge tile.
 */
const gemmPackedBlocksChunk: ChunkRunner = (kernels, p, chunk, thread) => {
  const n = p[A + 4]!;
  kernels.gemmPackedBlock(
    p[A]!,
    p[A + 1]!,
    p[A + 3]!,
    n,
    p[A + 5]!,
    p[A + 2]!,
    n,
    p[A + 6] !== 0,
    chunk.firstStart,
    chunk.firstEnd,
    chunk.secondStart,
    chunk.secondEnd,
    scratchOf(p, thread),
  );
};

/** This file's part of the job table (./index.ts). */
export const matmulJobs = {
  exports: {
    gemmWorkspaceBytes: true,
    gemmStrided: true,
    gemmPackA: true,
    gemmPackB: true,
    gemmPackedFloats: true,
    gemmTileRows: true,
    gemmPackedBlock: true,
  },
  runners: { matmul: matmulChunk, gemmPack: gemmPackChunk, gemmPackedBlocks: gemmPackedBlocksChunk },
} satisfies KernelFileJobs;
