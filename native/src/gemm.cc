#include "gemm.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "scratch.h"
#include "thread_pool.h"

namespace tensile {

namespace {

// Blocking: a k block of A's and B's micro-panels stays in L1 (the variant's kc_max); about
// kMcRows rows of A for one k block (≈ 150 KB) stay in L2 while B's panels stream past them;
// kNcColumns bounds the part of B walked per pass over A.
constexpr int64_t kMcRows = 144;
constexpr int64_t kNcColumns = 1024;

// Largest tile of any variant, for the edge-tile buffer.
constexpr int kMaxTile = 16 * kMaxPanelWidth;

// k split into equal blocks of at most kc_max: 288 becomes two blocks of 144 rather than one full
// block and a thin remainder that would reload C for little work.
int64_t k_block_size(int64_t k, int64_t kc_max) {
  const int64_t blocks = (k + kc_max - 1) / kc_max;
  return (k + blocks - 1) / blocks;
}

// The portable micro-kernels: a 4×8 tile held in eight 4-lane vectors (GCC/Clang vector extensions,
// so SSE2 on any x86-64 and NEON on ARM64), with room to spare in 16 registers. Plain nested loops
// over a float array compile to memory-bound scalar code here (about 2 GFLOP/s).
typedef float Quad __attribute__((vector_size(16)));
constexpr int kPortableRows = 4;
constexpr int kPortableColumns = 8;

inline Quad load_quad(const float* p) {
  Quad v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

inline void store_quad(float* p, Quad v) { std::memcpy(p, &v, sizeof v); }

// The tile's rows are summed from zero and then added to (or stored in) C, as every variant does.
inline void store_tile(const Quad (&sum)[kPortableRows][2], float* c, int64_t ldc, bool accumulate) {
  for (int r = 0; r < kPortableRows; ++r) {
    float* row = c + r * ldc;
    if (accumulate) {
      store_quad(row, load_quad(row) + sum[r][0]);
      store_quad(row + 4, load_quad(row + 4) + sum[r][1]);
    } else {
      store_quad(row, sum[r][0]);
      store_quad(row + 4, sum[r][1]);
    }
  }
}

void portable_micro(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, bool accumulate) {
  Quad sum[kPortableRows][2] = {};
  for (int64_t kk = 0; kk < kc; ++kk) {
    const Quad b0 = load_quad(b + kk * kPortableColumns);
    const Quad b1 = load_quad(b + kk * kPortableColumns + 4);
    for (int r = 0; r < kPortableRows; ++r) {
      const float av = a[kk * kPortableRows + r];
      sum[r][0] += av * b0;
      sum[r][1] += av * b1;
    }
  }
  store_tile(sum, c, ldc, accumulate);
}

void portable_micro_indirect(int64_t kc, const float* a, const float* b, const int64_t* b_offsets, float* c,
                             int64_t ldc, bool accumulate) {
  Quad sum[kPortableRows][2] = {};
  for (int64_t kk = 0; kk < kc; ++kk) {
    const float* row = b + b_offsets[kk];
    const Quad b0 = load_quad(row);
    const Quad b1 = load_quad(row + 4);
    for (int r = 0; r < kPortableRows; ++r) {
      const float av = a[kk * kPortableRows + r];
      sum[r][0] += av * b0;
      sum[r][1] += av * b1;
    }
  }
  store_tile(sum, c, ldc, accumulate);
}

void portable_micro_rows(int64_t kc, const float* const* a_rows, const int64_t* a_steps, const float* b, float* c,
                         int64_t ldc, bool accumulate) {
  const float* rows[kPortableRows];
  for (int r = 0; r < kPortableRows; ++r) rows[r] = a_rows[r];
  Quad sum[kPortableRows][2] = {};
  for (int64_t kk = 0; kk < kc; ++kk) {
    const Quad b0 = load_quad(b + kk * kPortableColumns);
    const Quad b1 = load_quad(b + kk * kPortableColumns + 4);
    for (int r = 0; r < kPortableRows; ++r) {
      const float av = rows[r][a_steps == nullptr ? kk : a_steps[kk]];
      sum[r][0] += av * b0;
      sum[r][1] += av * b1;
    }
  }
  store_tile(sum, c, ldc, accumulate);
}

}  // namespace

// Portable packing; the AVX2 variant has faster paths for the common strides.
void pack_portable(const float* src, int64_t row_stride, int64_t step_stride, int64_t rows, int64_t k, int width,
                   float* dst) {
  for (int64_t first = 0; first < rows; first += width) {
    const int64_t count = std::min<int64_t>(width, rows - first);
    float* panel = dst + first * k;
    const float* base = src + first * row_stride;
    if (row_stride == 1) {
      // Lanes of one step are contiguous: copy runs.
      for (int64_t kk = 0; kk < k; ++kk) {
        const float* from = base + kk * step_stride;
        float* to = panel + kk * width;
        for (int64_t r = 0; r < count; ++r) to[r] = from[r];
        for (int64_t r = count; r < width; ++r) to[r] = 0.0f;
      }
    } else {
      // Walk each source row contiguously (step_stride is usually 1) and scatter with stride width.
      for (int64_t r = 0; r < count; ++r) {
        const float* from = base + r * row_stride;
        float* to = panel + r;
        for (int64_t kk = 0; kk < k; ++kk) to[kk * width] = from[kk * step_stride];
      }
      for (int64_t r = count; r < width; ++r) {
        for (int64_t kk = 0; kk < k; ++kk) panel[kk * width + r] = 0.0f;
      }
    }
  }
}

#if !defined(TENSILE_HAVE_AVX2)
const GemmKernels* avx2_kernels() { return nullptr; }
const GemmKernels* avx512_kernels() { return nullptr; }
#endif

void pack_steps_portable(const float* base, const int64_t* step_offsets, int64_t rows, int64_t k, int width,
                         float* dst) {
  for (int64_t first = 0; first < rows; first += width) {
    const int64_t count = std::min<int64_t>(width, rows - first);
    float* panel = dst + first * k;
    for (int64_t kk = 0; kk < k; ++kk) {
      const float* from = base + step_offsets[kk] + first;
      float* to = panel + kk * width;
      for (int64_t r = 0; r < count; ++r) to[r] = from[r];
      for (int64_t r = count; r < width; ++r) to[r] = 0.0f;
    }
  }
}

void pack_rows_portable(const float* base, const int64_t* row_offsets, int64_t rows, int64_t k, int width,
                        float* dst) {
  for (int64_t first = 0; first < rows; first += width) {
    const int64_t count = std::min<int64_t>(width, rows - first);
    float* panel = dst + first * k;
    for (int64_t r = 0; r < count; ++r) {
      const float* from = base + row_offsets[first + r];
      for (int64_t kk = 0; kk < k; ++kk) panel[kk * width + r] = from[kk];
    }
    for (int64_t r = count; r < width; ++r) {
      for (int64_t kk = 0; kk < k; ++kk) panel[kk * width + r] = 0.0f;
    }
  }
}

const GemmKernels& scalar_kernels() {
  static const GemmKernels kernels{
      "scalar", kPortableRows, kPortableColumns, 256,  // name, mr, nr, kc_max
      portable_micro, pack_portable, pack_steps_portable, pack_rows_portable, portable_micro_indirect,
      portable_micro_rows,
  };
  return kernels;
}

namespace {

#if defined(__x86_64__) || defined(__i386__)
// The register state the operating system saves on context switches (XCR0): a CPU may have AVX-512
// while a hypervisor or kernel leaves its registers disabled, and then the instructions fault.
uint64_t enabled_register_state() {
  uint32_t ecx1 = 0;
  uint32_t eax = 1;
  uint32_t ebx = 0;
  uint32_t edx = 0;
  __asm__("cpuid" : "+a"(eax), "=b"(ebx), "=c"(ecx1), "=d"(edx));
  const bool osxsave = (ecx1 >> 27) & 1;
  if (!osxsave) return 0;
  uint32_t low = 0;
  uint32_t high = 0;
  __asm__("xgetbv" : "=a"(low), "=d"(high) : "c"(0));
  return (static_cast<uint64_t>(high) << 32) | low;
}
#endif

}  // namespace

bool cpu_has_avx2_fma() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  const uint64_t ymm_state = 0x6;  // SSE and AVX registers
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
         (enabled_register_state() & ymm_state) == ymm_state;
#else
  return false;
#endif
}

bool cpu_has_avx512() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  const uint64_t zmm_state = 0xE6;  // SSE, AVX, opmask and both halves of the zmm registers
  return cpu_has_avx2_fma() && __builtin_cpu_supports("avx512f") &&
         (enabled_register_state() & zmm_state) == zmm_state;
#else
  return false;
#endif
}

