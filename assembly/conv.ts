/**
 * 2-D convolution over NCHW float32 tensors by im2col / col2im and the packed GEMM.
 *
 * For each image the (inChannels·kernelHeight·kernelWidth) × (outHeight·outWidth) column matrix is
 * built in the caller's `cols` scratch, multiplied by the weight viewed as [outChannels, K], and, for the
 * input gradient, scattered back with col2im. The column matrix never leaves linear memory. A 1×1,
 * stride-1, unpadded convolution needs no column matrix: the image itself is [inChannels, H·W].
 *
 * Shapes: x [batch, inChannels, inHeight, inWidth], weight [outChannels, inChannels, kernelHeight,
 * kernelWidth], out [batch, outChannels, outHeight, outWidth]. All pointers are byte addresses.
 *
 * Each kernel computes one block of its output, given as ranges of images and channels, so that the
 * backend's threads can split a call into disjoint blocks. The split never changes the arithmetic of
 * an output element (each is summed by one thread in one order), so any split gives the same bits.
 */
import { addFloats, copyFloats, zeroFloats } from './floats';
import { gemmStrided } from './gemm';

/**
 * Bytes of column scratch that the convolution kernels need (0 when the 1×1 shortcut applies), as
 * f64 so that a size past 2 GiB reaches the caller intact and is refused there.
 */
export function convColumnBytes(
  inChannels: i32,
  kernelHeight: i32,
  kernelWidth: i32,
  strideHeight: i32,
  strideWidth: i32,
  padTop: i32,
  padLeft: i32,
  outHeight: i32,
  outWidth: i32,
): f64 {
  if (isPointwise(kernelHeight, kernelWidth, strideHeight, strideWidth, padTop, padLeft)) return 0;
  return <f64>inChannels * <f64>(kernelHeight * kernelWidth) * <f64>(outHeight * outWidth) * 4;
}

function isPointwise(kh: i32, kw: i32, sh: i32, sw: i32, ph: i32, pw: i32): bool {
  return kh == 1 && kw == 1 && sh == 1 && sw == 1 && ph == 0 && pw == 0;
}

/** First output column whose input column ox·stride + offset is ≥ 0. */
function firstValid(offset: i32, stride: i32): i32 {
  return offset >= 0 ? 0 : (-offset + stride - 1) / stride;
}

/** One past the last output column (capped at outSize) whose input column is < inSize. */
function endValid(offset: i32, stride: i32, inSize: i32, outSize: i32): i32 {
  const last = inSize - 1 - offset;
  return last < 0 ? 0 : min(outSize, last / stride + 1);
}

/**
 * True when im2col rows are shifted copies of input planes: stride 1 and an output as wide as the
 * input (the seed CNN's 3×3, pad 1 layers). Output index j = oy·w + ox then reads input index
 * j + yOffset·w + xOffset, so each tap's valid region is one contiguous run, apart from the |xOffset|
 * columns per row that wrap around to the neighbouring input row.
 */
function isShiftedCopy(sh: i32, sw: i32, iw: i32, ow: i32): bool {
  return sh == 1 && sw == 1 && iw == ow;
}

/** Zeroes, in rows [oyStart, oyEnd) of a [*, w] block, the columns outside [oxStart, oxEnd). */
function zeroWrappedColumns(block: usize, w: i32, oyStart: i32, oyEnd: i32, oxStart: i32, oxEnd: i32): void {
  for (let oy = oyStart; oy < oyEnd; oy++) {
    const row = block + <usize>(oy * w) * 4;
    for (let ox = 0; ox < oxStart; ox++) store<f32>(row + <usize>ox * 4, 0);
    for (let ox = oxEnd; ox < w; ox++) store<f32>(row + <usize>ox * 4, 0);
  }
}

/** One im2col row (one tap) when isShiftedCopy holds: a single copy, then the wrapped columns zeroed. */
function im2colShiftedTap(
  plane: usize,
  dst: usize,
  ih: i32,
  w: i32,
  oh: i32,
  yOffset: i32,
  xOffset: i32,
): void {
  const oyStart = min(max(-yOffset, 0), oh);
  const oyEnd = max(min(oh, ih - yOffset), oyStart);
  const oxStart = min(max(-xOffset, 0), w);
  const oxEnd = max(min(w, w - xOffset), oxStart);
  if (oyStart == oyEnd || oxStart == oxEnd) {
    zeroFloats(dst, oh * w);
    return;
  }
  zeroFloats(dst, oyStart * w);
  // From the first valid element to the last one; every read stays inside the input plane.
  const first = oyStart * w + oxStart;
  const last = (oyEnd - 1) * w + oxEnd;
  copyFloats(dst + <usize>first * 4, plane + <usize>(first + yOffset * w + xOffset) * 4, last - first);
  zeroWrappedColumns(dst, w, oyStart, oyEnd, oxStart, oxEnd);
  zeroFloats(dst + <usize>(oyEnd * w) * 4, (oh - oyEnd) * w);
}

