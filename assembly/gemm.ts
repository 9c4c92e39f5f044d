/**
 * Single-precision GEMM for WebAssembly SIMD: C[M,N] (+)= op(A)[M,K] · op(B)[K,N], row-major.
 *
 * The structure is the Goto/BLIS one. B is packed a KC×NC panel at a time into column strips of
 * NR = 8 floats, A a MC×KC block at a time into row strips of MR = 4 (or 6) floats, and an MR×8
 * register tile walks the packed strips. Packing makes every operand read in the inner loop
 * sequential and independent of the transposes and leading dimensions, and zero-pads the edges so the
 * register tile never sees a partial strip.
 *
 * All pointers are byte addresses in linear memory; `work` is caller-provided scratch of
 * gemmWorkspaceBytes(m, n, k) bytes, so this module allocates nothing and is safe to run
 * concurrently on several threads sharing one memory (each with its own workspace).
 */

/**
 * Rows of the register tile. With relaxed SIMD the tile is 6×8: `f32x4.relaxed_madd` is one fused
 * multiply-add on x64, so the product needs no temporary register, and twelve accumulators, two B
 * vectors and one broadcast A value fit the 15 XMM registers V8 allocates (it keeps one as scratch).
 * Twelve independent accumulators also cover the multiply-add latency. Without FMA the separate
 * product needs a register of its own and a 6×8 tile spills, so plain SIMD keeps 4×8. Both builds
 * come from this file (scripts/build-wasm.mjs); the backend asks gemmTileRows() which one it runs.
 */
const MR: i32 = ASC_FEATURE_RELAXED_SIMD ? 6 : 4;
/** Columns of the register tile (two f32x4 vectors). */
export const NR: i32 = 8;
/** Depths packB copies per pass over a row-major B: 8 rows of 32 bytes fill 4 lines of a strip. */
const DEPTH_BAND: i32 = 8;
/** Depth of a packed block: an MR×KC strip of A (4–6 KiB) and a KC×8 strip of B (8 KiB) stay in L1. */
export const KC: i32 = 256;
/**
 * Rows of a packed A block, a multiple of MR: MC×KC floats (about 128 KiB) stay in L2 while the B
 * panel streams past.
 */
const MC: i32 = ASC_FEATURE_RELAXED_SIMD ? 126 : 128;
/** Columns of a packed B panel: KC×NC floats (4 MiB) live in the last-level cache. */
const NC: i32 = 4096;

/**
 * Rows of the register tile (4, or 6 in the relaxed-SIMD build). Row pieces of gemmPackA and row
 * blocks of gemmPackedBlock start at multiples of it.
 */
export function gemmTileRows(): i32 {
  return MR;
}

function roundUp(value: i32, multiple: i32): i32 {
  return ((value + multiple - 1) / multiple) * multiple;
}

/** Rows of the short strips that take the remainder of a block when MR = 6 (see tallRows). */
const SHORT: i32 = 4;

/**
 * How many of a gemmStrided block's mc rows go into MR-row strips; the rest go into SHORT = 4-row
 * strips, run by a 4×8 tile. With MR = 6 a block of 32 rows (a convolution with 32 output channels)
 * would otherwise be six strips, 36 rows of work for 32; as 6+6+6+6+4+4 none is wasted, and 64 rows
 * are 10·6+4 rather than 66. A 4×8 fused tile is nearly as fast per row as the 6×8 one, and it sums
 * every element the same way (from zero, one fused multiply-add per depth step, then C added), so
 * the split does not change the result. Packed operands of threaded products (gemmPackA) use MR-row
 * strips only.
 */
function tallRows(mc: i32): i32 {
  if (MR == SHORT) return roundUp(mc, MR);
  const whole = mc / MR;
  const rest = mc - whole * MR;
  if (rest == 0 || rest == 5) return roundUp(mc, MR);
  // 3 or 4 left: one short strip; 1 or 2 left: the last MR + rest (7 or 8) rows as two short strips.
  if (rest >= 3 || whole == 0) return whole * MR;
  return (whole - 1) * MR;
}

