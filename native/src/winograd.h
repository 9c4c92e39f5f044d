// Winograd F(2×2, 3×3) and F(4×4, 3×3) convolutions (winograd.cc): 3×3, stride 1, dilation 1, padding 1.
#pragma once

#include "kernels.h"

namespace tensile {

// Whether winograd_forward computes this geometry (and is switched on).
bool winograd_applies(const ConvGeometry& g);

// out = conv(x, weight) with the epilogue (may be null) applied as outputs are written. With
// `flipped`, weight is [in_channels, out_channels, 3, 3] of g's channels and the kernel of (o, i) is
// weight[i, o] rotated by 180° (the input gradient of a convolution, as a convolution). Returns false
// when scratch memory could not be allocated.
bool winograd_forward(const float* x, const float* weight, bool flipped, float* out, const ConvGeometry& g,
                      const ConvEpilogue* epilogue);

// Whether winograd_weight_gradient computes this geometry's weight gradient (the shapes of
// winograd_applies, up to 512 × 512 channels).
bool winograd_weight_gradient_applies(const ConvGeometry& g);

// grad_weight = the weight gradient of conv(x, ·) for output gradient grad_out, by the transposes of
// the same transforms (16 products whose depth is the tiles of the batch). For geometries where
// winograd_weight_gradient_applies.
bool winograd_weight_gradient(const float* x, const float* grad_out, float* grad_weight, const ConvGeometry& g);

// On by default; TENSILE_NATIVE_WINOGRAD=0 or this switch turns it off (the direct convolution then
// runs every geometry).
void set_winograd_enabled(bool enabled);
bool winograd_is_enabled();

}  // namespace tensile
