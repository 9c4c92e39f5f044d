// Max and average pooling, one (sample, channel) plane per task unit.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "gemm.h"
#include "kernels.h"
#include "pool_avx512.h"
#include "thread_pool.h"

namespace tensile {

namespace {

// Input rows (or columns) [begin, end) that output index o's window covers, clipped to the input.
struct Window {
  int64_t begin, end;
};

inline Window window(int64_t o, int64_t stride, int64_t pad, int64_t kernel, int64_t size) {
  const int64_t start = o * stride - pad;
  return {std::max<int64_t>(start, 0), std::min(start + kernel, size)};
}

// PyTorch's count_include_pad divisor: the window clipped to the padded input, along one axis.
inline int64_t padded_extent(int64_t o, int64_t stride, int64_t pad, int64_t kernel, int64_t size) {
  const int64_t start = o * stride - pad;
  return std::min(start + kernel, size + pad) - start;
}

// Runs body(plane_begin, plane_end) over all planes, in chunks of whole planes.
template <typename Body>
void for_planes(int64_t planes, int64_t work_per_plane, Body&& body) {
  ThreadPool& threads = pool();
  const int64_t total = planes * std::max<int64_t>(work_per_plane, 1);
  const int64_t tasks = total < 32768 ? 1 : std::min<int64_t>(planes, threads.threads() * 4);
  threads.run(tasks, [&](int64_t task, int) { body(planes * task / tasks, planes * (task + 1) / tasks); });
}

}  // namespace

// The winner of one window, scanned in row-major order: the first maximum, or the last NaN (as
// PyTorch and the reference). Written with selects rather than branches, which would mispredict on
// random data about half the time.
struct Winner {
  float value;
  int64_t index;
};

inline Winner window_max(const float* in, int64_t in_width, Window rows, Window columns) {
  Winner best{-std::numeric_limits<float>::infinity(), -1};
  bool first = true;
  for (int64_t ih = rows.begin; ih < rows.end; ++ih) {
    for (int64_t iw = columns.begin; iw < columns.end; ++iw) {
      const float value = in[ih * in_width + iw];
      const bool take = first | (value > best.value) | (value != value);
      best.value = take ? value : best.value;
      best.index = take ? ih * in_width + iw : best.index;
      first = false;
    }
  }
  return best;
}

// 2×2 windows with stride 2 and no padding, the usual downsampling: the same rule, four windows at a
// time with SSE2 (part of every x86-64 CPU). Compilers turn the scalar selects back into branches.
inline void pool_row_2x2(const float* top, const float* bottom, int64_t row_index, int64_t in_width,
                         int64_t out_width, float* to, int32_t* index) {
  int64_t ow = 0;
#if defined(__SSE2__)
  const int32_t first = static_cast<int32_t>(row_index * in_width);
  const int32_t width = static_cast<int32_t>(in_width);
  const __m128i lane_offsets = _mm_setr_epi32(0, 2, 4, 6);
  // Four windows starting at output column ow.
  auto pool_four = [&](int64_t ow) {
    const int64_t iw = 2 * ow;
    const __m128 top_low = _mm_loadu_ps(top + iw);
    const __m128 top_high = _mm_loadu_ps(top + iw + 4);
    const __m128 bottom_low = _mm_loadu_ps(bottom + iw);
    const __m128 bottom_high = _mm_loadu_ps(bottom + iw + 4);
    // Window order: top-left, top-right, bottom-left, bottom-right.
    const __m128 candidates[4] = {
        _mm_shuffle_ps(top_low, top_high, _MM_SHUFFLE(2, 0, 2, 0)),
        _mm_shuffle_ps(top_low, top_high, _MM_SHUFFLE(3, 1, 3, 1)),
        _mm_shuffle_ps(bottom_low, bottom_high, _MM_SHUFFLE(2, 0, 2, 0)),
        _mm_shuffle_ps(bottom_low, bottom_high, _MM_SHUFFLE(3, 1, 3, 1)),
    };
    const __m128i offsets[4] = {_mm_set1_epi32(0), _mm_set1_epi32(1), _mm_set1_epi32(width),
                                _mm_set1_epi32(width + 1)};
    __m128 best = candidates[0];
    __m128i at = offsets[0];
    for (int i = 1; i < 4; ++i) {
      const __m128 value = candidates[i];
      const __m128 take = _mm_or_ps(_mm_cmpgt_ps(value, best), _mm_cmpunord_ps(value, value));
      best = _mm_or_ps(_mm_and_ps(take, value), _mm_andnot_ps(take, best));
      const __m128i take_int = _mm_castps_si128(take);
      at = _mm_or_si128(_mm_and_si128(take_int, offsets[i]), _mm_andnot_si128(take_int, at));
    }
    _mm_storeu_ps(to + ow, best);
    const __m128i base = _mm_add_epi32(_mm_set1_epi32(first + static_cast<int32_t>(iw)), lane_offsets);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(index + ow), _mm_add_epi32(base, at));
  };
  for (; ow + 4 <= out_width; ow += 4) pool_four(ow);
  if (ow < out_width && out_width >= 4) {
    // The last 1 to 3 windows: redo the last four (recomputing a window gives the same value and
    // index) rather than scan them one by one, which at 14×14 inputs (7 outputs a row) was half
    // the work.
    pool_four(out_width - 4);
    ow = out_width;
  }
#endif
  for (; ow < out_width; ++ow) {
    const int64_t iw = 2 * ow;
    const Winner best = window_max(top - row_index * in_width, in_width, {row_index, row_index + 2}, {iw, iw + 2});
    to[ow] = best.value;
    index[ow] = static_cast<int32_t>(best.index);
  }
  (void)bottom;
}