namespace {

const GemmKernels* default_kernels() {
  const GemmKernels* avx512 = avx512_kernels();
  if (avx512 != nullptr && cpu_has_avx512()) return avx512;
  const GemmKernels* avx2 = avx2_kernels();
  if (avx2 != nullptr && cpu_has_avx2_fma()) return avx2;
  return &scalar_kernels();
}

const GemmKernels* current = nullptr;

}  // namespace

const GemmKernels& active_kernels() {
  if (current == nullptr) current = default_kernels();
  return *current;
}

bool select_kernels(const char* name) {
  if (std::strcmp(name, "scalar") == 0) {
    current = &scalar_kernels();
    return true;
  }
  if (std::strcmp(name, "avx2") == 0 && avx2_kernels() != nullptr && cpu_has_avx2_fma()) {
    current = avx2_kernels();
    return true;
  }
  if (std::strcmp(name, "avx512") == 0 && avx512_kernels() != nullptr && cpu_has_avx512()) {
    current = avx512_kernels();
    return true;
  }
  return false;
}

namespace {

// Runs kernel(target, ld, add) for one tile of C (rows × columns of at most mr × nr at c): straight
// into C when the tile is whole; an edge tile goes into the full-size buffer `tile` (row stride nr,
// summed from zero), whose valid part is then added (or stored) in the same order, so edge elements
// round exactly like interior ones.
template <typename Kernel>
inline void run_tile(const GemmKernels& kernels, int64_t rows, int64_t columns, float* c, int64_t ldc, bool add,
                     float* tile, Kernel&& kernel) {
  if (rows == kernels.mr && columns == kernels.nr) {
    kernel(c, ldc, add);
    return;
  }
  kernel(tile, static_cast<int64_t>(kernels.nr), false);
  for (int64_t r = 0; r < rows; ++r) {
    float* row = c + r * ldc;
    const float* sum = tile + r * kernels.nr;
    if (add) {
      for (int64_t j = 0; j < columns; ++j) row[j] += sum[j];
    } else {
      for (int64_t j = 0; j < columns; ++j) row[j] = sum[j];
    }
  }
}

}  // namespace

