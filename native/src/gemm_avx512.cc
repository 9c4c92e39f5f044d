// AVX-512 variant of the GEMM micro-kernel. This file alone is compiled with -mavx512f; it is used
// only after run-time detection finds AVX-512 enabled by the CPU and the operating system. Packing
// is memory-bound, so this variant shares the AVX2 packing routines.
#include <immintrin.h>

#include "gemm.h"

namespace tensile {

void pack_avx2(const float* src, int64_t row_stride, int64_t step_stride, int64_t rows, int64_t k, int width,
               float* dst);
void pack_steps_avx2(const float* base, const int64_t* step_offsets, int64_t rows, int64_t k, int width, float* dst);
void pack_rows_avx2(const float* base, const int64_t* row_offsets, int64_t rows, int64_t k, int width, float* dst);

namespace {

constexpr int kRows = 8;

// 8×32 tile: 16 zmm accumulators + 2 B vectors + broadcasts, of 32 registers. Each step does 16 FMAs
// against 2 loads and 8 broadcasts. Eight rows divide CNN channel counts exactly, and 32 columns
// divide 9·32 and 9·64 (the im2col rows of 3×3 convolutions).
void micro_8x32(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, bool accumulate) {
  // Fetch C's tile now so that its latency hides behind the FMAs (32 floats may touch three lines).
  for (int r = 0; r < kRows; ++r) {
    _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc + 16), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc + 31), _MM_HINT_T0);
  }
  // The accumulators' set-up unrolled: as a loop, GCC 12 also zeroed stack copies of both arrays
  // with `rep stos` on every call in the indirect and rows variants (2–3% of a stride-2 layer).
  __m512 low[kRows];
  __m512 high[kRows];
#pragma GCC unroll 8
  for (int r = 0; r < kRows; ++r) {
    low[r] = _mm512_setzero_ps();
    high[r] = _mm512_setzero_ps();
  }
#pragma GCC unroll 2
  for (int64_t kk = 0; kk < kc; ++kk) {
    const __m512 b0 = _mm512_loadu_ps(b);
    const __m512 b1 = _mm512_loadu_ps(b + 16);
#pragma GCC unroll 8
    for (int r = 0; r < kRows; ++r) {
      const __m512 av = _mm512_set1_ps(a[r]);
      low[r] = _mm512_fmadd_ps(av, b0, low[r]);
      high[r] = _mm512_fmadd_ps(av, b1, high[r]);
    }
    a += kRows;
    b += 32;
  }
#pragma GCC unroll 8
  for (int r = 0; r < kRows; ++r) {
    float* row = c + r * ldc;
    __m512 v0 = low[r];
    __m512 v1 = high[r];
    if (accumulate) {
      v0 = _mm512_add_ps(_mm512_loadu_ps(row), v0);
      v1 = _mm512_add_ps(_mm512_loadu_ps(row + 16), v1);
    }
    _mm512_storeu_ps(row, v0);
    _mm512_storeu_ps(row + 16, v1);
  }
}

// micro_8x32 with B read in place: step kk's 32 lanes at b + b_offsets[kk].
void micro_8x32_indirect(int64_t kc, const float* a, const float* b, const int64_t* b_offsets, float* c, int64_t ldc,
                         bool accumulate) {
  for (int r = 0; r < kRows; ++r) {
    _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc + 16), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc + 31), _MM_HINT_T0);
  }
  __m512 low[kRows];
  __m512 high[kRows];
#pragma GCC unroll 8
  for (int r = 0; r < kRows; ++r) {
    low[r] = _mm512_setzero_ps();
    high[r] = _mm512_setzero_ps();
  }
#pragma GCC unroll 2
  for (int64_t kk = 0; kk < kc; ++kk) {
    const float* row = b + b_offsets[kk];
    const __m512 b0 = _mm512_loadu_ps(row);
    const __m512 b1 = _mm512_loadu_ps(row + 16);
#pragma GCC unroll 8
    for (int r = 0; r < kRows; ++r) {
      const __m512 av = _mm512_set1_ps(a[r]);
      low[r] = _mm512_fmadd_ps(av, b0, low[r]);
      high[r] = _mm512_fmadd_ps(av, b1, high[r]);
    }
    a += kRows;
  }
#pragma GCC unroll 8
  for (int r = 0; r < kRows; ++r) {
    float* out = c + r * ldc;
    __m512 v0 = low[r];
    __m512 v1 = high[r];
    if (accumulate) {
      v0 = _mm512_add_ps(_mm512_loadu_ps(out), v0);
      v1 = _mm512_add_ps(_mm512_loadu_ps(out + 16), v1);
    }
    _mm512_storeu_ps(out, v0);
    _mm512_storeu_ps(out + 16, v1);
  }
}

// micro_8x32 with A read in place: step kk of row r at a_rows[r][kk], or with kSteps at
// a_rows[r][a_steps[kk]].
template <bool kSteps>
void micro_8x32_rows_of(int64_t kc, const float* const* a_rows, const int64_t* a_steps, const float* b, float* c,
                        int64_t ldc, bool accumulate) {
  const float* rows[kRows];
  for (int r = 0; r < kRows; ++r) rows[r] = a_rows[r];
  __m512 low[kRows];
  __m512 high[kRows];
#pragma GCC unroll 8
  for (int r = 0; r < kRows; ++r) {
    low[r] = _mm512_setzero_ps();
    high[r] = _mm512_setzero_ps();
  }
#pragma GCC unroll 2
  for (int64_t kk = 0; kk < kc; ++kk) {
    const __m512 b0 = _mm512_loadu_ps(b);
    const __m512 b1 = _mm512_loadu_ps(b + 16);
#pragma GCC unroll 8
    for (int r = 0; r < kRows; ++r) {
      const __m512 av = _mm512_set1_ps(rows[r][kSteps ? a_steps[kk] : kk]);
      low[r] = _mm512_fmadd_ps(av, b0, low[r]);
      high[r] = _mm512_fmadd_ps(av, b1, high[r]);
    }
    b += 32;
  }
#pragma GCC unroll 8
  for (int r = 0; r < kRows; ++r) {
    float* out = c + r * ldc;
    __m512 v0 = low[r];
    __m512 v1 = high[r];
    if (accumulate) {
      v0 = _mm512_add_ps(_mm512_loadu_ps(out), v0);
      v1 = _mm512_add_ps(_mm512_loadu_ps(out + 16), v1);
    }
    _mm512_storeu_ps(out, v0);
    _mm512_storeu_ps(out + 16, v1);
  }
}

void micro_8x32_rows(int64_t kc, const float* const* a_rows, const int64_t* a_steps, const float* b, float* c,
                     int64_t ldc, bool accumulate) {
  if (a_steps == nullptr) {
    micro_8x32_rows_of<false>(kc, a_rows, nullptr, b, c, ldc, accumulate);
  } else {
    micro_8x32_rows_of<true>(kc, a_rows, a_steps, b, c, ldc, accumulate);
  }
}

}  // namespace

const GemmKernels* avx512_kernels() {
  static const GemmKernels kernels{
      "avx512", kRows, 32, 256,  // name, mr, nr, kc_max
      micro_8x32, pack_avx2, pack_steps_avx2, pack_rows_avx2, micro_8x32_indirect, micro_8x32_rows,
  };
  return &kernels;
}

}  // namespace tensile