/** Bytes of scratch that gemm needs for an M×N×K product. */
export function gemmWorkspaceBytes(m: i32, n: i32, k: i32): i32 {
  const kc = max(min(k, KC), 1);
  const mc = min(roundUp(max(m, 1), MR), MC);
  const nc = min(roundUp(max(n, 1), NR), NC);
  return (mc * kc + kc * nc + MR * NR) * 4;
}

/**
 * C (+)= op(A)·op(B) for row-major operands with leading dimensions (in elements).
 * A is stored [M,K] (lda ≥ K), or [K,M] when transA (lda ≥ M); B is stored [K,N] (ldb ≥ N), or [N,K]
 * when transB (ldb ≥ K); C is [M,N] with ldc ≥ N. With accumulate false C is overwritten.
 */
export function gemmStrided(
  m: i32,
  n: i32,
  k: i32,
  a: usize,
  lda: i32,
  transA: bool,
  b: usize,
  ldb: i32,
  transB: bool,
  c: usize,
  ldc: i32,
  accumulate: bool,
  work: usize,
): void {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {
    // An empty sum: overwrite means zero, accumulate means leave C alone.
    if (!accumulate) {
      for (let i = 0; i < m; i++) memory.fill(c + <usize>(i * ldc) * 4, 0, <usize>n * 4);
    }
    return;
  }
  const kcMax = min(k, KC);
  const packedA = work;
  const packedB = packedA + <usize>(min(roundUp(m, MR), MC) * kcMax) * 4;
  const edgeTile = packedB + <usize>(min(roundUp(n, NR), NC) * kcMax) * 4;
  for (let jc = 0; jc < n; jc += NC) {
    const nc = min(NC, n - jc);
    for (let pc = 0; pc < k; pc += KC) {
      const kc = min(KC, k - pc);
      // Only the first depth block may overwrite C; later ones add to it.
      const addToC = accumulate || pc > 0;
      packB(b, ldb, transB, pc, jc, kc, nc, packedB);
      for (let ic = 0; ic < m; ic += MC) {
        const mc = min(MC, m - ic);
        const tall = tallRows(mc);
        packA(a, lda, transA, ic, pc, mc, kc, tall, packedA);
        macroKernel(
          mc,
          nc,
          kc,
          tall,
          packedA,
          packedB,
          c + <usize>(ic * ldc + jc) * 4,
          ldc,
          addToC,
          edgeTile,
        );
      }
    }
  }
}

/**
 * Threaded products pack each operand once, in parallel, then split C between threads. The packed
 * layout of op(A) (and likewise op(B)) is the one gemmStrided's panels use, laid end to end: depth
 * block p (depth pc = p·KC) starts at float roundUp(M, MR)·pc, and within it row strip s (rows MR·s to
 * MR·s+MR−1) starts at s·MR·kc. gemmPackedBlock then walks exactly the tiles and depth blocks that
 * gemmStrided would for its block of C, so every element gets the same sum in the same order.
 */

/** tallRows for packed operands: every strip MR rows. */
const ALL_TALL: i32 = i32.MAX_VALUE;

/** Packs rows [rowStart, rowEnd) (rowStart a multiple of MR) of op(A), every depth block. */
export function gemmPackA(
  a: usize,
  lda: i32,
  transA: bool,
  m: i32,
  k: i32,
  rowStart: i32,
  rowEnd: i32,
  packed: usize,
): void {
  const rowsPadded = roundUp(m, MR);
  for (let pc = 0; pc < k; pc += KC) {
    const kc = min(KC, k - pc);
    const panel = packed + <usize>(rowsPadded * pc + rowStart * kc) * 4;
    packA(a, lda, transA, rowStart, pc, rowEnd - rowStart, kc, ALL_TALL, panel);
  }
}