void gemm_packed(const GemmKernels& kernels, int64_t m, int64_t n, int64_t k, const float* packed_a,
                 const float* packed_b, float* c, int64_t ldc, bool accumulate, int64_t panel_row_begin,
                 int64_t panel_row_end, int64_t panel_col_begin, int64_t panel_col_end) {
  const int mr = kernels.mr;
  const int nr = kernels.nr;
  if (k == 0) {
    if (!accumulate) {
      for (int64_t i = panel_row_begin * mr; i < std::min(m, panel_row_end * mr); ++i) {
        for (int64_t j = panel_col_begin * nr; j < std::min(n, panel_col_end * nr); ++j) c[i * ldc + j] = 0.0f;
      }
    }
    return;
  }
  alignas(64) float tile[kMaxTile];
  const int64_t kc_nominal = k_block_size(k, kernels.kc_max);
  const int64_t mc_panels = std::max<int64_t>(1, kMcRows / mr);
  const int64_t nc_panels = std::max<int64_t>(1, kNcColumns / nr);
  for (int64_t jc = panel_col_begin; jc < panel_col_end; jc += nc_panels) {
    const int64_t jc_end = std::min(jc + nc_panels, panel_col_end);
    for (int64_t pc = 0; pc < k; pc += kc_nominal) {
      const int64_t kc = std::min(kc_nominal, k - pc);
      const bool add = accumulate || pc > 0;
      for (int64_t ic = panel_row_begin; ic < panel_row_end; ic += mc_panels) {
        const int64_t ic_end = std::min(ic + mc_panels, panel_row_end);
        for (int64_t jr = jc; jr < jc_end; ++jr) {
          const float* b = packed_b + jr * nr * k + pc * nr;
          const int64_t columns = std::min<int64_t>(nr, n - jr * nr);
          for (int64_t ir = ic; ir < ic_end; ++ir) {
            const float* a = packed_a + ir * mr * k + pc * mr;
            run_tile(kernels, std::min<int64_t>(mr, m - ir * mr), columns, c + ir * mr * ldc + jr * nr, ldc, add, tile,
                     [&](float* target, int64_t ld, bool sum_into) { kernels.micro(kc, a, b, target, ld, sum_into); });
          }
        }
      }
    }
  }
}

