/**
 * Max and average pooling over NCHW float32 planes, following PyTorch's CPU kernels: padding is
 * -infinity for max and zero for average, and windows are clipped to the input before reading.
 *
 * Shapes: x [planes = batch·channels, inHeight, inWidth], out and argmax [planes, outHeight, outWidth].
 * argmax holds, per output, the index within its input plane of the first maximum in row-major window
 * order (NaN wins, as in PyTorch).
 */
import { zeroFloats } from './floats';

/**
 * Four lanes read `stride` floats apart from `at`. Stride 2 reads 8 consecutive floats, so callers
 * keep one float of slack before the end of the row.
 */
function loadLanes(at: usize, stride: i32): v128 {
  if (stride == 1) return v128.load(at);
  if (stride == 2) return f32x4.shuffle(v128.load(at), v128.load(at, 16), 0, 2, 4, 6);
  const step = <usize>stride * 4;
  let lanes = f32x4.splat(load<f32>(at));
  lanes = f32x4.replace_lane(lanes, 1, load<f32>(at + step));
  lanes = f32x4.replace_lane(lanes, 2, load<f32>(at + 2 * step));
  return f32x4.replace_lane(lanes, 3, load<f32>(at + 3 * step));
}

/**
 * The output columns [first, end) whose windows lie inside the input row and can be read four at a
 * time by loadLanes; windows outside it (padding, ragged ends) take the scalar path.
 */
function vectorColumnsStart(padLeft: i32, strideWidth: i32): i32 {
  return (padLeft + strideWidth - 1) / strideWidth;
}

function vectorColumnsEnd(
  inWidth: i32,
  kernelWidth: i32,
  strideWidth: i32,
  padLeft: i32,
  outWidth: i32,
): i32 {
  const slack = strideWidth == 2 ? 1 : 0;
  const room = inWidth - kernelWidth - slack + padLeft;
  return room < 0 ? 0 : min(room / strideWidth + 1, outWidth);
}

/** One max window at (yStart, xStart), clipped to the input: the scalar path for border windows. */
function maxWindow(
  input: usize,
  out: usize,
  argmax: usize,
  yStart: i32,
  xStart: i32,
  kernelHeight: i32,
  kernelWidth: i32,
  inHeight: i32,
  inWidth: i32,
): void {
  const y1 = min(yStart + kernelHeight, inHeight);
  const x0 = max(xStart, 0);
  const x1 = min(xStart + kernelWidth, inWidth);
  let best: f32 = -Infinity;
  let bestIndex = -1;
  for (let iy = max(yStart, 0); iy < y1; iy++) {
    for (let ix = x0; ix < x1; ix++) {
      const index = iy * inWidth + ix;
      const value = load<f32>(input + <usize>index * 4);
      // The first in-bounds element always wins, so an all -infinity window still points inside.
      if (value > best || bestIndex < 0 || value != value) {
        best = value;
        bestIndex = index;
      }
    }
  }
  store<f32>(out, best);
  store<i32>(argmax, bestIndex);
}

/**
 * Four adjacent windows whose first element is input[first] at once: per tap, lanes that see a larger
 * value (or NaN) take it, as maxWindow decides for one window.
 */
function maxFour(
  input: usize,
  out: usize,
  argmax: usize,
  first: i32,
  laneOffsets: v128,
  kernelHeight: i32,
  kernelWidth: i32,
  strideWidth: i32,
  inWidth: i32,
): void {
  const corner = input + <usize>first * 4;
  const firstIndices = i32x4.add(i32x4.splat(first), laneOffsets);
  let best = loadLanes(corner, strideWidth);
  let bestIndex = firstIndices;
  for (let ky = 0; ky < kernelHeight; ky++) {
    for (let kx = 0; kx < kernelWidth; kx++) {
      if (ky == 0 && kx == 0) continue;
      const tap = ky * inWidth + kx;
      const value = loadLanes(corner + <usize>tap * 4, strideWidth);
      const better = v128.or(f32x4.gt(value, best), f32x4.ne(value, value));
      best = v128.bitselect(value, best, better);
      bestIndex = v128.bitselect(i32x4.add(firstIndices, i32x4.splat(tap)), bestIndex, better);
    }
  }
  v128.store(out, best);
  v128.store(argmax, bestIndex);
}