// pool_row_2x2 without the argmax: the same winners, four windows at a time.
inline void pool_row_2x2_values(const float* top, const float* bottom, const PoolGeometry& g, int64_t row_index,
                                float* to) {
  const int64_t out_width = g.out_width;
  int64_t ow = 0;
#if defined(__SSE2__)
  auto pool_four = [&](int64_t ow) {
    const int64_t iw = 2 * ow;
    const __m128 top_low = _mm_loadu_ps(top + iw);
    const __m128 top_high = _mm_loadu_ps(top + iw + 4);
    const __m128 bottom_low = _mm_loadu_ps(bottom + iw);
    const __m128 bottom_high = _mm_loadu_ps(bottom + iw + 4);
    // Window order: top-left, top-right, bottom-left, bottom-right.
    const __m128 candidates[4] = {
        _mm_shuffle_ps(top_low, top_high, _MM_SHUFFLE(2, 0, 2, 0)),
        _mm_shuffle_ps(top_low, top_high, _MM_SHUFFLE(3, 1, 3, 1)),
        _mm_shuffle_ps(bottom_low, bottom_high, _MM_SHUFFLE(2, 0, 2, 0)),
        _mm_shuffle_ps(bottom_low, bottom_high, _MM_SHUFFLE(3, 1, 3, 1)),
    };
    __m128 best = candidates[0];
    for (int i = 1; i < 4; ++i) {
      const __m128 value = candidates[i];
      const __m128 take = _mm_or_ps(_mm_cmpgt_ps(value, best), _mm_cmpunord_ps(value, value));
      best = _mm_or_ps(_mm_and_ps(take, value), _mm_andnot_ps(take, best));
    }
    _mm_storeu_ps(to + ow, best);
  };
  for (; ow + 4 <= out_width; ow += 4) pool_four(ow);
  if (ow < out_width && out_width >= 4) {
    pool_four(out_width - 4);
    ow = out_width;
  }
#endif
  for (; ow < out_width; ++ow) {
    const int64_t iw = 2 * ow;
    to[ow] = window_max(top - row_index * g.in_width, g.in_width, {row_index, row_index + 2}, {iw, iw + 2}).value;
  }
  (void)bottom;
}

// Whether the AVX-512 pooling (pool_avx512.cc) runs: where the GEMM's AVX-512 kernels do (so setIsa
// tests both paths).
bool pool_with_avx512() {
#if defined(TENSILE_HAVE_AVX2)
  return std::strcmp(active_kernels().name, "avx512") == 0;
#else
  return false;
#endif
}

// pool_row_2x2, sixteen windows at a time where the AVX-512 kernels are active (`avx512`, asked
// once per call rather than per row).
inline void pool_row_2x2_on(bool avx512, const float* top, const float* bottom, int64_t row_index, int64_t in_width,
                            int64_t out_width, float* to, int32_t* index) {
#if defined(TENSILE_HAVE_AVX2)
  if (avx512) {
    max_pool_2x2_row_avx512(top, bottom, row_index, in_width, out_width, to, index);
    return;
  }
#else
  (void)avx512;
#endif
  pool_row_2x2(top, bottom, row_index, in_width, out_width, to, index);
}

