/**
 * Winograd F(2×2, 3×3) convolution for 3×3, stride-1, dilation-1 convolutions padded by 1 on every
 * side (output as large as the input): the seed CNN's layers.
 *
 * Each 2×2 output tile of an output channel o is Aᵀ·[Σ_c U[o,c] ⊙ V[c,t]]·A, where V[c,t] = Bᵀ·d·B
 * is the transform of the 4×4 input patch d of channel c under tile t (patches overlap by 2, zero
 * outside the input) and U[o,c] = G·w[o,c]·Gᵀ the transform of the 3×3 weight. The sum over channels
 * is, for each of the 16 transform positions ξ, one GEMM M[ξ] = U[ξ]·V[ξ] of [O, C]·[C, tiles]: 16
 * multiply-adds per tile and channel pair instead of the direct 36.
 *
 * The transformed weights are written once per call (winogradWeights) in the layout gemmPackA writes,
 * and each image's V[ξ] is written straight in the layout gemmPackB writes, so gemmPackedBlock runs
 * the 16 products with no packing of its own (and shortStripProduct the last few rows, where the
 * output channels are not a whole number of register tiles).
 *
 * Tiles are numbered so that the transforms can work on four horizontally adjacent tiles per f32x4:
 * each tile row's whole groups of four come first (group g of row ty holds tiles 4·(ty·groups + g) to
 * +3), then each row's 0–3 leftover tiles; or, where that costs the GEMM next to nothing
 * (wholeGroups), every row is rounded up to whole groups and the slots past its end are computed and
 * dropped. The GEMM does not care about the order.
 *
 * An output element's value depends only on the image and the weights: its 16 GEMM sums run over the
 * channels in depth order, whatever block of images and output channels a call computes, so threads
 * may split the work in any way and get the same bits.
 *
 * Where the sums run over at most 32 channels, the forward and input gradient take F(4×4, 3×3)
 * instead (`tile` 4; the caller chooses, src/backend/wasm/winograd.ts winogradTile): 6×6 patches
 * overlapping by 2, 36 positions, 36 products per 4×4 tile and channel pair instead of F(2×2)'s 64.
 * Its rows always take whole groups of four tiles, and its transforms are the native backend's
 * (native/src/winograd.cc), whose rounding error grows with the depth of the sums.
 *
 * conv2dBackwardInput of the same geometry is this convolution of gradOut with the weights
 * transposed and flipped, w'[c, o, ky, kx] = w[o, c, 2−ky, 2−kx] (winogradWeights' `backward`).
 * conv2dBackwardWeight is winogradWeightGradient: 16 GEMMs whose depth is the tiles, from the same
 * input transform and the transpose of the output transform.
 */
import { copyFloats } from './floats';
// V is written in gemm.ts's packed-B layout, whose depth block p starts at float columns·p·KC and
// whose strips are NR columns wide; tests with more than 256 channels check the two agree.
import { gemmPackedBlock, gemmPackedFloats, gemmTileRows, KC, NR, shortKernel } from './gemm';

/** Transform positions of F(2×2, 3×3)'s 4×4 patch. */
const POSITIONS: i32 = 16;

/** Transform positions of a tile of `tile` outputs a side (2 or 4): its patch is tile + 2 a side. */
function positionsOf(tile: i32): i32 {
  return (tile + 2) * (tile + 2);
}

function roundUp(value: i32, multiple: i32): i32 {
  return ((value + multiple - 1) / multiple) * multiple;
}

/** Tiles along an output side of `size` pixels (two per tile; an odd size's last tile is cut). */
function tilesOf(size: i32): i32 {
  return (size + 1) >> 1;
}

/** Tiles of `tile` pixels along an output side of `size` (the last one cut where it does not divide). */
function tilesOfSide(size: i32, tile: i32): i32 {
  return (size + tile - 1) / tile;
}

/**
 * Row length of the zero-padded copy of an input plane: room for every column that a group of four
 * tiles reads (8 per group plus the 2-column overlap), the leftover group included.
 */
function paddedWidth(width: i32, tile: i32): i32 {
  // F(4×4): each group spans 16 columns plus the 2-column overlap, and its last row load reads 4.
  if (tile == 4) return 16 * ((tilesOfSide(width, 4) + 3) >> 2) + 4;
  return 8 * ((tilesOf(width) + 3) >> 2) + 2;
}

/** Rows of the zero-padded plane: every row a tile's patch reads. */
function paddedHeight(height: i32, tile: i32): i32 {
  return tile * tilesOfSide(height, tile) + 2;
}

/**
 * Whether each tile row gets a whole number of groups of four (the last one partly past the edge),
 * so that every group is stored with whole vectors: chosen when that adds no more than 1/16 to the
 * GEMM's columns (tiles rounded up to whole strips of 8). A 14×14 output (7×7 tiles) then takes
 * 7·8 = 56 columns, as many as 49 tiles padded to a strip would; a 28×28 one (14×14 tiles) would
 * take 224 instead of 200, so it keeps the dense numbering with two leftover tiles per row.
 */
function wholeGroups(tilesY: i32, tilesX: i32, tile: i32): bool {
  // F(4×4, 3×3)'s transforms have no leftover path: its rows always take whole groups.
  if (tile == 4) return true;
  if ((tilesX & 3) == 0) return false;
  const grouped = roundUp(tilesY * roundUp(tilesX, 4), NR);
  return grouped * 16 <= roundUp(tilesY * tilesX, NR) * 17;
}

/** The GEMM's columns: one per tile, or per group slot with wholeGroups. */
function tileSlots(tilesY: i32, tilesX: i32, tile: i32): i32 {
  return wholeGroups(tilesY, tilesX, tile) ? tilesY * roundUp(tilesX, 4) : tilesY * tilesX;
}

/**
 * Columns per image when several images share one product: the dense numbering where it is a
 * multiple of 4, whole groups otherwise (always a multiple of 4), so that every image's tiles start
 * at a group boundary of the packed strips and the group stores stay whole vectors.
 */
function sharedSlots(tilesY: i32, tilesX: i32, tile: i32): i32 {
  const dense = tilesY * tilesX;
  return (dense & 3) == 0 && tile == 2 ? dense : tilesY * roundUp(tilesX, 4);
}

/**
 * Images whose tiles one product of winogradConv gathers as its columns: as many as fill about
 * `productColumns` (at least two images' worth), where sharing costs no columns per image over the
 * image alone. Small images then stop padding a strip of 8 (a 4×4 image has 4 tiles: half of its one
 * strip was padding) and the packed weights, which stream from L2 or beyond for every strip of
 * columns, are reused across many strips.
 */
function imagesPerProduct(tilesY: i32, tilesX: i32, productColumns: i32, tile: i32): i32 {
  const slots = sharedSlots(tilesY, tilesX, tile);
  if (2 * slots > productColumns || slots > roundUp(tileSlots(tilesY, tilesX, tile), NR)) return 1;
  return productColumns / slots;
}

/**
 * imagesPerProduct of an image of height × width on tiles of `tile` (for planning chunks of whole
 * products).
 */
export function winogradImagesPerProduct(height: i32, width: i32, productColumns: i32, tile: i32): i32 {
  return imagesPerProduct(tilesOfSide(height, tile), tilesOfSide(width, tile), productColumns, tile);
}

/**
 * Bytes between consecutive regions of a per-position array (V[ξ], M[ξ], the transformed weights)
 * whose regions hold `bytes` each. The transforms touch all 16 regions at once, one vector each; at
 * a multiple of 4 KiB apart those 16 streams would all fall in the same L1 sets and evict one another
 * (the 64×64 weight transform measured 3–4× slower so). Rounding up to 4 KiB and adding 256 bytes
 * puts the 16 streams 256 bytes apart within a page.
 */
function positionStride(bytes: usize): usize {
  return ((bytes + 4095) & ~(<usize>4095)) + 256;
}

/** Floats of one position's packed weights U[ξ] (rows output channels, depth input channels). */
export function winogradWeightFloats(rows: i32, depth: i32): i32 {
  return gemmPackedFloats(rows, depth, gemmTileRows());
}

/**
 * Bytes from U[ξ] to U[ξ+1] in winogradWeights' output: one position's packed floats, spaced by
 * positionStride (a 512×512 position is exactly 1 MiB, and the transform stores to all 16 at once).
 */
function packedStride(rows: i32, depth: i32): usize {
  return positionStride(<usize>winogradWeightFloats(rows, depth) * 4);
}

/** Bytes of winogradWeights' output for rows × depth on tiles of `tile` (all 16 or 36 positions). */
export function winogradPackedBytes(rows: i32, depth: i32, tile: i32): f64 {
  return <f64>positionsOf(tile) * <f64>packedStride(rows, depth);
}

/**
 * Per-thread scratch of winogradConv, in bytes (f64 so that an oversized request reaches the caller
 * intact): the padded plane, V (16 or 36 packed [C, tiles] operands), M (as many [O, tiles]
 * products), a small staging area for the transforms, and the GEMM's edge tile; for chunks of at
 * most `images` images, winogradConv's `productColumns` and tiles of `tile`.
 */