/**
 * The adjoint of im2colShiftedTap. The wrapped columns of the column row are zeroed first (the row is
 * scratch), so one contiguous add leaves the input elements they map onto unchanged.
 */
function col2imShiftedTap(
  src: usize,
  plane: usize,
  ih: i32,
  w: i32,
  oh: i32,
  yOffset: i32,
  xOffset: i32,
): void {
  const oyStart = min(max(-yOffset, 0), oh);
  const oyEnd = max(min(oh, ih - yOffset), oyStart);
  const oxStart = min(max(-xOffset, 0), w);
  const oxEnd = max(min(w, w - xOffset), oxStart);
  if (oyStart == oyEnd || oxStart == oxEnd) return;
  zeroWrappedColumns(src, w, oyStart, oyEnd, oxStart, oxEnd);
  const first = oyStart * w + oxStart;
  const last = (oyEnd - 1) * w + oxEnd;
  addFloats(plane + <usize>(first + yOffset * w + xOffset) * 4, src + <usize>first * 4, last - first);
}

/**
 * cols[(c·kh + ky)·kw + kx, oy·ow + ox] = x[c, oy·sh − ph + ky·dh, ox·sw − pw + kx·dw], zero in the
 * padding. x is one image [c, ih, iw].
 */
function im2col(
  x: usize,
  cols: usize,
  c: i32,
  ih: i32,
  iw: i32,
  kh: i32,
  kw: i32,
  sh: i32,
  sw: i32,
  ph: i32,
  pw: i32,
  dh: i32,
  dw: i32,
  oh: i32,
  ow: i32,
): void {
  let dst = cols;
  const shifted = isShiftedCopy(sh, sw, iw, ow);
  for (let ci = 0; ci < c; ci++) {
    const plane = x + <usize>(ci * ih * iw) * 4;
    for (let ky = 0; ky < kh; ky++) {
      for (let kx = 0; kx < kw; kx++) {
        const xOffset = kx * dw - pw;
        if (shifted) {
          im2colShiftedTap(plane, dst, ih, iw, oh, ky * dh - ph, xOffset);
          dst += <usize>(oh * ow) * 4;
          continue;
        }
        const oxStart = min(firstValid(xOffset, sw), ow);
        const oxEnd = max(endValid(xOffset, sw, iw, ow), oxStart);
        for (let oy = 0; oy < oh; oy++) {
          const iy = oy * sh - ph + ky * dh;
          if (iy < 0 || iy >= ih) {
            zeroFloats(dst, ow);
          } else {
            const src = plane + <usize>(iy * iw + xOffset) * 4;
            zeroFloats(dst, oxStart);
            if (sw == 1) {
              copyFloats(dst + <usize>oxStart * 4, src + <usize>oxStart * 4, oxEnd - oxStart);
            } else {
              for (let ox = oxStart; ox < oxEnd; ox++) {
                store<f32>(dst + <usize>ox * 4, load<f32>(src + <usize>(ox * sw) * 4));
              }
            }
            zeroFloats(dst + <usize>oxEnd * 4, ow - oxEnd);
          }
          dst += <usize>ow * 4;
        }
      }
    }
  }
}

