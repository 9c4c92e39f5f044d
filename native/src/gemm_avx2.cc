// AVX2 + FMA variant of the GEMM inner loops, and the packing routines it shares with the AVX-512
// variant. This file alone is compiled with -mavx2 -mfma; its functions are called only after
// run-time CPU detection says the instructions exist.
#include <immintrin.h>

#include <algorithm>

#include "gemm.h"

namespace tensile {

void pack_portable(const float* src, int64_t row_stride, int64_t step_stride, int64_t rows, int64_t k, int width,
                   float* dst);

namespace {

// 4×24 tile: 12 accumulators + 3 B vectors + 1 broadcast of A = all 16 ymm registers. Each step does
// 12 FMAs against 3 loads and 4 broadcasts. Four rows (rather than the classic 6×16) divide the
// channel counts of CNNs (32, 64, ...) exactly, so convolution GEMMs waste no panel rows.
void micro_4x24(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, bool accumulate) {
  // C's tile is usually far away (L3 or memory); fetching it now hides the latency behind the FMAs
  // instead of stalling on it at the end. 24 floats may touch three cache lines.
  for (int r = 0; r < 4; ++r) {
    _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc + 16), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc + 23), _MM_HINT_T0);
  }
  __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps(), c02 = _mm256_setzero_ps();
  __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps(), c12 = _mm256_setzero_ps();
  __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps(), c22 = _mm256_setzero_ps();
  __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps(), c32 = _mm256_setzero_ps();
#pragma GCC unroll 4
  for (int64_t kk = 0; kk < kc; ++kk) {
    const __m256 b0 = _mm256_loadu_ps(b);
    const __m256 b1 = _mm256_loadu_ps(b + 8);
    const __m256 b2 = _mm256_loadu_ps(b + 16);
    __m256 av = _mm256_broadcast_ss(a + 0);
    c00 = _mm256_fmadd_ps(av, b0, c00);
    c01 = _mm256_fmadd_ps(av, b1, c01);
    c02 = _mm256_fmadd_ps(av, b2, c02);
    av = _mm256_broadcast_ss(a + 1);
    c10 = _mm256_fmadd_ps(av, b0, c10);
    c11 = _mm256_fmadd_ps(av, b1, c11);
    c12 = _mm256_fmadd_ps(av, b2, c12);
    av = _mm256_broadcast_ss(a + 2);
    c20 = _mm256_fmadd_ps(av, b0, c20);
    c21 = _mm256_fmadd_ps(av, b1, c21);
    c22 = _mm256_fmadd_ps(av, b2, c22);
    av = _mm256_broadcast_ss(a + 3);
    c30 = _mm256_fmadd_ps(av, b0, c30);
    c31 = _mm256_fmadd_ps(av, b1, c31);
    c32 = _mm256_fmadd_ps(av, b2, c32);
    a += 4;
    b += 24;
  }
  auto store = [&](float* row, __m256 v0, __m256 v1, __m256 v2) {
    if (accumulate) {
      v0 = _mm256_add_ps(_mm256_loadu_ps(row), v0);
      v1 = _mm256_add_ps(_mm256_loadu_ps(row + 8), v1);
      v2 = _mm256_add_ps(_mm256_loadu_ps(row + 16), v2);
    }
    _mm256_storeu_ps(row, v0);
    _mm256_storeu_ps(row + 8, v1);
    _mm256_storeu_ps(row + 16, v2);
  };
  store(c, c00, c01, c02);
  store(c + ldc, c10, c11, c12);
  store(c + 2 * ldc, c20, c21, c22);
  store(c + 3 * ldc, c30, c31, c32);
}

// micro_4x24 with B read in place: step kk's 24 lanes at b + b_offsets[kk].
void micro_4x24_indirect(int64_t kc, const float* a, const float* b, const int64_t* b_offsets, float* c, int64_t ldc,
                         bool accumulate) {
  for (int r = 0; r < 4; ++r) {
    _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc + 16), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc + 23), _MM_HINT_T0);
  }
  __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps(), c02 = _mm256_setzero_ps();
  __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps(), c12 = _mm256_setzero_ps();
  __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps(), c22 = _mm256_setzero_ps();
  __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps(), c32 = _mm256_setzero_ps();