export function winogradScratchBytes(
  inChannels: i32,
  height: i32,
  width: i32,
  outChannels: i32,
  images: i32,
  productColumns: i32,
  tile: i32,
): f64 {
  const positions = positionsOf(tile);
  const tilesY = tilesOfSide(height, tile);
  const tilesX = tilesOfSide(width, tile);
  const shared = min(imagesPerProduct(tilesY, tilesX, productColumns, tile), max(images, 1));
  const tiles = shared > 1 ? shared * sharedSlots(tilesY, tilesX, tile) : tileSlots(tilesY, tilesX, tile);
  const columns = roundUp(tiles, NR);
  const plane = <f64>roundUp(paddedHeight(height, tile) * paddedWidth(width, tile), 16);
  const v = positions * <f64>positionStride(<usize>(columns * inChannels) * 4);
  const rows = roundUp(outChannels, gemmTileRows());
  // 16 floats past M: a leftover group loads a whole vector from its first tile on.
  const m = positions * <f64>positionStride(<usize>(rows * columns) * 4) + 64;
  const staging = <f64>STAGING_FLOATS;
  const edge = <f64>(gemmTileRows() * NR);
  return (plane + staging + edge) * 4 + v + m;
}

/**
 * Floats of the transforms' staging area: F(2×2)'s partial groups (16 vectors), F(4×4)'s row
 * transforms of a group's patch (36 vectors), or of its products (24) and its output tiles (16).
 */
const STAGING_FLOATS: i32 = 4 * 40;

/**
 * U[ξ] = (G·g·Gᵀ)[ξ] for every weight g = weight[o, c] ([outChannels, inChannels, 3, 3]), as 16 packed
 * (36 with `tile` 4: F(4×4, 3×3)'s transformWeight4) A operands of [rows, depth] (the layout gemmPackA writes, MR-row strips), packedStride apart from
 * `packed` on: rows are the output channels and depth the input channels, or with `backward` the
 * input channels and depth the output channels of the flipped weight w[o, c, 2−ky, 2−kx]. Only rows
 * [rowStart, rowEnd) (rowStart a multiple of gemmTileRows()) are written, and with rowEnd ≥ rows the
 * zero rows that pad the last strip, so threads can split the rows. Each value goes straight to its
 * packed place: a transposed copy packed afterwards moved twice the memory, on the calling thread
 * alone (4 ms for 512×512 channels, per call).
 */
export function winogradWeights(
  weight: usize,
  outChannels: i32,
  inChannels: i32,
  backward: bool,
  rowStart: i32,
  rowEnd: i32,
  packed: usize,
  tile: i32,
): void {
  const positions = positionsOf(tile);
  const rows = backward ? inChannels : outChannels;
  const depth = backward ? outChannels : inChannels;
  const tileRows = gemmTileRows();
  const rowsPadded = roundUp(rows, tileRows);
  const positionBytes = packedStride(rows, depth);
  const step = <usize>tileRows * 4;
  // Row by row of U; along a row, consecutive depths are tileRows floats apart in every position.
  for (let row = max(rowStart, 0); row < min(rowEnd, rows); row++) {
    const within = row % tileRows;
    for (let pc = 0; pc < depth; pc += KC) {
      const kc = min(KC, depth - pc);
      let dst = packed + <usize>(rowsPadded * pc + (row - within) * kc + within) * 4;
      for (let column = pc; column < pc + kc; column++) {
        const o = backward ? column : row;
        const c = backward ? row : column;
        const g = weight + <usize>((o * inChannels + c) * 9) * 4;
        if (tile == 4) {
          transformWeight4(g, backward, dst, positionBytes);
          dst += step;
          continue;
        }
        // t = G·g (4×3): rows 0 and 3 of G pick a weight row, rows 1 and 2 are half sums and
        // differences; then u = t·Gᵀ row by row (transformRow).
        const g00 = weightAt(g, 0, 0, backward);
        const g01 = weightAt(g, 0, 1, backward);
        const g02 = weightAt(g, 0, 2, backward);
        const g10 = weightAt(g, 1, 0, backward);
        const g11 = weightAt(g, 1, 1, backward);
        const g12 = weightAt(g, 1, 2, backward);
        const g20 = weightAt(g, 2, 0, backward);
        const g21 = weightAt(g, 2, 1, backward);
        const g22 = weightAt(g, 2, 2, backward);
        transformRow(dst, positionBytes, g00, g01, g02);
        transformRow(
          dst + 4 * positionBytes,
          positionBytes,
          (g00 + g10 + g20) * 0.5,
          (g01 + g11 + g21) * 0.5,
          (g02 + g12 + g22) * 0.5,
        );
        transformRow(
          dst + 8 * positionBytes,
          positionBytes,
          (g00 - g10 + g20) * 0.5,
          (g01 - g11 + g21) * 0.5,
          (g02 - g12 + g22) * 0.5,
        );
        transformRow(dst + 12 * positionBytes, positionBytes, g20, g21, g22);
        dst += step;
      }
    }
  }
  if (rowEnd < rows) return;
  // The rows past the last real one, up to the strip's end, are zero (as gemmPackA pads them).
  for (let row = rows; row < rowsPadded; row++) {
    const within = row % tileRows;
    for (let pc = 0; pc < depth; pc += KC) {
      const kc = min(KC, depth - pc);
      let dst = packed + <usize>(rowsPadded * pc + (row - within) * kc + within) * 4;
      for (let column = pc; column < pc + kc; column++) {
        for (let xi = 0; xi < positions; xi++) store<f32>(dst + <usize>xi * positionBytes, 0);
        dst += step;
      }
    }
  }
}

/** Row i of t·Gᵀ from row (t0, t1, t2) of t: positions 4i to 4i+3, `positionBytes` apart. */
function transformRow(dst: usize, positionBytes: usize, t0: f32, t1: f32, t2: f32): void {
  store<f32>(dst, t0);
  store<f32>(dst + positionBytes, (t0 + t1 + t2) * 0.5);
  store<f32>(dst + 2 * positionBytes, (t0 - t1 + t2) * 0.5);
  store<f32>(dst + 3 * positionBytes, t2);
}

/**
 * U = G·g·Gᵀ (6×6) of one 3×3 weight g (flipped with `flip`) for F(4×4, 3×3), position ξ = 6r + c
 * stored at dst + ξ·positionBytes: summed in f64 and rounded once, since the fractions have no exact
 * float. G is the native backend's (native/src/winograd.cc, whose rounding error was measured there):
 *   G = [1 0 0; −⅓ −⅓ −⅓; ⅓ −⅓ ⅓; 1/15 2/15 4/15; −16/15 8/15 −4/15; 0 0 1].
 * Row r of G·g is G's row r applied to g's columns; each such row then goes through Gᵀ (transformRow6).
 */
function transformWeight4(g: usize, flip: bool, dst: usize, positionBytes: usize): void {
  const w00 = <f64>weightAt(g, 0, 0, flip);
  const w01 = <f64>weightAt(g, 0, 1, flip);
  const w02 = <f64>weightAt(g, 0, 2, flip);
  const w10 = <f64>weightAt(g, 1, 0, flip);
  const w11 = <f64>weightAt(g, 1, 1, flip);
  const w12 = <f64>weightAt(g, 1, 2, flip);
  const w20 = <f64>weightAt(g, 2, 0, flip);
  const w21 = <f64>weightAt(g, 2, 1, flip);
  const w22 = <f64>weightAt(g, 2, 2, flip);
  const p = positionBytes;
  transformRow6(w00, w01, w02, dst, p);
  transformRow6(-(w00 + w10 + w20) / 3, -(w01 + w11 + w21) / 3, -(w02 + w12 + w22) / 3, dst + 6 * p, p);
  transformRow6((w00 - w10 + w20) / 3, (w01 - w11 + w21) / 3, (w02 - w12 + w22) / 3, dst + 12 * p, p);
  transformRow6(
    (w00 + 2 * w10 + 4 * w20) / 15,
    (w01 + 2 * w11 + 4 * w21) / 15,
    (w02 + 2 * w12 + 4 * w22) / 15,
    dst + 18 * p,
    p,
  );
  transformRow6(
    (-16 * w00 + 8 * w10 - 4 * w20) / 15,
    (-16 * w01 + 8 * w11 - 4 * w21) / 15,
    (-16 * w02 + 8 * w12 - 4 * w22) / 15,
    dst + 24 * p,
    p,
  );
  transformRow6(w20, w21, w22, dst + 30 * p, p);
}

/** Row (a, b, c) of G·g times Gᵀ: positions 0 to 5 of one row of U, rounded to float, `positionBytes` apart. */
function transformRow6(a: f64, b: f64, c: f64, dst: usize, positionBytes: usize): void {
  store<f32>(dst, <f32>a);
  store<f32>(dst + positionBytes, <f32>(-(a + b + c) / 3));
  store<f32>(dst + 2 * positionBytes, <f32>((a - b + c) / 3));
  store<f32>(dst + 3 * positionBytes, <f32>((a + 2 * b + 4 * c) / 15));
  store<f32>(dst + 4 * positionBytes, <f32>((-16 * a + 8 * b - 4 * c) / 15));
  store<f32>(dst + 5 * positionBytes, <f32>c);
}

/** g[ky, kx] of a 3×3 weight, or of the flipped weight g[2−ky, 2−kx]. */
function weightAt(g: usize, ky: i32, kx: i32, flip: bool): f32 {
  const index = flip ? (2 - ky) * 3 + (2 - kx) : ky * 3 + kx;
  return load<f32>(g + <usize>index * 4);
}

