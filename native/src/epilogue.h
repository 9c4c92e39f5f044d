// The fused convolution epilogue over a run of values, shared by the direct (conv.cc) and Winograd
// (winograd.cc) convolutions so that both round it the same way.
#pragma once

#include <cstdint>

namespace tensile {

// The fused epilogue (ConvEpilogue in kernels.h) over `count` values of one output channel, written
// at `to` from `from` (which may equal `to`); `residual` is null or the same positions of the
// residual tensor. Each step is its own float rounding, as channel_affine, the binary add and relu
// round them, so the bits equal running those kernels one after another.
inline void apply_epilogue(const float* from, float* to, const float* residual, int64_t count, float scale, float shift,
                           bool relu) {
  if (residual == nullptr) {
    if (relu) {
      for (int64_t i = 0; i < count; ++i) {
        const float v = from[i] * scale + shift;
        to[i] = v > 0.0f ? v : 0.0f;
      }
    } else {
      for (int64_t i = 0; i < count; ++i) to[i] = from[i] * scale + shift;
    }
    return;
  }
  if (relu) {
    for (int64_t i = 0; i < count; ++i) {
      const float v = (from[i] * scale + shift) + residual[i];
      to[i] = v > 0.0f ? v : 0.0f;
    }
  } else {
    for (int64_t i = 0; i < count; ++i) to[i] = (from[i] * scale + shift) + residual[i];
  }
}

}  // namespace tensile
