// Convolutions as GEMMs over im2col matrices. Per sample n, with K = in_channels·kernel_height·
// kernel_width and P = out_height·out_width:
//   forward          out_n[Cout, P]   = W[Cout, K] · col_n[K, P]
//   backward input   gradCol[K, P]    = Wᵀ[K, Cout] · gradOut_n[Cout, P], then col2im into grad_x
//   backward weight  gradWᵀ[K, Cout] += col_n[K, P] · gradOut_nᵀ[P, Cout], summed over the batch
//
// Stride-1 convolutions (the common case) never build col_n. The input is copied into a zero-padded
// "grid" whose rows are the input rows with a shared gap of zeros between them (the right padding of
// one row is the left padding of the next). Output positions are computed on the same grid, gap
// columns included, and those extra columns are dropped afterwards. On the grid, im2col row
// (c, kh, kw) is simply the padded plane of channel c shifted by kh·dilation·rowStride + kw·dilation:
// a contiguous slice, so the GEMM packs its operands straight from the padded input. The backward
// input pass of a stride-1 convolution is itself a stride-1 convolution (of gradOut with the flipped,
// transposed kernel), so it takes the same path and needs no col2im scatter.
//
// Strided forward convolutions use the grid too, after splitting the input into phases (every s-th
// row and column, one plane per offset): in a phase plane a strided tap is a stride-1 slice again
// (see Grid). Their gradients, and strides larger than the kernel, use im2col rows built for a chunk
// of output positions in a small buffer (L1) and written straight into the packed GEMM panels, and
// col2im for the input gradient.
//
// Small images (a few dozen output positions, as in ResNet's last stages) make per-sample GEMMs too
// narrow to amortise the weights, which would be streamed once per sample, and the grid's padding
// columns a large share of the work (a 4×4 image uses 16 of 30 grid positions). Stride-1
// convolutions of such images therefore build im2col columns of the real positions of a whole
// batch (or of as many samples as fit a budget) and run one GEMM over them: the weight gradient
// sums all the batch's positions in one product too. Each forward output is still summed over the
// same k in the same order, so it keeps its bits whatever the batch.
//
// Work is split over samples (and chunks of positions or channels when the batch is small), which
// keeps every output element's summation order independent of the thread count.
#include <algorithm>
#include <cstring>
#include <vector>

#include "epilogue.h"
#include "gemm.h"
#include "kernels.h"
#include "scratch.h"
#include "thread_pool.h"
#include "vector_clones.h"
#include "vector_lanes.h"
#include "winograd.h"