/**
 * out[n, o] = conv(x[n], w)[o] for images [imageStart, imageEnd) and output channels
 * [channelStart, channelEnd) (channelStart a multiple of gemmTileRows()), x [batch, inChannels, height,
 * width] and out [batch, outChannels, height, width], from the packed transformed weights of
 * winogradWeights. Small images share products (imagesPerProduct, about `productColumns` columns);
 * each column is summed alone, so that changes no bit. `scratch` is this thread's
 * winogradScratchBytes for as many images as this chunk has, or more, and the same productColumns
 * and `tile` (2 or 4: F(2×2, 3×3) or F(4×4, 3×3), with winogradWeights of the same tile). With tiles
 * of 4, an output that is not finite sets the f32 at `status` to 1 (the caller runs the call again
 * on tiles of 2); tiles of 2 leave it alone.
 */
export function winogradConv(
  x: usize,
  packed: usize,
  out: usize,
  batch: i32,
  inChannels: i32,
  height: i32,
  width: i32,
  outChannels: i32,
  imageStart: i32,
  imageEnd: i32,
  channelStart: i32,
  channelEnd: i32,
  productColumns: i32,
  scratch: usize,
  tile: i32,
  status: usize,
): void {
  const first = max(imageStart, 0);
  const last = min(imageEnd, batch);
  if (channelEnd <= channelStart || inChannels <= 0 || last <= first) return;
  const positions = positionsOf(tile);
  const tilesY = tilesOfSide(height, tile);
  const tilesX = tilesOfSide(width, tile);
  // Images per product (imagesPerProduct, at most this chunk's) and the columns each takes: with
  // wholeGroups (or sharedSlots' whole groups), the slots past a row's end too (their patches are
  // all padding, and the output transform drops them).
  const shared = min(imagesPerProduct(tilesY, tilesX, productColumns, tile), last - first);
  const whole = tile == 4 || (shared > 1 ? ((tilesY * tilesX) & 3) != 0 : wholeGroups(tilesY, tilesX, tile));
  const slots = shared > 1 ? sharedSlots(tilesY, tilesX, tile) : tileSlots(tilesY, tilesX, tile);
  const groups = whole ? (tilesX + 3) >> 2 : tilesX >> 2;
  const leftover = whole ? 0 : tilesX & 3;
  const fullTiles = tilesY * groups * 4;
  const planeWidth = paddedWidth(width, tile);
  const planeFloats = paddedHeight(height, tile) * planeWidth;
  const mostColumns = roundUp(shared * slots, NR);
  const vBytes = positionStride(<usize>(mostColumns * inChannels) * 4);
  // M[ξ] is [rows padded to the register tile, columns]: every tile of the GEMM is then a whole one,
  // written straight to M rather than through the edge tile (the extra rows and columns come out zero
  // from the zero padding of U and V, and the output transform never reads them).
  const tileRows = gemmTileRows();
  const mBytes = positionStride(<usize>(roundUp(outChannels, tileRows) * mostColumns) * 4);
  const plane = scratch;
  const v = plane + <usize>roundUp(planeFloats, 16) * 4;
  const m = v + <usize>positions * vBytes;
  const staging = m + <usize>positions * mBytes + 64;
  const edgeTile = staging + STAGING_FLOATS * 4;
  const packedBytes = packedStride(outChannels, inChannels);
  // A last, partly filled strip of U with at most 4 real rows (32 channels on the 6-row tile: 30 + 2)
  // is multiplied by shortStripProduct rather than as a whole strip of zero-padded rows.
  const partial = outChannels % tileRows;
  const shortRows = channelEnd == outChannels && partial > 0 && partial <= SHORT_ROWS ? partial : 0;
  const wholeStripsEnd = shortRows > 0 ? outChannels - partial : roundUp(channelEnd, tileRows);
  // The border of the plane stays zero: each channel overwrites only the interior.
  memory.fill(plane, 0, <usize>planeFloats * 4);
  const inPlane = height * width;
  const outPlane = inPlane;
  let zeroedFor = -1;
  for (let n0 = first; n0 < last; n0 += shared) {
    const count = min(shared, last - n0);
    const tiles = count * slots;
    const columns = roundUp(tiles, NR);
    if (tiles != zeroedFor) {
      zeroPaddingColumns(v, vBytes, tiles, columns, inChannels, positions);
      zeroedFor = tiles;
    }
    for (let i = 0; i < count; i++) {
      const image = x + <usize>((n0 + i) * inChannels * inPlane) * 4;
      for (let c = 0; c < inChannels; c++) {
        const source = image + <usize>(c * inPlane) * 4;
        for (let y = 0; y < height; y++) {
          copyFloats(plane + <usize>((y + 1) * planeWidth + 1) * 4, source + <usize>(y * width) * 4, width);
        }
        const depthBlock = (c / KC) * KC;
        const kc = min(KC, inChannels - depthBlock);
        const channelBase = v + <usize>(columns * depthBlock + (c - depthBlock) * NR) * 4;
        transformInputPlane(
          plane,
          planeWidth,
          tilesY,
          groups,
          leftover,
          fullTiles,
          i * slots,
          channelBase,
          <usize>(kc * NR) * 4,
          vBytes,
          staging,
          tile,
        );
      }
    }
    for (let xi = 0; xi < positions; xi++) {
      const operandU = packed + <usize>xi * packedBytes;
      const operandV = v + <usize>xi * vBytes;
      const product = m + <usize>xi * mBytes;
      if (wholeStripsEnd > channelStart) {
        gemmPackedBlock(
          operandU,
          operandV,
          outChannels,
          columns,
          inChannels,
          product,
          columns,
          false,
          channelStart,
          wholeStripsEnd,
          0,
          columns,
          edgeTile,
        );
      }
      if (shortRows > 0) {
        shortStripProduct(
          operandU,
          operandV,
          outChannels,
          columns,
          inChannels,
          wholeStripsEnd,
          shortRows,
          product,
          false,
        );
      }
    }
    for (let i = 0; i < count; i++) {
      if (tile == 4) {
        for (let o = channelStart; o < channelEnd; o++) {
          const outPlaneAt = out + <usize>(((n0 + i) * outChannels + o) * outPlane) * 4;
          const products = m + <usize>(o * columns + i * slots) * 4;
          if (!transformOutputPlane4(products, mBytes, outPlaneAt, height, width, tilesY, groups, staging)) {
            store<f32>(status, 1);
          }
        }
        continue;
      }
      for (let o = channelStart; o < channelEnd; o++) {
        transformOutputPlane(
          m + <usize>(o * columns + i * slots) * 4,
          mBytes,
          out + <usize>(((n0 + i) * outChannels + o) * outPlane) * 4,
          height,
          width,
          tilesY,
          groups,
          leftover,
          fullTiles,
        );
      }
    }
  }
}

/** Most real rows in a last strip of U that shortStripProduct takes. */
const SHORT_ROWS: i32 = 4;

/**
 * M[row, ·] = U[row, ·]·V for the `rows` (1 to 4) real rows of U's last packed strip, which starts at
 * row `firstRow`, over all `columns` (a multiple of 8) of V; U and V packed as gemmPackedBlock takes
 * them. Each element is summed as the GEMM's register tiles sum it: from zero, one multiply-add per
 * depth (fused in the relaxed-SIMD build), depth blocks in order, added to M with `accumulate`. Rows
 * of M up to the next multiple of 2 or 4 are written too (scratch).
 */
function shortStripProduct(
  packedU: usize,
  packedV: usize,
  m: i32,
  columns: i32,
  depth: i32,
  firstRow: i32,
  rows: i32,
  product: usize,
  accumulate: bool,
): void {
  const tileRows = gemmTileRows();
  const rowsPadded = roundUp(m, tileRows);
  const rowBytes = <usize>columns * 4;
  for (let pc = 0; pc < depth; pc += KC) {
    const kc = min(KC, depth - pc);
    const strip = packedU + <usize>(rowsPadded * pc + firstRow * kc) * 4;
    const panel = packedV + <usize>(columns * pc) * 4;
    for (let jr = 0; jr < columns; jr += NR) {
      const c = product + <usize>firstRow * rowBytes + <usize>jr * 4;
      const b = panel + <usize>(jr * kc) * 4;
      if (rows > 2) {
        shortKernel(kc, strip, <usize>tileRows * 4, b, c, rowBytes, accumulate || pc > 0);
      } else if (jr + 2 * NR <= columns) {
        // Two strips at once: twice the multiply-adds for each row's broadcast.
        tile2x16(
          kc,
          strip,
          <usize>tileRows * 4,
          b,
          b + <usize>(NR * kc) * 4,
          c,
          rowBytes,
          accumulate || pc > 0,
        );
        jr += NR;
      } else {
        tile2x8(kc, strip, <usize>tileRows * 4, b, c, rowBytes, accumulate || pc > 0);
      }
    }
  }
}

/** a·b + c, fused in the relaxed-SIMD build as the GEMM's register tile is. */
function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(c, f32x4.mul(a, b));
}

/** C[2×8] (+)= the first 2 rows of an A strip (`aStep` bytes per depth) · a B strip of 8 columns. */
function tile2x8(kc: i32, a: usize, aStep: usize, b: usize, c: usize, rowBytes: usize, addToC: bool): void {
  let c00 = f32x4.splat(0);
  let c01 = f32x4.splat(0);
  let c10 = f32x4.splat(0);
  let c11 = f32x4.splat(0);
  const end = b + <usize>kc * 32;
  while (b < end) {
    const b0 = v128.load(b);
    const b1 = v128.load(b, 16);
    let av = v128.load32_splat(a);
    c00 = madd(av, b0, c00);
    c01 = madd(av, b1, c01);
    av = v128.load32_splat(a, 4);
    c10 = madd(av, b0, c10);
    c11 = madd(av, b1, c11);
    a += aStep;
    b += 32;
  }
  const c1 = c + rowBytes;
  if (addToC) {
    c00 = f32x4.add(c00, v128.load(c));
    c01 = f32x4.add(c01, v128.load(c, 16));
    c10 = f32x4.add(c10, v128.load(c1));
    c11 = f32x4.add(c11, v128.load(c1, 16));
  }
  v128.store(c, c00);
  v128.store(c, c01, 16);
  v128.store(c1, c10);
  v128.store(c1, c11, 16);
}

