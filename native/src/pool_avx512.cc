// AVX-512 max pooling rows (see pool_avx512.h). This file is compiled with -mavx512f, in the
// library whose code runs only after run-time detection (binding.gyp).
#include "pool_avx512.h"

#include <immintrin.h>

#include <algorithm>

namespace tensile {

// Each tap's sixteen values are the even floats of two vectors, and the window's taps are taken in
// window_max's order (pool.cc: row-major; the first, then anything greater or NaN).
int64_t max_pool_values_stride2_avx512(const float* in, int64_t in_width, int64_t pad_left, int64_t kernel_width,
                                       int64_t row_begin, int64_t row_end, int64_t begin, int64_t end, float* to) {
  const __m512i evens = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  for (int64_t ow = begin; ow < end; ow += 16) {
    // A tap's floats for these outputs: 32 while more outputs follow, else the 2·count − 1 that the
    // last outputs read (the masked loads touch nothing past the row's end).
    const int64_t count = std::min<int64_t>(16, end - ow);
    const int64_t floats = ow + 16 < end ? 32 : 2 * count - 1;
    const __mmask16 low = floats >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << floats) - 1);
    const __mmask16 high = floats >= 32   ? static_cast<__mmask16>(0xFFFF)
                           : floats > 16 ? static_cast<__mmask16>((1u << (floats - 16)) - 1)
                                         : static_cast<__mmask16>(0);
    const float* corner = in + 2 * ow - pad_left;
    __m512 best = _mm512_setzero_ps();
    bool first = true;
    for (int64_t ih = row_begin; ih < row_end; ++ih) {
      for (int64_t kw = 0; kw < kernel_width; ++kw) {
        const float* from = corner + ih * in_width + kw;
        const __m512 value =
            _mm512_permutex2var_ps(_mm512_maskz_loadu_ps(low, from), evens, _mm512_maskz_loadu_ps(high, from + 16));
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
  return end;
}

}  // namespace tensile