namespace tensile {

namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Largest output positions per sample for which a batch's convolution runs as one im2col GEMM.
constexpr int64_t kBatchedForwardPositions = 64;
constexpr int64_t kBatchedWeightGradientPositions = 64;
// Strided convolutions take the batched path only for small outputs: 512 → 512 to 4² at batch 8,
// 2.6 → 1.75 ms, and 256 → 512 at batch 32, 4.3 → 3.5 ms; at 7² (256 → 512, batch 8) since the
// columns are gathered (batched_columns): 3.45–3.5 → 3.0 ms inside ResNet-18's inference step (two
// threads), where the grid's per-sample products each stream the 4.7 MB of packed weights again.
// At 8² (128 → 256, batch 32: 3.5 → 4.2 ms) the grid's in-place reads win over building the
// columns (two threads).
constexpr int64_t kBatchedStridedPositions = 49;
constexpr int64_t kBatchedStridedWeightGradientPositions = 49;
// Fewest output positions (over the batch) for the Winograd weight gradient on outputs of up to
// kBatchedStridedWeightGradientPositions a sample (conv2d_backward_weight).
constexpr int64_t kWinogradWeightGradientPositions = 8 * 49;

// Output columns [ow_begin, ow_end) whose tap at input column ow·stride + offset lies inside [0, width).
struct ValidRange {
  int64_t begin, end;
};

ValidRange valid_outputs(int64_t offset, int64_t stride, int64_t width, int64_t outputs) {
  const int64_t begin = offset >= 0 ? 0 : ceil_div(-offset, stride);
  const int64_t last = width - 1 - offset;  // ow·stride ≤ last
  const int64_t end = last < 0 ? 0 : last / stride + 1;
  const int64_t clipped_begin = std::min(begin, outputs);
  return {clipped_begin, std::max(clipped_begin, std::min(end, outputs))};
}

// Stride-2 rows, sixteen (then eight) outputs at a time by shuffles (a strided loop moved one float at
// a time: a quarter of a stride-2 input gradient). Vectors stop before the last output, so that they touch no
// float past the row's last even one: past it lie other planes, which other threads write.
// to[j] = from[2j] for j < count.
__attribute__((always_inline)) inline void copy_even(const float* __restrict from, int64_t count,
                                                     float* __restrict to) {
  const Indices16 evens = {0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30};
  int64_t j = 0;
  for (; j + 16 < count; j += 16) {
    store<Lanes16>(to + j, __builtin_shuffle(load<Lanes16>(from + 2 * j), load<Lanes16>(from + 2 * j + 16), evens));
  }
  if (j + 8 < count) {
    const Indices8 evens8 = {0, 2, 4, 6, 8, 10, 12, 14};
    store<Lanes8>(to + j, __builtin_shuffle(load<Lanes8>(from + 2 * j), load<Lanes8>(from + 2 * j + 8), evens8));
    j += 8;
  }
  for (; j < count; ++j) to[j] = from[2 * j];
}

// to[2j] += from[j] for j < count: each pair of vectors of `to` gets from's values interleaved with
// −0, which leaves the odd floats as they are (x + −0 is x for every x, −0 included), so every float
// is rounded as in the scalar loop.
__attribute__((always_inline)) inline void add_to_even(const float* __restrict from, int64_t count,
                                                       float* __restrict to) {
  const Indices16 low = {0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23};
  const Indices16 high = {8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
  const Lanes16 negative_zeros = {-0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f,
                                  -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f};
  int64_t j = 0;
  for (; j + 16 < count; j += 16) {
    const Lanes16 values = load<Lanes16>(from + j);
    store<Lanes16>(to + 2 * j, load<Lanes16>(to + 2 * j) + __builtin_shuffle(values, negative_zeros, low));
    store<Lanes16>(to + 2 * j + 16, load<Lanes16>(to + 2 * j + 16) + __builtin_shuffle(values, negative_zeros, high));
  }
  if (j + 8 < count) {
    const Indices8 low8 = {0, 8, 1, 9, 2, 10, 3, 11};
    const Indices8 high8 = {4, 12, 5, 13, 6, 14, 7, 15};
    const Lanes8 negative_zeros8 = {-0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f};
    const Lanes8 values = load<Lanes8>(from + j);
    store<Lanes8>(to + 2 * j, load<Lanes8>(to + 2 * j) + __builtin_shuffle(values, negative_zeros8, low8));
    store<Lanes8>(to + 2 * j + 8, load<Lanes8>(to + 2 * j + 8) + __builtin_shuffle(values, negative_zeros8, high8));
    j += 8;
  }
  for (; j < count; ++j) to[2 * j] += from[j];
}

// Fills row[0, count) with the values that tap (kh, kw) reads from one input plane at output positions
// [p_begin, p_begin + count) (flattened oh·out_width + ow); zero where the tap falls in padding.
TENSILE_VECTOR_CLONES
void im2col_row(const float* plane, const ConvGeometry& g, int64_t kh, int64_t kw, int64_t p_begin, int64_t count,
                float* row) {
  const int64_t offset_w = kw * g.dilation_width - g.pad_left;
  const ValidRange valid = valid_outputs(offset_w, g.stride_width, g.in_width, g.out_width);
  int64_t oh = p_begin / g.out_width;
  int64_t ow = p_begin % g.out_width;
  int64_t done = 0;
  while (done < count) {
    const int64_t segment = std::min(g.out_width - ow, count - done);
    const int64_t ow_end = ow + segment;
    const int64_t ih = oh * g.stride_height + kh * g.dilation_height - g.pad_top;
    float* to = row + done - ow;  // to[j] for output column j
    if (ih < 0 || ih >= g.in_height) {
      for (int64_t j = ow; j < ow_end; ++j) to[j] = 0.0f;
    } else {
      const int64_t copy_begin = std::max(ow, valid.begin);
      const int64_t copy_end = std::max(copy_begin, std::min(ow_end, valid.end));
      for (int64_t j = ow; j < copy_begin; ++j) to[j] = 0.0f;
      const float* from = plane + ih * g.in_width + offset_w;
      if (g.stride_width == 1) {
        for (int64_t j = copy_begin; j < copy_end; ++j) to[j] = from[j];
      } else if (g.stride_width == 2) {
        copy_even(from + 2 * copy_begin, copy_end - copy_begin, to + copy_begin);
      } else {
        for (int64_t j = copy_begin; j < copy_end; ++j) to[j] = from[j * g.stride_width];
      }
      for (int64_t j = copy_end; j < ow_end; ++j) to[j] = 0.0f;
    }
    done += segment;
    ++oh;
    ow = 0;
  }
}

// The adjoint of im2col_row: adds row[0, count) into the plane positions the tap read.
TENSILE_VECTOR_CLONES
void col2im_row(const float* row, const ConvGeometry& g, int64_t kh, int64_t kw, int64_t p_begin, int64_t count,
                float* plane) {
  const int64_t offset_w = kw * g.dilation_width - g.pad_left;
  const ValidRange valid = valid_outputs(offset_w, g.stride_width, g.in_width, g.out_width);
  int64_t oh = p_begin / g.out_width;
  int64_t ow = p_begin % g.out_width;
  int64_t done = 0;
  while (done < count) {
    const int64_t segment = std::min(g.out_width - ow, count - done);
    const int64_t ow_end = ow + segment;
    const int64_t ih = oh * g.stride_height + kh * g.dilation_height - g.pad_top;
    if (ih >= 0 && ih < g.in_height) {
      const float* from = row + done - ow;
      const int64_t add_begin = std::max(ow, valid.begin);
      const int64_t add_end = std::max(add_begin, std::min(ow_end, valid.end));
      float* to = plane + ih * g.in_width + offset_w;
      if (g.stride_width == 1) {
        for (int64_t j = add_begin; j < add_end; ++j) to[j] += from[j];
      } else if (g.stride_width == 2) {
        add_to_even(from + add_begin, add_end - add_begin, to + 2 * add_begin);
      } else {
        for (int64_t j = add_begin; j < add_end; ++j) to[j * g.stride_width] += from[j];
      }
    }
    done += segment;
    ++oh;
    ow = 0;
  }
}

// Copies row[0, count) into step kk of consecutive packed B panels (width nr, k_total steps each).
void scatter_to_panels(const float* row, int64_t count, int64_t k_total, int64_t kk, int nr, float* packed) {
  for (int64_t first = 0; first < count; first += nr) {
    float* to = packed + first * k_total + kk * nr;
    const float* from = row + first;
    if (count - first >= nr) {
      for (int j = 0; j < nr; ++j) to[j] = from[j];
    } else {
      const int64_t rest = count - first;
      for (int64_t j = 0; j < rest; ++j) to[j] = from[j];
      for (int64_t j = rest; j < nr; ++j) to[j] = 0.0f;
    }
  }
}

// Number of chunks to cut `positions` output positions of one sample into: enough tasks for every
// thread when the batch is small, and chunks whose packed buffers of `floats_per_position` floats
// per position stay near L2 size.
int64_t position_chunks(int64_t positions, int64_t floats_per_position, int64_t batch, int threads, int nr) {
  constexpr int64_t kBudgetFloats = 256 * 1024;
  int64_t by_cache = ceil_div(positions * floats_per_position, kBudgetFloats);
  int64_t by_threads = ceil_div(2 * threads, batch);
  int64_t chunks = std::max<int64_t>(1, std::max(by_cache, by_threads));
  return std::min(chunks, ceil_div(positions, nr));
}

// Packs weights [rows, k] (row-major) into panels of `width` rows, the panels split over the threads
// (a 512-channel 3×3 layer's 9 MB would otherwise be packed by one thread while the others wait).
void pack_weights(const GemmKernels& kernels, const float* weight, int64_t rows, int64_t k, int width, float* packed) {
  const int64_t panels = ceil_div(rows, width);
  const int64_t tasks = std::min<int64_t>(panels, 2 * pool().threads());
  pool().run(tasks, [&](int64_t task, int) {
    const int64_t begin = panels * task / tasks * width;
    const int64_t end = std::min(rows, panels * (task + 1) / tasks * width);
    if (end > begin) kernels.pack(weight + begin * k, k, 1, end - begin, k, width, packed + begin * k);
  });
}

// Chunk size rounded up to whole panels so chunk starts stay panel-aligned in C's columns.
int64_t chunk_width(int64_t positions, int64_t chunks, int nr) {
  return ceil_div(ceil_div(positions, chunks), nr) * nr;
}

// grad_weight[co, row] = Σ_group partials[group], the groups added in order; each partial is
// [Cout, k], or [k, Cout] when transposed. The transposed sums are taken over blocks of 16 rows × 64
// channels, read along the partials' rows and written 16 floats at a time: element by element, every
// write went to another gradient row (a quarter of a stride-2 weight gradient at 8² outputs).
TENSILE_VECTOR_CLONES
void reduce_block(const float* partials, int64_t groups, int64_t weights, int64_t k, int64_t out_channels,
                  int64_t row_begin, int64_t rows, int64_t co_begin, int64_t channels, float* grad_weight) {
  constexpr int64_t kRows = 16;
  constexpr int64_t kChannels = 64;
  float sums[kRows][kChannels];
  for (int64_t r = 0; r < rows; ++r) {
    const float* from = partials + (row_begin + r) * out_channels + co_begin;
    for (int64_t c = 0; c < channels; ++c) sums[r][c] = from[c];
    for (int64_t group = 1; group < groups; ++group) {
      const float* more = from + group * weights;
      for (int64_t c = 0; c < channels; ++c) sums[r][c] += more[c];
    }
  }
  for (int64_t c = 0; c < channels; ++c) {
    float* to = grad_weight + (co_begin + c) * k + row_begin;
    if (rows == kRows) {
      for (int64_t r = 0; r < kRows; ++r) to[r] = sums[r][c];
    } else {
      for (int64_t r = 0; r < rows; ++r) to[r] = sums[r][c];
    }
  }
}

// to[i] = Σ_group from[group·group_stride + i] for i < count, the groups added in order.
TENSILE_VECTOR_CLONES
void sum_groups(const float* from, int64_t groups, int64_t group_stride, int64_t count, float* to) {
  for (int64_t i = 0; i < count; ++i) to[i] = from[i];
  for (int64_t group = 1; group < groups; ++group) {
    const float* more = from + group * group_stride;
    for (int64_t i = 0; i < count; ++i) to[i] += more[i];
  }
}

void reduce_partials(const float* partials, int64_t groups, int64_t k, int64_t out_channels, bool transposed,
                     float* grad_weight) {
  const int64_t weights = k * out_channels;
  ThreadPool& threads = pool();
  if (transposed) {
    const int64_t blocks = ceil_div(k, 16);
    const int64_t tasks = std::min<int64_t>(blocks, threads.threads() * 4);
    threads.run(tasks, [&](int64_t task, int) {
      for (int64_t block = blocks * task / tasks; block < blocks * (task + 1) / tasks; ++block) {
        const int64_t rows = std::min<int64_t>(16, k - block * 16);
        for (int64_t co = 0; co < out_channels; co += 64) {
          reduce_block(partials, groups, weights, k, out_channels, block * 16, rows, co,
                       std::min<int64_t>(64, out_channels - co), grad_weight);
        }
      }
    });
    return;
  }
  // Same layout: runs of the weights, each summed along the groups.
  const int64_t tasks = std::min<int64_t>(ceil_div(weights, 1024), threads.threads() * 4);
  threads.run(tasks, [&](int64_t task, int) {
    const int64_t begin = weights * task / tasks;
    const int64_t end = weights * (task + 1) / tasks;
    for (int64_t at = begin; at < end; at += 1024) {
      sum_groups(partials + at, groups, weights, std::min<int64_t>(1024, end - at), grad_weight + at);
    }
  });
}

// Short copies and fills (rows of tens of floats, often fewer) without calls to memcpy or memset,
// which cost more than such copies (vector_lanes.h).
inline void copy_floats(const float* __restrict from, float* __restrict to, int64_t count) {
  copy_run(from, count, to);
}

inline void zero_floats(float* to, int64_t count) { zero_run(to, count); }

// floor(a / b) for b > 0 and a of either sign.
int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

// The zero-padded grid of a convolution (see the file comment). A padded plane row holds `gap`
// zeros then one input row; output position q = oh·row_stride + ow reads tap (kh, kw) at
// q + tap_offset(kh, kw) of its plane. With a stride s > 1 along an axis the input is first split
// into s phases along it (phase p holds every s-th row or column, starting at p): tap (kh, kw) then
// reads, for output (oh, ow), phase ((kh·d − pad) mod s) at phase row oh + ⌊(kh·d − pad)/s⌋, a
// stride-1 access again. A window holds, per input channel, its stride_height·stride_width phase
// planes, each with `top` rows of zeros above the input's. Stride 1 is the one-phase case, with
// top = pad_top; the same taps are read in the same order, so only the copying changes with s.
struct Grid {
  int64_t stride_height;
  int64_t stride_width;
  int64_t top;          // plane rows of zeros above the first input row
  int64_t phase_width;  // ⌈in_width / stride_width⌉: input columns a plane row holds (at most)
  int64_t gap;
  int64_t row_stride;
  int64_t positions;  // out_height · row_stride
  int64_t row_reach;  // largest plane-row shift of a tap
  int64_t tap_reach;  // largest tap offset

  int64_t phases() const { return stride_height * stride_width; }
  // Which phase plane of its channel tap (kh, kw) reads.
  int64_t tap_phase(const ConvGeometry& g, int64_t kh, int64_t kw) const {
    const int64_t a = kh * g.dilation_height - g.pad_top;
    const int64_t b = kw * g.dilation_width - g.pad_left;
    return (a - floor_div(a, stride_height) * stride_height) * stride_width +
           (b - floor_div(b, stride_width) * stride_width);
  }
  int64_t tap_offset(const ConvGeometry& g, int64_t kh, int64_t kw) const {
    return (floor_div(kh * g.dilation_height - g.pad_top, stride_height) + top) * row_stride +
           floor_div(kw * g.dilation_width - g.pad_left, stride_width) + gap;
  }
  // Plane rows a chunk of `width` positions can need: the rows it spans, the kernel's reach below,
  // and one more row whose gap catches reads running off a row's right end.
  int64_t window_rows(int64_t width) const { return (width + 2 * row_stride - 2) / row_stride + row_reach + 2; }
  // Zeros after the last plane, read only for gap columns of the last rows.
  int64_t slack() const { return 2 * row_stride + tap_reach + 16; }
};

Grid make_grid(const ConvGeometry& g) {
  Grid grid;
  grid.stride_height = g.stride_height;
  grid.stride_width = g.stride_width;
  grid.top = std::max<int64_t>(0, -floor_div(-g.pad_top, g.stride_height));
  grid.phase_width = ceil_div(g.in_width, g.stride_width);
  // The gap must hold the left padding, and the reads that run off a row's right end must land in
  // the next row's gap; the grid must also be at least as wide as the output.
  const int64_t left = -floor_div(-g.pad_left, g.stride_width);
  const int64_t right_overrun =
      g.out_width + floor_div((g.kernel_width - 1) * g.dilation_width - g.pad_left, g.stride_width) - grid.phase_width;
  grid.gap = std::max({left, right_overrun, g.out_width - grid.phase_width, int64_t{0}});
  grid.row_stride = grid.phase_width + grid.gap;
  grid.positions = g.out_height * grid.row_stride;
  grid.row_reach = floor_div((g.kernel_height - 1) * g.dilation_height - g.pad_top, g.stride_height) + grid.top;
  grid.tap_reach = grid.tap_offset(g, g.kernel_height - 1, g.kernel_width - 1);
  return grid;
}

// Splits one input row into its even and odd columns (the two phase planes of a stride-2 grid):
// even[j] = row[2j] for j < ⌈width / 2⌉, odd[j] = row[2j + 1] for j < ⌊width / 2⌋. Sixteen pairs at
// a time by shuffles, then one by one (a strided loop copied one float at a time).
__attribute__((always_inline)) inline void split_columns(const float* __restrict row, int64_t width,
                                                         float* __restrict even, float* __restrict odd) {
  const Indices16 evens = {0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30};
  const Indices16 odds = {1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31};
  int64_t j = 0;
  for (; 2 * j + 32 <= width; j += 16) {
    const Lanes16 low = load<Lanes16>(row + 2 * j);
    const Lanes16 high = load<Lanes16>(row + 2 * j + 16);
    store<Lanes16>(even + j, __builtin_shuffle(low, high, evens));
    store<Lanes16>(odd + j, __builtin_shuffle(low, high, odds));
  }
  for (; 2 * j + 1 < width; ++j) {
    even[j] = row[2 * j];
    odd[j] = row[2 * j + 1];
  }
  if (2 * j < width) even[j] = row[2 * j];
}

// Copies plane rows [first_row, first_row + rows) of every phase plane of every channel of one
// sample into window, with the padding zeros: window[(c·phases + phase)·rows·row_stride +
// r·row_stride + col], then the slack zeros.
TENSILE_VECTOR_CLONES
void fill_window(const float* sample, const ConvGeometry& g, const Grid& grid, int64_t first_row, int64_t rows,
                 float* window) {
  const int64_t plane = rows * grid.row_stride;
  const int64_t sh = grid.stride_height;
  const int64_t sw = grid.stride_width;
  for (int64_t c = 0; c < g.in_channels; ++c) {
    const float* channel = sample + c * g.in_height * g.in_width;
    for (int64_t py = 0; py < sh; ++py) {
      if (sw == 2 && g.in_width >= 2) {
        // Both column phases of each row in one pass over it.
        float* even_plane = window + ((c * sh + py) * sw) * plane;
        float* odd_plane = even_plane + plane;
        const int64_t even_width = ceil_div(g.in_width, 2);
        const int64_t odd_width = g.in_width / 2;
        for (int64_t r = 0; r < rows; ++r) {
          float* even = even_plane + r * grid.row_stride;
          float* odd = odd_plane + r * grid.row_stride;
          const int64_t ih = (first_row + r - grid.top) * sh + py;
          if (ih < 0 || ih >= g.in_height) {
            zero_floats(even, grid.row_stride);
            zero_floats(odd, grid.row_stride);
            continue;
          }
          zero_floats(even, grid.gap);
          zero_floats(odd, grid.gap);
          split_columns(channel + ih * g.in_width, g.in_width, even + grid.gap, odd + grid.gap);
          zero_floats(even + grid.gap + even_width, grid.row_stride - grid.gap - even_width);
          zero_floats(odd + grid.gap + odd_width, grid.row_stride - grid.gap - odd_width);
        }
        continue;
      }
      for (int64_t px = 0; px < sw; ++px) {
        const int64_t width = px < g.in_width ? ceil_div(g.in_width - px, sw) : 0;
        float* phase_plane = window + ((c * sh + py) * sw + px) * plane;
        for (int64_t r = 0; r < rows; ++r) {
          float* to = phase_plane + r * grid.row_stride;
          const int64_t ih = (first_row + r - grid.top) * sh + py;
          if (ih < 0 || ih >= g.in_height) {
            zero_floats(to, grid.row_stride);
            continue;
          }
          zero_floats(to, grid.gap);
          const float* from = channel + ih * g.in_width + px;
          if (sw == 1) {
            copy_floats(from, to + grid.gap, width);
          } else {
            for (int64_t j = 0; j < width; ++j) to[grid.gap + j] = from[j * sw];
          }
          zero_floats(to + grid.gap + width, grid.row_stride - grid.gap - width);
        }
      }
    }
  }
  std::memset(window + g.in_channels * grid.phases() * plane, 0, static_cast<size_t>(grid.slack()) * sizeof(float));
}

// Floats of a window of `rows` plane rows.
int64_t window_floats(const ConvGeometry& g, const Grid& grid, int64_t rows) {
  return g.in_channels * grid.phases() * rows * grid.row_stride + grid.slack();
}

// Calls visit(q, oh, ow, run, valid) for the grid positions [first, first + count) cut at row ends:
// run positions starting at q = oh·row_stride + ow, of which the first `valid` are real outputs.
template <typename Visit>
void for_grid_runs(const Grid& grid, const ConvGeometry& g, int64_t first, int64_t count, Visit&& visit) {
  int64_t oh = first / grid.row_stride;
  int64_t ow = first % grid.row_stride;
  for (int64_t q = first; q < first + count;) {
    const int64_t run = std::min(grid.row_stride - ow, first + count - q);
    const int64_t valid = std::max<int64_t>(0, std::min(run, g.out_width - ow));
    visit(q, oh, ow, run, valid);
    q += run;
    ++oh;
    ow = 0;
  }
}

// Offsets of the im2col rows (c, kh, kw) in a window of `rows` plane rows.
int64_t* tap_row_offsets(const ConvGeometry& g, const Grid& grid, int64_t rows) {
  const int64_t taps = g.kernel_height * g.kernel_width;
  const int64_t k = g.in_channels * taps;
  auto* offsets = reinterpret_cast<int64_t*>(scratch(ScratchSlot::kOffsets, 0, static_cast<size_t>(2 * k)));
  if (offsets == nullptr) return nullptr;
  for (int64_t kk = 0; kk < k; ++kk) {
    const int64_t c = kk / taps;
    const int64_t tap = kk % taps;
    const int64_t kh = tap / g.kernel_width;
    const int64_t kw = tap % g.kernel_width;
    offsets[kk] = (c * grid.phases() + grid.tap_phase(g, kh, kw)) * rows * grid.row_stride + grid.tap_offset(g, kh, kw);
  }
  return offsets;
}

// Offsets of the im2col rows (c, kh, kw) of a stride-1 convolution without padding in one input
// sample: c·plane + kh·dilation·width + kw·dilation (the output's row stride is the input's).
int64_t* input_row_offsets(const ConvGeometry& g) {
  const int64_t taps = g.kernel_height * g.kernel_width;
  const int64_t k = g.in_channels * taps;
  auto* offsets = reinterpret_cast<int64_t*>(scratch(ScratchSlot::kOffsets, 0, static_cast<size_t>(2 * k)));
  if (offsets == nullptr) return nullptr;
  for (int64_t kk = 0; kk < k; ++kk) {
    const int64_t tap = kk % taps;
    offsets[kk] = kk / taps * g.in_height * g.in_width + tap / g.kernel_width * g.dilation_height * g.in_width +
                  tap % g.kernel_width * g.dilation_width;
  }
  return offsets;
}

// Fraction of a GEMM's padded panel rows that hold real rows.
double panel_use(int64_t rows, int width) {
  return static_cast<double>(rows) / static_cast<double>(ceil_div(rows, width) * width);
}

// Whether the batched im2col path takes a convolution with at most `positions` outputs per sample
// (stride 1, or with `strided`, any stride).
bool batched_columns_pay(const ConvGeometry& g, int64_t positions, bool strided = false) {
  return (strided || (g.stride_height == 1 && g.stride_width == 1)) && g.out_height * g.out_width <= positions;
}

// Samples per im2col block: as many as keep the columns (k floats per position) near 16 MB.
int64_t samples_per_block(const ConvGeometry& g) {
  constexpr int64_t kBudgetFloats = 4 << 20;
  const int64_t per_sample = g.in_channels * g.kernel_height * g.kernel_width * g.out_height * g.out_width;
  return std::clamp<int64_t>(kBudgetFloats / std::max<int64_t>(per_sample, 1), 1, g.batch);
}

// Rows and columns of one zero-padded input plane: every row and column a window reads, so that
// each tap's im2col rows are plain (strided) copies out of it.
int64_t padded_plane_height(const ConvGeometry& g) {
  return (g.out_height - 1) * g.stride_height + (g.kernel_height - 1) * g.dilation_height + 1;
}
int64_t padded_plane_width(const ConvGeometry& g) {
  return (g.out_width - 1) * g.stride_width + (g.kernel_width - 1) * g.dilation_width + 1;
}
int64_t padded_plane_floats(const ConvGeometry& g) { return padded_plane_height(g) * padded_plane_width(g); }

// Copies one im2col row of a block of samples: row[j] = base[sources[j]] for j < count; or, with
// `panel_width` > 0, the same row into step kk of the packed B panels (width panel_width, k steps
// each), zeros past count. One gather loop: the row's runs are an output row each (4 floats for
// 4×4 images), too short for copies to pay their loop and bounds logic (a fifth of ResNet's
// 512-channel 4×4 layers went to building their columns that way, through a staging row).
TENSILE_VECTOR_CLONES
void gather_row(const float* base, const int64_t* sources, int64_t count, int64_t k, int64_t kk, int panel_width,
                float* columns) {
  if (panel_width == 0) {
    for (int64_t j = 0; j < count; ++j) columns[j] = base[sources[j]];
    return;
  }
  for (int64_t first = 0; first < count; first += panel_width) {
    float* to = columns + first * k + kk * panel_width;
    const int64_t* from = sources + first;
    const int64_t valid = std::min<int64_t>(panel_width, count - first);
    for (int64_t j = 0; j < valid; ++j) to[j] = base[from[j]];
    for (int64_t j = valid; j < panel_width; ++j) to[j] = 0.0f;
  }
}

// columns[c·taps + tap][(n − first)·positions + p] for samples [first, first + samples) of a
// convolution: the im2col matrix of those samples, row length samples·positions; or, with
// `panel_width` > 0, the same matrix as a packed B operand of that panel width (k = in_channels·taps
// steps). Each task pads its channel's planes once (kPaddedPlanes, samples·padded_plane_floats floats
// per thread, reserved by the caller), then gathers every tap's row out of them (gather_row, through
// a table of where each column reads tap (0, 0), the same for every channel): for 7×7 images the
// per-row bounds checks of im2col_row cost more than the copies (a fifth of ResNet's 512-channel
// layers at batch 8). False when the table's memory runs out.
bool batched_columns(const float* x, const ConvGeometry& g, int64_t first, int64_t samples, int panel_width,
                     float* columns) {
  const int64_t taps = g.kernel_height * g.kernel_width;
  const int64_t k = g.in_channels * taps;
  const int64_t positions = g.out_height * g.out_width;
  const int64_t plane = g.in_height * g.in_width;
  const int64_t row_length = samples * positions;
  const int64_t padded_width = padded_plane_width(g);
  const int64_t padded_height = padded_plane_height(g);
  const int64_t padded_plane = padded_height * padded_width;
  // Without padding to add (1×1 kernels, valid convolutions) the taps read the input planes in place.
  const bool in_place = g.pad_top == 0 && g.pad_left == 0 && padded_height <= g.in_height && padded_width <= g.in_width;
  const int64_t source_width = in_place ? g.in_width : padded_width;
  // Sample n's plane at source + n·sample_stride.
  const int64_t sample_stride = in_place ? g.in_channels * plane : padded_plane;
  auto* sources =
      reinterpret_cast<int64_t*>(scratch(ScratchSlot::kColumnSources, 0, static_cast<size_t>(2 * row_length)));
  if (sources == nullptr) return false;
  for (int64_t n = 0, j = 0; n < samples; ++n) {
    for (int64_t oh = 0; oh < g.out_height; ++oh) {
      for (int64_t ow = 0; ow < g.out_width; ++ow, ++j) {
        sources[j] = n * sample_stride + oh * g.stride_height * source_width + ow * g.stride_width;
      }
    }
  }
  pool().run(g.in_channels, [&](int64_t c, int thread) {
    float* padded = scratch(ScratchSlot::kPaddedPlanes, thread, 0);
    const float* source = in_place ? x + (first * g.in_channels + c) * plane : padded;
    for (int64_t n = 0; n < samples && !in_place; ++n) {
      const float* from = x + ((first + n) * g.in_channels + c) * plane;
      float* to = padded + n * padded_plane;
      // Columns [left, right) of a padded row come from the input row; the rest are zeros.
      const int64_t left = std::min(padded_width, g.pad_left);
      const int64_t right = std::clamp<int64_t>(g.pad_left + g.in_width, left, padded_width);
      for (int64_t y = 0; y < padded_height; ++y) {
        const int64_t iy = y - g.pad_top;
        float* row = to + y * padded_width;
        if (iy < 0 || iy >= g.in_height) {
          zero_floats(row, padded_width);
          continue;
        }
        zero_floats(row, left);
        copy_floats(from + iy * g.in_width + (left - g.pad_left), row + left, right - left);
        zero_floats(row + right, padded_width - right);
      }
    }
    for (int64_t tap = 0; tap < taps; ++tap) {
      const int64_t kk = c * taps + tap;
      const int64_t offset = (tap / g.kernel_width) * g.dilation_height * source_width +
                             (tap % g.kernel_width) * g.dilation_width;
      gather_row(source + offset, sources, row_length, k, kk, panel_width,
                 panel_width > 0 ? columns : columns + kk * row_length);
    }
  });
  return true;
}

// Taps of output position p (bit tap) whose input lies inside the image rather than in the padding.
uint64_t reading_taps(const ConvGeometry& g, int64_t p) {
  const int64_t oh = p / g.out_width;
  const int64_t ow = p % g.out_width;
  uint64_t mask = 0;
  for (int64_t tap = 0; tap < g.kernel_height * g.kernel_width; ++tap) {
    const int64_t iy = oh * g.stride_height - g.pad_top + (tap / g.kernel_width) * g.dilation_height;
    const int64_t ix = ow * g.stride_width - g.pad_left + (tap % g.kernel_width) * g.dilation_width;
    if (iy >= 0 && iy < g.in_height && ix >= 0 && ix < g.in_width) mask |= uint64_t{1} << tap;
  }
  return mask;
}

// The column panels of forward_batched's product for a block of samples, in one of two layouts that
// give the same bits. Plain: column n·positions + p holds sample n at position p (batched_columns),
// every panel with every step. Skipping, where that saves a sixteenth of the products or more (3×3,
// batch 32: a third at 4², a sixth at 8² with stride 2; 14% at 4² and 9% at 7² with batch 8):
// column q·samples + n holds sample n at position order[q] (the positions sorted by the taps they
// read, so that a panel's columns share them), and panel j holds, for each input channel c, only the
// taps t its columns read (masks[j]), as steps c·|masks[j]| + (t's place among them), step tables
// mapping them to weight columns c·taps + t. Both sum blocks of whole channels (as many as fill
// kc_max steps with every tap), and a tap a column does not read adds zero, so a column's blocks, and
// its bits, do not depend on the taps its panel adds nor on the layout: not on the batch (unless a
// weight is infinite: times the padding's zero it gives NaN in the plain layout only).
struct BatchedPanels {
  bool skipping = false;
  std::vector<int64_t> order;                     // order[q]: the q-th position of the skipping layout
  std::vector<int64_t> rank;                      // rank[order[q]] = q
  std::vector<uint64_t> reads;                    // reads[p]: the taps position p reads
  std::vector<int64_t> sources;                   // per column: where it reads tap (0, 0) (skip_columns)
  std::vector<uint64_t> masks;                    // per panel
  std::vector<char> contiguous;                   // per panel: whether its columns read one run of floats
  std::vector<StepPanel> panels;                  // per panel, b pointing into the columns …
  std::vector<float*> panel_columns;              // … where skip_columns writes them
  std::vector<uint64_t> step_masks;               // the masks with a step table so far …
  std::vector<std::vector<int64_t>> step_tables;  // … and their tables
  int64_t channels_per_block = 1;
  int64_t blocks = 1;
};

// How forward_batched reads its weights: output channel co's row at weight + co·row_stride, and
// in it input channel c's tap t at c·channel_stride + t, or with `flipped` at c·channel_stride +
// taps − 1 − t. The plain view of [Cout][Cin][taps] weights is (Cin·taps, taps, false); the stride-1
// input gradient reads the forward's weights as the flipped kernel with the channels swapped,
// (taps, Cout·taps, true), instead of copying them so.
struct WeightView {
  int64_t row_stride;
  int64_t channel_stride;
  bool flipped;
};

WeightView plain_view(const ConvGeometry& g) {
  const int64_t taps = g.kernel_height * g.kernel_width;
  return {g.in_channels * taps, taps, false};
}

// The step table of a tap mask, made on first use.
const int64_t* step_table(const ConvGeometry& g, const WeightView& view, uint64_t mask, BatchedPanels* plan) {
  for (size_t i = 0; i < plan->step_masks.size(); ++i) {
    if (plan->step_masks[i] == mask) return plan->step_tables[i].data();
  }
  const int64_t taps = g.kernel_height * g.kernel_width;
  std::vector<int64_t> steps;
  for (int64_t c = 0; c < g.in_channels; ++c) {
    for (int64_t tap = 0; tap < taps; ++tap) {
      // Past 64 taps only the table of every step is asked for (masks end there).
      if (tap >= 64 || ((mask >> tap) & 1)) {
        steps.push_back(c * view.channel_stride + (view.flipped ? taps - 1 - tap : tap));
      }
    }
  }
  plan->step_masks.push_back(mask);
  plan->step_tables.push_back(std::move(steps));
  return plan->step_tables.back().data();
}

// Plans the panels of a block of `samples` samples whose packed columns start at `columns`.
void plan_batched_panels(const ConvGeometry& g, const WeightView& view, int64_t samples, int nr, int kc_max,
                         float* columns, BatchedPanels* plan) {
  const int64_t taps = g.kernel_height * g.kernel_width;
  const int64_t k = g.in_channels * taps;
  const int64_t positions = g.out_height * g.out_width;
  const int64_t row_length = samples * positions;
  // Masks hold up to 64 taps; larger kernels never skip (every position reads every tap, as far as
  // the masks go).
  const bool masked = taps <= 64;
  if (plan->order.empty()) {
    plan->order.resize(static_cast<size_t>(positions));
    plan->reads.resize(static_cast<size_t>(positions));
    for (int64_t p = 0; p < positions; ++p) {
      plan->order[p] = p;
      plan->reads[p] = masked ? reading_taps(g, p) : ~uint64_t{0};
    }
    std::stable_sort(plan->order.begin(), plan->order.end(),
                     [&](int64_t a, int64_t b) { return plan->reads[a] < plan->reads[b]; });
    plan->rank.resize(static_cast<size_t>(positions));
    for (int64_t q = 0; q < positions; ++q) plan->rank[plan->order[q]] = q;
    plan->channels_per_block = std::max<int64_t>(1, kc_max / taps);
    plan->blocks = ceil_div(g.in_channels, plan->channels_per_block);
  }
  const int64_t panel_count = ceil_div(row_length, nr);
  plan->masks.assign(static_cast<size_t>(panel_count), 0);
  plan->panels.resize(static_cast<size_t>(panel_count));
  int64_t skipped = 0;
  for (int64_t j = 0; j < panel_count; ++j) {
    for (int64_t column = j * nr; column < std::min(row_length, (j + 1) * nr); ++column) {
      plan->masks[j] |= plan->reads[plan->order[column / samples]];
    }
    skipped += taps - __builtin_popcountll(plan->masks[j]);
  }
  plan->skipping = masked && 16 * skipped >= panel_count * taps;
  if (!plan->skipping) {
    // Every step: the weights' own order, or a table for another view.
    const WeightView plain = plain_view(g);
    const bool in_order =
        view.row_stride == plain.row_stride && view.channel_stride == plain.channel_stride && !view.flipped;
    const int64_t* steps = in_order ? nullptr : step_table(g, view, ~uint64_t{0}, plan);
    for (int64_t j = 0; j < panel_count; ++j) {
      plan->panels[j] = {columns + j * k * nr, steps, k, plan->channels_per_block * taps};
    }
    return;
  }
  const int64_t padded_width = padded_plane_width(g);
  plan->sources.resize(static_cast<size_t>(row_length));
  for (int64_t column = 0; column < row_length; ++column) {
    const int64_t p = plan->order[column / samples];
    const int64_t at = (p / g.out_width) * g.stride_height * padded_width + (p % g.out_width) * g.stride_width;
    plan->sources[column] = at * samples + column % samples;
  }
  plan->contiguous.assign(static_cast<size_t>(panel_count), 1);
  plan->panel_columns.resize(static_cast<size_t>(panel_count));
  float* b = columns;
  for (int64_t j = 0; j < panel_count; ++j) {
    for (int64_t column = j * nr + 1; column < std::min(row_length, (j + 1) * nr); ++column) {
      if (plan->sources[column] != plan->sources[column - 1] + 1) plan->contiguous[j] = 0;
    }
    const int64_t width = __builtin_popcountll(plan->masks[j]);
    plan->panel_columns[j] = b;
    plan->panels[j] = {b, step_table(g, view, plan->masks[j], plan), g.in_channels * width,
                       plan->channels_per_block * width};
    b += g.in_channels * width * nr;
  }
}

// Fills the skipping panels planned by plan_batched_panels for samples [first, first + samples): a
// task per input channel pads that channel's planes with the samples innermost
// (padded[(y·width + x)·samples + n]), so that a panel's lanes at one position are a contiguous run
// of samples.
void skip_columns(const float* x, const ConvGeometry& g, int64_t first, int64_t samples, int nr,
                  const BatchedPanels& plan) {
  const int64_t taps = g.kernel_height * g.kernel_width;
  const int64_t positions = g.out_height * g.out_width;
  const int64_t plane = g.in_height * g.in_width;
  const int64_t row_length = samples * positions;
  const int64_t padded_width = padded_plane_width(g);
  const int64_t padded_height = padded_plane_height(g);
  pool().run(g.in_channels, [&](int64_t c, int thread) {
    float* padded = scratch(ScratchSlot::kPaddedPlanes, thread, 0);
    zero_floats(padded, padded_height * padded_width * samples);
    for (int64_t n = 0; n < samples; ++n) {
      const float* from = x + ((first + n) * g.in_channels + c) * plane;
      for (int64_t iy = 0; iy < g.in_height; ++iy) {
        const int64_t y = iy + g.pad_top;
        if (y < 0 || y >= padded_height) continue;
        for (int64_t ix = 0; ix < g.in_width; ++ix) {
          const int64_t column = ix + g.pad_left;
          if (column < 0 || column >= padded_width) continue;
          padded[(y * padded_width + column) * samples + n] = from[iy * g.in_width + ix];
        }
      }
    }
    for (size_t j = 0; j < plan.panels.size(); ++j) {
      const uint64_t mask = plan.masks[j];
      const int64_t width = __builtin_popcountll(mask);
      const int64_t begin = static_cast<int64_t>(j) * nr;
      const int64_t end = std::min(row_length, begin + nr);
      for (int64_t tap = 0, place = 0; tap < taps; ++tap) {
        if (((mask >> tap) & 1) == 0) continue;
        float* to = plan.panel_columns[j] + (c * width + place++) * nr;
        const int64_t offset = (tap / g.kernel_width) * g.dilation_height * padded_width +
                               (tap % g.kernel_width) * g.dilation_width;
        // A panel at one position reads a run of samples; one spanning positions, a gather.
        if (plan.contiguous[j]) {
          copy_floats(padded + offset * samples + plan.sources[begin], to, end - begin);
          zero_floats(to + (end - begin), nr - (end - begin));
        } else {
          gather_row(padded + offset * samples, plan.sources.data() + begin, end - begin, 0, 0, nr, to);
        }
      }
    }
  });
}

// Forward convolution of small images: out[n, co] = W · columns, one GEMM per block of samples, the
// columns built straight into the GEMM's packed layout, where it pays in the layout that skips each
// panel's taps that only read padding (BatchedPanels). The weights are read through `view`.
bool forward_batched(const float* x, const float* weight, const WeightView& view, float* out, const ConvGeometry& g,
                     const ConvEpilogue* epilogue) {
  const GemmKernels& kernels = active_kernels();
  const int64_t k = g.in_channels * g.kernel_height * g.kernel_width;
  const int64_t positions = g.out_height * g.out_width;
  const int64_t block = samples_per_block(g);
  const int workers = pool().threads();
  // The weights are read in place, row by row: packing them would cost a pass over all of them per
  // call, which at batch 8 of 7×7 images (512 channels: 9.4 MB) is 5% of the convolution.
  auto* weight_rows =
      reinterpret_cast<int64_t*>(scratch(ScratchSlot::kOffsets, 0, static_cast<size_t>(2 * g.out_channels)));
  float* columns =
      scratch(ScratchSlot::kBatchColumns, 0, static_cast<size_t>(packed_size(block * positions, k, kernels.nr)));
  float* product = scratch(ScratchSlot::kBatchProducts, 0, static_cast<size_t>(g.out_channels * block * positions));
  if (weight_rows == nullptr || columns == nullptr || product == nullptr ||
      !reserve_scratch(ScratchSlot::kPaddedPlanes, workers, block * padded_plane_floats(g))) {
    return false;
  }
  for (int64_t co = 0; co < g.out_channels; ++co) weight_rows[co] = co * view.row_stride;
  BatchedPanels plan;
  for (int64_t first = 0; first < g.batch; first += block) {
    const int64_t samples = std::min(block, g.batch - first);
    const int64_t row_length = samples * positions;
    plan_batched_panels(g, view, samples, kernels.nr, kernels.kc_max, columns, &plan);
    const bool skipping = plan.skipping;
    if (skipping) {
      skip_columns(x, g, first, samples, kernels.nr, plan);
    } else if (!batched_columns(x, g, first, samples, kernels.nr, columns)) {
      return false;
    }
    gemm_step_panels_threaded(g.out_channels, row_length, k, plan.blocks, weight, weight_rows, plan.panels.data(),
                              product, row_length);
    // A task per run of channels: one per (sample, channel) plane made tens of thousands of tasks
    // of a few dozen floats, whose claiming cost more than their copies.
    const int64_t tasks = std::min<int64_t>(g.out_channels, 8 * workers);
    pool().run(tasks, [&](int64_t task, int) {
      // One sample's outputs of a channel in position order (the batched paths take at most
      // kBatchedForwardPositions positions).
      alignas(64) float gathered[kBatchedForwardPositions];
      for (int64_t co = g.out_channels * task / tasks; co < g.out_channels * (task + 1) / tasks; ++co) {
        for (int64_t n = 0; n < samples; ++n) {
          const float* from = product + co * row_length + n * positions;
          if (skipping) {
            for (int64_t p = 0; p < positions; ++p) gathered[p] = product[co * row_length + plan.rank[p] * samples + n];
            from = gathered;
          }
          const int64_t at = ((first + n) * g.out_channels + co) * positions;
          if (epilogue == nullptr) {
            copy_floats(from, out + at, positions);
          } else {
            apply_epilogue(from, out + at, epilogue->residual == nullptr ? nullptr : epilogue->residual + at, positions,
                           epilogue->scale[co], epilogue->shift[co], epilogue->relu);
          }
        }
      }
    });
  }
  return true;
}

// Weight gradient of small images: gradW[Cout, K] += gradOut[Cout, positions] · columnsᵀ, one GEMM
// per block of samples, the blocks added in order.
bool backward_weight_batched(const float* x, const float* grad_out, float* grad_weight, const ConvGeometry& g) {
  const int64_t k = g.in_channels * g.kernel_height * g.kernel_width;
  const int64_t positions = g.out_height * g.out_width;
  const int64_t block = samples_per_block(g);
  float* columns = scratch(ScratchSlot::kBatchColumns, 0, static_cast<size_t>(k * block * positions));
  float* gradients = scratch(ScratchSlot::kBatchProducts, 0, static_cast<size_t>(g.out_channels * block * positions));
  if (columns == nullptr || gradients == nullptr ||
      !reserve_scratch(ScratchSlot::kPaddedPlanes, pool().threads(), block * padded_plane_floats(g))) {
    return false;
  }
  for (int64_t first = 0; first < g.batch; first += block) {
    const int64_t samples = std::min(block, g.batch - first);
    const int64_t row_length = samples * positions;
    if (!batched_columns(x, g, first, samples, 0, columns)) return false;
    // gradOut of the block as [Cout, samples·positions].
    pool().run(g.out_channels, [&](int64_t co, int) {
      for (int64_t n = 0; n < samples; ++n) {
        copy_floats(grad_out + ((first + n) * g.out_channels + co) * positions, gradients + co * row_length + n * positions,
                    positions);
      }
    });
    if (!gemm(g.out_channels, k, row_length, {gradients, row_length, 1}, {columns, 1, row_length}, grad_weight, k,
              first > 0)) {
      return false;
    }
  }
  return true;
}

// Whether the weight gradient of a small-output convolution skips the products of taps that read
// only padding (backward_weight_skipping): where a quarter of its products or more would multiply
// padding (3×3 at 4²: 31%), the taps fit a mask, and the operands fit kWeightSkipBudgetFloats.
// conv2d_backward_weight asks Winograd's weight gradient first where the batch has tiles enough.
constexpr int64_t kWeightSkipBudgetFloats = 8 << 20;

int64_t padded_channels(const ConvGeometry& g, int nr) { return ceil_div(g.in_channels, nr) * nr; }

bool weight_skip_applies(const ConvGeometry& g, int nr) {
  const int64_t taps = g.kernel_height * g.kernel_width;
  const int64_t positions = g.out_height * g.out_width;
  if (taps > 64 || positions > kBatchedWeightGradientPositions) return false;
  int64_t reading = 0;
  for (int64_t p = 0; p < positions; ++p) reading += __builtin_popcountll(reading_taps(g, p));
  const int64_t floats = g.batch * padded_channels(g, nr) * (padded_plane_floats(g) + reading);
  return 4 * (positions * taps - reading) >= positions * taps && floats <= kWeightSkipBudgetFloats;
}

// Weight gradient of a small-output convolution that skips the taps reading only padding:
// gradW'[co][t·C' + c] = Σ over the (n, p) whose position p reads tap t of gradOut[n][co][p] ·
// x_padded[n][c][p's window + t], one product (gemm_step_panels_threaded) whose column panels each
// hold one tap for nr input channels (C' = in_channels rounded up to whole panels) and only that
// tap's (n, p) as steps. gradOut is read in place through the step tables (step (n, p) at
// n·Cout·P + p of row co·P); the input is copied once with its channels innermost, so that a step
// of a panel is nr contiguous floats. gradW' is then written back transposed.
bool backward_weight_skipping(const float* x, const float* grad_out, float* grad_weight, const ConvGeometry& g) {
  const GemmKernels& kernels = active_kernels();
  const int nr = kernels.nr;
  const int64_t taps = g.kernel_height * g.kernel_width;
  const int64_t positions = g.out_height * g.out_width;
  const int64_t channels = padded_channels(g, nr);
  const int64_t padded_width = padded_plane_width(g);
  const int64_t padded_height = padded_plane_height(g);
  const int64_t padded_plane = padded_height * padded_width;
  const int64_t plane = g.in_height * g.in_width;
  const int64_t width = taps * channels;  // gradW' columns
  const int64_t panels_per_tap = channels / nr;
  // The steps of each tap: the (n, p) that read it, as offsets into gradOut, and where each reads
  // the transposed input (its window's corner).
  std::vector<std::vector<int64_t>> steps(static_cast<size_t>(taps));
  std::vector<std::vector<int64_t>> corners(static_cast<size_t>(taps));
  std::vector<uint64_t> reads(static_cast<size_t>(positions));
  for (int64_t p = 0; p < positions; ++p) reads[p] = reading_taps(g, p);
  for (int64_t n = 0; n < g.batch; ++n) {
    for (int64_t p = 0; p < positions; ++p) {
      const int64_t at = (p / g.out_width) * g.stride_height * padded_width + (p % g.out_width) * g.stride_width;
      for (int64_t tap = 0; tap < taps; ++tap) {
        if (((reads[p] >> tap) & 1) == 0) continue;
        steps[tap].push_back(n * g.out_channels * positions + p);
        corners[tap].push_back(n * padded_plane + at);
      }
    }
  }
  int64_t step_floats = 0;
  int64_t most_steps = 0;
  for (int64_t tap = 0; tap < taps; ++tap) {
    step_floats += static_cast<int64_t>(steps[tap].size()) * channels;
    most_steps = std::max<int64_t>(most_steps, static_cast<int64_t>(steps[tap].size()));
  }
  float* transposed = scratch(ScratchSlot::kPaddedPlanes, 0, static_cast<size_t>(g.batch * padded_plane * channels));
  float* columns = scratch(ScratchSlot::kBatchColumns, 0, static_cast<size_t>(step_floats));
  float* product = scratch(ScratchSlot::kBatchProducts, 0, static_cast<size_t>(g.out_channels * width));
  auto* rows = reinterpret_cast<int64_t*>(scratch(ScratchSlot::kOffsets, 0, static_cast<size_t>(2 * g.out_channels)));
  if (transposed == nullptr || columns == nullptr || product == nullptr || rows == nullptr) return false;
  for (int64_t co = 0; co < g.out_channels; ++co) rows[co] = co * positions;
  // x_padded[n][y][x][c], zeros in the padding and past in_channels.
  pool().run(g.batch, [&](int64_t n, int) {
    float* to = transposed + n * padded_plane * channels;
    zero_floats(to, padded_plane * channels);
    for (int64_t c = 0; c < g.in_channels; ++c) {
      const float* from = x + (n * g.in_channels + c) * plane;
      for (int64_t iy = 0; iy < g.in_height; ++iy) {
        const int64_t y = iy + g.pad_top;
        if (y >= padded_height) break;
        for (int64_t ix = 0; ix < g.in_width && ix + g.pad_left < padded_width; ++ix) {
          to[(y * padded_width + ix + g.pad_left) * channels + c] = from[iy * g.in_width + ix];
        }
      }
    }
  });
  // Panel (tap, group) holds, for each of the tap's steps, input channels [group·nr, (group + 1)·nr).
  std::vector<StepPanel> panels(static_cast<size_t>(taps * panels_per_tap));
  std::vector<float*> panel_columns(panels.size());
  float* b = columns;
  for (int64_t tap = 0; tap < taps; ++tap) {
    const int64_t count = static_cast<int64_t>(steps[tap].size());
    for (int64_t group = 0; group < panels_per_tap; ++group) {
      const size_t j = static_cast<size_t>(tap * panels_per_tap + group);
      panels[j] = {b, steps[tap].data(), count, kernels.kc_max};
      panel_columns[j] = b;
      b += count * nr;
    }
  }
  pool().run(static_cast<int64_t>(panels.size()), [&](int64_t j, int) {
    const int64_t tap = j / panels_per_tap;
    const int64_t group = j % panels_per_tap;
    const int64_t offset = (tap / g.kernel_width) * g.dilation_height * padded_width +
                           (tap % g.kernel_width) * g.dilation_width;
    const std::vector<int64_t>& from = corners[tap];
    float* to = panel_columns[j];
    for (size_t s = 0; s < from.size(); ++s) {
      copy_floats(transposed + (from[s] + offset) * channels + group * nr, to + s * nr, nr);
    }
  });
  gemm_step_panels_threaded(g.out_channels, width, g.batch * positions, ceil_div(most_steps, kernels.kc_max),
                            grad_out, rows, panels.data(), product, width);
  pool().run(g.out_channels, [&](int64_t co, int) {
    const float* from = product + co * width;
    float* to = grad_weight + co * g.in_channels * taps;
    for (int64_t c = 0; c < g.in_channels; ++c) {
      for (int64_t tap = 0; tap < taps; ++tap) to[c * taps + tap] = from[tap * channels + c];
    }
  });
  return true;
}

// Convolutions whose im2col has few rows (k = in_channels · taps: a network's first layer, 9 for one
// grey channel and 3×3 kernels) computed as stencils over the grid's window instead of GEMMs. A
// GEMM of depth 9 spends as long storing each 8×32 tile as multiplying into it, and writes its
// product to a buffer first; the stencil keeps eight output rows' sums in registers over all k and
// writes each output once. Below 8 output columns (and above kStencilDepth) the GEMM paths stay.
constexpr int64_t kStencilDepth = 32;
constexpr int kStencilRows = 8;

bool stencil_applies(const ConvGeometry& g) {
  return g.in_channels * g.kernel_height * g.kernel_width <= kStencilDepth && g.out_width >= 8;
}

// One vector of outputs of stencil_rows at column `at`.
template <typename Lanes>
__attribute__((always_inline)) inline void stencil_vector(const float* source, const int64_t* offsets, int64_t k,
                                                          const float* weights, int64_t at, float* const* out_rows,
                                                          int rows) {
  // Loops over j fully unrolled, the stores guarded rather than bounded by `rows`: with a variable
  // bound GCC kept the sums in a stack array, zeroed by `rep stos` for every vector.
  Lanes sums[kStencilRows];
#pragma GCC unroll 8
  for (int j = 0; j < kStencilRows; ++j) sums[j] = Lanes{};
  for (int64_t kk = 0; kk < k; ++kk) {
    const Lanes v = load<Lanes>(source + offsets[kk] + at);
    const float* w = weights + kk * kStencilRows;
#pragma GCC unroll 8
    for (int j = 0; j < kStencilRows; ++j) sums[j] += v * w[j];
  }
#pragma GCC unroll 8
  for (int j = 0; j < kStencilRows; ++j) {
    if (j < rows) store<Lanes>(out_rows[j] + at, sums[j]);
  }
}

// out_rows[j][ow] = Σ_kk weights[kk·8 + j] · source[offsets[kk] + ow] for ow < width (at least 8)
// and j < rows (at most 8): one output row of up to eight channels. Whole vectors, the last one
// overlapping the one before it (its columns get the same sums again).
TENSILE_VECTOR_CLONES
void stencil_rows(const float* source, const int64_t* offsets, int64_t k, const float* weights, int64_t width,
                  float* const* out_rows, int rows) {
  if (width < 16) {
    stencil_vector<Lanes8>(source, offsets, k, weights, 0, out_rows, rows);
    stencil_vector<Lanes8>(source, offsets, k, weights, width - 8, out_rows, rows);
    return;
  }
  for (int64_t ow = 0; ow + 16 < width; ow += 16) stencil_vector<Lanes16>(source, offsets, k, weights, ow, out_rows, rows);
  stencil_vector<Lanes16>(source, offsets, k, weights, width - 16, out_rows, rows);
}

// The forward convolution as stencils (stencil_applies): a task per sample, or per run of output
// rows where the batch alone cannot keep every thread busy.
bool forward_stencil(const float* x, const float* weight, float* out, const ConvGeometry& g,
                     const ConvEpilogue* epilogue) {
  const int64_t k = g.in_channels * g.kernel_height * g.kernel_width;
  const int64_t positions = g.out_height * g.out_width;
  const Grid grid = make_grid(g);
  ThreadPool& threads = pool();
  const int workers = threads.threads();
  const int64_t chunks = std::min(g.out_height, ceil_div(2 * workers, g.batch));
  const int64_t chunk_rows = ceil_div(g.out_height, chunks);
  const int64_t window_rows = grid.window_rows(chunk_rows * grid.row_stride);
  const int64_t* offsets = tap_row_offsets(g, grid, window_rows);
  // The weights of each block of eight channels as [k][8], zeros past the last channel.
  const int64_t blocks = ceil_div(g.out_channels, kStencilRows);
  float* packed = scratch(ScratchSlot::kPackedA, 0, static_cast<size_t>(blocks * k * kStencilRows));
  if (offsets == nullptr || packed == nullptr ||
      !reserve_scratch(ScratchSlot::kColumns, workers, window_floats(g, grid, window_rows))) {
    return false;
  }
  for (int64_t block = 0; block < blocks; ++block) {
    for (int64_t kk = 0; kk < k; ++kk) {
      for (int j = 0; j < kStencilRows; ++j) {
        const int64_t co = block * kStencilRows + j;
        packed[(block * k + kk) * kStencilRows + j] = co < g.out_channels ? weight[co * k + kk] : 0.0f;
      }
    }
  }
  threads.run(g.batch * chunks, [&](int64_t task, int thread) {
    const int64_t n = task / chunks;
    const int64_t oh_begin = std::min(g.out_height, task % chunks * chunk_rows);
    const int64_t oh_end = std::min(g.out_height, oh_begin + chunk_rows);
    if (oh_end <= oh_begin) return;
    float* window = scratch(ScratchSlot::kColumns, thread, 0);
    // The window's first plane row is the chunk's first output row (see forward_grid).
    fill_window(x + n * g.in_channels * g.in_height * g.in_width, g, grid, oh_begin, window_rows, window);
    for (int64_t block = 0; block < blocks; ++block) {
      const int rows = static_cast<int>(std::min<int64_t>(kStencilRows, g.out_channels - block * kStencilRows));
      for (int64_t oh = oh_begin; oh < oh_end; ++oh) {
        float* out_rows[kStencilRows];
        for (int j = 0; j < rows; ++j) {
          out_rows[j] = out + (n * g.out_channels + block * kStencilRows + j) * positions + oh * g.out_width;
        }
        stencil_rows(window + (oh - oh_begin) * grid.row_stride, offsets, k, packed + block * k * kStencilRows,
                     g.out_width, out_rows, rows);
      }
      if (epilogue == nullptr) continue;
      // The block's rows of each channel are one run, still in cache: one call per channel rather
      // than per output row (28 floats at 28², where the call cost as much as the work).
      for (int j = 0; j < rows; ++j) {
        const int64_t co = block * kStencilRows + j;
        const int64_t at = (n * g.out_channels + co) * positions + oh_begin * g.out_width;
        apply_epilogue(out + at, out + at, epilogue->residual == nullptr ? nullptr : epilogue->residual + at,
                       (oh_end - oh_begin) * g.out_width, epilogue->scale[co], epilogue->shift[co], epilogue->relu);
      }
    }
  });
  return true;
}

// Channels and im2col rows of one pass of stencil_gradient: 27 sums in registers.
constexpr int kGradientChannels = 3;
constexpr int kGradientRows = 9;

// lanes[c][kk] += d[c] · at[offsets[kk]] (sixteen lanes from there) for c < 3 and kk < rows.
__attribute__((always_inline)) inline void stencil_step(Lanes16 (&lanes)[kGradientChannels][kGradientRows],
                                                        const Lanes16 (&d)[kGradientChannels], const float* at,
                                                        const int64_t* offsets, int rows) {
  for (int kk = 0; kk < kGradientRows; ++kk) {
    if (kk >= rows) break;
    const Lanes16 v = load<Lanes16>(at + offsets[kk]);
    for (int c = 0; c < kGradientChannels; ++c) lanes[c][kk] += d[c] * v;
  }
}

// sums[c·sums_stride + kk] (+)= the sixteen lanes of lanes[c][kk], added in a fixed order.
__attribute__((always_inline)) inline void store_stencil_sums(const Lanes16 (&lanes)[kGradientChannels][kGradientRows],
                                                              int channels, int rows, bool accumulate, float* sums,
                                                              int64_t sums_stride) {
  for (int c = 0; c < channels; ++c) {
    for (int kk = 0; kk < rows; ++kk) {
      const Lanes16 v = lanes[c][kk];
      float total = 0.0f;
      for (int i = 0; i < 16; i += 4) total += (v[i] + v[i + 1]) + (v[i + 2] + v[i + 3]);
      float* sum = sums + c * sums_stride + kk;
      *sum = accumulate ? *sum + total : total;
    }
  }
}

// sums[c·sums_stride + kk] (+)= Σ_q grad[c·grad_stride + q] · source[offsets[kk] + q] over q < count
// (a multiple of 16), for c < channels (at most 3) and kk < rows (at most 9); each sum in float over
// sixteen lanes, then the lanes added in a fixed order. The sums are read and written where they
// live (the caller's partial gradient, rows sums_stride apart).
TENSILE_VECTOR_CLONES
void stencil_gradient(const float* grad, int64_t grad_stride, int channels, const float* source,
                      const int64_t* offsets, int rows, int64_t count, bool accumulate, float* sums,
                      int64_t sums_stride) {
  Lanes16 lanes[kGradientChannels][kGradientRows] = {};
  for (int64_t q = 0; q < count; q += 16) {
    Lanes16 d[kGradientChannels];
    for (int c = 0; c < kGradientChannels; ++c) d[c] = c < channels ? load<Lanes16>(grad + c * grad_stride + q) : Lanes16{};
    stencil_step(lanes, d, source + q, offsets, rows);
  }
  store_stencil_sums(lanes, channels, rows, accumulate, sums, sums_stride);
}

// stencil_gradient over the output's own rows, without laying the output gradient on the grid: for
// each output row oh, sums[c·sums_stride + kk] (+)= Σ_ow grad[c·grad_plane + oh·width + ow] ·
// window[oh·row_stride + ow + offsets[kk]] over ow < width (at least 16), sixteen at a time, the
// last vector from width − 16 with the lanes its predecessors took zeroed. The sums run in another
// order than stencil_gradient's.
TENSILE_VECTOR_CLONES
void stencil_gradient_rows(const float* grad, int64_t grad_plane, int channels, const float* window,
                           int64_t row_stride, const int64_t* offsets, int rows, int64_t height, int64_t width,
                           bool accumulate, float* sums, int64_t sums_stride) {
  Lanes16 lanes[kGradientChannels][kGradientRows] = {};
  const Lanes16 zeros = {};
  Indices16 lane_index;
  for (int i = 0; i < 16; ++i) lane_index[i] = i;
  for (int64_t oh = 0; oh < height; ++oh) {
    const float* grad_row = grad + oh * width;
    const float* window_row = window + oh * row_stride;
    for (int64_t j = 0; j < width; j += 16) {
      const int64_t at = std::min(j, width - 16);
      // Lanes below `taken` were summed by the row's previous vector.
      const Indices16 taken = lane_index - static_cast<int>(j - at);
      Lanes16 d[kGradientChannels];
      for (int c = 0; c < kGradientChannels; ++c) {
        d[c] = c < channels ? load<Lanes16>(grad_row + c * grad_plane + at) : zeros;
        d[c] = taken >= 0 ? d[c] : zeros;
      }
      stencil_step(lanes, d, window_row + at, offsets, rows);
    }
  }
  store_stencil_sums(lanes, channels, rows, accumulate, sums, sums_stride);
}

bool stencil_gradient_applies(const ConvGeometry& g) {
  // Rows of at least 16 grid positions, so that the last vector's reads past the output stay in the
  // window's rows of the same plane (see backward_weight_stencil).
  return g.in_channels * g.kernel_height * g.kernel_width <= kStencilDepth && make_grid(g).row_stride >= 16;
}

// The weight gradient as stencils (stencil_gradient_applies): gradW[co, kk] = Σ_n Σ_q gradOut_n[co,
// q] · window_n[q + offsets[kk]] over the grid positions q, the output gradient read row by row in
// place, or for rows shorter than a vector laid on the grid with zeros in the gap columns and after
// the last position (up to a whole vector). Samples are summed in
// a fixed number of groups, each into its own partial, added in group order (as
// backward_weight_grid), so the result does not depend on the thread count.
bool backward_weight_stencil(const float* x, const float* grad_out, float* grad_weight, const ConvGeometry& g) {
  const int64_t k = g.in_channels * g.kernel_height * g.kernel_width;
  const int64_t positions = g.out_height * g.out_width;
  const int64_t weights = g.out_channels * k;
  const Grid grid = make_grid(g);
  ThreadPool& threads = pool();
  const int workers = threads.threads();
  const int64_t count = ceil_div(grid.positions, 16) * 16;
  const int64_t window_rows = grid.window_rows(grid.positions);
  const int64_t* offsets = tap_row_offsets(g, grid, window_rows);
  const int64_t groups = std::min<int64_t>(g.batch, 16);
  // Output rows of 16 or more are read in place (stencil_gradient_rows); shorter ones, whose vectors
  // would read past the row and, on the last row, past gradOut, are laid on the grid first. Copying
  // each sample's rows to the grid took 40% of the seed CNN's first layer's weight gradient (28-float
  // rows, a call to memmove each): 64×1→32 at 28², two threads, 0.59 → 0.45 ms.
  const bool direct = g.out_width >= 16;
  float* partials = scratch(ScratchSlot::kPartial, 0, static_cast<size_t>(groups * weights));
  if (offsets == nullptr || partials == nullptr ||
      !reserve_scratch(ScratchSlot::kColumns, workers, window_floats(g, grid, window_rows)) ||
      !reserve_scratch(ScratchSlot::kTile, workers, direct ? 0 : g.out_channels * count)) {
    return false;
  }
  threads.run(groups, [&](int64_t group, int thread) {
    float* window = scratch(ScratchSlot::kColumns, thread, 0);
    float* grad_grid = scratch(ScratchSlot::kTile, thread, 0);
    float* partial = partials + group * weights;
    for (int64_t n = g.batch * group / groups; n < g.batch * (group + 1) / groups; ++n) {
      const bool accumulate = n > g.batch * group / groups;
      fill_window(x + n * g.in_channels * g.in_height * g.in_width, g, grid, 0, window_rows, window);
      if (direct) {
        const float* grad = grad_out + n * g.out_channels * positions;
        for (int64_t co = 0; co < g.out_channels; co += kGradientChannels) {
          const int channels = static_cast<int>(std::min<int64_t>(kGradientChannels, g.out_channels - co));
          for (int64_t kk = 0; kk < k; kk += kGradientRows) {
            const int rows = static_cast<int>(std::min<int64_t>(kGradientRows, k - kk));
            stencil_gradient_rows(grad + co * positions, positions, channels, window, grid.row_stride, offsets + kk,
                                  rows, g.out_height, g.out_width, accumulate, partial + co * k + kk, k);
          }
        }
        continue;
      }
      for (int64_t co = 0; co < g.out_channels; ++co) {
        float* row = grad_grid + co * count;
        for (int64_t oh = 0; oh < g.out_height; ++oh) {
          copy_floats(grad_out + (n * g.out_channels + co) * positions + oh * g.out_width, row + oh * grid.row_stride,
                      g.out_width);
          zero_floats(row + oh * grid.row_stride + g.out_width, grid.row_stride - g.out_width);
        }
        zero_floats(row + grid.positions, count - grid.positions);
      }
      for (int64_t co = 0; co < g.out_channels; co += kGradientChannels) {
        const int channels = static_cast<int>(std::min<int64_t>(kGradientChannels, g.out_channels - co));
        for (int64_t kk = 0; kk < k; kk += kGradientRows) {
          const int rows = static_cast<int>(std::min<int64_t>(kGradientRows, k - kk));
          stencil_gradient(grad_grid + co * count, count, channels, window, offsets + kk, rows, count, accumulate,
                           partial + co * k + kk, k);
        }
      }
    }
  });
  reduce_partials(partials, groups, k, g.out_channels, false, grad_weight);
  return true;
}

// Forward convolution on the grid (phase planes for strides above 1). The product is computed either
// as out[Cout, Q] = W · cols (channels as the GEMM's rows) or as outᵀ[Q, Cout] = colsᵀ · Wᵀ
// (positions as rows), whichever wastes less of the panels: 32 channels fill two 16-wide column
// panels exactly but leave 4 of 36 rows of 6-row panels empty. Each output is summed over k in the
// same order either way, so the choice never changes the bits.
// Writes `count` positions of a [positions, channels] product into channel planes: to[co·plane + j]
// = product[j·channels + co], through the epilogue when there is one (residual at the same offset
// as `to`). Sixteen positions at a time, channel by channel, so that each channel's sixteen
// outputs are one store: position by position, every value went to another plane's line (30% of
// a 64 → 128 stride-2 layer at 32²).
// Each epilogue step rounds on its own (epilogue.h), also in the clones, which would otherwise fuse
// the multiply and add.
#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")
TENSILE_VECTOR_CLONES
void write_transposed(const float* product, int64_t channels, int64_t count, float* to, int64_t plane,
                      const ConvEpilogue* epilogue, const float* residual) {
  constexpr int64_t kBlock = 16;
  int64_t j0 = 0;
  for (; j0 + kBlock <= count; j0 += kBlock) {
    for (int64_t co = 0; co < channels; ++co) {
      const float* from = product + j0 * channels + co;
      float* row = to + co * plane + j0;
      if (epilogue == nullptr) {
        for (int64_t j = 0; j < kBlock; ++j) row[j] = from[j * channels];
      } else {
        const float* residual_row = residual == nullptr ? nullptr : residual + co * plane + j0;
        for (int64_t j = 0; j < kBlock; ++j) {
          float v = from[j * channels] * epilogue->scale[co] + epilogue->shift[co];
          if (residual_row != nullptr) v = v + residual_row[j];
          if (epilogue->relu) v = v > 0.0f ? v : 0.0f;
          row[j] = v;
        }
      }
    }
  }
  for (int64_t co = 0; co < channels; ++co) {
    for (int64_t j = j0; j < count; ++j) {
      float v = product[j * channels + co];
      if (epilogue != nullptr) {
        v = v * epilogue->scale[co] + epilogue->shift[co];
        if (residual != nullptr) v = v + residual[co * plane + j];
        if (epilogue->relu) v = v > 0.0f ? v : 0.0f;
      }
      to[co * plane + j] = v;
    }
  }
}
#pragma GCC pop_options

bool forward_grid(const float* x, const float* weight, float* out, const ConvGeometry& g,
                  const ConvEpilogue* epilogue) {
  if (batched_columns_pay(g, kBatchedForwardPositions) || batched_columns_pay(g, kBatchedStridedPositions, true)) {
    return forward_batched(x, weight, plain_view(g), out, g, epilogue);
  }
  if (stencil_applies(g)) return forward_stencil(x, weight, out, g, epilogue);
  const GemmKernels& kernels = active_kernels();
  const int mr = kernels.mr;
  const int nr = kernels.nr;
  const int64_t k = g.in_channels * g.kernel_height * g.kernel_width;
  const int64_t positions = g.out_height * g.out_width;
  const Grid grid = make_grid(g);
  ThreadPool& threads = pool();
  const int workers = threads.threads();
  // Chunks of grid positions: several per sample when the batch alone cannot keep every thread busy,
  // or when the packed columns would not fit in L2.
  const int64_t chunks = position_chunks(grid.positions, k, g.batch, workers, nr);
  const int64_t width = chunk_width(grid.positions, chunks, nr);
  const int64_t chunk_count = ceil_div(grid.positions, width);
  // A chunk's positions fill the panels of either orientation too: 56 grid positions of a 7×7 image
  // fill 7 rows of 8 but only 56 of 64 columns. Positions as rows must win clearly, since that
  // orientation packs the positions (a copy) where the other reads them in place.
  const int64_t chunk_positions = std::min(width, grid.positions);
  const double channels_rows_use = panel_use(g.out_channels, mr) * panel_use(chunk_positions, nr);
  const double positions_rows_use = panel_use(g.out_channels, nr) * panel_use(chunk_positions, mr);
  // Where the grid has no gap columns (1×1 kernels without padding) its positions are the output's,
  // and channel rows go straight into the output: no write-back pass, which fuller panels of the
  // other orientation do not make up for (64 → 256 at 56², batch 8: 3.0 → 2.0 ms).
  const bool gap_free = grid.row_stride == g.out_width;
  const bool positions_as_rows = !gap_free && positions_rows_use > 1.05 * channels_rows_use;

  // The weights are packed once per call and shared by all tasks, which pack positions into their own
  // buffers (the other slot).
  const ScratchSlot weight_slot = positions_as_rows ? ScratchSlot::kPackedB : ScratchSlot::kPackedA;
  const ScratchSlot columns_slot = positions_as_rows ? ScratchSlot::kPackedA : ScratchSlot::kPackedB;
  const int weight_width = positions_as_rows ? nr : mr;
  const int columns_width = positions_as_rows ? mr : nr;
  float* packed_weight =
      scratch(weight_slot, 0, static_cast<size_t>(packed_size(g.out_channels, k, weight_width)));
  if (packed_weight == nullptr) return false;
  pack_weights(kernels, weight, g.out_channels, k, weight_width, packed_weight);

  const int64_t window_rows = grid.window_rows(width);
  const int64_t window_size = window_floats(g, grid, window_rows);
  const int64_t* offsets = tap_row_offsets(g, grid, window_rows);
  const int64_t columns_size = positions_as_rows ? packed_size(width, k, columns_width) : 0;
  if (offsets == nullptr || !reserve_scratch(columns_slot, workers, columns_size) ||
      !reserve_scratch(ScratchSlot::kColumns, workers, window_size) ||
      !reserve_scratch(ScratchSlot::kTile, workers, g.out_channels * width)) {
    return false;
  }
  threads.run(g.batch * chunk_count, [&](int64_t task, int thread) {
    const int64_t n = task / chunk_count;
    const int64_t first = (task % chunk_count) * width;
    const int64_t count = std::min(width, grid.positions - first);
    const int64_t first_row = first / grid.row_stride;
    float* window = scratch(ScratchSlot::kColumns, thread, 0);
    float* packed_columns = scratch(columns_slot, thread, 0);
    float* product = scratch(ScratchSlot::kTile, thread, 0);
    fill_window(x + n * g.in_channels * g.in_height * g.in_width, g, grid, first_row, window_rows, window);
    const float* window_base = window + (first - first_row * grid.row_stride);
    if (gap_free) {
      float* chunk_out = out + n * g.out_channels * positions + first;
      gemm_indirect_b(kernels, g.out_channels, count, k, packed_weight, window_base, offsets, chunk_out, positions,
                      false);
      if (epilogue != nullptr) {
        // The chunk was just written and is still in cache.
        for (int64_t co = 0; co < g.out_channels; ++co) {
          const int64_t at = (n * g.out_channels + co) * positions + first;
          apply_epilogue(out + at, out + at, epilogue->residual == nullptr ? nullptr : epilogue->residual + at, count,
                         epilogue->scale[co], epilogue->shift[co], epilogue->relu);
        }
      }
      return;
    }
    if (positions_as_rows) {
      kernels.pack_steps(window_base, offsets, count, k, columns_width, packed_columns);
      gemm_packed(kernels, count, g.out_channels, k, packed_columns, packed_weight, product, g.out_channels, false);
    } else {
      // The im2col rows are read in place; the window holds every lane up to the chunk's whole panels.
      gemm_indirect_b(kernels, g.out_channels, count, k, packed_weight, window_base, offsets, product, count, false);
    }
    // Keep the real output columns, dropping the grid's gap columns (and transposing when the
    // product is [positions, channels]).
    float* sample_out = out + n * g.out_channels * positions;
    const int64_t sample_offset = n * g.out_channels * positions;
    for_grid_runs(grid, g, first, count, [&](int64_t q, int64_t oh, int64_t ow, int64_t, int64_t valid) {
      float* to = sample_out + oh * g.out_width + ow;
      const int64_t at = sample_offset + oh * g.out_width + ow;
      if (positions_as_rows) {
        write_transposed(product + (q - first) * g.out_channels, g.out_channels, valid, to, positions, epilogue,
                         epilogue == nullptr || epilogue->residual == nullptr ? nullptr : epilogue->residual + at);
      } else if (epilogue == nullptr) {
        for (int64_t co = 0; co < g.out_channels; ++co) {
          copy_floats(product + co * count + (q - first), to + co * positions, valid);
        }
      } else {
        for (int64_t co = 0; co < g.out_channels; ++co) {
          const float* residual =
              epilogue->residual == nullptr ? nullptr : epilogue->residual + at + co * positions;
          apply_epilogue(product + co * count + (q - first), to + co * positions, residual, valid,
                         epilogue->scale[co], epilogue->shift[co], epilogue->relu);
        }
      }
    });
  });
  return true;
}

// Stride-1 input gradient as the forward convolution of gradOut with the flipped kernel, whose
// channels are swapped: W'[c, co, kh, kw] = W[co, c, KH-1-kh, KW-1-kw], padding (K-1)·dilation - pad.
bool backward_input_grid(const float* grad_out, const float* weight, float* grad_x, const ConvGeometry& g) {
  const int64_t taps = g.kernel_height * g.kernel_width;
  ConvGeometry transposed = g;
  transposed.in_channels = g.out_channels;
  transposed.in_height = g.out_height;
  transposed.in_width = g.out_width;
  transposed.out_channels = g.in_channels;
  transposed.pad_top = (g.kernel_height - 1) * g.dilation_height - g.pad_top;
  transposed.pad_left = (g.kernel_width - 1) * g.dilation_width - g.pad_left;
  transposed.out_height = g.in_height;
  transposed.out_width = g.in_width;
  // Small images read the weights flipped in place (the copy below is 9% of a 512-channel layer's
  // input gradient at 4²).
  if (batched_columns_pay(transposed, kBatchedForwardPositions)) {
    return forward_batched(grad_out, weight, {taps, g.in_channels * taps, true}, grad_x, transposed, nullptr);
  }
  float* flipped = scratch(ScratchSlot::kPartial, 0, static_cast<size_t>(g.out_channels * g.in_channels * taps));
  if (flipped == nullptr) return false;
  // By all threads: 9.4 MB for a 512-channel 3×3 layer.
  pool().run(std::min<int64_t>(g.in_channels, 4 * pool().threads()), [&](int64_t task, int) {
    const int64_t tasks = std::min<int64_t>(g.in_channels, 4 * pool().threads());
    for (int64_t c = g.in_channels * task / tasks; c < g.in_channels * (task + 1) / tasks; ++c) {
      for (int64_t co = 0; co < g.out_channels; ++co) {
        const float* from = weight + (co * g.in_channels + c) * taps;
        float* to = flipped + (c * g.out_channels + co) * taps;
        for (int64_t tap = 0; tap < taps; ++tap) to[taps - 1 - tap] = from[tap];
      }
    }
  });
  return forward_grid(grad_out, flipped, grad_x, transposed, nullptr);
}

// Stride-1 weight gradient on the grid: the im2col rows are packed straight from the padded input.
// Computed either as gradW[Cout, K] = gradOut · colsᵀ (channels as the GEMM's rows) or as
// gradWᵀ[K, Cout] = cols · gradOutᵀ (im2col rows as rows), whichever fills the panels better.
bool backward_weight_grid(const float* x, const float* grad_out, float* grad_weight, const ConvGeometry& g) {
  if (batched_columns_pay(g, kBatchedWeightGradientPositions)) return backward_weight_batched(x, grad_out, grad_weight, g);
  const GemmKernels& kernels = active_kernels();
  const int mr = kernels.mr;
  const int nr = kernels.nr;
  const int64_t k = g.in_channels * g.kernel_height * g.kernel_width;
  const int64_t positions = g.out_height * g.out_width;
  const int64_t weights = g.out_channels * k;
  const Grid grid = make_grid(g);
  ThreadPool& threads = pool();
  const int workers = threads.threads();
  // With im2col rows as the GEMM's rows they are read in place (no packing); with channels as rows
  // the im2col block must be transposed into panels, which costs about a fifth of the product, so
  // that orientation must fill its panels clearly better to be chosen.
  const bool channels_as_rows =
      panel_use(k, mr) * panel_use(g.out_channels, nr) < 0.8 * panel_use(g.out_channels, mr) * panel_use(k, nr);
  // The im2col rows (the K dimension) are split into chunks of whole panels for more tasks.
  const int k_width = channels_as_rows ? nr : mr;
  const int channel_width = channels_as_rows ? mr : nr;

  // Samples are summed in a fixed number of groups, each into its own partial product, and the
  // partials are then added in group order: the grouping depends on the batch size only, never on
  // the thread count, so the result is the same for any number of threads. Chunks of K give more
  // tasks when there are fewer groups than threads.
  const int64_t groups = std::min<int64_t>(g.batch, 16);
  const int64_t k_panels = ceil_div(k, k_width);
  const int64_t k_chunks = std::min(k_panels, std::max<int64_t>(1, ceil_div(2 * workers, groups)));
  const int64_t k_chunk_size = ceil_div(k_panels, k_chunks) * k_width;
  // Grid positions are the GEMM's k here; chunks keep the packed im2col block near L2 size. The
  // width fixes the summation order, so it depends on the geometry only, never on the thread count.
  const int64_t width = std::min(grid.positions, std::max<int64_t>(256, (128 * 1024) / k));
  const int64_t window_rows = grid.window_rows(width);
  // Without padding a stride-1 grid has no gap columns and is the input itself: the im2col rows
  // (c, kh, kw) are then read in place at c·plane + kh·d·width + kw·d of the sample, and gradOut's
  // rows are the grid's (1×1 layers: the window copy and gradOut's copy were a third of the call).
  const bool in_place = grid.row_stride == g.out_width && g.stride_height == 1 && g.stride_width == 1 &&
                        g.pad_top == 0 && g.pad_left == 0;
  const int64_t window_size = in_place ? 0 : window_floats(g, grid, window_rows);
  const int64_t* offsets = in_place ? input_row_offsets(g) : tap_row_offsets(g, grid, window_rows);
  float* partials = scratch(ScratchSlot::kPartial, 0, static_cast<size_t>(groups * weights));
  if (offsets == nullptr || partials == nullptr || !reserve_scratch(ScratchSlot::kColumns, workers, window_size) ||
      !reserve_scratch(ScratchSlot::kPackedA, workers, channels_as_rows ? packed_size(k_chunk_size, width, k_width) : 0) ||
      !reserve_scratch(ScratchSlot::kPackedB, workers, packed_size(g.out_channels, width, channel_width)) ||
      !reserve_scratch(ScratchSlot::kTile, workers, in_place ? 0 : g.out_channels * width)) {
    return false;
  }
  threads.run(groups * k_chunks, [&](int64_t task, int thread) {
    const int64_t group = task / k_chunks;
    const int64_t chunk = task % k_chunks;
    const int64_t k_begin = std::min(k, k_panels * chunk / k_chunks * k_width);
    const int64_t k_end = std::min(k, k_panels * (chunk + 1) / k_chunks * k_width);
    if (k_end <= k_begin) return;
    float* window = scratch(ScratchSlot::kColumns, thread, 0);
    float* packed_columns = scratch(ScratchSlot::kPackedA, thread, 0);
    float* packed_grad = scratch(ScratchSlot::kPackedB, thread, 0);
    float* grad_chunk = scratch(ScratchSlot::kTile, thread, 0);
    float* partial = partials + group * weights;
    bool first_product = true;
    for (int64_t n = g.batch * group / groups; n < g.batch * (group + 1) / groups; ++n) {
      const float* grad_sample = grad_out + n * g.out_channels * positions;
      for (int64_t first = 0; first < grid.positions; first += width) {
        const int64_t count = std::min(width, grid.positions - first);
        const int64_t first_row = first / grid.row_stride;
        const float* sample = x + n * g.in_channels * g.in_height * g.in_width;
        if (in_place) {
          kernels.pack(grad_sample + first, positions, 1, g.out_channels, count, channel_width, packed_grad);
        } else {
          fill_window(sample, g, grid, first_row, window_rows, window);
          // gradOut on the grid, zero in the gap columns so that they add nothing.
          for_grid_runs(grid, g, first, count, [&](int64_t q, int64_t oh, int64_t ow, int64_t run, int64_t valid) {
            for (int64_t co = 0; co < g.out_channels; ++co) {
              float* to = grad_chunk + co * count + (q - first);
              copy_floats(grad_sample + co * positions + oh * g.out_width + ow, to, valid);
              zero_floats(to + valid, run - valid);
            }
          });
          kernels.pack(grad_chunk, count, 1, g.out_channels, count, channel_width, packed_grad);
        }
        // Both operands are rows contiguous along the positions: gradOut's channel rows and the
        // im2col rows of the window (or of the input).
        const float* window_base = in_place ? sample + first : window + (first - first_row * grid.row_stride);
        if (channels_as_rows) {
          kernels.pack_rows(window_base, offsets + k_begin, k_end - k_begin, count, k_width, packed_columns);
          gemm_packed(kernels, g.out_channels, k_end - k_begin, count, packed_grad, packed_columns, partial + k_begin,
                      k, !first_product);
        } else {
          gemm_indirect_a(kernels, k_begin, k_end, g.out_channels, count, window_base, offsets, packed_grad, partial,
                          g.out_channels, !first_product);
        }
        first_product = false;
      }
    }
  });
  reduce_partials(partials, groups, k, g.out_channels, !channels_as_rows, grad_weight);
  return true;
}

bool forward_generic(const float* x, const float* weight, float* out, const ConvGeometry& g,
                     const ConvEpilogue* epilogue) {
  const GemmKernels& kernels = active_kernels();
  const int mr = kernels.mr;
  const int nr = kernels.nr;
  const int64_t taps = g.kernel_height * g.kernel_width;
  const int64_t k = g.in_channels * taps;
  const int64_t positions = g.out_height * g.out_width;
  const int64_t plane = g.in_height * g.in_width;
  if (g.batch == 0 || positions == 0 || g.out_channels == 0) return true;
  ThreadPool& threads = pool();
  const int workers = threads.threads();

  float* packed_weight = scratch(ScratchSlot::kPackedA, 0, static_cast<size_t>(packed_size(g.out_channels, k, mr)));
  if (packed_weight == nullptr) return false;
  pack_weights(kernels, weight, g.out_channels, k, mr, packed_weight);

  const int64_t chunks = position_chunks(positions, k, g.batch, workers, nr);
  const int64_t width = chunk_width(positions, chunks, nr);
  const int64_t chunk_count = ceil_div(positions, width);
  if (!reserve_scratch(ScratchSlot::kPackedB, workers, packed_size(width, k, nr)) ||
      !reserve_scratch(ScratchSlot::kTile, workers, width)) {
    return false;
  }
  threads.run(g.batch * chunk_count, [&](int64_t task, int thread) {
    const int64_t n = task / chunk_count;
    const int64_t p_begin = (task % chunk_count) * width;
    const int64_t count = std::min(width, positions - p_begin);
    float* packed_columns = scratch(ScratchSlot::kPackedB, thread, 0);
    float* row = scratch(ScratchSlot::kTile, thread, 0);
    const float* sample = x + n * g.in_channels * plane;
    for (int64_t kk = 0; kk < k; ++kk) {
      const int64_t c = kk / taps;
      const int64_t tap = kk % taps;
      im2col_row(sample + c * plane, g, tap / g.kernel_width, tap % g.kernel_width, p_begin, count, row);
      scatter_to_panels(row, count, k, kk, nr, packed_columns);
    }
    float* chunk_out = out + n * g.out_channels * positions + p_begin;
    gemm_packed(kernels, g.out_channels, count, k, packed_weight, packed_columns, chunk_out, positions, false);
    if (epilogue != nullptr) {
      // The chunk was just written and is still in cache.
      for (int64_t co = 0; co < g.out_channels; ++co) {
        const int64_t at = (n * g.out_channels + co) * positions + p_begin;
        apply_epilogue(out + at, out + at, epilogue->residual == nullptr ? nullptr : epilogue->residual + at, count,
                       epilogue->scale[co], epilogue->shift[co], epilogue->relu);
      }
    }
  });
  return true;
}

bool backward_input_generic(const float* grad_out, const float* weight, float* grad_x, const ConvGeometry& g) {
  const GemmKernels& kernels = active_kernels();
  const int mr = kernels.mr;
  const int nr = kernels.nr;
  const int64_t taps = g.kernel_height * g.kernel_width;
  const int64_t k = g.in_channels * taps;
  const int64_t positions = g.out_height * g.out_width;
  const int64_t plane = g.in_height * g.in_width;
  if (g.batch == 0 || g.in_channels == 0 || plane == 0) return true;
  if (positions == 0 || g.out_channels == 0) {
    std::memset(grad_x, 0, static_cast<size_t>(g.batch * g.in_channels * plane) * sizeof(float));
    return true;
  }
  ThreadPool& threads = pool();
  const int workers = threads.threads();

  // Channel groups give a small batch enough tasks; a group's col2im touches only its own input
  // planes, so groups of one sample never write the same element.
  const int64_t groups = std::min(g.in_channels, std::max<int64_t>(1, ceil_div(2 * workers, g.batch)));
  // Wᵀ is packed per channel group so that every group's rows start on a panel boundary.
  int64_t packed_total = 0;
  for (int64_t group = 0; group < groups; ++group) {
    const int64_t c_begin = g.in_channels * group / groups;
    const int64_t c_end = g.in_channels * (group + 1) / groups;
    packed_total += packed_size((c_end - c_begin) * taps, g.out_channels, mr);
  }
  float* packed_weight = scratch(ScratchSlot::kPackedA, 0, static_cast<size_t>(packed_total));
  if (packed_weight == nullptr) return false;
  std::vector<int64_t> group_offset(static_cast<size_t>(groups));
  int64_t offset = 0;
  const int64_t max_rows = ceil_div(g.in_channels, groups) * taps;
  for (int64_t group = 0; group < groups; ++group) {
    const int64_t c_begin = g.in_channels * group / groups;
    const int64_t c_end = g.in_channels * (group + 1) / groups;
    const int64_t rows = (c_end - c_begin) * taps;
    group_offset[static_cast<size_t>(group)] = offset;
    // Wᵀ(row, co) = weight[co·k + row]: rows are contiguous, steps have stride k.
    kernels.pack(weight + c_begin * taps, 1, k, rows, g.out_channels, mr, packed_weight + offset);
    offset += packed_size(rows, g.out_channels, mr);
  }

  // Position chunks bound the gradCol buffer. Their width sets the order in which col2im adds into
  // each input element, so it depends on the geometry only, never on the thread count.
  const int64_t chunks = std::max<int64_t>(1, ceil_div(positions * std::max(k, g.out_channels), 128 * 1024));
  const int64_t width = chunk_width(positions, std::min(chunks, ceil_div(positions, nr)), nr);
  if (!reserve_scratch(ScratchSlot::kPackedB, workers, packed_size(width, g.out_channels, nr)) ||
      !reserve_scratch(ScratchSlot::kColumns, workers, max_rows * width)) {
    return false;
  }
  threads.run(g.batch * groups, [&](int64_t task, int thread) {
    const int64_t n = task / groups;
    const int64_t group = task % groups;
    const int64_t c_begin = g.in_channels * group / groups;
    const int64_t c_end = g.in_channels * (group + 1) / groups;
    const int64_t rows = (c_end - c_begin) * taps;
    const float* packed_group = packed_weight + group_offset[static_cast<size_t>(group)];
    float* packed_grad = scratch(ScratchSlot::kPackedB, thread, 0);
    float* columns = scratch(ScratchSlot::kColumns, thread, 0);
    const float* grad_sample = grad_out + n * g.out_channels * positions;
    float* grad_planes = grad_x + (n * g.in_channels + c_begin) * plane;
    std::memset(grad_planes, 0, static_cast<size_t>((c_end - c_begin) * plane) * sizeof(float));
    for (int64_t p_begin = 0; p_begin < positions; p_begin += width) {
      const int64_t count = std::min(width, positions - p_begin);
      // gradOut_n(co, p) as B: columns p are contiguous, steps co have stride P.
      kernels.pack(grad_sample + p_begin, 1, positions, count, g.out_channels, nr, packed_grad);
      gemm_packed(kernels, rows, count, g.out_channels, packed_group, packed_grad, columns, count, false);
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t c = r / taps;
        const int64_t tap = r % taps;
        col2im_row(columns + r * count, g, tap / g.kernel_width, tap % g.kernel_width, p_begin, count,
                   grad_planes + c * plane);
      }
    }
  });
  return true;
}

// Input gradient of a strided convolution with few output positions per sample, over blocks of
// samples: gradColumns[c·taps + tap][(n − first)·P + p] = Wᵀ · gradOut of the block, one product
// per (block, channel chunk), then col2im of each of the chunk's planes. One product per sample
// of 256 → 512 to 4² outputs (16 columns: half of an AVX-512 panel of 32) ran at half the
// GEMM's speed. Each input element sums its taps in tap order, as backward_input_generic does with
// one chunk of positions.
bool backward_input_batched(const float* grad_out, const float* weight, float* grad_x, const ConvGeometry& g) {
  const GemmKernels& kernels = active_kernels();
  const int mr = kernels.mr;
  const int nr = kernels.nr;
  const int64_t taps = g.kernel_height * g.kernel_width;
  const int64_t k = g.in_channels * taps;
  const int64_t positions = g.out_height * g.out_width;
  const int64_t plane = g.in_height * g.in_width;
  const int workers = pool().threads();
  // At least 256 columns a product; blocks of whole samples, the columns padded to whole panels.
  const int64_t block = std::clamp<int64_t>(ceil_div(256, positions), 1, g.batch);
  const int64_t blocks = ceil_div(g.batch, block);
  const int64_t stride = ceil_div(block * positions, nr) * nr;
  // Channel chunks whose product (chunk·taps rows of `stride` floats) stays near 256 KB, and enough
  // (block, chunk) tasks for every thread.
  int64_t chunk = std::clamp<int64_t>((64 * 1024) / (taps * stride), 1, g.in_channels);
  chunk = std::min(chunk, std::max<int64_t>(1, g.in_channels * blocks / (4 * workers)));
  const int64_t chunks = ceil_div(g.in_channels, chunk);
  const int64_t chunk_packed = packed_size(chunk * taps, g.out_channels, mr);
  float* packed_weight = scratch(ScratchSlot::kPackedA, 0, static_cast<size_t>(chunks * chunk_packed));
  float* gathered = scratch(ScratchSlot::kBatchProducts, 0, static_cast<size_t>(blocks * g.out_channels * stride));
  auto* offsets = reinterpret_cast<int64_t*>(scratch(ScratchSlot::kOffsets, 0, static_cast<size_t>(2 * g.out_channels)));
  if (packed_weight == nullptr || gathered == nullptr || offsets == nullptr ||
      !reserve_scratch(ScratchSlot::kColumns, workers, chunk * taps * stride)) {
    return false;
  }
  for (int64_t co = 0; co < g.out_channels; ++co) offsets[co] = co * stride;
  // Wᵀ(row, co) = weight[co·k + row], packed per chunk so that each chunk starts on a panel.
  pool().run(chunks, [&](int64_t index, int) {
    const int64_t c_begin = index * chunk;
    const int64_t rows = (std::min(g.in_channels, c_begin + chunk) - c_begin) * taps;
    kernels.pack(weight + c_begin * taps, 1, k, rows, g.out_channels, mr, packed_weight + index * chunk_packed);
  });
  // gradOut of block b as [Cout][stride] at gathered + b·Cout·stride, its padding columns zero
  // (the GEMM reads whole panels and discards their extra columns).
  pool().run(blocks * g.out_channels, [&](int64_t task, int) {
    const int64_t b = task / g.out_channels;
    const int64_t co = task % g.out_channels;
    const int64_t first = b * block;
    const int64_t samples = std::min(block, g.batch - first);
    float* row = gathered + task * stride;
    for (int64_t s = 0; s < samples; ++s) {
      copy_floats(grad_out + ((first + s) * g.out_channels + co) * positions, row + s * positions, positions);
    }
    zero_floats(row + samples * positions, stride - samples * positions);
  });
  pool().run(blocks * chunks, [&](int64_t task, int thread) {
    const int64_t b = task / chunks;
    const int64_t index = task % chunks;
    const int64_t first = b * block;
    const int64_t samples = std::min(block, g.batch - first);
    const int64_t c_begin = index * chunk;
    const int64_t c_end = std::min(g.in_channels, c_begin + chunk);
    float* columns = scratch(ScratchSlot::kColumns, thread, 0);
    gemm_indirect_b(kernels, (c_end - c_begin) * taps, samples * positions, g.out_channels,
                    packed_weight + index * chunk_packed, gathered + b * g.out_channels * stride, offsets, columns,
                    stride, false);
    for (int64_t s = 0; s < samples; ++s) {
      for (int64_t c = c_begin; c < c_end; ++c) {
        float* to = grad_x + ((first + s) * g.in_channels + c) * plane;
        zero_floats(to, plane);
        for (int64_t tap = 0; tap < taps; ++tap) {
          col2im_row(columns + ((c - c_begin) * taps + tap) * stride + s * positions, g, tap / g.kernel_width,
                     tap % g.kernel_width, 0, positions, to);
        }
      }
    }
  });
  return true;
}

bool backward_weight_generic(const float* x, const float* grad_out, float* grad_weight, const ConvGeometry& g) {
  const GemmKernels& kernels = active_kernels();
  const int mr = kernels.mr;
  const int nr = kernels.nr;
  const int64_t taps = g.kernel_height * g.kernel_width;
  const int64_t k = g.in_channels * taps;
  const int64_t positions = g.out_height * g.out_width;
  const int64_t plane = g.in_height * g.in_width;
  const int64_t weights = g.out_channels * k;
  if (weights == 0) return true;
  if (g.batch == 0 || positions == 0) {
    std::memset(grad_weight, 0, static_cast<size_t>(weights) * sizeof(float));
    return true;
  }
  ThreadPool& threads = pool();
  const int workers = threads.threads();

  // Positions are the GEMM's k here; a step of it covers a chunk of one sample's positions, or, where
  // a sample has fewer than a step's worth, several whole samples (64 positions a sample made a
  // GEMM of depth 64, whose tile loads and stores cost as much as its multiplications). Chunks keep
  // the packed im2col block near L2 size. The steps fix the summation order, so they depend on the
  // geometry only, never on the thread count.
  const int64_t step_target = std::max<int64_t>(256, (128 * 1024) / k);
  const int64_t width = std::min(positions, step_target);
  const int64_t step_samples = std::max<int64_t>(1, step_target / positions);
  const int64_t depth = step_samples * width;
  // Samples are summed in a fixed number of groups, each into its own partial gradWᵀ [k, Cout], and
  // the partials are then added in group order: the grouping depends on the batch size only, never on
  // the thread count, so the result is the same for any number of threads. Row chunks of gradWᵀ give
  // more tasks when there are fewer groups than threads.
  // Steps of several samples take 4 groups: their partials are the largest part of the reduction's
  // reads (128 → 256 to 8² at batch 32: 3.5 → 3.3 ms against 8 groups).
  const int64_t groups = std::min<int64_t>(ceil_div(g.batch, step_samples), step_samples > 1 ? 4 : 16);
  const int64_t row_panels = ceil_div(k, mr);
  const int64_t row_chunks = std::min(row_panels, std::max<int64_t>(1, ceil_div(2 * workers, groups)));
  const int64_t row_chunk_rows = ceil_div(row_panels, row_chunks) * mr;

  float* partials = scratch(ScratchSlot::kPartial, 0, static_cast<size_t>(groups * weights));
  if (partials == nullptr) return false;
  if (!reserve_scratch(ScratchSlot::kPackedA, workers, packed_size(row_chunk_rows, depth, mr)) ||
      !reserve_scratch(ScratchSlot::kPackedB, workers, packed_size(g.out_channels, depth, nr)) ||
      !reserve_scratch(ScratchSlot::kTile, workers, (mr + (step_samples > 1 ? g.out_channels : 0)) * depth)) {
    return false;
  }
  threads.run(groups * row_chunks, [&](int64_t task, int thread) {
    const int64_t group = task / row_chunks;
    const int64_t chunk = task % row_chunks;
    const int64_t row_begin = std::min(k, row_panels * chunk / row_chunks * mr);
    const int64_t row_end = std::min(k, row_panels * (chunk + 1) / row_chunks * mr);
    if (row_end <= row_begin) return;
    const int64_t n_begin = g.batch * group / groups;
    const int64_t n_end = g.batch * (group + 1) / groups;
    float* packed_columns = scratch(ScratchSlot::kPackedA, thread, 0);
    float* packed_grad = scratch(ScratchSlot::kPackedB, thread, 0);
    float* rows_buffer = scratch(ScratchSlot::kTile, thread, 0);
    float* partial = partials + group * weights + row_begin * g.out_channels;
    // gradOut of a step's samples as [Cout][samples·positions], when it has several.
    float* gathered = rows_buffer + mr * depth;
    bool first = true;
    for (int64_t n = n_begin; n < n_end; n += step_samples) {
      const int64_t samples = std::min(step_samples, n_end - n);
      for (int64_t p_begin = 0; p_begin < positions; p_begin += width) {
        const int64_t count = std::min(width, positions - p_begin);
        const int64_t step = samples * count;  // several samples only when count is all positions
        // gradOutᵀ(p, co) as B: column co is row co of gradOut, contiguous along p.
        if (samples == 1) {
          kernels.pack(grad_out + n * g.out_channels * positions + p_begin, positions, 1, g.out_channels, count, nr,
                       packed_grad);
        } else {
          for (int64_t co = 0; co < g.out_channels; ++co) {
            for (int64_t s = 0; s < samples; ++s) {
              copy_floats(grad_out + ((n + s) * g.out_channels + co) * positions, gathered + co * step + s * positions,
                          positions);
            }
          }
          kernels.pack(gathered, step, 1, g.out_channels, step, nr, packed_grad);
        }
        for (int64_t r = row_begin; r < row_end; r += mr) {
          const int64_t panel_rows = std::min<int64_t>(mr, row_end - r);
          for (int64_t i = 0; i < panel_rows; ++i) {
            const int64_t c = (r + i) / taps;
            const int64_t tap = (r + i) % taps;
            for (int64_t s = 0; s < samples; ++s) {
              im2col_row(x + ((n + s) * g.in_channels + c) * plane, g, tap / g.kernel_width, tap % g.kernel_width,
                         p_begin, count, rows_buffer + i * step + s * count);
            }
          }
          kernels.pack(rows_buffer, step, 1, panel_rows, step, mr, packed_columns + (r - row_begin) * step);
        }
        gemm_packed(kernels, row_end - row_begin, g.out_channels, step, packed_columns, packed_grad, partial,
                    g.out_channels, !first);
        first = false;
      }
    }
  });

  reduce_partials(partials, groups, k, g.out_channels, true, grad_weight);
  return true;
}

// Whether the forward convolution runs on the grid (phase planes for strides > 1) rather than
// im2col + GEMM. A stride larger than the kernel's reach would copy phases no tap reads.
bool use_forward_grid(const ConvGeometry& g) {
  if (g.stride_height == 1 && g.stride_width == 1) return true;
  return g.stride_height <= (g.kernel_height - 1) * g.dilation_height + 1 &&
         g.stride_width <= (g.kernel_width - 1) * g.dilation_width + 1;
}

}  // namespace

