// TENSILE_VECTOR_CLONES before a function compiles it three times (AVX-512, AVX2 and baseline x86-64)
// and picks the clone at load time, so loops the compiler vectorises use the widest registers the
// CPU has while the rest of the addon stays baseline. GCC on x86-64 only; elsewhere one plain build.
#pragma once

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define TENSILE_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define TENSILE_VECTOR_CLONES
#endif