/**
 * The 2×2, stride-2 windows of output columns [ox, ox + 4) of one output row whose top row starts at
 * input[row]: maxFour's taps in its order ((0,0), (0,1), (1,0), (1,1)), with each input row's eight
 * floats loaded once and split into even and odd columns. Reads input columns 2·ox to 2·ox + 7.
 */
function maxFour2x2(input: usize, out: usize, argmax: usize, row: i32, ox: i32, inWidth: i32): void {
  const first = row + 2 * ox;
  const top = input + <usize>first * 4;
  const bottom = top + <usize>inWidth * 4;
  const topLow = v128.load(top);
  const topHigh = v128.load(top, 16);
  const bottomLow = v128.load(bottom);
  const bottomHigh = v128.load(bottom, 16);
  const index00 = i32x4.add(i32x4.splat(first), i32x4(0, 2, 4, 6));
  let best = f32x4.shuffle(topLow, topHigh, 0, 2, 4, 6);
  let bestIndex = index00;
  let value = f32x4.shuffle(topLow, topHigh, 1, 3, 5, 7);
  let better = v128.or(f32x4.gt(value, best), f32x4.ne(value, value));
  best = v128.bitselect(value, best, better);
  bestIndex = v128.bitselect(i32x4.add(index00, i32x4.splat(1)), bestIndex, better);
  value = f32x4.shuffle(bottomLow, bottomHigh, 0, 2, 4, 6);
  better = v128.or(f32x4.gt(value, best), f32x4.ne(value, value));
  best = v128.bitselect(value, best, better);
  bestIndex = v128.bitselect(i32x4.add(index00, i32x4.splat(inWidth)), bestIndex, better);
  value = f32x4.shuffle(bottomLow, bottomHigh, 1, 3, 5, 7);
  better = v128.or(f32x4.gt(value, best), f32x4.ne(value, value));
  best = v128.bitselect(value, best, better);
  bestIndex = v128.bitselect(i32x4.add(index00, i32x4.splat(inWidth + 1)), bestIndex, better);
  v128.store(out, best);
  v128.store(argmax, bestIndex);
}

/**
 * maxPool2dForward for 2×2 windows, stride 2, no padding (the seed CNN's pools): maxFour2x2 over each
 * output row, the last group overlapping the one before where the row is not a multiple of 4 (the
 * repeated windows get the same values), and maxWindow for outputs that no group of four can read
 * (a row of fewer than 8 input columns, or an odd last one). Same values and indices as the general
 * path, without its loops over taps. Exported for the fused batch norm + ReLU + pooling
 * (assembly/norm.ts), which pools one plane at a time while it is in cache.
 */
export function maxPool2x2(
  x: usize,
  out: usize,
  argmax: usize,
  planes: i32,
  inHeight: i32,
  inWidth: i32,
  outHeight: i32,
  outWidth: i32,
): void {
  const planeIn = inHeight * inWidth;
  // Groups of four read 8 input columns from 2·ox: those starting at or before inWidth − 8.
  const groupEnd = inWidth >= 8 ? min((inWidth - 8) / 2 + 4, outWidth) : 0;
  let o: usize = 0;
  for (let plane = 0; plane < planes; plane++) {
    const input = x + <usize>(plane * planeIn) * 4;
    for (let oy = 0; oy < outHeight; oy++) {
      const row = 2 * oy * inWidth;
      let ox = 0;
      for (; ox + 4 <= groupEnd; ox += 4)
        maxFour2x2(input, out + (o + <usize>ox) * 4, argmax + (o + <usize>ox) * 4, row, ox, inWidth);
      if (ox < groupEnd) {
        const start = groupEnd - 4;
        maxFour2x2(input, out + (o + <usize>start) * 4, argmax + (o + <usize>start) * 4, row, start, inWidth);
        ox = groupEnd;
      }
      for (; ox < outWidth; ox++) {
        maxWindow(
          input,
          out + (o + <usize>ox) * 4,
          argmax + (o + <usize>ox) * 4,
          2 * oy,
          2 * ox,
          2,
          2,
          inHeight,
          inWidth,
        );
      }
      o += <usize>outWidth;
    }
  }
}