bool conv2d_forward(const float* x, const float* weight, float* out, const ConvGeometry& g) {
  if (g.batch == 0 || g.out_channels == 0 || g.out_height == 0 || g.out_width == 0) return true;
  if (g.in_channels == 0 || g.kernel_height == 0 || g.kernel_width == 0) {
    // An empty sum.
    std::memset(out, 0, static_cast<size_t>(g.batch * g.out_channels * g.out_height * g.out_width) * sizeof(float));
    return true;
  }
  if (winograd_applies(g)) return winograd_forward(x, weight, false, out, g, nullptr);
  if (use_forward_grid(g)) return forward_grid(x, weight, out, g, nullptr);
  return forward_generic(x, weight, out, g, nullptr);
}

bool conv2d_forward_fused(const float* x, const float* weight, float* out, const ConvGeometry& g,
                          const ConvEpilogue& epilogue) {
  if (g.batch == 0 || g.out_channels == 0 || g.out_height == 0 || g.out_width == 0) return true;
  if (g.in_channels == 0 || g.kernel_height == 0 || g.kernel_width == 0) {
    // An empty sum, then the epilogue over the zeros.
    if (!conv2d_forward(x, weight, out, g)) return false;
    const int64_t positions = g.out_height * g.out_width;
    for (int64_t n = 0; n < g.batch; ++n) {
      for (int64_t co = 0; co < g.out_channels; ++co) {
        const int64_t at = (n * g.out_channels + co) * positions;
        apply_epilogue(out + at, out + at, epilogue.residual == nullptr ? nullptr : epilogue.residual + at, positions,
                       epilogue.scale[co], epilogue.shift[co], epilogue.relu);
      }
    }
    return true;
  }
  if (winograd_applies(g)) return winograd_forward(x, weight, false, out, g, &epilogue);
  if (use_forward_grid(g)) return forward_grid(x, weight, out, g, &epilogue);
  return forward_generic(x, weight, out, g, &epilogue);
}