// Output columns whose window lies wholly inside the row: ow·stride − pad ≥ 0 and
// ow·stride − pad + kernel ≤ in_width.
Window interior_columns(const PoolGeometry& g) {
  int64_t end = g.in_width + g.pad_left - g.kernel_width < 0
                    ? 0
                    : (g.in_width + g.pad_left - g.kernel_width) / g.stride_width + 1;
  end = std::min(end, g.out_width);
  return {std::min((g.pad_left + g.stride_width - 1) / g.stride_width, end), end};
}

// max_pool_values_row with each winner's index (window_max's), for the paths without AVX-512: the
// interior columns tap by tap across the row in window_max's order (branch-free selects; output by
// output, window_max's branch mispredicted on about every other tap), the edge columns by
// window_max.
void max_pool_argmax_row(const float* in, const PoolGeometry& g, int64_t oh, float* __restrict to,
                         int32_t* __restrict index) {
  const Window rows = window(oh, g.stride_height, g.pad_top, g.kernel_height, g.in_height);
  const Window interior = rows.begin < rows.end ? interior_columns(g) : Window{0, 0};
  auto edge = [&](int64_t ow) {
    const Window columns = window(ow, g.stride_width, g.pad_left, g.kernel_width, g.in_width);
    const Winner best = window_max(in, g.in_width, rows, columns);
    to[ow] = best.value;
    index[ow] = static_cast<int32_t>(best.index);
  };
  for (int64_t ow = 0; ow < interior.begin; ++ow) edge(ow);
  const int64_t stride = g.stride_width;
  bool first = true;
  for (int64_t ih = rows.begin; ih < rows.end; ++ih) {
    for (int64_t kw = 0; kw < g.kernel_width; ++kw) {
      const int32_t offset = static_cast<int32_t>(ih * g.in_width + kw - g.pad_left);
      const float* __restrict from = in + offset;
      if (first) {
        for (int64_t ow = interior.begin; ow < interior.end; ++ow) {
          to[ow] = from[ow * stride];
          index[ow] = offset + static_cast<int32_t>(ow * stride);
        }
        first = false;
        continue;
      }
      for (int64_t ow = interior.begin; ow < interior.end; ++ow) {
        const float value = from[ow * stride];
        const bool take = (value > to[ow]) | (value != value);
        to[ow] = take ? value : to[ow];
        index[ow] = take ? offset + static_cast<int32_t>(ow * stride) : index[ow];
      }
    }
  }
  for (int64_t ow = interior.end; ow < g.out_width; ++ow) edge(ow);
}

// Max pooling values only (no argmax), for inference. The same winner as window_max, whose rule
// only depends on the order the window is scanned in: row-major, the first value taken, then any
// value greater than the best so far or NaN. Columns whose window lies wholly inside the row are
// done tap by tap across the row (vectorisable selects); the edge columns by window_max. (With
// AVX-512 and stride 2, max_pool_values_stride2_avx512 does the whole row instead.)
void max_pool_values_row(const float* in, const PoolGeometry& g, int64_t oh, float* __restrict to) {
  const Window rows = window(oh, g.stride_height, g.pad_top, g.kernel_height, g.in_height);
  const Window interior = interior_columns(g);
  const int64_t interior_begin = interior.begin;
  const int64_t interior_end = interior.end;
  auto edge = [&](int64_t ow) {
    const Window columns = window(ow, g.stride_width, g.pad_left, g.kernel_width, g.in_width);
    to[ow] = window_max(in, g.in_width, rows, columns).value;
  };
  for (int64_t ow = 0; ow < interior_begin; ++ow) edge(ow);
  bool first = true;
  for (int64_t ih = rows.begin; ih < rows.end; ++ih) {
    for (int64_t kw = 0; kw < g.kernel_width; ++kw) {
      const float* __restrict from = in + ih * g.in_width + kw - g.pad_left;
      const int64_t stride = g.stride_width;
      if (first) {
        for (int64_t ow = interior_begin; ow < interior_end; ++ow) to[ow] = from[ow * stride];
        first = false;
      } else if (stride == 2) {
        // The usual downsampling stride as a constant, which the compiler vectorises with shuffles.
        for (int64_t ow = interior_begin; ow < interior_end; ++ow) {
          const float value = from[ow * 2];
          const bool take = (value > to[ow]) | (value != value);
          to[ow] = take ? value : to[ow];
        }
      } else {
        for (int64_t ow = interior_begin; ow < interior_end; ++ow) {
          const float value = from[ow * stride];
          const bool take = (value > to[ow]) | (value != value);
          to[ow] = take ? value : to[ow];
        }
      }
    }
  }
  if (first) {
    // No row of the window lies inside the input (padding only): window_max's empty result.
    for (int64_t ow = interior_begin; ow < interior_end; ++ow) edge(ow);
  }
  for (int64_t ow = interior_end; ow < g.out_width; ++ow) edge(ow);
}

