// AVX-512 max pooling rows (see pool_avx512.h). This file is compiled with -mavx512f, in the
// library whose code runs only after run-time detection (binding.gyp).
#include "pool_avx512.h"

#include <immintrin.h>

#include <algorithm>

namespace tensile {

namespace {

// Bits [first, last) of a 32-bit mask, none when last ≤ first.
inline uint32_t bit_range(int64_t first, int64_t last) {
  return last <= first ? 0u : static_cast<uint32_t>(((uint64_t{1} << last) - 1) & ~((uint64_t{1} << first) - 1));
}

// Which of the `floats` floats from row column `column` lie inside a row of in_width: bit j for
// float j.
inline uint32_t inside_row(int64_t column, int64_t floats, int64_t in_width) {
  return bit_range(std::max<int64_t>(0, -column), std::min<int64_t>(floats, in_width - column));
}

// The even floats of the 32 at `from` (lane i: float 2i), those outside `inside` read as −∞ (and
// not touched).
inline __m512 even_floats(const float* from, uint32_t inside, __m512i evens, __m512 outside) {
  return _mm512_permutex2var_ps(_mm512_mask_loadu_ps(outside, static_cast<__mmask16>(inside & 0xFFFF), from), evens,
                                _mm512_mask_loadu_ps(outside, static_cast<__mmask16>(inside >> 16), from + 16));
}

}  // namespace

// Each tap's sixteen values are the even floats of two vectors, and the window's taps are taken in
// window_max's order (pool.cc: row-major; the first, then anything greater or NaN). A tap's floats
// outside the row (the padding at either edge) load as −∞, which that rule never takes after the
// first tap and which, taken first, the first tap inside the row replaces (or equals, if it is −∞
// too): the same value as skipping them, which is what window_max does.
void max_pool_values_stride2_avx512(const float* in, int64_t in_width, int64_t pad_left, int64_t kernel_width,
                                    int64_t row_begin, int64_t row_end, int64_t out_width, float* to) {
  const __m512i evens = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512 outside = _mm512_set1_ps(-__builtin_inff());
  for (int64_t ow = 0; ow < out_width; ow += 16) {
    // A tap's floats for these outputs: 32 while more outputs follow, else the 2·count − 1 that the
    // last outputs read; of those, the ones inside the row (the masked loads touch nothing else).
    const int64_t count = std::min<int64_t>(16, out_width - ow);
    const int64_t floats = ow + 16 < out_width ? 32 : 2 * count - 1;
    const int64_t start = 2 * ow - pad_left;  // the row column of float 0 at kw = 0
    // Away from the row's ends every tap reads all its floats: one mask for all.
    const bool interior = start >= 0 && start + kernel_width - 1 + floats <= in_width;
    uint32_t inside = interior ? inside_row(start, floats, in_width) : 0;
    __m512 best = outside;
    bool first = true;
    for (int64_t ih = row_begin; ih < row_end; ++ih) {
      for (int64_t kw = 0; kw < kernel_width; ++kw) {
        if (!interior) inside = inside_row(start + kw, floats, in_width);
        const __m512 value = even_floats(in + ih * in_width + start + kw, inside, evens, outside);
        if (first) {
          best = value;
          first = false;
          continue;
        }
        const __mmask16 take =
            _mm512_cmp_ps_mask(value, best, _CMP_GT_OQ) | _mm512_cmp_ps_mask(value, value, _CMP_UNORD_Q);
        best = _mm512_mask_blend_ps(take, best, value);
      }
    }
    _mm512_mask_storeu_ps(to + ow, static_cast<__mmask16>((1u << count) - 1), best);
  }
}

// max_pool_values_stride2_avx512 with each winner's index (ih·in_width + iw, as window_max gives
// it) for every output of the row. The window's first tap inside the row is taken whatever its
// value, as window_max takes it (its value could be −∞, which the padding's −∞ must not stand in
// for here, since the index differs): a lane takes a tap inside the row when it has taken none yet,
// or when the value is greater or NaN. A window with no tap inside the input keeps (−∞, −1),
// window_max's empty result.
void max_pool_stride2_avx512(const float* in, int64_t in_width, int64_t pad_left, int64_t kernel_width,
                             int64_t row_begin, int64_t row_end, int64_t out_width, float* to, int32_t* index) {
  const __m512i evens = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512 outside = _mm512_set1_ps(-__builtin_inff());
  for (int64_t ow = 0; ow < out_width; ow += 16) {
    const int64_t count = std::min<int64_t>(16, out_width - ow);
    const int64_t floats = 2 * count - 1;
    const int64_t start = 2 * ow - pad_left;
    // Away from the row's ends every tap reads all its floats and every lane one inside the row.
    const bool interior = start >= 0 && start + kernel_width - 1 + floats <= in_width;
    uint32_t floats_inside = interior ? inside_row(start, floats, in_width) : 0;
    __mmask16 inside = interior ? static_cast<__mmask16>((1u << count) - 1) : 0;
    __m512 best = outside;
    __m512i at = _mm512_set1_epi32(-1);
    __mmask16 have = 0;
    for (int64_t ih = row_begin; ih < row_end; ++ih) {
      for (int64_t kw = 0; kw < kernel_width; ++kw) {
        if (!interior) {
          floats_inside = inside_row(start + kw, floats, in_width);
          if (floats_inside == 0) continue;
          // Lane i reads float 2i: the lanes whose float lies inside the row.
          const int64_t first = __builtin_ctz(floats_inside);
          const int64_t last = 32 - __builtin_clz(floats_inside);
          inside = static_cast<__mmask16>(bit_range((first + 1) / 2, (last + 1) / 2));
        }
        const float* from = in + ih * in_width + start + kw;
        const __m512 value = even_floats(from, floats_inside, evens, outside);
        const __mmask16 take = inside & (static_cast<__mmask16>(~have) | _mm512_cmp_ps_mask(value, best, _CMP_GT_OQ) |
                                         _mm512_cmp_ps_mask(value, value, _CMP_UNORD_Q));
        best = _mm512_mask_blend_ps(take, best, value);
        // Lane i's index: the row's offset of float 2i.
        const __m512i column = _mm512_add_epi32(_mm512_set1_epi32(static_cast<int32_t>(from - in)), evens);
        at = _mm512_mask_blend_epi32(take, at, column);
        have = have | take;
      }
    }
    const __mmask16 stored = static_cast<__mmask16>((1u << count) - 1);
    _mm512_mask_storeu_ps(to + ow, stored, best);
    _mm512_mask_storeu_epi32(index + ow, stored, at);
  }
}

// pool_row_2x2 (pool.cc) sixteen windows at a time: window w is (top[2w], top[2w + 1],
// bottom[2w], bottom[2w + 1]), taken in that order (the first, then anything greater or NaN), its
// index that of the winner in the plane; the last 1 to 16 windows with loads masked to their floats.
void max_pool_2x2_row_avx512(const float* top, const float* bottom, int64_t row_index, int64_t in_width,
                             int64_t out_width, float* to, int32_t* index) {
  const __m512i evens = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odds = _mm512_add_epi32(evens, _mm512_set1_epi32(1));
  const __m512i row = _mm512_set1_epi32(static_cast<int32_t>(row_index * in_width));
  const __m512i below = _mm512_set1_epi32(static_cast<int32_t>(in_width));
  for (int64_t ow = 0; ow < out_width; ow += 16) {
    const int64_t count = std::min<int64_t>(16, out_width - ow);
    const __mmask16 low = count >= 8 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << (2 * count)) - 1);
    const __mmask16 high = count > 8 ? static_cast<__mmask16>((1u << (2 * count - 16)) - 1) : static_cast<__mmask16>(0);
    const float* top_at = top + 2 * ow;
    const float* bottom_at = bottom + 2 * ow;
    const __m512 top_low = _mm512_maskz_loadu_ps(low, top_at);
    const __m512 top_high = _mm512_maskz_loadu_ps(high, top_at + 16);
    const __m512 bottom_low = _mm512_maskz_loadu_ps(low, bottom_at);
    const __m512 bottom_high = _mm512_maskz_loadu_ps(high, bottom_at + 16);
    // Lane i's top-left float in the plane: row_index·in_width + 2·(ow + i).
    const __m512i column = _mm512_set1_epi32(static_cast<int32_t>(2 * ow));
    const __m512i left = _mm512_add_epi32(_mm512_add_epi32(row, column), evens);
    const __m512 candidates[4] = {
        _mm512_permutex2var_ps(top_low, evens, top_high),
        _mm512_permutex2var_ps(top_low, odds, top_high),
        _mm512_permutex2var_ps(bottom_low, evens, bottom_high),
        _mm512_permutex2var_ps(bottom_low, odds, bottom_high),
    };
    const __m512i offsets[4] = {left, _mm512_add_epi32(left, _mm512_set1_epi32(1)), _mm512_add_epi32(left, below),
                                _mm512_add_epi32(_mm512_add_epi32(left, below), _mm512_set1_epi32(1))};
    __m512 best = candidates[0];
    __m512i at = offsets[0];
    for (int i = 1; i < 4; ++i) {
      const __mmask16 take = _mm512_cmp_ps_mask(candidates[i], best, _CMP_GT_OQ) |
                             _mm512_cmp_ps_mask(candidates[i], candidates[i], _CMP_UNORD_Q);
      best = _mm512_mask_blend_ps(take, best, candidates[i]);
      at = _mm512_mask_blend_epi32(take, at, offsets[i]);
    }
    const __mmask16 stored = static_cast<__mmask16>((1u << count) - 1);
    _mm512_mask_storeu_ps(to + ow, stored, best);
    _mm512_mask_storeu_epi32(index + ow, stored, at);
  }
}

}  // namespace tensile