/** Packs columns [colStart, colEnd) (colStart a multiple of NR) of op(B), every depth block. */
export function gemmPackB(
  b: usize,
  ldb: i32,
  transB: bool,
  n: i32,
  k: i32,
  colStart: i32,
  colEnd: i32,
  packed: usize,
): void {
  const colsPadded = roundUp(n, NR);
  for (let pc = 0; pc < k; pc += KC) {
    const kc = min(KC, k - pc);
    const panel = packed + <usize>(colsPadded * pc + colStart * kc) * 4;
    packB(b, ldb, transB, pc, colStart, kc, colEnd - colStart, panel);
  }
}

/** Floats of a packed op(A) (rows = M) or op(B) (rows = N, strip = NR) for depth K. */
export function gemmPackedFloats(rows: i32, k: i32, strip: i32): i32 {
  return roundUp(max(rows, 1), strip) * max(k, 0);
}

/**
 * C[rowStart:rowEnd, colStart:colEnd] (+)= op(A)·op(B) from operands packed by gemmPackA and
 * gemmPackB (k ≥ 1). rowStart is a multiple of MR and colStart of NR. `edgeTile` is MR·NR floats of
 * this thread's scratch.
 */
export function gemmPackedBlock(
  packedA: usize,
  packedB: usize,
  m: i32,
  n: i32,
  k: i32,
  c: usize,
  ldc: i32,
  accumulate: bool,
  rowStart: i32,
  rowEnd: i32,
  colStart: i32,
  colEnd: i32,
  edgeTile: usize,
): void {
  const rowsPadded = roundUp(m, MR);
  const colsPadded = roundUp(n, NR);
  for (let pc = 0; pc < k; pc += KC) {
    const kc = min(KC, k - pc);
    macroKernel(
      rowEnd - rowStart,
      colEnd - colStart,
      kc,
      ALL_TALL,
      packedA + <usize>(rowsPadded * pc + rowStart * kc) * 4,
      packedB + <usize>(colsPadded * pc + colStart * kc) * 4,
      c + <usize>(rowStart * ldc + colStart) * 4,
      ldc,
      accumulate || pc > 0,
      edgeTile,
    );
  }
}

/**
 * Packs rows [ic, ic+mc) × depth [pc, pc+kc) of op(A) into strips: MR rows each for the first `tall`
 * rows, SHORT rows each after that (see tallRows). A strip of h rows holds, for each depth p, the h
 * values op(A)[row, pc+p] contiguously, and the strip starting at block row ir starts at float ir·kc.
 * Rows past mc are zero.
 */
function packA(
  a: usize,
  lda: i32,
  transA: bool,
  ic: i32,
  pc: i32,
  mc: i32,
  kc: i32,
  tall: i32,
  dst: usize,
): void {
  for (let ir = 0; ir < mc;) {
    const height = ir < tall ? MR : SHORT;
    packStrip(a, lda, transA, ic + ir, pc, min(height, mc - ir), height, kc, dst + <usize>(ir * kc) * 4);
    ir += height;
  }
}