/**
 * C[2×16] (+)= the first 2 rows of an A strip · two B strips of 8 columns (b, then next): tile2x8 on
 * both, each element summed in the same order (the same bits).
 */
function tile2x16(
  kc: i32,
  a: usize,
  aStep: usize,
  b: usize,
  next: usize,
  c: usize,
  rowBytes: usize,
  addToC: bool,
): void {
  let c00 = f32x4.splat(0);
  let c01 = f32x4.splat(0);
  let c02 = f32x4.splat(0);
  let c03 = f32x4.splat(0);
  let c10 = f32x4.splat(0);
  let c11 = f32x4.splat(0);
  let c12 = f32x4.splat(0);
  let c13 = f32x4.splat(0);
  const end = b + <usize>kc * 32;
  while (b < end) {
    const b0 = v128.load(b);
    const b1 = v128.load(b, 16);
    const b2 = v128.load(next);
    const b3 = v128.load(next, 16);
    let av = v128.load32_splat(a);
    c00 = madd(av, b0, c00);
    c01 = madd(av, b1, c01);
    c02 = madd(av, b2, c02);
    c03 = madd(av, b3, c03);
    av = v128.load32_splat(a, 4);
    c10 = madd(av, b0, c10);
    c11 = madd(av, b1, c11);
    c12 = madd(av, b2, c12);
    c13 = madd(av, b3, c13);
    a += aStep;
    b += 32;
    next += 32;
  }
  const c1 = c + rowBytes;
  if (addToC) {
    c00 = f32x4.add(c00, v128.load(c));
    c01 = f32x4.add(c01, v128.load(c, 16));
    c02 = f32x4.add(c02, v128.load(c, 32));
    c03 = f32x4.add(c03, v128.load(c, 48));
    c10 = f32x4.add(c10, v128.load(c1));
    c11 = f32x4.add(c11, v128.load(c1, 16));
    c12 = f32x4.add(c12, v128.load(c1, 32));
    c13 = f32x4.add(c13, v128.load(c1, 48));
  }
  v128.store(c, c00);
  v128.store(c, c01, 16);
  v128.store(c, c02, 32);
  v128.store(c, c03, 48);
  v128.store(c1, c10);
  v128.store(c1, c11, 16);
  v128.store(c1, c12, 32);
  v128.store(c1, c13, 48);
}

/**
 * Zeroes the columns of V past the last tile (the last strip's padding) for every position and
 * depth: the GEMM multiplies them into columns of M that nothing reads, but leftover scratch there
 * could hold subnormals or NaNs that slow the multiply down.
 */
function zeroPaddingColumns(
  v: usize,
  vBytes: usize,
  tiles: i32,
  columns: i32,
  depth: i32,
  positions: i32,
): void {
  const used = tiles & (NR - 1);
  if (used == 0) return;
  const lastStrip = tiles - used;
  for (let xi = 0; xi < positions; xi++) {
    const operand = v + <usize>xi * vBytes;
    for (let p = 0; p < depth; p++) {
      const depthBlock = (p / KC) * KC;
      const kc = min(KC, depth - depthBlock);
      const at = operand + <usize>(columns * depthBlock + lastStrip * kc + (p - depthBlock) * NR + used) * 4;
      for (let column = used; column < NR; column++) store<f32>(at + <usize>(column - used) * 4, 0);
    }
  }
}

/**
 * V[ξ][c, firstTile + t] for every tile t of one input channel on tiles of `side` (2 or 4, the
 * latter with no leftover tiles), from its zero-padded plane (row length planeWidth; firstTile a
 * multiple of 4). `channelBase` is the address of column 0 at this channel's depth in V[0],
 * `stripBytes` the distance between packed strips of 8 tiles, `positionBytes` between V[ξ] and V[ξ+1].
 */
function transformInputPlane(
  plane: usize,
  planeWidth: i32,
  tilesY: i32,
  groups: i32,
  leftover: i32,
  fullTiles: i32,
  firstTile: i32,
  channelBase: usize,
  stripBytes: usize,
  positionBytes: usize,
  staging: usize,
  side: i32,
): void {
  const rowBytes = <usize>planeWidth * 4;
  for (let ty = 0; ty < tilesY; ty++) {
    const patchRow = plane + <usize>(side * ty) * rowBytes;
    for (let g = 0; g < groups; g++) {
      // Four tiles from a multiple of 4: one half of one packed strip.
      const tile = firstTile + (ty * groups + g) * 4;
      const dst = channelBase + <usize>(tile >> 3) * stripBytes + <usize>(tile & 7) * 4;
      const patch = patchRow + <usize>(4 * side * g) * 4;
      if (side == 4) transformInputGroup4(patch, rowBytes, dst, positionBytes, staging);
      else transformInputGroup(patch, rowBytes, dst, positionBytes, false);
    }
    if (leftover == 2) {
      // Two tiles from an even index: one quarter of one strip, stored as the low half of each vector.
      const tile = firstTile + fullTiles + ty * 2;
      const dst = channelBase + <usize>(tile >> 3) * stripBytes + <usize>(tile & 7) * 4;
      transformInputGroup(patchRow + <usize>(8 * groups) * 4, rowBytes, dst, positionBytes, true);
    } else if (leftover > 0) {
      transformInputGroup(patchRow + <usize>(8 * groups) * 4, rowBytes, staging, 16, false);
      const first = firstTile + fullTiles + ty * leftover;
      for (let q = 0; q < leftover; q++) {
        const tile = first + q;
        const dst = channelBase + <usize>(tile >> 3) * stripBytes + <usize>(tile & 7) * 4;
        for (let xi = 0; xi < POSITIONS; xi++) {
          store<f32>(dst + <usize>xi * positionBytes, load<f32>(staging + <usize>(xi * 16 + q * 4)));
        }
      }
    }
  }
}

/**
 * Bᵀ·d·B for four horizontally adjacent tiles at once (lane q: the tile whose patch starts 2q
 * columns right of `patch`), position ξ = 4i + j stored at dst + ξ·positionBytes.
 * Bᵀ = [[1, 0, −1, 0], [0, 1, 1, 0], [0, −1, 1, 0], [0, 1, 0, −1]].
 */
function transformInputGroup(
  patch: usize,
  rowBytes: usize,
  dst: usize,
  positionBytes: usize,
  half: bool,
): void {
  // Rows 1 and 2 of the patch first: every output row uses one of them, so rows 0 and 3 can be
  // folded in one at a time with fewer vectors live.
  const r1 = patch + rowBytes;
  const r2 = r1 + rowBytes;
  let a = v128.load(r1);
  let b = v128.load(r1, 16);
  let a2 = v128.load(r1, 8);
  let b2 = v128.load(r1, 24);
  let k0 = f32x4.shuffle(a, b, 0, 2, 4, 6);
  let k1 = f32x4.shuffle(a, b, 1, 3, 5, 7);
  let k2 = f32x4.shuffle(a2, b2, 0, 2, 4, 6);
  let k3 = f32x4.shuffle(a2, b2, 1, 3, 5, 7);
  const e10 = f32x4.sub(k0, k2);
  const e11 = f32x4.add(k1, k2);
  const e12 = f32x4.sub(k2, k1);
  const e13 = f32x4.sub(k1, k3);
  a = v128.load(r2);
  b = v128.load(r2, 16);
  a2 = v128.load(r2, 8);
  b2 = v128.load(r2, 24);
  k0 = f32x4.shuffle(a, b, 0, 2, 4, 6);
  k1 = f32x4.shuffle(a, b, 1, 3, 5, 7);
  k2 = f32x4.shuffle(a2, b2, 0, 2, 4, 6);
  k3 = f32x4.shuffle(a2, b2, 1, 3, 5, 7);
  const e20 = f32x4.sub(k0, k2);
  const e21 = f32x4.add(k1, k2);
  const e22 = f32x4.sub(k2, k1);
  const e23 = f32x4.sub(k1, k3);
  const p = positionBytes;
  // Row 1 of Bᵀ·d·B (ξ = 4..7): e1 + e2; row 2 (ξ = 8..11): e2 − e1.
  put(dst + 4 * p, f32x4.add(e10, e20), half);
  put(dst + 5 * p, f32x4.add(e11, e21), half);
  put(dst + 6 * p, f32x4.add(e12, e22), half);
  put(dst + 7 * p, f32x4.add(e13, e23), half);
  put(dst + 8 * p, f32x4.sub(e20, e10), half);
  put(dst + 9 * p, f32x4.sub(e21, e11), half);
  put(dst + 10 * p, f32x4.sub(e22, e12), half);
  put(dst + 11 * p, f32x4.sub(e23, e13), half);
  // Row 0 (ξ = 0..3): e0 − e2.
  a = v128.load(patch);
  b = v128.load(patch, 16);
  a2 = v128.load(patch, 8);
  b2 = v128.load(patch, 24);
  k0 = f32x4.shuffle(a, b, 0, 2, 4, 6);
  k1 = f32x4.shuffle(a, b, 1, 3, 5, 7);
  k2 = f32x4.shuffle(a2, b2, 0, 2, 4, 6);
  k3 = f32x4.shuffle(a2, b2, 1, 3, 5, 7);
  put(dst, f32x4.sub(f32x4.sub(k0, k2), e20), half);
  put(dst + p, f32x4.sub(f32x4.add(k1, k2), e21), half);
  put(dst + 2 * p, f32x4.sub(f32x4.sub(k2, k1), e22), half);
  put(dst + 3 * p, f32x4.sub(f32x4.sub(k1, k3), e23), half);
  // Row 3 (ξ = 12..15): e1 − e3.
  const r3 = r2 + rowBytes;
  a = v128.load(r3);
  b = v128.load(r3, 16);
  a2 = v128.load(r3, 8);
  b2 = v128.load(r3, 24);
  k0 = f32x4.shuffle(a, b, 0, 2, 4, 6);
  k1 = f32x4.shuffle(a, b, 1, 3, 5, 7);
  k2 = f32x4.shuffle(a2, b2, 0, 2, 4, 6);
  k3 = f32x4.shuffle(a2, b2, 1, 3, 5, 7);
  put(dst + 12 * p, f32x4.sub(e10, f32x4.sub(k0, k2)), half);
  put(dst + 13 * p, f32x4.sub(e11, f32x4.add(k1, k2)), half);
  put(dst + 14 * p, f32x4.sub(e12, f32x4.sub(k2, k1)), half);
  put(dst + 15 * p, f32x4.sub(e13, f32x4.sub(k1, k3)), half);
}

