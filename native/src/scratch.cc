#include "scratch.h"

#include <algorithm>
#include <cstdlib>

namespace tensile {

namespace {

struct Buffer {
  float* data = nullptr;
  size_t capacity = 0;
};

Buffer buffers[static_cast<int>(ScratchSlot::kCount)][kMaxThreads];

}  // namespace

float* scratch(ScratchSlot slot, int thread, size_t count) {
  Buffer& buffer = buffers[static_cast<int>(slot)][thread];
  if (count <= buffer.capacity) return buffer.data;
  std::free(buffer.data);
  buffer.data = nullptr;
  buffer.capacity = 0;
  // Grow by half again so a slowly rising size does not reallocate on every call; round up to
  // whole cache lines (16 floats) and keep one line of slack for kernels that read past the end.
  size_t grown = count + count / 2 + 16;
  grown = (grown + 15) / 16 * 16;
  void* memory = nullptr;
  if (posix_memalign(&memory, 64, grown * sizeof(float)) != 0) return nullptr;
  buffer.data = static_cast<float*>(memory);
  buffer.capacity = grown - 16;
  return buffer.data;
}

bool reserve_scratch(ScratchSlot slot, int threads, int64_t count) {
  for (int t = 0; t < threads; ++t) {
    if (scratch(slot, t, static_cast<size_t>(std::max<int64_t>(count, 1))) == nullptr) return false;
  }
  return true;
}

}  // namespace tensile
