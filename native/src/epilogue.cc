#include "epilogue.h"

#include "vector_clones.h"

namespace tensile {

// Contraction off, also in the AVX2 and AVX-512 clones, which would otherwise fuse the multiply and
// add into one rounding (epilogue.h).
#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")
TENSILE_VECTOR_CLONES
void epilogue_values_wide(const float* from, float* to, const float* residual, int64_t count, float scale,
                          float shift, bool relu) {
  epilogue_values(from, to, residual, count, scale, shift, relu);
}
#pragma GCC pop_options

}  // namespace tensile