export function maxPool2dForward(
  x: usize,
  out: usize,
  argmax: usize,
  planes: i32,
  inHeight: i32,
  inWidth: i32,
  kernelHeight: i32,
  kernelWidth: i32,
  strideHeight: i32,
  strideWidth: i32,
  padTop: i32,
  padLeft: i32,
  outHeight: i32,
  outWidth: i32,
): void {
  if (
    kernelHeight == 2 &&
    kernelWidth == 2 &&
    strideHeight == 2 &&
    strideWidth == 2 &&
    padTop == 0 &&
    padLeft == 0 &&
    2 * outHeight <= inHeight &&
    2 * outWidth <= inWidth
  ) {
    maxPool2x2(x, out, argmax, planes, inHeight, inWidth, outHeight, outWidth);
    return;
  }
  const planeIn = inHeight * inWidth;
  const vectorStart = vectorColumnsStart(padLeft, strideWidth);
  const vectorEnd = vectorColumnsEnd(inWidth, kernelWidth, strideWidth, padLeft, outWidth);
  const laneOffsets = i32x4(0, strideWidth, 2 * strideWidth, 3 * strideWidth);
  let o: usize = 0;
  for (let plane = 0; plane < planes; plane++) {
    const input = x + <usize>(plane * planeIn) * 4;
    for (let oy = 0; oy < outHeight; oy++) {
      const yStart = oy * strideHeight - padTop;
      const rowInside = yStart >= 0 && yStart + kernelHeight <= inHeight;
      let ox = 0;
      if (rowInside) {
        for (; ox < vectorStart; ox++, o++) {
          maxWindow(
            input,
            out + o * 4,
            argmax + o * 4,
            yStart,
            ox * strideWidth - padLeft,
            kernelHeight,
            kernelWidth,
            inHeight,
            inWidth,
          );
        }
        for (; ox + 4 <= vectorEnd; ox += 4, o += 4) {
          maxFour(
            input,
            out + o * 4,
            argmax + o * 4,
            yStart * inWidth + ox * strideWidth - padLeft,
            laneOffsets,
            kernelHeight,
            kernelWidth,
            strideWidth,
            inWidth,
          );
        }
        // The 1–3 vector-safe windows left: one more group of four ending at vectorEnd, overlapping
        // the last one (the windows it repeats get the same values), instead of the scalar path.
        if (ox < vectorEnd && vectorEnd - 4 >= vectorStart) {
          const start = vectorEnd - 4;
          const at = o - <usize>(ox - start);
          maxFour(
            input,
            out + at * 4,
            argmax + at * 4,
            yStart * inWidth + start * strideWidth - padLeft,
            laneOffsets,
            kernelHeight,
            kernelWidth,
            strideWidth,
            inWidth,
          );
          o += <usize>(vectorEnd - ox);
          ox = vectorEnd;
        }
      }
      for (; ox < outWidth; ox++, o++) {
        maxWindow(
          input,
          out + o * 4,
          argmax + o * 4,
          yStart,
          ox * strideWidth - padLeft,
          kernelHeight,
          kernelWidth,
          inHeight,
          inWidth,
        );
      }
    }
  }
}

/** gradX is overwritten: each gradOut element is added at its argmax position. */
export function maxPool2dBackward(
  gradOut: usize,
  argmax: usize,
  gradX: usize,
  planes: i32,
  planeIn: i32,
  planeOut: i32,
): void {
  zeroFloats(gradX, planes * planeIn);
  for (let plane = 0; plane < planes; plane++) {
    const base = gradX + <usize>(plane * planeIn) * 4;
    const offset = <usize>(plane * planeOut) * 4;
    for (let o = 0; o < planeOut; o++) {
      const index = load<i32>(argmax + offset + <usize>o * 4);
      // An empty window (only possible with unusual padding) records -1 and receives nothing.
      if (index < 0 || index >= planeIn) continue;
      const at = base + <usize>index * 4;
      store<f32>(at, load<f32>(at) + load<f32>(gradOut + offset + <usize>o * 4));
    }
  }
}

/**
 * The divisor of one average window. With countIncludePad it is the window clipped to the padded
 * input (PyTorch's rule); otherwise the number of real input elements it covers.
 */
function averageDivisor(
  yStart: i32,
  xStart: i32,
  kernelHeight: i32,
  kernelWidth: i32,
  inHeight: i32,
  inWidth: i32,
  padTop: i32,
  padLeft: i32,
  countIncludePad: bool,
): f32 {
  if (countIncludePad) {
    const yEnd = min(yStart + kernelHeight, inHeight + padTop);
    const xEnd = min(xStart + kernelWidth, inWidth + padLeft);
    return <f32>((yEnd - yStart) * (xEnd - xStart));
  }
  const rows = min(yStart + kernelHeight, inHeight) - max(yStart, 0);
  const cols = min(xStart + kernelWidth, inWidth) - max(xStart, 0);
  return <f32>(max(rows, 0) * max(cols, 0));
}