void max_pool2d_forward(const float* x, float* out, int32_t* argmax, const PoolGeometry& g) {
  const int64_t plane_in = g.in_height * g.in_width;
  const int64_t plane_out = g.out_height * g.out_width;
  const bool two_by_two = g.kernel_height == 2 && g.kernel_width == 2 && g.stride_height == 2 &&
                          g.stride_width == 2 && g.pad_top == 0 && g.pad_left == 0 &&
                          2 * g.out_height <= g.in_height && 2 * g.out_width <= g.in_width;
  const bool avx512 = pool_with_avx512();
  if (argmax == nullptr) {
    for_planes(g.batch * g.channels, plane_in + plane_out, [&](int64_t begin, int64_t end) {
      for (int64_t plane = begin; plane < end; ++plane) {
        const float* in = x + plane * plane_in;
        for (int64_t oh = 0; oh < g.out_height; ++oh) {
          float* to = out + plane * plane_out + oh * g.out_width;
          if (two_by_two) {
            pool_row_2x2_values(in + 2 * oh * g.in_width, in + (2 * oh + 1) * g.in_width, g, 2 * oh, to);
            continue;
          }
#if defined(TENSILE_HAVE_AVX2)
          // The edge columns too, with the padding masked: window_max's data-dependent branch
          // mispredicted on them, a fifth of ResNet's 3×3/2 pool on one thread.
          if (g.stride_width == 2 && avx512) {
            const Window rows = window(oh, g.stride_height, g.pad_top, g.kernel_height, g.in_height);
            max_pool_values_stride2_avx512(in, g.in_width, g.pad_left, g.kernel_width, rows.begin, rows.end,
                                           g.out_width, to);
            continue;
          }
#endif
          max_pool_values_row(in, g, oh, to);
        }
      }
    });
    return;
  }
  for_planes(g.batch * g.channels, plane_in + plane_out, [&](int64_t begin, int64_t end) {
    for (int64_t plane = begin; plane < end; ++plane) {
      const float* in = x + plane * plane_in;
      float* to = out + plane * plane_out;
      int32_t* index = argmax + plane * plane_out;
      for (int64_t oh = 0; oh < g.out_height; ++oh) {
        if (two_by_two) {
          pool_row_2x2_on(avx512, in + 2 * oh * g.in_width, in + (2 * oh + 1) * g.in_width, 2 * oh, g.in_width,
                          g.out_width, to + oh * g.out_width, index + oh * g.out_width);
          continue;
        }
#if defined(TENSILE_HAVE_AVX2)
        // window_max output by output ran 25× slower than the values alone: its data-dependent
        // branch mispredicts on about every other tap.
        if (g.stride_width == 2 && avx512) {
          const Window rows = window(oh, g.stride_height, g.pad_top, g.kernel_height, g.in_height);
          max_pool_stride2_avx512(in, g.in_width, g.pad_left, g.kernel_width, rows.begin, rows.end, g.out_width,
                                  to + oh * g.out_width, index + oh * g.out_width);
          continue;
        }
#endif
        max_pool_argmax_row(in, g, oh, to + oh * g.out_width, index + oh * g.out_width);
      }
    }
  });
}

void max_pool_2x2_plane(const float* in, int64_t in_width, int64_t out_height, int64_t out_width, float* out,
                        int32_t* argmax) {
  const bool avx512 = pool_with_avx512();
  for (int64_t oh = 0; oh < out_height; ++oh) {
    pool_row_2x2_on(avx512, in + 2 * oh * in_width, in + (2 * oh + 1) * in_width, 2 * oh, in_width, out_width,
                    out + oh * out_width, argmax + oh * out_width);
  }
}