/** Stores the four lanes of `value` (four tiles), or with `half` the low two (two tiles). */
function put(at: usize, value: v128, half: bool): void {
  if (half) v128.store64_lane(at, value, 0);
  else v128.store(at, value);
}

/**
 * Aᵀ·m·A into one output plane [height, width] for every tile, m[ξ] at products + ξ·positionBytes
 * (this channel's row of M[ξ], one float per tile slot). Aᵀ = [[1, 1, 1, 0], [0, 1, −1, −1]].
 */
function transformOutputPlane(
  products: usize,
  positionBytes: usize,
  plane: usize,
  height: i32,
  width: i32,
  tilesY: i32,
  groups: i32,
  leftover: i32,
  fullTiles: i32,
): void {
  const rowBytes = <usize>width * 4;
  for (let ty = 0; ty < tilesY; ty++) {
    const y = 2 * ty;
    const rows = min(2, height - y);
    const outRow = plane + <usize>y * rowBytes;
    for (let g = 0; g < groups; g++) {
      const x = 8 * g;
      const tile = (ty * groups + g) * 4;
      transformOutputGroup(
        products + <usize>tile * 4,
        positionBytes,
        outRow + <usize>x * 4,
        rowBytes,
        rows,
        min(8, width - x),
      );
    }
    if (leftover > 0) {
      const x = 8 * groups;
      const tile = fullTiles + ty * leftover;
      transformOutputGroup(
        products + <usize>tile * 4,
        positionBytes,
        outRow + <usize>x * 4,
        rowBytes,
        rows,
        min(2 * leftover, width - x),
      );
    }
  }
}

/**
 * Aᵀ·m·A for four adjacent tiles (one per lane) into `rows` (1 or 2) output rows of `count` (1 to 8)
 * pixels at dst and dst + rowBytes; pixels past the plane's edge are dropped.
 */
function transformOutputGroup(
  products: usize,
  positionBytes: usize,
  dst: usize,
  rowBytes: usize,
  rows: i32,
  count: i32,
): void {
  const p = positionBytes;
  // Column transform of each row i of m: s_i = m_i0 + m_i1 + m_i2, d_i = m_i1 − m_i2 − m_i3.
  let m0 = v128.load(products);
  let m1 = v128.load(products + p);
  let m2 = v128.load(products + 2 * p);
  let m3 = v128.load(products + 3 * p);
  const s0 = f32x4.add(f32x4.add(m0, m1), m2);
  const d0 = f32x4.sub(f32x4.sub(m1, m2), m3);
  m0 = v128.load(products + 4 * p);
  m1 = v128.load(products + 5 * p);
  m2 = v128.load(products + 6 * p);
  m3 = v128.load(products + 7 * p);
  const s1 = f32x4.add(f32x4.add(m0, m1), m2);
  const d1 = f32x4.sub(f32x4.sub(m1, m2), m3);
  m0 = v128.load(products + 8 * p);
  m1 = v128.load(products + 9 * p);
  m2 = v128.load(products + 10 * p);
  m3 = v128.load(products + 11 * p);
  const s2 = f32x4.add(f32x4.add(m0, m1), m2);
  const d2 = f32x4.sub(f32x4.sub(m1, m2), m3);
  m0 = v128.load(products + 12 * p);
  m1 = v128.load(products + 13 * p);
  m2 = v128.load(products + 14 * p);
  m3 = v128.load(products + 15 * p);
  const s3 = f32x4.add(f32x4.add(m0, m1), m2);
  const d3 = f32x4.sub(f32x4.sub(m1, m2), m3);
  // Row transform: y0 = r0 + r1 + r2, y1 = r1 − r2 − r3; then interleave the tiles' two columns.
  const y00 = f32x4.add(f32x4.add(s0, s1), s2);
  const y01 = f32x4.add(f32x4.add(d0, d1), d2);
  writeRow(dst, f32x4.shuffle(y00, y01, 0, 4, 1, 5), f32x4.shuffle(y00, y01, 2, 6, 3, 7), count);
  if (rows < 2) return;
  const y10 = f32x4.sub(f32x4.sub(s1, s2), s3);
  const y11 = f32x4.sub(f32x4.sub(d1, d2), d3);
  writeRow(dst + rowBytes, f32x4.shuffle(y10, y11, 0, 4, 1, 5), f32x4.shuffle(y10, y11, 2, 6, 3, 7), count);
}

/**
 * Bᵀ·d·B of F(4×4, 3×3) for four horizontally adjacent tiles at once (lane q: the tile whose 6×6
 * patch starts 4q columns right of `patch`), position ξ = 6i + j stored at dst + ξ·positionBytes.
 * Each patch row is read as five vectors (columns 0–19) and turned into its six columns across the
 * lanes by a 4×4 transpose; the row transforms go through `staging` (36 vectors) to the column ones.
 */
function transformInputGroup4(
  patch: usize,
  rowBytes: usize,
  dst: usize,
  positionBytes: usize,
  staging: usize,
): void {
  for (let r = 0; r < 6; r++) {
    const row = patch + <usize>r * rowBytes;
    const v0 = v128.load(row);
    const v1 = v128.load(row, 16);
    const v2 = v128.load(row, 32);
    const v3 = v128.load(row, 48);
    const v4 = v128.load(row, 64);
    const t0 = f32x4.shuffle(v0, v1, 0, 4, 1, 5);
    const t1 = f32x4.shuffle(v2, v3, 0, 4, 1, 5);
    const t2 = f32x4.shuffle(v0, v1, 2, 6, 3, 7);
    const t3 = f32x4.shuffle(v2, v3, 2, 6, 3, 7);
    const u0 = f32x4.shuffle(v1, v2, 0, 4, 1, 5);
    const u1 = f32x4.shuffle(v3, v4, 0, 4, 1, 5);
    inputTransform6(
      f32x4.shuffle(t0, t1, 0, 1, 4, 5),
      f32x4.shuffle(t0, t1, 2, 3, 6, 7),
      f32x4.shuffle(t2, t3, 0, 1, 4, 5),
      f32x4.shuffle(t2, t3, 2, 3, 6, 7),
      f32x4.shuffle(u0, u1, 0, 1, 4, 5),
      f32x4.shuffle(u0, u1, 2, 3, 6, 7),
      staging + <usize>(r * 96),
      16,
    );
  }
  for (let j = 0; j < 6; j++) {
    const column = staging + <usize>(j * 16);
    inputTransform6(
      v128.load(column),
      v128.load(column, 96),
      v128.load(column, 192),
      v128.load(column, 288),
      v128.load(column, 384),
      v128.load(column, 480),
      dst + <usize>j * positionBytes,
      6 * positionBytes,
    );
  }
}

/**
 * Bᵀ·d of one row (or column) d0..d5 of a 6×6 patch for F(4×4, 3×3), value i stored at
 * at + i·stride; the native backend's Bᵀ (native/src/winograd.cc), with multiply-adds fused in the
 * relaxed-SIMD build (madd; every lane takes the same code, so the bits do not depend on the threads):
 *   Bᵀ = [1 3/2 −2 −3/2 1 0; 0 −1 −5/2 −1/2 1 0; 0 1 1/2 −5/2 1 0; 0 −1/2 −1 1/2 1 0;
 *         0 2 −1 −2 1 0; 0 1 3/2 −2 −3/2 1].
 */