/** One average window at (yStart, xStart), clipped to the input: the scalar path for border windows. */
function averageWindow(
  input: usize,
  yStart: i32,
  xStart: i32,
  kernelHeight: i32,
  kernelWidth: i32,
  inHeight: i32,
  inWidth: i32,
  padTop: i32,
  padLeft: i32,
  countIncludePad: bool,
): f32 {
  const y0 = max(yStart, 0);
  const y1 = min(yStart + kernelHeight, inHeight);
  const x0 = max(xStart, 0);
  const x1 = min(xStart + kernelWidth, inWidth);
  // A window with no input elements averages to 0, as in PyTorch.
  if (y0 >= y1 || x0 >= x1) return 0;
  let sum: f32 = 0;
  for (let iy = y0; iy < y1; iy++) {
    const row = input + <usize>(iy * inWidth) * 4;
    for (let ix = x0; ix < x1; ix++) sum += load<f32>(row + <usize>ix * 4);
  }
  return (
    sum /
    averageDivisor(
      yStart,
      xStart,
      kernelHeight,
      kernelWidth,
      inHeight,
      inWidth,
      padTop,
      padLeft,
      countIncludePad,
    )
  );
}

export function avgPool2dForward(
  x: usize,
  out: usize,
  planes: i32,
  inHeight: i32,
  inWidth: i32,
  kernelHeight: i32,
  kernelWidth: i32,
  strideHeight: i32,
  strideWidth: i32,
  padTop: i32,
  padLeft: i32,
  outHeight: i32,
  outWidth: i32,
  countIncludePad: bool,
): void {
  const planeIn = inHeight * inWidth;
  const vectorStart = vectorColumnsStart(padLeft, strideWidth);
  const vectorEnd = vectorColumnsEnd(inWidth, kernelWidth, strideWidth, padLeft, outWidth);
  // A window inside the input has the full divisor under either counting rule.
  const fullWindow = f32x4.splat(<f32>(kernelHeight * kernelWidth));
  let o: usize = 0;
  for (let plane = 0; plane < planes; plane++) {
    const input = x + <usize>(plane * planeIn) * 4;
    for (let oy = 0; oy < outHeight; oy++) {
      const yStart = oy * strideHeight - padTop;
      const rowInside = yStart >= 0 && yStart + kernelHeight <= inHeight;
      let ox = 0;
      if (rowInside) {
        for (; ox < vectorStart; ox++, o++) {
          const xStart = ox * strideWidth - padLeft;
          store<f32>(
            out + o * 4,
            averageWindow(
              input,
              yStart,
              xStart,
              kernelHeight,
              kernelWidth,
              inHeight,
              inWidth,
              padTop,
              padLeft,
              countIncludePad,
            ),
          );
        }
        // Four adjacent windows at once, summed tap by tap in the scalar path's order.
        for (; ox + 4 <= vectorEnd; ox += 4, o += 4) {
          const corner = input + <usize>(yStart * inWidth + ox * strideWidth - padLeft) * 4;
          let sum = f32x4.splat(0);
          for (let ky = 0; ky < kernelHeight; ky++) {
            for (let kx = 0; kx < kernelWidth; kx++) {
              sum = f32x4.add(sum, loadLanes(corner + <usize>(ky * inWidth + kx) * 4, strideWidth));
            }
          }
          v128.store(out + o * 4, f32x4.div(sum, fullWindow));
        }
      }
      for (; ox < outWidth; ox++, o++) {
        const xStart = ox * strideWidth - padLeft;
        store<f32>(
          out + o * 4,
          averageWindow(
            input,
            yStart,
            xStart,
            kernelHeight,
            kernelWidth,
            inHeight,
            inWidth,
            padTop,
            padLeft,
            countIncludePad,
          ),
        );
      }
    }
  }
}