void gemm_indirect_b(const GemmKernels& kernels, int64_t m, int64_t n, int64_t k, const float* packed_a,
                     const float* b, const int64_t* b_offsets, float* c, int64_t ldc, bool accumulate) {
  const int mr = kernels.mr;
  const int nr = kernels.nr;
  const int64_t row_panels = (m + mr - 1) / mr;
  const int64_t column_panels = (n + nr - 1) / nr;
  if (k == 0) {
    gemm_packed(kernels, m, n, 0, packed_a, nullptr, c, ldc, accumulate);
    return;
  }
  alignas(64) float tile[kMaxTile];
  const int64_t kc_nominal = k_block_size(k, kernels.kc_max);
  const int64_t mc_panels = std::max<int64_t>(1, kMcRows / mr);
  for (int64_t pc = 0; pc < k; pc += kc_nominal) {
    const int64_t kc = std::min(kc_nominal, k - pc);
    const bool add = accumulate || pc > 0;
    for (int64_t ic = 0; ic < row_panels; ic += mc_panels) {
      const int64_t ic_end = std::min(ic + mc_panels, row_panels);
      for (int64_t jr = 0; jr < column_panels; ++jr) {
        const float* columns_base = b + jr * nr;
        const int64_t columns = std::min<int64_t>(nr, n - jr * nr);
        for (int64_t ir = ic; ir < ic_end; ++ir) {
          const float* a = packed_a + ir * mr * k + pc * mr;
          const int64_t rows = std::min<int64_t>(mr, m - ir * mr);
          run_tile(kernels, rows, columns, c + ir * mr * ldc + jr * nr, ldc, add, tile,
                   [&](float* target, int64_t ld, bool sum_into) {
                     kernels.micro_indirect(kc, a, columns_base, b_offsets + pc, target, ld, sum_into);
                   });
        }
      }
    }
  }
}

void gemm_indirect_a(const GemmKernels& kernels, int64_t row_begin, int64_t row_end, int64_t n, int64_t k,
                     const float* a, const int64_t* a_row_offsets, const float* packed_b, float* c, int64_t ldc,
                     bool accumulate) {
  const int mr = kernels.mr;
  const int nr = kernels.nr;
  const int64_t column_panels = (n + nr - 1) / nr;
  // Rows past the end of A read this instead (zeros, long enough for any k block).
  alignas(64) static const float zeros[1024] = {};
  alignas(64) float tile[kMaxTile];
  const int64_t kc_nominal = k_block_size(k, kernels.kc_max);
  const int64_t mc_rows = std::max<int64_t>(1, kMcRows / mr) * mr;
  for (int64_t pc = 0; pc < k; pc += kc_nominal) {
    const int64_t kc = std::min(kc_nominal, k - pc);
    const bool add = accumulate || pc > 0;
    for (int64_t ic = row_begin; ic < row_end; ic += mc_rows) {
      const int64_t ic_end = std::min(ic + mc_rows, row_end);
      for (int64_t jr = 0; jr < column_panels; ++jr) {
        const float* b = packed_b + jr * nr * k + pc * nr;
        const int64_t columns = std::min<int64_t>(nr, n - jr * nr);
        for (int64_t i = ic; i < ic_end; i += mr) {
          const int64_t rows = std::min<int64_t>(mr, ic_end - i);
          const float* a_rows[kMaxPanelWidth];
          for (int r = 0; r < mr; ++r) a_rows[r] = r < rows ? a + a_row_offsets[i + r] + pc : zeros;
          run_tile(kernels, rows, columns, c + i * ldc + jr * nr, ldc, add, tile,
                   [&](float* target, int64_t ld, bool sum_into) {
                     kernels.micro_rows(kc, a_rows, nullptr, b, target, ld, sum_into);
                   });
        }
      }
    }
  }
}

