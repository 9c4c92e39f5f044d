// Eight and sixteen floats at any address, for loops written once for every clone that
// TENSILE_VECTOR_CLONES makes (GCC vector extensions: one AVX or AVX-512 register, several SSE ones).
// Only inlined helpers take and return them, so the ABI note GCC gives for the baseline clone does
// not apply.
#pragma once

#include <cstdint>

#pragma GCC diagnostic ignored "-Wpsabi"

namespace tensile {

typedef float Lanes4 __attribute__((vector_size(16), aligned(4), may_alias));
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

// Copies `count` floats (at least one vector's worth) in whole vectors, the last one overlapping the
// one before it instead of reading or writing past either end.
template <typename Lanes>
__attribute__((always_inline)) inline void copy_in_vectors(const float* from, int64_t count, float* to) {
  constexpr int width = sizeof(Lanes) / sizeof(float);
  for (int64_t j = 0; j + width < count; j += width) store<Lanes>(to + j, load<Lanes>(from + j));
  store<Lanes>(to + count - width, load<Lanes>(from + count - width));
}

// Copies a run of floats (an image row: tens of floats, often fewer) that does not overlap its
// destination: short runs in whole vectors, long ones by memcpy. GCC turns a plain copy loop into a
// call to memmove, which costs more than a short copy (a tenth of a 4×4-image convolution's time)
// but beats this file's vectors (SSE in files built for baseline x86-64) on long ones.
__attribute__((always_inline)) inline void copy_run(const float* from, int64_t count, float* to) {
  if (count >= 64) {
    __builtin_memcpy(to, from, static_cast<size_t>(count) * sizeof(float));
  } else if (count >= 16) {
    copy_in_vectors<Lanes16>(from, count, to);
  } else if (count >= 8) {
    copy_in_vectors<Lanes8>(from, count, to);
  } else if (count >= 4) {
    copy_in_vectors<Lanes4>(from, count, to);
  } else {
    if (count > 0) to[0] = from[0];
    if (count > 1) to[1] = from[1];
    if (count > 2) to[2] = from[2];
  }
}

// Zeros a run of floats, as copy_run copies one.
__attribute__((always_inline)) inline void zero_run(float* to, int64_t count) {
  const Lanes16 zeros16 = {};
  const Lanes4 zeros4 = {};
  if (count >= 64) {
    __builtin_memset(to, 0, static_cast<size_t>(count) * sizeof(float));
  } else if (count >= 16) {
    for (int64_t j = 0; j + 16 < count; j += 16) store<Lanes16>(to + j, zeros16);
    store<Lanes16>(to + count - 16, zeros16);
  } else if (count >= 4) {
    for (int64_t j = 0; j + 4 < count; j += 4) store<Lanes4>(to + j, zeros4);
    store<Lanes4>(to + count - 4, zeros4);
  } else {
    if (count > 0) to[0] = 0.0f;
    if (count > 1) to[1] = 0.0f;
    if (count > 2) to[2] = 0.0f;
  }
}

}  // namespace tensile