bool conv2d_forward_fused_max_pool(const float* x, const float* weight, float* out, const ConvGeometry& g,
                                   const ConvEpilogue& epilogue, bool* declined) {
  *declined = epilogue.residual != nullptr || !winograd_applies(g);
  if (*declined) return true;
  ConvEpilogue pooled = epilogue;
  pooled.max_pool = true;
  return winograd_forward(x, weight, false, out, g, &pooled);
}

bool conv2d_backward_input(const float* grad_out, const float* weight, float* grad_x, const ConvGeometry& g) {
  const bool stride_one = g.stride_height == 1 && g.stride_width == 1;
  // The flipped convolution needs padding (K-1)·dilation - pad ≥ 0, true unless padding exceeds the
  // kernel's reach; the grid also needs the output to cover the input (it does for stride 1).
  const bool fits = (g.kernel_height - 1) * g.dilation_height >= g.pad_top &&
                    (g.kernel_width - 1) * g.dilation_width >= g.pad_left && g.out_height > 0 && g.out_width > 0 &&
                    g.out_channels > 0 && g.batch > 0 && g.in_height > 0 && g.in_width > 0 && g.in_channels > 0;
  // With very few input channels the flipped convolution has almost no output rows to fill the
  // GEMM's row panels (one channel uses 1 of 6 rows); col2im then does less work.
  const bool enough_channels = g.in_channels * 2 >= active_kernels().mr;
  if (stride_one && fits) {
    // The input gradient of a Winograd-shaped convolution is one too, with the channels swapped.
    ConvGeometry flipped = g;
    flipped.in_channels = g.out_channels;
    flipped.out_channels = g.in_channels;
    flipped.in_height = g.out_height;
    flipped.in_width = g.out_width;
    flipped.out_height = g.in_height;
    flipped.out_width = g.in_width;
    if (winograd_applies(flipped)) return winograd_forward(grad_out, weight, true, grad_x, flipped, nullptr);
  }
  if (stride_one && fits && enough_channels) return backward_input_grid(grad_out, weight, grad_x, g);
  // Strided ones whose outputs fill the GEMM's panels poorly take blocks of samples: 256 → 512 to 4²
  // at batch 32, 5.7 → 3.2 ms; 512 → 512 to 4² at batch 8, 3.8 → 2.0 ms; 256 → 512 to 7² at batch
  // 8, 3.2 → 2.8 ms. At 8² and 16² (whole panels) one product per sample stays ahead (two threads).
  const int64_t positions = g.out_height * g.out_width;
  if (!stride_one && g.batch > 0 && g.in_channels > 0 && g.in_height > 0 && g.in_width > 0 && g.out_channels > 0 &&
      positions > 0 && panel_use(positions, active_kernels().nr) < 0.85) {
    return backward_input_batched(grad_out, weight, grad_x, g);
  }
  return backward_input_generic(grad_out, weight, grad_x, g);
}

