// The AVX-512 part of max pooling (pool_avx512.cc, built into the run-time-chosen AVX-512 library
// like the GEMM's kernels): called only where the AVX-512 kernels are active.
#pragma once

#include <cstdint>

namespace tensile {

// One output row of max pooling with stride 2 (values only) into to[0, out_width): the window's
// rows [row_begin, row_end) of `in` (a plane of rows in_width floats long; none: window_max's empty
// result, −∞) and its kernel_width columns from 2·ow − pad_left, those outside the row (padding)
// skipped. Sixteen at a time, with loads masked to the floats inside the row.
void max_pool_values_stride2_avx512(const float* in, int64_t in_width, int64_t pad_left, int64_t kernel_width,
                                    int64_t row_begin, int64_t row_end, int64_t out_width, float* to);

// max_pool_values_stride2_avx512 for a whole output row with each winner's index in the plane
// (window_max's), into to[0, out_width) and index[0, out_width).
void max_pool_stride2_avx512(const float* in, int64_t in_width, int64_t pad_left, int64_t kernel_width,
                             int64_t row_begin, int64_t row_end, int64_t out_width, float* to, int32_t* index);

// pool_row_2x2 (2×2 windows, stride 2, no padding, with each winner's index), sixteen windows at
// a time.
void max_pool_2x2_row_avx512(const float* top, const float* bottom, int64_t row_index, int64_t in_width,
                             int64_t out_width, float* to, int32_t* index);

}  // namespace tensile