/** The adjoint of im2col: x[c, iy, ix] += cols[row, oy·ow + ox] for every tap that reads (iy, ix). */
function col2imAdd(
  cols: usize,
  x: usize,
  c: i32,
  ih: i32,
  iw: i32,
  kh: i32,
  kw: i32,
  sh: i32,
  sw: i32,
  ph: i32,
  pw: i32,
  dh: i32,
  dw: i32,
  oh: i32,
  ow: i32,
): void {
  let src = cols;
  const rowBytes = <usize>ow * 4;
  const shifted = isShiftedCopy(sh, sw, iw, ow);
  for (let ci = 0; ci < c; ci++) {
    const plane = x + <usize>(ci * ih * iw) * 4;
    for (let ky = 0; ky < kh; ky++) {
      for (let kx = 0; kx < kw; kx++) {
        const xOffset = kx * dw - pw;
        if (shifted) {
          col2imShiftedTap(src, plane, ih, iw, oh, ky * dh - ph, xOffset);
          src += rowBytes * oh;
          continue;
        }
        const oxStart = min(firstValid(xOffset, sw), ow);
        const oxEnd = max(endValid(xOffset, sw, iw, ow), oxStart);
        for (let oy = 0; oy < oh; oy++) {
          const iy = oy * sh - ph + ky * dh;
          if (iy >= 0 && iy < ih) {
            const dst = plane + <usize>(iy * iw + xOffset) * 4;
            let ox = oxStart;
            if (sw == 1) {
              for (; ox + 4 <= oxEnd; ox += 4) {
                const offset = <usize>ox * 4;
                v128.store(dst + offset, f32x4.add(v128.load(dst + offset), v128.load(src + offset)));
              }
              for (; ox < oxEnd; ox++) {
                const offset = <usize>ox * 4;
                store<f32>(dst + offset, load<f32>(dst + offset) + load<f32>(src + offset));
              }
            } else {
              for (; ox < oxEnd; ox++) {
                const at = dst + <usize>(ox * sw) * 4;
                store<f32>(at, load<f32>(at) + load<f32>(src + <usize>ox * 4));
              }
            }
          }
          src += rowBytes;
        }
      }
    }
  }
}

/**
 * out[n, o] = weight[o, K] · columns(x[n]) for images [imageStart, imageEnd) and output channels
 * [outChannelStart, outChannelEnd). A range of the whole batch and all channels is the full
 * convolution; threads take disjoint ranges. Every output element is computed the same way whatever
 * the ranges, so split results equal whole ones bit for bit. `cols` holds one image's full column
 * matrix (convColumnBytes) and `work` the GEMM workspace of an [outChannels, pixels, K] product.
 */
export function conv2dForward(
  x: usize,
  weight: usize,
  out: usize,
  batch: i32,
  inChannels: i32,
  inHeight: i32,
  inWidth: i32,
  outChannels: i32,
  kernelHeight: i32,
  kernelWidth: i32,
  strideHeight: i32,
  strideWidth: i32,
  padTop: i32,
  padLeft: i32,
  dilationHeight: i32,
  dilationWidth: i32,
  outHeight: i32,
  outWidth: i32,
  imageStart: i32,
  imageEnd: i32,
  outChannelStart: i32,
  outChannelEnd: i32,
  cols: usize,
  work: usize,
): void {
  const pixels = outHeight * outWidth;
  const depth = inChannels * kernelHeight * kernelWidth;
  const pointwise = isPointwise(kernelHeight, kernelWidth, strideHeight, strideWidth, padTop, padLeft);
  const rows = outChannelEnd - outChannelStart;
  if (rows <= 0) return;
  for (let n = max(imageStart, 0); n < min(imageEnd, batch); n++) {
    const image = x + <usize>(n * inChannels * inHeight * inWidth) * 4;
    let columns = image;
    if (!pointwise) {
      im2col(
        image,
        cols,
        inChannels,
        inHeight,
        inWidth,
        kernelHeight,
        kernelWidth,
        strideHeight,
        strideWidth,
        padTop,
        padLeft,
        dilationHeight,
        dilationWidth,
        outHeight,
        outWidth,
      );
      columns = cols;
    }
    const result = out + <usize>((n * outChannels + outChannelStart) * pixels) * 4;
    gemmStrided(
      rows,
      pixels,
      depth,
      weight + <usize>(outChannelStart * depth) * 4,
      depth,
      false,
      columns,
      pixels,
      false,
      result,
      pixels,
      false,
      work,
    );
  }
}

/**
 * gradX[n, c] = col2im(weight[:, c]ᵀ · gradOut[n]) for images [imageStart, imageEnd) and input
 * channels [channelStart, channelEnd); those planes of gradX are overwritten, others untouched. The
 * column rows of one input channel scatter only into that channel's plane, so channel ranges split the
 * work without any reduction. `cols` needs room for the range's column rows (convColumnBytes covers
 * every range); `work` is the GEMM workspace of a [K, pixels, outChannels] product.
 */
