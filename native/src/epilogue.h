// The fused convolution epilogue over a run of values, shared by the direct (conv.cc) and Winograd
// (winograd.cc) convolutions so that both round it the same way.
#pragma once

#include <cstdint>

namespace tensile {

// The fused epilogue (ConvEpilogue in kernels.h) over `count` values of one output channel, written
// at `to` from `from` (which may equal `to`); `residual` is null or the same positions of the
// residual tensor. Each step is its own float rounding, as channel_affine, the binary add and relu
// round them, so the bits equal running those kernels one after another.
inline void epilogue_values(const float* from, float* to, const float* residual, int64_t count, float scale,
                            float shift, bool relu) {
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

// epilogue_values compiled for the widest registers the CPU has (epilogue.cc): the callers are
// baseline x86-64 code, where the loops run four floats at a time.
void epilogue_values_wide(const float* from, float* to, const float* residual, int64_t count, float scale,
                          float shift, bool relu);

// epilogue_values, out of line and wide for runs of four vectors or more (a first layer's whole
// plane: 0.42 → 0.31 ms for 41 × 32 planes of 28², one thread); shorter ones, such as the rows of
// 7 to 56 outputs that the grid and Winograd paths write one at a time, inline, where the call
// costs as much as the wider loop saves (rows of 28: 2–3% slower out of line).
inline void apply_epilogue(const float* from, float* to, const float* residual, int64_t count, float scale, float shift,
                           bool relu) {
  if (count >= 64) {
    epilogue_values_wide(from, to, residual, count, scale, shift, relu);
  } else {
    epilogue_values(from, to, residual, count, scale, shift, relu);
  }
}

}  // namespace tensile