/** One strip of packA: `rows` valid rows from row i0, padded with zeros to `height` (MR or SHORT). */
function packStrip(
  a: usize,
  lda: i32,
  transA: bool,
  i0: i32,
  pc: i32,
  rows: i32,
  height: i32,
  kc: i32,
  out: usize,
): void {
  const stripBytes = <usize>height * 4;
  const step = <usize>lda * 4;
  if (transA) {
    // Stored [K,M]: the values for one depth are adjacent in memory.
    let src = a + <usize>(pc * lda + i0) * 4;
    if (rows == height) {
      for (let p = 0; p < kc; p++) {
        v128.store(out, v128.load(src));
        if (height == 6) store<u64>(out, load<u64>(src, 16), 16);
        src += step;
        out += stripBytes;
      }
    } else {
      for (let p = 0; p < kc; p++) {
        for (let r = 0; r < height; r++)
          store<f32>(out + <usize>r * 4, r < rows ? load<f32>(src + <usize>r * 4) : 0);
        src += step;
        out += stripBytes;
      }
    }
    return;
  }
  // Stored [M,K]: each row is contiguous in depth; transpose 4×4 blocks in registers, and for a
  // 6-row strip interleave rows 4 and 5 in pairs.
  const r0 = a + <usize>(i0 * lda + pc) * 4;
  if (rows == height) {
    const r1 = r0 + step;
    const r2 = r1 + step;
    const r3 = r2 + step;
    let p = 0;
    for (; p + 4 <= kc; p += 4) {
      const offset = <usize>p * 4;
      const x0 = v128.load(r0 + offset);
      const x1 = v128.load(r1 + offset);
      const x2 = v128.load(r2 + offset);
      const x3 = v128.load(r3 + offset);
      const t0 = f32x4.shuffle(x0, x1, 0, 4, 1, 5);
      const t1 = f32x4.shuffle(x0, x1, 2, 6, 3, 7);
      const t2 = f32x4.shuffle(x2, x3, 0, 4, 1, 5);
      const t3 = f32x4.shuffle(x2, x3, 2, 6, 3, 7);
      v128.store(out, f32x4.shuffle(t0, t2, 0, 1, 4, 5));
      v128.store(out + stripBytes, f32x4.shuffle(t0, t2, 2, 3, 6, 7));
      v128.store(out + 2 * stripBytes, f32x4.shuffle(t1, t3, 0, 1, 4, 5));
      v128.store(out + 3 * stripBytes, f32x4.shuffle(t1, t3, 2, 3, 6, 7));
      if (height == 6) {
        const x4 = v128.load(r3 + step + offset);
        const x5 = v128.load(r3 + 2 * step + offset);
        const low = f32x4.shuffle(x4, x5, 0, 4, 1, 5);
        const high = f32x4.shuffle(x4, x5, 2, 6, 3, 7);
        v128.store64_lane(out, low, 0, 16);
        v128.store64_lane(out + stripBytes, low, 1, 16);
        v128.store64_lane(out + 2 * stripBytes, high, 0, 16);
        v128.store64_lane(out + 3 * stripBytes, high, 1, 16);
      }
      out += 4 * stripBytes;
    }
    for (; p < kc; p++) {
      const offset = <usize>p * 4;
      for (let r = 0; r < height; r++)
        store<f32>(out + <usize>r * 4, load<f32>(r0 + <usize>r * step + offset));
      out += stripBytes;
    }
  } else {
    for (let p = 0; p < kc; p++) {
      for (let r = 0; r < height; r++) {
        store<f32>(out + <usize>r * 4, r < rows ? load<f32>(r0 + <usize>r * step + <usize>p * 4) : 0);
      }
      out += stripBytes;
    }
  }
}

/**
 * Packs depth [pc, pc+kc) × columns [jc, jc+nc) of op(B) into strips of NR columns: strip s holds, for
 * each depth p, the NR values op(B)[pc+p, jc+s·NR+c] contiguously. Columns past nc are zero.
 */
