// Eight and sixteen floats at any address, for loops written once for every clone that
// TENSILE_VECTOR_CLONES makes (GCC vector extensions: one AVX or AVX-512 register, several SSE ones).
// Only inlined helpers take and return them, so the ABI note GCC gives for the baseline clone does
// not apply.
#pragma once

#include <cstdint>

#pragma GCC diagnostic ignored "-Wpsabi"

namespace tensile {

typedef float Lanes8 __attribute__((vector_size(32), aligned(4), may_alias));
typedef int Indices8 __attribute__((vector_size(32)));
typedef float Lanes16 __attribute__((vector_size(64), aligned(4), may_alias));
typedef int Indices16 __attribute__((vector_size(64)));

// Through memcpy: a template argument drops the typedefs' alignment, and the copies compile to
// unaligned vector moves.
template <typename Lanes>
__attribute__((always_inline)) inline Lanes load(const float* from) {
  Lanes value;
  __builtin_memcpy(&value, from, sizeof(Lanes));
  return value;
}
template <typename Lanes>
__attribute__((always_inline)) inline void store(float* to, Lanes value) {
  __builtin_memcpy(to, &value, sizeof(Lanes));
}

}  // namespace tensile