#pragma GCC unroll 4
  for (int64_t kk = 0; kk < kc; ++kk) {
    const float* row = b + b_offsets[kk];
    const __m256 b0 = _mm256_loadu_ps(row);
    const __m256 b1 = _mm256_loadu_ps(row + 8);
    const __m256 b2 = _mm256_loadu_ps(row + 16);
    __m256 av = _mm256_broadcast_ss(a + 0);
    c00 = _mm256_fmadd_ps(av, b0, c00);
    c01 = _mm256_fmadd_ps(av, b1, c01);
    c02 = _mm256_fmadd_ps(av, b2, c02);
    av = _mm256_broadcast_ss(a + 1);
    c10 = _mm256_fmadd_ps(av, b0, c10);
    c11 = _mm256_fmadd_ps(av, b1, c11);
    c12 = _mm256_fmadd_ps(av, b2, c12);
    av = _mm256_broadcast_ss(a + 2);
    c20 = _mm256_fmadd_ps(av, b0, c20);
    c21 = _mm256_fmadd_ps(av, b1, c21);
    c22 = _mm256_fmadd_ps(av, b2, c22);
    av = _mm256_broadcast_ss(a + 3);
    c30 = _mm256_fmadd_ps(av, b0, c30);
    c31 = _mm256_fmadd_ps(av, b1, c31);
    c32 = _mm256_fmadd_ps(av, b2, c32);
    a += 4;
  }
  auto store = [&](float* row, __m256 v0, __m256 v1, __m256 v2) {
    if (accumulate) {
      v0 = _mm256_add_ps(_mm256_loadu_ps(row), v0);
      v1 = _mm256_add_ps(_mm256_loadu_ps(row + 8), v1);
      v2 = _mm256_add_ps(_mm256_loadu_ps(row + 16), v2);
    }
    _mm256_storeu_ps(row, v0);
    _mm256_storeu_ps(row + 8, v1);
    _mm256_storeu_ps(row + 16, v2);
  };
  store(c, c00, c01, c02);
  store(c + ldc, c10, c11, c12);
  store(c + 2 * ldc, c20, c21, c22);
  store(c + 3 * ldc, c30, c31, c32);
}

// micro_4x24 with A read in place: step kk of row r at a_rows[r][kk], or with kSteps at
// a_rows[r][a_steps[kk]].
template <bool kSteps>
void micro_4x24_rows_of(int64_t kc, const float* const* a_rows, const int64_t* a_steps, const float* b, float* c,
                        int64_t ldc, bool accumulate) {
  const float* a0 = a_rows[0];
  const float* a1 = a_rows[1];
  const float* a2 = a_rows[2];
  const float* a3 = a_rows[3];
  __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps(), c02 = _mm256_setzero_ps();
  __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps(), c12 = _mm256_setzero_ps();
  __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps(), c22 = _mm256_setzero_ps();
  __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps(), c32 = _mm256_setzero_ps();
#pragma GCC unroll 4
  for (int64_t kk = 0; kk < kc; ++kk) {
    const int64_t step = kSteps ? a_steps[kk] : kk;
    const __m256 b0 = _mm256_loadu_ps(b);
    const __m256 b1 = _mm256_loadu_ps(b + 8);
    const __m256 b2 = _mm256_loadu_ps(b + 16);
    __m256 av = _mm256_broadcast_ss(a0 + step);
    c00 = _mm256_fmadd_ps(av, b0, c00);
    c01 = _mm256_fmadd_ps(av, b1, c01);
    c02 = _mm256_fmadd_ps(av, b2, c02);
    av = _mm256_broadcast_ss(a1 + step);
    c10 = _mm256_fmadd_ps(av, b0, c10);
    c11 = _mm256_fmadd_ps(av, b1, c11);
    c12 = _mm256_fmadd_ps(av, b2, c12);
    av = _mm256_broadcast_ss(a2 + step);
    c20 = _mm256_fmadd_ps(av, b0, c20);
    c21 = _mm256_fmadd_ps(av, b1, c21);
    c22 = _mm256_fmadd_ps(av, b2, c22);
    av = _mm256_broadcast_ss(a3 + step);
    c30 = _mm256_fmadd_ps(av, b0, c30);
    c31 = _mm256_fmadd_ps(av, b1, c31);
    c32 = _mm256_fmadd_ps(av, b2, c32);
    b += 24;
  }
  auto store = [&](float* row, __m256 v0, __m256 v1, __m256 v2) {
    if (accumulate) {
      v0 = _mm256_add_ps(_mm256_loadu_ps(row), v0);
      v1 = _mm256_add_ps(_mm256_loadu_ps(row + 8), v1);
      v2 = _mm256_add_ps(_mm256_loadu_ps(row + 16), v2);
    }
    _mm256_storeu_ps(row, v0);
    _mm256_storeu_ps(row + 8, v1);
    _mm256_storeu_ps(row + 16, v2);
  };
  store(c, c00, c01, c02);
  store(c + ldc, c10, c11, c12);
  store(c + 2 * ldc, c20, c21, c22);
  store(c + 3 * ldc, c30, c31, c32);
}

void micro_4x24_rows(int64_t kc, const float* const* a_rows, const int64_t* a_steps, const float* b, float* c,
                     int64_t ldc, bool accumulate) {
  if (a_steps == nullptr) {
    micro_4x24_rows_of<false>(kc, a_rows, nullptr, b, c, ldc, accumulate);
  } else {
    micro_4x24_rows_of<true>(kc, a_rows, a_steps, b, c, ldc, accumulate);
  }
}