function packB(b: usize, ldb: i32, transB: bool, pc: i32, jc: i32, kc: i32, nc: i32, dst: usize): void {
  const step = <usize>ldb * 4;
  let first = 0;
  if (!transB) {
    // Stored [K,N]: read the rows a band of DEPTH_BAND depths at a time, left to right, and deal each
    // band's NR-wide pieces to the strips, so that every strip receives DEPTH_BAND·32 contiguous bytes
    // (whole cache lines) at once. Walking one strip down all the depths reads with a stride of the
    // row length, and dealing one row at a time writes half a line per strip and comes back for the
    // other half a row later; for power-of-two widths both map every access to the same L1 set
    // (measured: NN packing of 1024³ was the slowest of the four transposes).
    const full = nc / NR;
    const stripStride = <usize>kc * 32;
    for (let p0 = 0; p0 < kc; p0 += DEPTH_BAND) {
      const band = min(DEPTH_BAND, kc - p0);
      let src = b + <usize>((pc + p0) * ldb + jc) * 4;
      let out = dst + <usize>p0 * 32;
      for (let s = 0; s < full; s++) {
        let row = src;
        let at = out;
        for (let q = 0; q < band; q++) {
          v128.store(at, v128.load(row));
          v128.store(at, v128.load(row, 16), 16);
          row += step;
          at += 32;
        }
        src += 32;
        out += stripStride;
      }
    }
    first = full * NR;
  }
  for (let jr = first; jr < nc; jr += NR) {
    const cols = min(NR, nc - jr);
    const j0 = jc + jr;
    let out = dst + <usize>(jr * kc) * 4;
    if (!transB) {
      // Stored [K,N]: the NR values for one depth are adjacent in memory.
      let src = b + <usize>(pc * ldb + j0) * 4;
      if (cols == NR) {
        for (let p = 0; p < kc; p++) {
          v128.store(out, v128.load(src));
          v128.store(out, v128.load(src, 16), 16);
          src += step;
          out += 32;
        }
      } else {
        for (let p = 0; p < kc; p++) {
          for (let col = 0; col < NR; col++) {
            store<f32>(out + <usize>col * 4, col < cols ? load<f32>(src + <usize>col * 4) : 0);
          }
          src += step;
          out += 32;
        }
      }
    } else {
      // Stored [N,K]: each column of op(B) is a contiguous row; transpose two 4×4 blocks per 4 depths.
      const c0 = b + <usize>(j0 * ldb + pc) * 4;
      if (cols == NR) {
        const c1 = c0 + step;
        const c2 = c1 + step;
        const c3 = c2 + step;
        const c4 = c3 + step;
        const c5 = c4 + step;
        const c6 = c5 + step;
        const c7 = c6 + step;
        let p = 0;
        for (; p + 4 <= kc; p += 4) {
          const offset = <usize>p * 4;
          let x0 = v128.load(c0 + offset);
          let x1 = v128.load(c1 + offset);
          let x2 = v128.load(c2 + offset);
          let x3 = v128.load(c3 + offset);
          let t0 = f32x4.shuffle(x0, x1, 0, 4, 1, 5);
          let t1 = f32x4.shuffle(x0, x1, 2, 6, 3, 7);
          let t2 = f32x4.shuffle(x2, x3, 0, 4, 1, 5);
          let t3 = f32x4.shuffle(x2, x3, 2, 6, 3, 7);
          v128.store(out, f32x4.shuffle(t0, t2, 0, 1, 4, 5));
          v128.store(out, f32x4.shuffle(t0, t2, 2, 3, 6, 7), 32);
          v128.store(out, f32x4.shuffle(t1, t3, 0, 1, 4, 5), 64);
          v128.store(out, f32x4.shuffle(t1, t3, 2, 3, 6, 7), 96);
          x0 = v128.load(c4 + offset);
          x1 = v128.load(c5 + offset);
          x2 = v128.load(c6 + offset);
          x3 = v128.load(c7 + offset);
          t0 = f32x4.shuffle(x0, x1, 0, 4, 1, 5);
          t1 = f32x4.shuffle(x0, x1, 2, 6, 3, 7);
          t2 = f32x4.shuffle(x2, x3, 0, 4, 1, 5);
          t3 = f32x4.shuffle(x2, x3, 2, 6, 3, 7);
          v128.store(out, f32x4.shuffle(t0, t2, 0, 1, 4, 5), 16);
          v128.store(out, f32x4.shuffle(t0, t2, 2, 3, 6, 7), 48);
          v128.store(out, f32x4.shuffle(t1, t3, 0, 1, 4, 5), 80);
          v128.store(out, f32x4.shuffle(t1, t3, 2, 3, 6, 7), 112);
          out += 128;
        }
        for (; p < kc; p++) {
          for (let col = 0; col < NR; col++) {
            store<f32>(out + <usize>col * 4, load<f32>(c0 + <usize>col * step + <usize>p * 4));
          }
          out += 32;
        }
      } else {
        for (let p = 0; p < kc; p++) {
          for (let col = 0; col < NR; col++) {
            store<f32>(
              out + <usize>col * 4,
              col < cols ? load<f32>(c0 + <usize>col * step + <usize>p * 4) : 0,
            );
          }
          out += 32;
        }
      }
    }
  }
}

/**
 * Multiplies a packed mc×kc block of A by a packed kc×nc panel of B into C (leading dimension ldc).
 * A's first `tall` rows are in MR-row strips, the rest in SHORT-row strips (packA). Full tiles go
 * straight to C; edge tiles go through a scratch tile and only their valid part is written, so C is
 * never touched outside [mc, nc).
 */