bool gemm(int64_t m, int64_t n, int64_t k, MatrixView a, MatrixView b, float* c, int64_t ldc, bool accumulate) {
  if (m <= 0 || n <= 0) return true;
  const GemmKernels& kernels = active_kernels();
  const int mr = kernels.mr;
  const int nr = kernels.nr;
  const int64_t row_panels = (m + mr - 1) / mr;
  const int64_t column_panels = (n + nr - 1) / nr;
  float* packed_a = scratch(ScratchSlot::kPackedA, 0, static_cast<size_t>(packed_size(m, k, mr)));
  float* packed_b = scratch(ScratchSlot::kPackedB, 0, static_cast<size_t>(packed_size(n, k, nr)));
  if (packed_a == nullptr || packed_b == nullptr) return false;

  ThreadPool& threads = pool();
  const double flops = 2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k);
  // Below about a megaflop a second thread costs more to wake than it saves.
  const int64_t workers = flops < 1e6 ? 1 : threads.threads();

  // Packing: chunks of whole panels of A, then of B, as one job.
  const int64_t a_chunks = std::min<int64_t>(row_panels, workers * 2);
  const int64_t b_chunks = std::min<int64_t>(column_panels, workers * 2);
  auto pack_task = [&](int64_t task, int) {
    if (task < a_chunks) {
      const int64_t begin = row_panels * task / a_chunks * mr;
      const int64_t end = std::min(m, row_panels * (task + 1) / a_chunks * mr);
      kernels.pack(a.data + begin * a.row_stride, a.row_stride, a.column_stride, end - begin, k, mr,
                   packed_a + begin * k);
    } else {
      task -= a_chunks;
      const int64_t begin = column_panels * task / b_chunks * nr;
      const int64_t end = std::min(n, column_panels * (task + 1) / b_chunks * nr);
      // B's "rows" for packing are its columns j; its steps are its rows kk.
      kernels.pack(b.data + begin * b.column_stride, b.column_stride, b.row_stride, end - begin, k, nr,
                   packed_b + begin * k);
    }
  };
  if (workers == 1) {
    for (int64_t t = 0; t < a_chunks + b_chunks; ++t) pack_task(t, 0);
  } else {
    threads.run(a_chunks + b_chunks, pack_task);
  }
  gemm_packed_threaded(m, n, k, packed_a, packed_b, c, ldc, accumulate);
  return true;
}

namespace {

// Blocks of C a threaded product is cut into: about four per thread, so that a thread slowed by
// another process does not hold up the rest, and none below ~2 MFLOP; 0 where one thread does it all.
int64_t task_count(int64_t m, int64_t n, int64_t k) {
  const double flops = 2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k);
  if (flops < 1e6 || pool().threads() == 1) return 0;
  return std::max<int64_t>(1, std::min<int64_t>(pool().threads() * 4, static_cast<int64_t>(flops / 2e6)));
}

}  // namespace

void gemm_packed_threaded(int64_t m, int64_t n, int64_t k, const float* packed_a, const float* packed_b, float* c,
                          int64_t ldc, bool accumulate) {
  if (m <= 0 || n <= 0) return;
  const GemmKernels& kernels = active_kernels();
  const int64_t row_panels = (m + kernels.mr - 1) / kernels.mr;
  const int64_t column_panels = (n + kernels.nr - 1) / kernels.nr;
  const int64_t tasks = task_count(m, n, k);
  if (tasks == 0) {
    gemm_packed(kernels, m, n, k, packed_a, packed_b, c, ldc, accumulate);
    return;
  }
  // Whole-panel blocks, columns split first since every B panel meets all of A.
  const int64_t column_chunks = std::min(column_panels, tasks);
  const int64_t row_chunks = std::min(row_panels, (tasks + column_chunks - 1) / column_chunks);
  pool().run(row_chunks * column_chunks, [&](int64_t task, int) {
    const int64_t rc = task / column_chunks;
    const int64_t cc = task % column_chunks;
    gemm_packed(kernels, m, n, k, packed_a, packed_b, c, ldc, accumulate, row_panels * rc / row_chunks,
                row_panels * (rc + 1) / row_chunks, column_panels * cc / column_chunks,
                column_panels * (cc + 1) / column_chunks);
  });
}