function inputTransform6(
  d0: v128,
  d1: v128,
  d2: v128,
  d3: v128,
  d4: v128,
  d5: v128,
  at: usize,
  stride: usize,
): void {
  const odd = f32x4.sub(d1, d3);
  const even = f32x4.sub(d4, d2);
  const minusTwo = f32x4.splat(-2);
  const half = f32x4.splat(0.5);
  const threeHalves = f32x4.splat(1.5);
  const minusFiveHalves = f32x4.splat(-2.5);
  v128.store(at, madd(threeHalves, odd, f32x4.add(madd(minusTwo, d2, d0), d4)));
  v128.store(at + stride, f32x4.sub(madd(minusFiveHalves, d2, d4), madd(half, d3, d1)));
  v128.store(at + 2 * stride, f32x4.add(madd(half, d2, d4), madd(minusFiveHalves, d3, d1)));
  v128.store(at + 3 * stride, madd(f32x4.splat(-0.5), odd, even));
  v128.store(at + 4 * stride, madd(f32x4.splat(2), odd, even));
  v128.store(at + 5 * stride, madd(threeHalves, f32x4.sub(d2, d4), f32x4.add(madd(minusTwo, d3, d1), d5)));
}

/**
 * Aᵀ·m·A of F(4×4, 3×3) into one output plane [height, width] for every tile (whole groups of four
 * a tile row), m[ξ] at products + ξ·positionBytes as transformOutputPlane's. Returns false if any
 * output came out infinite or NaN (see winogradConv's `status`).
 */
function transformOutputPlane4(
  products: usize,
  positionBytes: usize,
  plane: usize,
  height: i32,
  width: i32,
  tilesY: i32,
  groups: i32,
  staging: usize,
): bool {
  const rowBytes = <usize>width * 4;
  // Zero while every value is finite: x − x is NaN for an infinity or a NaN.
  let nonFinite = f32x4.splat(0);
  for (let ty = 0; ty < tilesY; ty++) {
    const y = 4 * ty;
    const rows = min(4, height - y);
    const outRow = plane + <usize>y * rowBytes;
    for (let g = 0; g < groups; g++) {
      const x = 16 * g;
      const tile = (ty * groups + g) * 4;
      nonFinite = transformOutputGroup4(
        products + <usize>tile * 4,
        positionBytes,
        outRow + <usize>x * 4,
        rowBytes,
        rows,
        min(16, width - x),
        staging,
        nonFinite,
      );
    }
  }
  return !v128.any_true(f32x4.ne(nonFinite, nonFinite));
}

/**
 * Aᵀ·m·A for four adjacent tiles (one per lane) into `rows` (1 to 4) output rows of `count` (1 to 16)
 * pixels from dst, rows `rowBytes` apart; pixels past the plane's edge are dropped. Returns
 * `nonFinite` plus x − x of every value written (NaN from the first infinity or NaN on).
 */
function transformOutputGroup4(
  products: usize,
  positionBytes: usize,
  dst: usize,
  rowBytes: usize,
  rows: i32,
  count: i32,
  staging: usize,
  nonFinite: v128,
): v128 {
  const p = positionBytes;
  // Rows i of m to across[i][c] (staging + 64i + 16c), then columns c to tile[r][c] (+ 384).
  for (let i = 0; i < 6; i++) {
    const row = products + <usize>(6 * i) * p;
    outputTransform6(
      v128.load(row),
      v128.load(row + p),
      v128.load(row + 2 * p),
      v128.load(row + 3 * p),
      v128.load(row + 4 * p),
      v128.load(row + 5 * p),
      staging + <usize>(64 * i),
      16,
    );
  }
  const tile = staging + 384;
  for (let c = 0; c < 4; c++) {
    const column = staging + <usize>(16 * c);
    outputTransform6(
      v128.load(column),
      v128.load(column, 64),
      v128.load(column, 128),
      v128.load(column, 192),
      v128.load(column, 256),
      v128.load(column, 320),
      tile + <usize>(16 * c),
      64,
    );
  }
  for (let r = 0; r < rows; r++) {
    // Lane q of o_c is tile q's pixel c of this row: a 4×4 transpose puts each tile's four together.
    const at = tile + <usize>(64 * r);
    const o0 = v128.load(at);
    const o1 = v128.load(at, 16);
    const o2 = v128.load(at, 32);
    const o3 = v128.load(at, 48);
    const t0 = f32x4.shuffle(o0, o1, 0, 4, 1, 5);
    const t1 = f32x4.shuffle(o2, o3, 0, 4, 1, 5);
    const t2 = f32x4.shuffle(o0, o1, 2, 6, 3, 7);
    const t3 = f32x4.shuffle(o2, o3, 2, 6, 3, 7);
    const w0 = f32x4.shuffle(t0, t1, 0, 1, 4, 5);
    const w1 = f32x4.shuffle(t0, t1, 2, 3, 6, 7);
    const w2 = f32x4.shuffle(t2, t3, 0, 1, 4, 5);
    const w3 = f32x4.shuffle(t2, t3, 2, 3, 6, 7);
    nonFinite = f32x4.add(nonFinite, f32x4.sub(w0, w0));
    nonFinite = f32x4.add(nonFinite, f32x4.sub(w1, w1));
    nonFinite = f32x4.add(nonFinite, f32x4.sub(w2, w2));
    nonFinite = f32x4.add(nonFinite, f32x4.sub(w3, w3));
    const out = dst + <usize>r * rowBytes;
    if (count >= 8) {
      v128.store(out, w0);
      v128.store(out, w1, 16);
      writeRow(out + 32, w2, w3, count - 8);
    } else {
      writeRow(out, w0, w1, count);
    }
  }
  return nonFinite;
}

/**
 * Aᵀ·m of one row (or column) m0..m5 of a 6×6 product for F(4×4, 3×3), value r stored at
 * at + r·stride; the native backend's Aᵀ, multiply-adds fused as in inputTransform6:
 *   Aᵀ = [1 1 1 1 1 0; 0 1 −1 2 −½ 0; 0 1 1 4 ¼ 0; 0 1 −1 8 −⅛ 1].
 */
function outputTransform6(
  m0: v128,
  m1: v128,
  m2: v128,
  m3: v128,
  m4: v128,
  m5: v128,
  at: usize,
  stride: usize,
): void {
  const sum12 = f32x4.add(m1, m2);
  const difference12 = f32x4.sub(m1, m2);
  v128.store(at, f32x4.add(f32x4.add(m0, sum12), f32x4.add(m3, m4)));
  v128.store(at + stride, madd(f32x4.splat(2), m3, madd(f32x4.splat(-0.5), m4, difference12)));
  v128.store(at + 2 * stride, madd(f32x4.splat(4), m3, madd(f32x4.splat(0.25), m4, sum12)));
  v128.store(
    at + 3 * stride,
    f32x4.add(madd(f32x4.splat(8), m3, madd(f32x4.splat(-0.125), m4, difference12)), m5),
  );
}

/** Writes the first `count` (1 to 8) of the pixels low ++ high at dst. */
function writeRow(dst: usize, low: v128, high: v128, count: i32): void {
  if (count == 8) {
    v128.store(dst, low);
    v128.store(dst, high, 16);
    return;
  }
  let rest = low;
  if (count >= 4) {
    v128.store(dst, low);
    dst += 16;
    count -= 4;
    rest = high;
  }
  if (count >= 2) {
    v128.store64_lane(dst, rest, 0);
    if (count == 3) store<f32>(dst, f32x4.extract_lane(rest, 2), 8);
  } else if (count == 1) {
    store<f32>(dst, f32x4.extract_lane(rest, 0));
  }
}

/**
 * Tiles per depth chunk of the weight gradient's GEMMs: one packed depth block, so that each chunk's
 * packed operands (output plus input channels × 256 tiles per position) stay small.
 */
const GRADIENT_DEPTH: i32 = KC;

/**
 * Per-thread scratch of winogradWeightGradient, in bytes (f64 as winogradScratchBytes): the input
 * and gradOut of one image with channels innermost (zero-padded), the packed M' and Vᵀ of one depth
 * chunk, dU (16 [O, C] sums) and the GEMM's edge tile.
 */
export function winogradGradientScratchBytes(
  inChannels: i32,
  height: i32,
  width: i32,
  outChannels: i32,
): f64 {
  const tilesY = tilesOf(height);
  const tilesX = tilesOf(width);
  const tileRows = gemmTileRows();
  const rows = roundUp(outChannels, tileRows);
  const columns = roundUp(inChannels, NR);
  const input = <f64>(2 * tilesY + 2) * <f64>(2 * tilesX + 2) * <f64>roundUp(inChannels, 4);
  const gradient = <f64>(2 * tilesY) * <f64>(2 * tilesX) * <f64>roundUp(rows, 4);
  const v = POSITIONS * <f64>positionStride(<usize>(columns * GRADIENT_DEPTH) * 4);
  const m = POSITIONS * <f64>positionStride(<usize>(rows * GRADIENT_DEPTH) * 4);
  const sums = POSITIONS * <f64>positionStride(<usize>(rows * columns) * 4);
  const edge = <f64>(tileRows * NR);
  return (roundUp16(input) + roundUp16(gradient) + edge) * 4 + v + m + sums;
}

function roundUp16(floats: f64): f64 {
  return Math.ceil(floats / 16) * 16;
}