function macroKernel(
  mc: i32,
  nc: i32,
  kc: i32,
  tall: i32,
  packedA: usize,
  packedB: usize,
  c: usize,
  ldc: i32,
  addToC: bool,
  edgeTile: usize,
): void {
  const rowBytes = <usize>ldc * 4;
  for (let jr = 0; jr < nc; jr += NR) {
    const cols = min(NR, nc - jr);
    const stripB = packedB + <usize>(jr * kc) * 4;
    for (let ir = 0; ir < mc;) {
      const height = ir < tall ? MR : SHORT;
      const rows = min(height, mc - ir);
      const stripA = packedA + <usize>(ir * kc) * 4;
      const tile = c + <usize>ir * rowBytes + <usize>jr * 4;
      if (rows == height && cols == NR) {
        if (height == MR) microKernel(kc, stripA, stripB, tile, rowBytes, addToC);
        else shortKernel(kc, stripA, SHORT * 4, stripB, tile, rowBytes, addToC);
      } else {
        if (height == MR) microKernel(kc, stripA, stripB, edgeTile, NR * 4, false);
        else shortKernel(kc, stripA, SHORT * 4, stripB, edgeTile, NR * 4, false);
        for (let r = 0; r < rows; r++) {
          const dstRow = tile + <usize>r * rowBytes;
          const srcRow = edgeTile + <usize>(r * NR) * 4;
          for (let col = 0; col < cols; col++) {
            const offset = <usize>col * 4;
            const value = load<f32>(srcRow + offset);
            store<f32>(dstRow + offset, addToC ? load<f32>(dstRow + offset) + value : value);
          }
        }
      }
      ir += height;
    }
  }
}

/**
 * The 4×8 tile for the short strips: fused in the relaxed build, as microKernel6x8 is. It reads the
 * first 4 rows of an A strip `aStep` bytes per depth (16 for SHORT-row strips; the Winograd products
 * run it on the first rows of MR-row strips).
 */
export function shortKernel(
  kc: i32,
  a: usize,
  aStep: usize,
  b: usize,
  c: usize,
  rowBytes: usize,
  addToC: bool,
): void {
  if (ASC_FEATURE_RELAXED_SIMD) microKernel4x8Fused(kc, a, aStep, b, c, rowBytes, addToC);
  else microKernel4x8(kc, a, aStep, b, c, rowBytes, addToC);
}

/** The register tile of this build: C[MR×8] (+)= strip of A · strip of B over depth kc. */
function microKernel(kc: i32, a: usize, b: usize, c: usize, rowBytes: usize, addToC: bool): void {
  if (ASC_FEATURE_RELAXED_SIMD) microKernel6x8(kc, a, b, c, rowBytes, addToC);
  else microKernel4x8(kc, a, 16, b, c, rowBytes, addToC);
}

/**
 * The 4×8 register tile: eight f32x4 accumulators, two B vectors, one broadcast A value and the
 * product stay in the 16 XMM registers V8 has on x64. Unrolling the depth loop made Binaryen
 * interleave two steps and V8 spill accumulators, so it is not unrolled.
 */