namespace {

// Row and column chunks (of whole panels) for a product with an unpacked A: the grid of about
// task_count blocks that reads the least, since every column chunk reads all of A's rows (unpacked,
// so slower to stream than packed panels) and every row chunk all of B. For ResNet's 512-channel 7×7
// layers at batch 8 that is 4 × 2 blocks, 25% faster than 1 × 8.
struct ChunkGrid {
  int64_t rows = 1;
  int64_t columns = 1;
};

ChunkGrid least_read_grid(int64_t m, int64_t n, int64_t k, int64_t row_panels, int64_t column_panels) {
  const int64_t tasks = std::max<int64_t>(1, task_count(m, n, k));
  ChunkGrid grid;
  double least = -1.0;
  for (int64_t rows = 1; rows <= std::min(row_panels, tasks); ++rows) {
    const int64_t columns = std::min(column_panels, (tasks + rows - 1) / rows);
    const double read =
        static_cast<double>(columns) * static_cast<double>(m) + static_cast<double>(rows) * static_cast<double>(n);
    if (least < 0.0 || read < least) {
      least = read;
      grid = {rows, columns};
    }
  }
  return grid;
}

// gemm_step_panels_threaded over rows [row_begin, row_end) (row_begin a multiple of mr) and column
// panels [panel_begin, panel_end), on the calling thread.
void gemm_step_panels(const GemmKernels& kernels, int64_t row_begin, int64_t row_end, int64_t n, int64_t blocks,
                      const float* a, const int64_t* a_row_offsets, const StepPanel* panels, int64_t panel_begin,
                      int64_t panel_end, float* c, int64_t ldc) {
  const int mr = kernels.mr;
  const int nr = kernels.nr;
  for (int64_t jr = panel_begin; jr < panel_end; ++jr) {
    if (panels[jr].steps > 0) continue;
    // A sum of nothing.
    const int64_t columns = std::min<int64_t>(nr, n - jr * nr);
    for (int64_t i = row_begin; i < row_end; ++i) {
      std::memset(c + i * ldc + jr * nr, 0, static_cast<size_t>(columns) * sizeof(float));
    }
  }
  alignas(64) float tile[kMaxTile];
  const int64_t mc_rows = std::max<int64_t>(1, kMcRows / mr) * mr;
  for (int64_t block = 0; block < blocks; ++block) {
    for (int64_t ic = row_begin; ic < row_end; ic += mc_rows) {
      const int64_t ic_end = std::min(ic + mc_rows, row_end);
      for (int64_t jr = panel_begin; jr < panel_end; ++jr) {
        const StepPanel& panel = panels[jr];
        const int64_t begin = block * panel.block_steps;
        const int64_t kc = std::min(panel.block_steps, panel.steps - begin);
        if (kc <= 0) continue;
        const float* b = panel.b + begin * nr;
        // Without a table, the block's steps are A's columns from `begin` on.
        const int64_t* a_steps = panel.a_steps == nullptr ? nullptr : panel.a_steps + begin;
        const int64_t a_begin = panel.a_steps == nullptr ? begin : 0;
        const int64_t columns = std::min<int64_t>(nr, n - jr * nr);
        for (int64_t i = ic; i < ic_end; i += mr) {
          const int64_t rows = std::min<int64_t>(mr, ic_end - i);
          // Rows past the end read row i again; the edge tile drops them.
          const float* a_rows[kMaxPanelWidth];
          for (int r = 0; r < mr; ++r) a_rows[r] = a + a_row_offsets[r < rows ? i + r : i] + a_begin;
          run_tile(kernels, rows, columns, c + i * ldc + jr * nr, ldc, block > 0, tile,
                   [&](float* target, int64_t ld, bool sum_into) {
                     kernels.micro_rows(kc, a_rows, a_steps, b, target, ld, sum_into);
                   });
        }
      }
    }
  }
}

}  // namespace

void gemm_step_panels_threaded(int64_t m, int64_t n, int64_t k, int64_t blocks, const float* a,
                               const int64_t* a_row_offsets, const StepPanel* panels, float* c, int64_t ldc) {
  if (m <= 0 || n <= 0) return;
  const GemmKernels& kernels = active_kernels();
  const int64_t row_panels = (m + kernels.mr - 1) / kernels.mr;
  const int64_t column_panels = (n + kernels.nr - 1) / kernels.nr;
  const ChunkGrid grid = least_read_grid(m, n, k, row_panels, column_panels);
  // Column chunks of about equal steps rather than equal panels: panels that skip steps cost less.
  std::vector<int64_t> bounds(static_cast<size_t>(grid.columns + 1), column_panels);
  int64_t total = 0;
  for (int64_t j = 0; j < column_panels; ++j) total += panels[j].steps + 1;
  bounds[0] = 0;
  for (int64_t j = 0, sum = 0, chunk = 1; j < column_panels && chunk < grid.columns; ++j) {
    sum += panels[j].steps + 1;
    while (chunk < grid.columns && sum * grid.columns >= total * chunk) bounds[chunk++] = j + 1;
  }
  pool().run(grid.rows * grid.columns, [&](int64_t task, int) {
    const int64_t rc = task / grid.columns;
    const int64_t cc = task % grid.columns;
    gemm_step_panels(kernels, row_panels * rc / grid.rows * kernels.mr,
                     std::min(m, row_panels * (rc + 1) / grid.rows * kernels.mr), n, blocks, a, a_row_offsets, panels,
                     bounds[cc], bounds[cc + 1], c, ldc);
  });
}

}  // namespace tensile