/**
 * gradWeight[o, c] = Σ_n ∂L/∂w[o, c] over images [imageStart, imageEnd), for output channels
 * [channelStart, channelEnd) (channelStart a multiple of gemmTileRows()); x [batch, inChannels,
 * height, width], gradOut [batch, outChannels, height, width], gradWeight [outChannels, inChannels,
 * 3, 3] (only the block's rows written, overwritten). `scratch` is winogradGradientScratchBytes.
 *
 * Forward is y = Aᵀ·[(G·g·Gᵀ) ⊙ (Bᵀ·d·B)]·A per tile, so the gradient is
 * Gᵀ·[Σ_tiles (A·dy·Aᵀ) ⊙ (Bᵀ·d·B)]·G: per position ξ one GEMM dU[ξ] [O, C] = M'[ξ] [O, tiles] ·
 * V[ξ]ᵀ [tiles, C] whose depth is the tiles. The tiles of all the block's images, in image order and
 * row-major within an image, are cut into depth chunks of GRADIENT_DEPTH; each chunk's M' and Vᵀ are
 * written straight in gemmPackA's and gemmPackB's layouts and multiplied into dU, the first chunk
 * overwriting it. Each dU element is therefore summed in an order fixed by the block's images alone,
 * whatever channel block a thread takes.
 *
 * Both packed operands hold, for each tile (depth), a run of consecutive channels, so the transforms
 * work on four channels per f32x4: each image's rows are first transposed to channels innermost
 * ([y, x, channel]), then every tile's transform is a handful of whole-vector loads, adds and stores.
 */
export function winogradWeightGradient(
  x: usize,
  gradOut: usize,
  gradWeight: usize,
  batch: i32,
  inChannels: i32,
  height: i32,
  width: i32,
  outChannels: i32,
  imageStart: i32,
  imageEnd: i32,
  channelStart: i32,
  channelEnd: i32,
  scratch: usize,
): void {
  if (channelEnd <= channelStart) return;
  const first = max(imageStart, 0);
  const end = min(imageEnd, batch);
  const tilesY = tilesOf(height);
  const tilesX = tilesOf(width);
  const tiles = tilesY * tilesX;
  const total = (end - first) * tiles;
  if (total <= 0 || inChannels <= 0) {
    memory.fill(
      gradWeight + <usize>(channelStart * inChannels * 9) * 4,
      0,
      <usize>((channelEnd - channelStart) * inChannels * 9) * 4,
    );
    return;
  }
  const tileRows = gemmTileRows();
  const rows = roundUp(outChannels, tileRows);
  const columns = roundUp(inChannels, NR);
  const rowEnd = roundUp(channelEnd, tileRows);
  // The input as [2·tilesY + 2, 2·tilesX + 2, inQuads] with a zero border of one pixel (and more past
  // an odd edge), and this block's gradOut channels as [2·tilesY, 2·tilesX, outQuads], zero past the
  // edges and past the last real channel.
  const inQuads = roundUp(inChannels, 4);
  const inWidth = 2 * tilesX + 2;
  const inFloats = roundUp((2 * tilesY + 2) * inWidth * inQuads, 16);
  const outQuads = roundUp(rowEnd - channelStart, 4);
  const gradientWidth = 2 * tilesX;
  const gradientFloats = roundUp(2 * tilesY * gradientWidth * outQuads, 16);
  const vBytes = positionStride(<usize>(columns * GRADIENT_DEPTH) * 4);
  const mBytes = positionStride(<usize>(rows * GRADIENT_DEPTH) * 4);
  const sumBytes = positionStride(<usize>(rows * columns) * 4);
  const input = scratch;
  const gradient = input + <usize>inFloats * 4;
  const v = gradient + <usize>gradientFloats * 4;
  const m = v + POSITIONS * vBytes;
  const sums = m + POSITIONS * mBytes;
  const edgeTile = sums + POSITIONS * sumBytes;
  // The borders stay zero: each image overwrites only interior pixels.
  memory.fill(input, 0, <usize>(inFloats + gradientFloats) * 4);
  const pixels = height * width;
  const inPixelBytes = <usize>inQuads * 4;
  const inRowBytes = <usize>inWidth * inPixelBytes;
  const outPixelBytes = <usize>outQuads * 4;
  const outRowBytes = <usize>gradientWidth * outPixelBytes;
  // The last strip of M' when it holds at most 4 real rows goes to shortStripProduct, as in
  // winogradConv (whichever block of channels a thread takes, that strip is always summed so).
  const partial = outChannels % tileRows;
  const shortRows = channelEnd == outChannels && partial > 0 && partial <= SHORT_ROWS ? partial : 0;
  const wholeStripsEnd = shortRows > 0 ? outChannels - partial : rowEnd;
  // Lanes of Vᵀ past the transposed channels (a strip of 8 with at most 4 real channels) are never
  // written, so they are zeroed once per layout (every chunk but the last has the full depth). Every
  // lane of M' up to rowEnd is written, zero past channelEnd.
  let zeroedDepth = 0;
  for (let start = 0; start < total; start += GRADIENT_DEPTH) {
    const depth = min(GRADIENT_DEPTH, total - start);
    if (depth != zeroedDepth) {
      zeroPaddingLanes(v, vBytes, inQuads, columns, NR, depth);
      zeroedDepth = depth;
    }
    const lastImage = first + (start + depth - 1) / tiles;
    for (let n = first + start / tiles; n <= lastImage; n++) {
      // This image's tiles [from, to) fall in the chunk, at depth imageDepth + tile.
      const imageDepth = (n - first) * tiles - start;
      const from = max(-imageDepth, 0);
      const to = min(depth - imageDepth, tiles);
      const rowFirst = from / tilesX;
      const rowLast = (to - 1) / tilesX;
      // Input rows that tile rows [rowFirst, rowLast] read (2·ty − 1 to 2·ty + 2), one pixel in.
      const yFirst = max(2 * rowFirst - 1, 0);
      const yEnd = min(2 * rowLast + 3, height);
      const image = x + <usize>(n * inChannels * pixels) * 4;
      for (let c = 0; c < inChannels; c += 4) {
        transposeRows(
          image + <usize>(c * pixels) * 4,
          min(4, inChannels - c),
          pixels,
          width,
          yFirst,
          yEnd,
          input + inRowBytes + inPixelBytes + <usize>c * 4,
          inRowBytes,
          inPixelBytes,
        );
      }
      const gradientImage = gradOut + <usize>((n * outChannels + channelStart) * pixels) * 4;
      const gradientYEnd = min(2 * rowLast + 2, height);
      for (let k = 0; k < outQuads; k += 4) {
        transposeRows(
          gradientImage + <usize>(k * pixels) * 4,
          max(min(4, channelEnd - channelStart - k), 0),
          pixels,
          width,
          2 * rowFirst,
          gradientYEnd,
          gradient + <usize>k * 4,
          outRowBytes,
          outPixelBytes,
        );
      }
      for (let tile = from; tile < to; tile++) {
        const ty = tile / tilesX;
        const tx = tile - ty * tilesX;
        const at = imageDepth + tile;
        // Vᵀ: strips of NR channels, each depth NR consecutive channels.
        const patch = input + <usize>(2 * ty) * inRowBytes + <usize>(2 * tx) * inPixelBytes;
        for (let c = 0; c < inQuads; c += 4) {
          transformInputQuad(
            patch + <usize>c * 4,
            inRowBytes,
            inPixelBytes,
            v + <usize>((c >> 3) * NR * depth + at * NR + (c & 7)) * 4,
            vBytes,
          );
        }
        // M': strips of tileRows output channels, each depth tileRows consecutive channels.
        const tileGradient = gradient + <usize>(2 * ty) * outRowBytes + <usize>(2 * tx) * outPixelBytes;
        for (let o = channelStart; o < rowEnd; o += tileRows) {
          const strip = o / tileRows;
          const dst = m + <usize>(strip * tileRows * depth + at * tileRows) * 4;
          const source = tileGradient + <usize>(o - channelStart) * 4;
          transformGradientStrip(source, outRowBytes, outPixelBytes, dst, mBytes, tileRows == 6);
        }
      }
    }
    for (let xi = 0; xi < POSITIONS; xi++) {
      const operandM = m + <usize>xi * mBytes;
      const operandV = v + <usize>xi * vBytes;
      const sum = sums + <usize>xi * sumBytes;
      if (wholeStripsEnd > channelStart) {
        gemmPackedBlock(
          operandM,
          operandV,
          outChannels,
          inChannels,
          depth,
          sum,
          columns,
          start > 0,
          channelStart,
          wholeStripsEnd,
          0,
          columns,
          edgeTile,
        );
      }
      if (shortRows > 0) {
        shortStripProduct(
          operandM,
          operandV,
          outChannels,
          columns,
          depth,
          wholeStripsEnd,
          shortRows,
          sum,
          start > 0,
        );
      }
    }
  }
  for (let o = channelStart; o < channelEnd; o++) {
    for (let c = 0; c < inChannels; c++) {
      transformWeightGradient(
        sums + <usize>(o * columns + c) * 4,
        sumBytes,
        gradWeight + <usize>((o * inChannels + c) * 9) * 4,
      );
    }
  }
}

/**
 * Rows [yFirst, yEnd) of `count` (0 to 4) consecutive channel planes (the first at `source`,
 * `pixels` floats apart, rows `width` long) into four-channel vectors: pixel (y, x) at
 * dst + y·rowBytes + x·pixelBytes. Channels past `count` are written as zeros.
 */