function microKernel4x8(
  kc: i32,
  a: usize,
  aStep: usize,
  b: usize,
  c: usize,
  rowBytes: usize,
  addToC: bool,
): void {
  let c00 = f32x4.splat(0);
  let c01 = f32x4.splat(0);
  let c10 = f32x4.splat(0);
  let c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0);
  let c21 = f32x4.splat(0);
  let c30 = f32x4.splat(0);
  let c31 = f32x4.splat(0);
  const end = b + <usize>kc * 32;
  while (b < end) {
    const b0 = v128.load(b);
    const b1 = v128.load(b, 16);
    let av = v128.load32_splat(a);
    c00 = f32x4.add(c00, f32x4.mul(av, b0));
    c01 = f32x4.add(c01, f32x4.mul(av, b1));
    av = v128.load32_splat(a, 4);
    c10 = f32x4.add(c10, f32x4.mul(av, b0));
    c11 = f32x4.add(c11, f32x4.mul(av, b1));
    av = v128.load32_splat(a, 8);
    c20 = f32x4.add(c20, f32x4.mul(av, b0));
    c21 = f32x4.add(c21, f32x4.mul(av, b1));
    av = v128.load32_splat(a, 12);
    c30 = f32x4.add(c30, f32x4.mul(av, b0));
    c31 = f32x4.add(c31, f32x4.mul(av, b1));
    a += aStep;
    b += 32;
  }
  const c1 = c + rowBytes;
  const c2 = c1 + rowBytes;
  const c3 = c2 + rowBytes;
  if (addToC) {
    c00 = f32x4.add(c00, v128.load(c));
    c01 = f32x4.add(c01, v128.load(c, 16));
    c10 = f32x4.add(c10, v128.load(c1));
    c11 = f32x4.add(c11, v128.load(c1, 16));
    c20 = f32x4.add(c20, v128.load(c2));
    c21 = f32x4.add(c21, v128.load(c2, 16));
    c30 = f32x4.add(c30, v128.load(c3));
    c31 = f32x4.add(c31, v128.load(c3, 16));
  }
  v128.store(c, c00);
  v128.store(c, c01, 16);
  v128.store(c1, c10);
  v128.store(c1, c11, 16);
  v128.store(c2, c20);
  v128.store(c2, c21, 16);
  v128.store(c3, c30);
  v128.store(c3, c31, 16);
}

/**
 * The 6×8 register tile of the relaxed-SIMD build: twelve f32x4 accumulators, each updated by one
 * fused multiply-add per depth step. Every element is still summed in depth order, one rounding per
 * step (the fused one), so the result does not depend on where the tile sits or on the thread count.
 */
function microKernel6x8(kc: i32, a: usize, b: usize, c: usize, rowBytes: usize, addToC: bool): void {
  let c00 = f32x4.splat(0);
  let c01 = f32x4.splat(0);
  let c10 = f32x4.splat(0);
  let c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0);
  let c21 = f32x4.splat(0);
  let c30 = f32x4.splat(0);
  let c31 = f32x4.splat(0);
  let c40 = f32x4.splat(0);
  let c41 = f32x4.splat(0);
  let c50 = f32x4.splat(0);
  let c51 = f32x4.splat(0);
  const end = b + <usize>kc * 32;
  while (b < end) {
    const b0 = v128.load(b);
    const b1 = v128.load(b, 16);
    let av = v128.load32_splat(a);
    c00 = f32x4.relaxed_madd(av, b0, c00);
    c01 = f32x4.relaxed_madd(av, b1, c01);
    av = v128.load32_splat(a, 4);
    c10 = f32x4.relaxed_madd(av, b0, c10);
    c11 = f32x4.relaxed_madd(av, b1, c11);
    av = v128.load32_splat(a, 8);
    c20 = f32x4.relaxed_madd(av, b0, c20);
    c21 = f32x4.relaxed_madd(av, b1, c21);
    av = v128.load32_splat(a, 12);
    c30 = f32x4.relaxed_madd(av, b0, c30);
    c31 = f32x4.relaxed_madd(av, b1, c31);
    av = v128.load32_splat(a, 16);
    c40 = f32x4.relaxed_madd(av, b0, c40);
    c41 = f32x4.relaxed_madd(av, b1, c41);
    av = v128.load32_splat(a, 20);
    c50 = f32x4.relaxed_madd(av, b0, c50);
    c51 = f32x4.relaxed_madd(av, b1, c51);
    a += 24;
    b += 32;
  }
  const c1 = c + rowBytes;
  const c2 = c1 + rowBytes;
  const c3 = c2 + rowBytes;
  const c4 = c3 + rowBytes;
  const c5 = c4 + rowBytes;
  // Two separate store sequences rather than one after an `if` that adds C: merging twelve
  // accumulators after a branch made V8's register allocator spill three of them inside the loop.
  if (addToC) {
    v128.store(c, f32x4.add(c00, v128.load(c)));
    v128.store(c, f32x4.add(c01, v128.load(c, 16)), 16);
    v128.store(c1, f32x4.add(c10, v128.load(c1)));
    v128.store(c1, f32x4.add(c11, v128.load(c1, 16)), 16);
    v128.store(c2, f32x4.add(c20, v128.load(c2)));
    v128.store(c2, f32x4.add(c21, v128.load(c2, 16)), 16);
    v128.store(c3, f32x4.add(c30, v128.load(c3)));
    v128.store(c3, f32x4.add(c31, v128.load(c3, 16)), 16);
    v128.store(c4, f32x4.add(c40, v128.load(c4)));
    v128.store(c4, f32x4.add(c41, v128.load(c4, 16)), 16);
    v128.store(c5, f32x4.add(c50, v128.load(c5)));
    v128.store(c5, f32x4.add(c51, v128.load(c5, 16)), 16);
  } else {
    v128.store(c, c00);
    v128.store(c, c01, 16);
    v128.store(c1, c10);
    v128.store(c1, c11, 16);
    v128.store(c2, c20);
    v128.store(c2, c21, 16);
    v128.store(c3, c30);
    v128.store(c3, c31, 16);
    v128.store(c4, c40);
    v128.store(c4, c41, 16);
    v128.store(c5, c50);
    v128.store(c5, c51, 16);
  }
}