void max_pool2d_backward(const float* grad_out, const int32_t* argmax, float* grad_x, const PoolGeometry& g) {
  const int64_t plane_in = g.in_height * g.in_width;
  const int64_t plane_out = g.out_height * g.out_width;
  for_planes(g.batch * g.channels, plane_in + plane_out, [&](int64_t begin, int64_t end) {
    std::memset(grad_x + begin * plane_in, 0, static_cast<size_t>((end - begin) * plane_in) * sizeof(float));
    for (int64_t plane = begin; plane < end; ++plane) {
      float* to = grad_x + plane * plane_in;
      const float* from = grad_out + plane * plane_out;
      const int32_t* index = argmax + plane * plane_out;
      for (int64_t o = 0; o < plane_out; ++o) {
        // An index outside the plane cannot come from maxPool2dForward; skipping it keeps a bad
        // argument from writing outside gradX.
        const int64_t i = index[o];
        if (i >= 0 && i < plane_in) to[i] += from[o];
      }
    }
  });
}

void avg_pool2d_forward(const float* x, float* out, const PoolGeometry& g, bool count_include_pad) {
  const int64_t plane_in = g.in_height * g.in_width;
  const int64_t plane_out = g.out_height * g.out_width;
  for_planes(g.batch * g.channels, plane_in + plane_out, [&](int64_t begin, int64_t end) {
    for (int64_t plane = begin; plane < end; ++plane) {
      const float* in = x + plane * plane_in;
      float* to = out + plane * plane_out;
      for (int64_t oh = 0; oh < g.out_height; ++oh) {
        const Window rows = window(oh, g.stride_height, g.pad_top, g.kernel_height, g.in_height);
        for (int64_t ow = 0; ow < g.out_width; ++ow) {
          const Window columns = window(ow, g.stride_width, g.pad_left, g.kernel_width, g.in_width);
          double sum = 0.0;
          for (int64_t ih = rows.begin; ih < rows.end; ++ih) {
            for (int64_t iw = columns.begin; iw < columns.end; ++iw) sum += in[ih * g.in_width + iw];
          }
          const int64_t divisor =
              count_include_pad
                  ? padded_extent(oh, g.stride_height, g.pad_top, g.kernel_height, g.in_height) *
                        padded_extent(ow, g.stride_width, g.pad_left, g.kernel_width, g.in_width)
                  : std::max<int64_t>(rows.end - rows.begin, 0) * std::max<int64_t>(columns.end - columns.begin, 0);
          to[oh * g.out_width + ow] = static_cast<float>(sum / static_cast<double>(divisor));
        }
      }
    }
  });
}

void avg_pool2d_backward(const float* grad_out, float* grad_x, const PoolGeometry& g, bool count_include_pad) {
  const int64_t plane_in = g.in_height * g.in_width;
  const int64_t plane_out = g.out_height * g.out_width;
  for_planes(g.batch * g.channels, plane_in + plane_out, [&](int64_t begin, int64_t end) {
    std::memset(grad_x + begin * plane_in, 0, static_cast<size_t>((end - begin) * plane_in) * sizeof(float));
    for (int64_t plane = begin; plane < end; ++plane) {
      float* to = grad_x + plane * plane_in;
      const float* from = grad_out + plane * plane_out;
      for (int64_t oh = 0; oh < g.out_height; ++oh) {
        const Window rows = window(oh, g.stride_height, g.pad_top, g.kernel_height, g.in_height);
        for (int64_t ow = 0; ow < g.out_width; ++ow) {
          const Window columns = window(ow, g.stride_width, g.pad_left, g.kernel_width, g.in_width);
          const int64_t divisor =
              count_include_pad
                  ? padded_extent(oh, g.stride_height, g.pad_top, g.kernel_height, g.in_height) *
                        padded_extent(ow, g.stride_width, g.pad_left, g.kernel_width, g.in_width)
                  : std::max<int64_t>(rows.end - rows.begin, 0) * std::max<int64_t>(columns.end - columns.begin, 0);
          const float share =
              static_cast<float>(static_cast<double>(from[oh * g.out_width + ow]) / static_cast<double>(divisor));
          for (int64_t ih = rows.begin; ih < rows.end; ++ih) {
            for (int64_t iw = columns.begin; iw < columns.end; ++iw) to[ih * g.in_width + iw] += share;
          }
        }
      }
    }
  });
}

}  // namespace tensile
