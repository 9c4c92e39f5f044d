// Packed, cache-blocked single-precision GEMM.
//
// C[m×n] (+)= A[m×k] · B[k×n], every operand given by a base pointer and two strides so that
// transposed operands, im2col rows and channel planes all go through the same code.
//
// Layout of packed operands: A is cut into panels of `mr` rows, B into panels of `nr` columns, each
// panel holding all k steps contiguously (panel p of A: k·mr floats, element (p·mr + r, kk) at
// [kk·mr + r]). Rows past m and columns past n are zero. Because every panel spans the whole k
// range, the driver's k-blocking is a pointer offset, and a packed operand can be shared by many
// products (the weights of a convolution are packed once per call, not once per sample).
//
// Determinism: every element of C is summed in an order fixed by k and the k-block size alone:
// partial sums over a k block start from zero in registers and are then added to C. No split of the
// work across threads changes that order, so results are bitwise identical for any thread count.
#pragma once

#include <cstdint>

namespace tensile {

// One instruction-set variant of the GEMM inner loops.
struct GemmKernels {
  const char* name;
  int mr;
  int nr;
  // Largest k block: a k block of one A and one B micro-panel, (mr + nr)·kc_max floats, fits in L1.
  int kc_max;
  // tile[mr×nr] at c (row stride ldc) = (accumulate ? tile : 0) + Σ_kk a[kk·mr + r]·b[kk·nr + j].
  void (*micro)(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, bool accumulate);
  // Packs rows [0, rows) × steps [0, k) of src, element (r, kk) at src[r·row_stride + kk·step_stride],
  // into panels of `width` rows: dst[(r / width)·k·width + kk·width + r % width], zero-padding the
  // last panel. width is this kernel set's mr (for A) or nr (for B).
  void (*pack)(const float* src, int64_t row_stride, int64_t step_stride, int64_t rows, int64_t k, int width,
               float* dst);
  // Same layout, with step kk of the `rows` lanes contiguous at base + step_offsets[kk] (a B operand
  // whose rows lie at irregular places, such as the tap rows of a convolution).
  void (*pack_steps)(const float* base, const int64_t* step_offsets, int64_t rows, int64_t k, int width, float* dst);
  // Same layout, with row r contiguous along k at base + row_offsets[r] (an A operand given by rows).
  void (*pack_rows)(const float* base, const int64_t* row_offsets, int64_t rows, int64_t k, int width, float* dst);
  // The micro-kernel with an unpacked B whose step kk holds nr contiguous lanes at b + b_offsets[kk]
  // (the im2col rows of a stride-1 convolution, read in place). Same sums in the same order as micro.
  void (*micro_indirect)(int64_t kc, const float* a, const float* b, const int64_t* b_offsets, float* c,
                         int64_t ldc, bool accumulate);
  // The micro-kernel with an unpacked A whose row r (mr rows) holds step kk at a_rows[r][kk], or with
  // a_steps at a_rows[r][a_steps[kk]] (a product that skips some of A's columns).
  void (*micro_rows)(int64_t kc, const float* const* a_rows, const int64_t* a_steps, const float* b, float* c,
                     int64_t ldc, bool accumulate);
};

// Largest panel width of any variant (for stack buffers).
constexpr int kMaxPanelWidth = 32;

// The variants compiled in; avx2_kernels() and avx512_kernels() are null when the build lacks them.
const GemmKernels& scalar_kernels();
const GemmKernels* avx2_kernels();
const GemmKernels* avx512_kernels();

// The variant in use: chosen once from CPU features, overridable for tests.
const GemmKernels& active_kernels();
// Selects a variant by name ("avx512", "avx2" or "scalar"); returns false when it is unknown or this
// CPU (or build) cannot run it.
bool select_kernels(const char* name);
// Whether this CPU and operating system can run the AVX2+FMA, and the AVX-512 (F) variants.
bool cpu_has_avx2_fma();
bool cpu_has_avx512();

// Size of a packed operand with `rows` rows (A) or columns (B) and k steps, in floats.
inline int64_t packed_size(int64_t rows, int64_t k, int width) {
  return (rows + width - 1) / width * width * k;
}

// Product of packed operands restricted to A panels [panel_row_begin, panel_row_end) and B panels
// [panel_col_begin, panel_col_end); single-threaded. m and n are the full logical sizes (used to clip
// edge tiles), c points at element (0, 0) of the full C.
void gemm_packed(const GemmKernels& kernels, int64_t m, int64_t n, int64_t k, const float* packed_a,
                 const float* packed_b, float* c, int64_t ldc, bool accumulate, int64_t panel_row_begin,
                 int64_t panel_row_end, int64_t panel_col_begin, int64_t panel_col_end);

// Whole product of packed operands on the calling thread.
inline void gemm_packed(const GemmKernels& kernels, int64_t m, int64_t n, int64_t k, const float* packed_a,
                        const float* packed_b, float* c, int64_t ldc, bool accumulate) {
  gemm_packed(kernels, m, n, k, packed_a, packed_b, c, ldc, accumulate, 0, (m + kernels.mr - 1) / kernels.mr, 0,
              (n + kernels.nr - 1) / kernels.nr);
}

// Product of packed A with an unpacked B given by step offsets: B(kk, j) = b[b_offsets[kk] + j], for
// which every j < ceil(n / nr)·nr must be readable (edge columns are computed and discarded).
// Single-threaded; bitwise equal to packing B and calling gemm_packed.
void gemm_indirect_b(const GemmKernels& kernels, int64_t m, int64_t n, int64_t k, const float* packed_a,
                     const float* b, const int64_t* b_offsets, float* c, int64_t ldc, bool accumulate);

// Product of an unpacked A given by row offsets, A(i, kk) = a[a_row_offsets[i] + kk], with packed B.
// Rows [row_begin, row_end) of A and C only (row_begin a multiple of mr). Single-threaded; bitwise
// equal to packing A and calling gemm_packed.
void gemm_indirect_a(const GemmKernels& kernels, int64_t row_begin, int64_t row_end, int64_t n, int64_t k,
                     const float* a, const int64_t* a_row_offsets, const float* packed_b, float* c, int64_t ldc,
                     bool accumulate);

// One column panel of B for gemm_step_panels_threaded, with steps of its own: `steps` steps of nr
// lanes packed at b (step s at b + s·nr), step s multiplying A's column a_steps[s] (without a table,
// column s), summed in blocks of block_steps.
struct StepPanel {
  const float* b;
  const int64_t* a_steps;
  int64_t steps;
  int64_t block_steps;
};

// C[m × n] = A·B by all threads (C overwritten), A unpacked as in gemm_indirect_a, and each column
// panel of B with steps of its own (panels[j] for columns [j·nr, (j + 1)·nr)): for a convolution
// whose panels skip the taps that read only padding. Each panel's steps are summed block by block,
// block b over steps [b·block_steps, (b + 1)·block_steps) for b < `blocks`, each block from zero and
// then added to C in order; columns of a panel without steps come out zero. k (A's columns, used to
// split the work) does not change the sums: they are bitwise independent of the thread count.
void gemm_step_panels_threaded(int64_t m, int64_t n, int64_t k, int64_t blocks, const float* a,
                               const int64_t* a_row_offsets, const StepPanel* panels, float* c, int64_t ldc);

// A strided operand: element (i, j) at data[i·row_stride + j·column_stride].
struct MatrixView {
  const float* data;
  int64_t row_stride;
  int64_t column_stride;
};

// C (+)= A·B of packed operands using the thread pool (split into blocks of whole panels of C).
void gemm_packed_threaded(int64_t m, int64_t n, int64_t k, const float* packed_a, const float* packed_b, float* c,
                          int64_t ldc, bool accumulate);

// C (+)= A·B using the thread pool; packs into scratch. Returns false when scratch memory could not
// be allocated (nothing written then).
bool gemm(int64_t m, int64_t n, int64_t k, MatrixView a, MatrixView b, float* c, int64_t ldc, bool accumulate);

}  // namespace tensile