/**
 * The 4×8 tile of the relaxed-SIMD build's short strips (see tallRows): microKernel6x8 with four
 * rows, eight accumulators, the same fused multiply-add per depth step and C added at the end.
 */
function microKernel4x8Fused(
  kc: i32,
  a: usize,
  aStep: usize,
  b: usize,
  c: usize,
  rowBytes: usize,
  addToC: bool,
): void {
  let c00 = f32x4.splat(0);
  let c01 = f32x4.splat(0);
  let c10 = f32x4.splat(0);
  let c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0);
  let c21 = f32x4.splat(0);
  let c30 = f32x4.splat(0);
  let c31 = f32x4.splat(0);
  const end = b + <usize>kc * 32;
  while (b < end) {
    const b0 = v128.load(b);
    const b1 = v128.load(b, 16);
    let av = v128.load32_splat(a);
    c00 = f32x4.relaxed_madd(av, b0, c00);
    c01 = f32x4.relaxed_madd(av, b1, c01);
    av = v128.load32_splat(a, 4);
    c10 = f32x4.relaxed_madd(av, b0, c10);
    c11 = f32x4.relaxed_madd(av, b1, c11);
    av = v128.load32_splat(a, 8);
    c20 = f32x4.relaxed_madd(av, b0, c20);
    c21 = f32x4.relaxed_madd(av, b1, c21);
    av = v128.load32_splat(a, 12);
    c30 = f32x4.relaxed_madd(av, b0, c30);
    c31 = f32x4.relaxed_madd(av, b1, c31);
    a += aStep;
    b += 32;
  }
  const c1 = c + rowBytes;
  const c2 = c1 + rowBytes;
  const c3 = c2 + rowBytes;
  if (addToC) {
    v128.store(c, f32x4.add(c00, v128.load(c)));
    v128.store(c, f32x4.add(c01, v128.load(c, 16)), 16);
    v128.store(c1, f32x4.add(c10, v128.load(c1)));
    v128.store(c1, f32x4.add(c11, v128.load(c1, 16)), 16);
    v128.store(c2, f32x4.add(c20, v128.load(c2)));
    v128.store(c2, f32x4.add(c21, v128.load(c2, 16)), 16);
    v128.store(c3, f32x4.add(c30, v128.load(c3)));
    v128.store(c3, f32x4.add(c31, v128.load(c3, 16)), 16);
  } else {
    v128.store(c, c00);
    v128.store(c, c01, 16);
    v128.store(c1, c10);
    v128.store(c1, c11, 16);
    v128.store(c2, c20);
    v128.store(c2, c21, 16);
    v128.store(c3, c30);
    v128.store(c3, c31, 16);
  }
}