export function conv2dBackwardInput(
  gradOut: usize,
  weight: usize,
  gradX: usize,
  batch: i32,
  inChannels: i32,
  inHeight: i32,
  inWidth: i32,
  outChannels: i32,
  kernelHeight: i32,
  kernelWidth: i32,
  strideHeight: i32,
  strideWidth: i32,
  padTop: i32,
  padLeft: i32,
  dilationHeight: i32,
  dilationWidth: i32,
  outHeight: i32,
  outWidth: i32,
  imageStart: i32,
  imageEnd: i32,
  channelStart: i32,
  channelEnd: i32,
  cols: usize,
  work: usize,
): void {
  const pixels = outHeight * outWidth;
  const taps = kernelHeight * kernelWidth;
  const depth = inChannels * taps;
  const planeFloats = inHeight * inWidth;
  const channels = channelEnd - channelStart;
  if (channels <= 0) return;
  const rows = channels * taps;
  // Rows [channelStart·taps, …) of weightᵀ are columns of the stored [outChannels, K] weight.
  const weightColumns = weight + <usize>(channelStart * taps) * 4;
  const pointwise = isPointwise(kernelHeight, kernelWidth, strideHeight, strideWidth, padTop, padLeft);
  for (let n = max(imageStart, 0); n < min(imageEnd, batch); n++) {
    const gradient = gradOut + <usize>(n * outChannels * pixels) * 4;
    const planes = gradX + <usize>((n * inChannels + channelStart) * planeFloats) * 4;
    if (pointwise) {
      // The column matrix is the image itself, so the product lands in place.
      gemmStrided(
        rows,
        pixels,
        outChannels,
        weightColumns,
        depth,
        true,
        gradient,
        pixels,
        false,
        planes,
        pixels,
        false,
        work,
      );
      continue;
    }
    gemmStrided(
      rows,
      pixels,
      outChannels,
      weightColumns,
      depth,
      true,
      gradient,
      pixels,
      false,
      cols,
      pixels,
      false,
      work,
    );
    zeroFloats(planes, channels * planeFloats);
    col2imAdd(
      cols,
      planes,
      channels,
      inHeight,
      inWidth,
      kernelHeight,
      kernelWidth,
      strideHeight,
      strideWidth,
      padTop,
      padLeft,
      dilationHeight,
      dilationWidth,
      outHeight,
      outWidth,
    );
  }
}

/**
 * gradWeight[o] = Σₙ gradOut[n, o] · columns(x[n])ᵀ for output channels [outChannelStart,
 * outChannelEnd), summed over images [imageStart, imageEnd) in image order; those rows of gradWeight
 * are overwritten (zero for an empty image range), the rest untouched. The backend sums the batch in
 * fixed blocks of images, one partial gradWeight per block, and adds the partials in block order
 * (sumBlocks), so threads share the work without the result depending on how many there are.
 */
export function conv2dBackwardWeight(
  x: usize,
  gradOut: usize,
  gradWeight: usize,
  batch: i32,
  inChannels: i32,
  inHeight: i32,
  inWidth: i32,
  outChannels: i32,
  kernelHeight: i32,
  kernelWidth: i32,
  strideHeight: i32,
  strideWidth: i32,
  padTop: i32,
  padLeft: i32,
  dilationHeight: i32,
  dilationWidth: i32,
  outHeight: i32,
  outWidth: i32,
  imageStart: i32,
  imageEnd: i32,
  outChannelStart: i32,
  outChannelEnd: i32,
  cols: usize,
  work: usize,
): void {
  const pixels = outHeight * outWidth;
  const depth = inChannels * kernelHeight * kernelWidth;
  const rows = outChannelEnd - outChannelStart;
  if (rows <= 0) return;
  const block = gradWeight + <usize>(outChannelStart * depth) * 4;
  const first = max(imageStart, 0);
  const end = min(imageEnd, batch);
  if (first >= end) zeroFloats(block, rows * depth);
  const pointwise = isPointwise(kernelHeight, kernelWidth, strideHeight, strideWidth, padTop, padLeft);
  for (let n = first; n < end; n++) {
    const image = x + <usize>(n * inChannels * inHeight * inWidth) * 4;
    let columns = image;
    if (!pointwise) {
      im2col(
        image,
        cols,
        inChannels,
        inHeight,
        inWidth,
        kernelHeight,
        kernelWidth,
        strideHeight,
        strideWidth,
        padTop,
        padLeft,
        dilationHeight,
        dilationWidth,
        outHeight,
        outWidth,
      );
      columns = cols;
    }
    const gradient = gradOut + <usize>((n * outChannels + outChannelStart) * pixels) * 4;
    // The columns are stored [K, pixels] = op(B)ᵀ, so B is read transposed.
    gemmStrided(
      rows,
      depth,
      pixels,
      gradient,
      pixels,
      false,
      columns,
      pixels,
      true,
      block,
      depth,
      n > first,
      work,
    );
  }
}
