// Reusable, 64-byte aligned scratch memory for packing buffers and partial results.
//
// Kernels run one at a time (the addon serialises calls), so each (slot, thread) pair owns one
// buffer that only grows. Reusing it avoids a fresh mmap and its page faults on every call.
#pragma once

#include <cstddef>
#include <cstdint>

namespace tensile {

enum class ScratchSlot : int {
  kPackedA = 0,
  kPackedB = 1,
  kColumns = 2,
  kPartial = 3,
  kTile = 4,
  kOffsets = 5,  // holds int64_t offsets (two floats each), never floats
  kBatchColumns = 6,   // im2col columns of a batch of small images (conv.cc); Winograd weight-gradient operands
  kBatchProducts = 7,  // their product or output gradients; the Winograd weight gradient's 16 sums
  kPaddedPlanes = 8,   // zero-padded input planes of small images, per thread (conv.cc batched_columns)
  kColumnSources = 9,  // int64_t offsets (two floats each): where each im2col column reads (conv.cc batched_columns)
  kCount = 10,
};

// Returns at least `count` floats for this slot and thread; the contents are unspecified.
// thread may be any value in [0, kMaxThreads); returns nullptr when memory runs out.
float* scratch(ScratchSlot slot, int thread, size_t count);

// Reserves `count` floats of a slot for each of threads [0, threads) up front, so tasks never
// allocate and an allocation failure is seen before any work starts. False when memory runs out.
bool reserve_scratch(ScratchSlot slot, int threads, int64_t count);

// Upper bound on the pool size, so per-thread scratch can live in fixed tables.
constexpr int kMaxThreads = 256;

}  // namespace tensile