/** Adds the four lanes of `shares` at `at`, `at` + stride floats, ... (the adjoint of loadLanes). */
function addLanes(at: usize, stride: i32, shares: v128): void {
  if (stride == 1) {
    v128.store(at, f32x4.add(v128.load(at), shares));
    return;
  }
  if (stride == 2) {
    const zero = f32x4.splat(0);
    v128.store(at, f32x4.add(v128.load(at), f32x4.shuffle(shares, zero, 0, 4, 1, 4)));
    v128.store(at, f32x4.add(v128.load(at, 16), f32x4.shuffle(shares, zero, 2, 4, 3, 4)), 16);
    return;
  }
  const step = <usize>stride * 4;
  store<f32>(at, load<f32>(at) + f32x4.extract_lane(shares, 0));
  store<f32>(at + step, load<f32>(at + step) + f32x4.extract_lane(shares, 1));
  store<f32>(at + 2 * step, load<f32>(at + 2 * step) + f32x4.extract_lane(shares, 2));
  store<f32>(at + 3 * step, load<f32>(at + 3 * step) + f32x4.extract_lane(shares, 3));
}

/** Spreads one window's gradient over its input elements: the scalar path for border windows. */
function spreadWindow(
  gradient: usize,
  gradOut: f32,
  yStart: i32,
  xStart: i32,
  kernelHeight: i32,
  kernelWidth: i32,
  inHeight: i32,
  inWidth: i32,
  padTop: i32,
  padLeft: i32,
  countIncludePad: bool,
): void {
  const y0 = max(yStart, 0);
  const y1 = min(yStart + kernelHeight, inHeight);
  const x0 = max(xStart, 0);
  const x1 = min(xStart + kernelWidth, inWidth);
  if (y0 >= y1 || x0 >= x1) return;
  const share =
    gradOut /
    averageDivisor(
      yStart,
      xStart,
      kernelHeight,
      kernelWidth,
      inHeight,
      inWidth,
      padTop,
      padLeft,
      countIncludePad,
    );
  for (let iy = y0; iy < y1; iy++) {
    const row = gradient + <usize>(iy * inWidth) * 4;
    for (let ix = x0; ix < x1; ix++) {
      const at = row + <usize>ix * 4;
      store<f32>(at, load<f32>(at) + share);
    }
  }
}

/** gradX is overwritten: each gradOut element is spread evenly over its window's input elements. */
export function avgPool2dBackward(
  gradOut: usize,
  gradX: usize,
  planes: i32,
  inHeight: i32,
  inWidth: i32,
  kernelHeight: i32,
  kernelWidth: i32,
  strideHeight: i32,
  strideWidth: i32,
  padTop: i32,
  padLeft: i32,
  outHeight: i32,
  outWidth: i32,
  countIncludePad: bool,
): void {
  const planeIn = inHeight * inWidth;
  zeroFloats(gradX, planes * planeIn);
  const vectorStart = vectorColumnsStart(padLeft, strideWidth);
  const vectorEnd = vectorColumnsEnd(inWidth, kernelWidth, strideWidth, padLeft, outWidth);
  const fullWindow = f32x4.splat(<f32>(kernelHeight * kernelWidth));
  let o: usize = 0;
  for (let plane = 0; plane < planes; plane++) {
    const gradient = gradX + <usize>(plane * planeIn) * 4;
    for (let oy = 0; oy < outHeight; oy++) {
      const yStart = oy * strideHeight - padTop;
      const rowInside = yStart >= 0 && yStart + kernelHeight <= inHeight;
      let ox = 0;
      if (rowInside) {
        for (; ox < vectorStart; ox++, o++) {
          const xStart = ox * strideWidth - padLeft;
          const g = load<f32>(gradOut + o * 4);
          spreadWindow(
            gradient,
            g,
            yStart,
            xStart,
            kernelHeight,
            kernelWidth,
            inHeight,
            inWidth,
            padTop,
            padLeft,
            countIncludePad,
          );
        }
        for (; ox + 4 <= vectorEnd; ox += 4, o += 4) {
          const corner = gradient + <usize>(yStart * inWidth + ox * strideWidth - padLeft) * 4;
          const shares = f32x4.div(v128.load(gradOut + o * 4), fullWindow);
          for (let ky = 0; ky < kernelHeight; ky++) {
            for (let kx = 0; kx < kernelWidth; kx++) {
              addLanes(corner + <usize>(ky * inWidth + kx) * 4, strideWidth, shares);
            }
          }
        }
      }
      for (; ox < outWidth; ox++, o++) {
        const xStart = ox * strideWidth - padLeft;
        const g = load<f32>(gradOut + o * 4);
        spreadWindow(
          gradient,
          g,
          yStart,
          xStart,
          kernelHeight,
          kernelWidth,
          inHeight,
          inWidth,
          padTop,
          padLeft,
          countIncludePad,
        );
      }
    }
  }
}