function transposeRows(
  source: usize,
  count: i32,
  pixels: i32,
  width: i32,
  yFirst: i32,
  yEnd: i32,
  dst: usize,
  rowBytes: usize,
  pixelBytes: usize,
): void {
  const planeBytes = <usize>pixels * 4;
  const zero = f32x4.splat(0);
  for (let y = yFirst; y < yEnd; y++) {
    const row = source + <usize>(y * width) * 4;
    let out = dst + <usize>y * rowBytes;
    let x = 0;
    for (; x + 4 <= width; x += 4) {
      const at = row + <usize>x * 4;
      const a0 = count > 0 ? v128.load(at) : zero;
      const a1 = count > 1 ? v128.load(at + planeBytes) : zero;
      const a2 = count > 2 ? v128.load(at + 2 * planeBytes) : zero;
      const a3 = count > 3 ? v128.load(at + 3 * planeBytes) : zero;
      const low01 = f32x4.shuffle(a0, a1, 0, 4, 1, 5);
      const high01 = f32x4.shuffle(a0, a1, 2, 6, 3, 7);
      const low23 = f32x4.shuffle(a2, a3, 0, 4, 1, 5);
      const high23 = f32x4.shuffle(a2, a3, 2, 6, 3, 7);
      v128.store(out, f32x4.shuffle(low01, low23, 0, 1, 4, 5));
      v128.store(out + pixelBytes, f32x4.shuffle(low01, low23, 2, 3, 6, 7));
      v128.store(out + 2 * pixelBytes, f32x4.shuffle(high01, high23, 0, 1, 4, 5));
      v128.store(out + 3 * pixelBytes, f32x4.shuffle(high01, high23, 2, 3, 6, 7));
      out += 4 * pixelBytes;
    }
    for (; x < width; x++) {
      const at = row + <usize>x * 4;
      v128.store(
        out,
        f32x4(
          count > 0 ? load<f32>(at) : 0,
          count > 1 ? load<f32>(at + planeBytes) : 0,
          count > 2 ? load<f32>(at + 2 * planeBytes) : 0,
          count > 3 ? load<f32>(at + 3 * planeBytes) : 0,
        ),
      );
      out += pixelBytes;
    }
  }
}

/**
 * Bᵀ·d·B for four channels of one tile (lanes: channels), d's pixel (i, j) at
 * patch + i·rowBytes + j·pixelBytes; position ξ stored at dst + ξ·positionBytes.
 * Bᵀ = [[1, 0, −1, 0], [0, 1, 1, 0], [0, −1, 1, 0], [0, 1, 0, −1]].
 */
function transformInputQuad(
  patch: usize,
  rowBytes: usize,
  pixelBytes: usize,
  dst: usize,
  positionBytes: usize,
): void {
  const r0 = patch;
  const r1 = r0 + rowBytes;
  const r2 = r1 + rowBytes;
  const r3 = r2 + rowBytes;
  // Row i of Bᵀ·d from two rows of d, then times B along the row.
  for (let i = 0; i < 4; i++) {
    const p = i == 0 ? r0 : i == 3 ? r1 : r2;
    const q = i == 0 ? r2 : i == 3 ? r3 : r1;
    let t0 = v128.load(p);
    let t1 = v128.load(p + pixelBytes);
    let t2 = v128.load(p + 2 * pixelBytes);
    let t3 = v128.load(p + 3 * pixelBytes);
    const u0 = v128.load(q);
    const u1 = v128.load(q + pixelBytes);
    const u2 = v128.load(q + 2 * pixelBytes);
    const u3 = v128.load(q + 3 * pixelBytes);
    if (i == 1) {
      t0 = f32x4.add(t0, u0);
      t1 = f32x4.add(t1, u1);
      t2 = f32x4.add(t2, u2);
      t3 = f32x4.add(t3, u3);
    } else {
      t0 = f32x4.sub(t0, u0);
      t1 = f32x4.sub(t1, u1);
      t2 = f32x4.sub(t2, u2);
      t3 = f32x4.sub(t3, u3);
    }
    const row = dst + <usize>(4 * i) * positionBytes;
    v128.store(row, f32x4.sub(t0, t2));
    v128.store(row + positionBytes, f32x4.add(t1, t2));
    v128.store(row + 2 * positionBytes, f32x4.sub(t2, t1));
    v128.store(row + 3 * positionBytes, f32x4.sub(t1, t3));
  }
}

/**
 * A·dy·Aᵀ for one strip of M' (4 channels, or 6 with `six`; lanes: channels) of one 2×2 gradOut tile,
 * dy's pixel (i, j) at tile + i·rowBytes + j·pixelBytes, position ξ stored at dst + ξ·positionBytes.
 * A = [[1, 0], [1, 1], [1, −1], [0, −1]]: the rows r0, r1 of dy become r0, r0 + r1, r0 − r1, −r1,
 * and each row (a, b) becomes (a, a + b, a − b, −b).
 */
function transformGradientStrip(
  tile: usize,
  rowBytes: usize,
  pixelBytes: usize,
  dst: usize,
  positionBytes: usize,
  six: bool,
): void {
  const p = positionBytes;
  let y00 = v128.load(tile);
  let y01 = v128.load(tile + pixelBytes);
  let y10 = v128.load(tile + rowBytes);
  let y11 = v128.load(tile + rowBytes + pixelBytes);
  gradientRow(dst, p, y00, y01, false);
  gradientRow(dst + 4 * p, p, f32x4.add(y00, y10), f32x4.add(y01, y11), false);
  gradientRow(dst + 8 * p, p, f32x4.sub(y00, y10), f32x4.sub(y01, y11), false);
  gradientRow(dst + 12 * p, p, f32x4.neg(y10), f32x4.neg(y11), false);
  if (!six) return;
  // Channels 4 and 5 of the strip, in the low lanes.
  y00 = v128.load64_zero(tile + 16);
  y01 = v128.load64_zero(tile + pixelBytes + 16);
  y10 = v128.load64_zero(tile + rowBytes + 16);
  y11 = v128.load64_zero(tile + rowBytes + pixelBytes + 16);
  gradientRow(dst + 16, p, y00, y01, true);
  gradientRow(dst + 16 + 4 * p, p, f32x4.add(y00, y10), f32x4.add(y01, y11), true);
  gradientRow(dst + 16 + 8 * p, p, f32x4.sub(y00, y10), f32x4.sub(y01, y11), true);
  gradientRow(dst + 16 + 12 * p, p, f32x4.neg(y10), f32x4.neg(y11), true);
}

/** (a, a + b, a − b, −b) at dst, positionBytes apart (with `half`, the low two lanes of each). */
function gradientRow(dst: usize, positionBytes: usize, a: v128, b: v128, half: bool): void {
  put(dst, a, half);
  put(dst + positionBytes, f32x4.add(a, b), half);
  put(dst + 2 * positionBytes, f32x4.sub(a, b), half);
  put(dst + 3 * positionBytes, f32x4.neg(b), half);
}

/**
 * Zeroes lanes [used, padded) of every depth of a packed operand of `depth` (≤ KC) whose strips are
 * `strip` lanes wide, at every position: channels past the last real one, which the GEMM multiplies
 * into rows or columns of dU that nothing reads (leftover scratch there could be NaN or subnormal).
 */
function zeroPaddingLanes(
  operand: usize,
  positionBytes: usize,
  used: i32,
  padded: i32,
  strip: i32,
  depth: i32,
): void {
  if (used >= padded) return;
  for (let lane = used; lane < padded; lane++) {
    const s = lane / strip;
    const base = operand + <usize>(s * strip * depth + (lane - s * strip)) * 4;
    for (let xi = 0; xi < POSITIONS; xi++) {
      const at = base + <usize>xi * positionBytes;
      for (let d = 0; d < depth; d++) store<f32>(at + <usize>(d * strip) * 4, 0);
    }
  }
}

/**
 * Gᵀ·s·G of one 4×4 sum s (position ξ at sum + ξ·positionBytes) into a 3×3 weight gradient at dst.
 * Gᵀ = [[1, ½, ½, 0], [0, ½, −½, 0], [0, ½, ½, 1]].
 */
function transformWeightGradient(sum: usize, positionBytes: usize, dst: usize): void {
  // Rows of s as vectors (lane j: column j), then rows of Gᵀ·s, then each row times G.
  const s0 = sumRow(sum, positionBytes);
  const s1 = sumRow(sum + 4 * positionBytes, positionBytes);
  const s2 = sumRow(sum + 8 * positionBytes, positionBytes);
  const s3 = sumRow(sum + 12 * positionBytes, positionBytes);
  const half = f32x4.splat(0.5);
  const middle = f32x4.mul(f32x4.add(s1, s2), half);
  weightGradientRow(dst, f32x4.add(s0, middle));
  weightGradientRow(dst + 12, f32x4.mul(f32x4.sub(s1, s2), half));
  weightGradientRow(dst + 24, f32x4.add(middle, s3));
}

/** Row i of s (positions 4i to 4i+3, `positionBytes` apart) as one vector. */
function sumRow(at: usize, positionBytes: usize): v128 {
  return f32x4(
    load<f32>(at),
    load<f32>(at + positionBytes),
    load<f32>(at + 2 * positionBytes),
    load<f32>(at + 3 * positionBytes),
  );
}

/** (t0 + ½(t1 + t2), ½(t1 − t2), ½(t1 + t2) + t3) of row t of Gᵀ·s: one row of the 3×3 gradient. */
function weightGradientRow(dst: usize, t: v128): void {
  const t0 = f32x4.extract_lane(t, 0);
  const t1 = f32x4.extract_lane(t, 1);
  const t2 = f32x4.extract_lane(t, 2);
  const t3 = f32x4.extract_lane(t, 3);
  const middle = (t1 + t2) * 0.5;
  store<f32>(dst, t0 + middle);
  store<f32>(dst, (t1 - t2) * 0.5, 4);
  store<f32>(dst, middle + t3, 8);
}