// Lane masks for masked loads and stores: mask_of(n) enables the first n of 8 lanes.
inline __m256i mask_of(int64_t n) {
  const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), lanes);
}

// Stores v (8 lanes) at to, or only its first `room` lanes when room < 8, so a panel narrower than a
// multiple of 8 never writes into its neighbour.
inline void store_lanes(float* to, __m256 v, int64_t room) {
  if (room >= 8) {
    _mm256_storeu_ps(to, v);
  } else {
    _mm256_maskstore_ps(to, mask_of(room), v);
  }
}

// Copies count (≤ width) contiguous floats into one panel step of `width` lanes, zero-filling the rest.
inline void copy_lanes(const float* from, float* to, int64_t count, int width) {
  for (int group = 0; group < width; group += 8) {
    const int64_t available = count - group;
    __m256 v;
    if (available >= 8) {
      v = _mm256_loadu_ps(from + group);
    } else if (available > 0) {
      v = _mm256_maskload_ps(from + group, mask_of(available));
    } else {
      v = _mm256_setzero_ps();
    }
    store_lanes(to + group, v, width - group);
  }
}

// In-place transpose of 8 rows of 8 floats: afterwards r[i] holds element i of each original row.
inline void transpose8(__m256 r[8]) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]);
  const __m256 t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]);
  const __m256 t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]);
  const __m256 t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]);
  const __m256 t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44);
  const __m256 s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44);
  const __m256 s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44);
  const __m256 s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44);
  const __m256 s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
  r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
  r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
  r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
  r[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
  r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
  r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
  r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

// One panel whose rows (row r at rows[r], count ≤ width of them) are contiguous along k (the usual A,
// or a transposed B): 8×8 blocks transposed in registers.
void pack_transposing(const float* const* rows, int64_t count, int64_t k, int width, float* panel) {
  int64_t kk = 0;
  for (; kk + 8 <= k; kk += 8) {
    for (int group = 0; group < width; group += 8) {
      __m256 r[8];
      for (int i = 0; i < 8; ++i) {
        const int row = group + i;
        r[i] = row < count ? _mm256_loadu_ps(rows[row] + kk) : _mm256_setzero_ps();
      }
      transpose8(r);
      for (int i = 0; i < 8; ++i) store_lanes(panel + (kk + i) * width + group, r[i], width - group);
    }
  }
  for (; kk < k; ++kk) {
    float* to = panel + kk * width;
    for (int r = 0; r < width; ++r) to[r] = r < count ? rows[r][kk] : 0.0f;
  }
}

}  // namespace

void pack_avx2(const float* src, int64_t row_stride, int64_t step_stride, int64_t rows, int64_t k, int width,
               float* dst) {
  for (int64_t first = 0; first < rows; first += width) {
    const int64_t count = std::min<int64_t>(width, rows - first);
    float* panel = dst + first * k;
    const float* base = src + first * row_stride;
    if (row_stride == 1) {
      for (int64_t kk = 0; kk < k; ++kk) copy_lanes(base + kk * step_stride, panel + kk * width, count, width);
    } else if (step_stride == 1) {
      const float* rows_of_panel[kMaxPanelWidth];
      for (int64_t r = 0; r < count; ++r) rows_of_panel[r] = base + r * row_stride;
      pack_transposing(rows_of_panel, count, k, width, panel);
    } else {
      pack_portable(base, row_stride, step_stride, count, k, width, panel);
    }
  }
}

void pack_steps_avx2(const float* base, const int64_t* step_offsets, int64_t rows, int64_t k, int width, float* dst) {
  for (int64_t first = 0; first < rows; first += width) {
    const int64_t count = std::min<int64_t>(width, rows - first);
    float* panel = dst + first * k;
    for (int64_t kk = 0; kk < k; ++kk) copy_lanes(base + step_offsets[kk] + first, panel + kk * width, count, width);
  }
}

void pack_rows_avx2(const float* base, const int64_t* row_offsets, int64_t rows, int64_t k, int width, float* dst) {
  for (int64_t first = 0; first < rows; first += width) {
    const int64_t count = std::min<int64_t>(width, rows - first);
    const float* rows_of_panel[kMaxPanelWidth];
    for (int64_t r = 0; r < count; ++r) rows_of_panel[r] = base + row_offsets[first + r];
    pack_transposing(rows_of_panel, count, k, width, dst + first * k);
  }
}

const GemmKernels* avx2_kernels() {
  static const GemmKernels kernels{
      "avx2", 4, 24, 256,  // name, mr, nr, kc_max
      micro_4x24, pack_avx2, pack_steps_avx2, pack_rows_avx2, micro_4x24_indirect, micro_4x24_rows,
  };
  return &kernels;
}

}  // namespace tensile