bool conv2d_backward_weight(const float* x, const float* grad_out, float* grad_weight, const ConvGeometry& g) {
  const bool empty = g.batch == 0 || g.out_height == 0 || g.out_width == 0 || g.in_channels == 0 ||
                     g.out_channels == 0 || g.kernel_height == 0 || g.kernel_width == 0;
  // The Winograd weight gradient writes its 16 sums (16·Cin·Cout floats, 16 MB at 512 channels) and
  // transforms them back however few tiles it sums, so on small outputs it needs a batch of them:
  // below about eight 7×7 samples the direct batched product is faster. Two threads, 512 channels
  // at 7²: batch 1 3.8–5.0 → 1.2–1.3 ms, batch 4 5.9 → 4.7 ms, batch 6 8.7 → 7.7 ms (batch 8: 10.9
  // against 12.6, so Winograd); 128 and 256 channels alike. (The choice may depend on the batch: a
  // weight gradient is a sum over it.)
  const int64_t positions = g.out_height * g.out_width;
  const bool few_tiles = batched_columns_pay(g, kBatchedStridedWeightGradientPositions, true) &&
                         g.batch * positions < kWinogradWeightGradientPositions;
  // With that many tiles it beats skipping the padding's taps too, from 4×4 outputs (two tiles a
  // side): 512 → 512 at 4², two threads, batch 32 9.7 → 8.7 ms, batch 64 18.2 → 14.7–15.2 ms
  // (batch 16 5.4–6.3 against 6.5: skipping). At 2² (one tile) skipping wins (batch 128: 7.2–7.7
  // against 9.8 ms).
  const bool winograd = !empty && !few_tiles && g.out_height >= 4 && g.out_width >= 4 &&
                        winograd_weight_gradient_applies(g);
  if (!empty && !winograd && weight_skip_applies(g, active_kernels().nr)) {
    return backward_weight_skipping(x, grad_out, grad_weight, g);
  }
  if (winograd) return winograd_weight_gradient(x, grad_out, grad_weight, g);
  // Strided ones up to 7² outputs too: 256 → 512 to 4² at batch 32, 8.9 → 3.2 ms (4.3 ms in a
  // ResNet-18 training step, from 8.7); to 7² at batch 8, 4.8 → 2.4 ms (the generic path's
  // per-sample products are tiny). At 8² (128 → 256, batch 32) even alone and slower inside the
  // step (4.6 → 5.4 ms), slower still from 16² (two threads).
  if (!empty && batched_columns_pay(g, kBatchedStridedWeightGradientPositions, true)) {
    return backward_weight_batched(x, grad_out, grad_weight, g);
  }
  // Strided ones on the grid too (phase planes whose taps' im2col rows are runs), except for small
  // outputs whose grid rows are mostly gap. One thread: 8×64×56²→128 3×3/2 5.7 → 4.9 ms, ResNet's
  // 7×7/2 stem 13.9 → 9.2 ms; two threads: 32×64×32²→128 3×3/2 4.0 → 3.9 ms, but 32×128×16²→256
  // (8² outputs) 4.55 → 4.8 ms.
  if (!empty && use_forward_grid(g) && stencil_gradient_applies(g)) {
    return backward_weight_stencil(x, grad_out, grad_weight, g);
  }
  const bool stride_one = g.stride_height == 1 && g.stride_width == 1;
  if (!empty && use_forward_grid(g) && (stride_one || g.out_height * g.out_width > 64)) {
    return backward_weight_grid(x, grad_out, grad_weight, g);
  }
  return backward_weight_generic(x, grad_out, grad_weight, g);
}

}  // namespace tensile
