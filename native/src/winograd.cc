// Winograd F(2×2, 3×3) for 3×3 convolutions with stride 1, dilation 1 and padding 1 on every side
// (output as large as the input): most of ResNet-18's and all of the seed CNN's multiply-adds.
// Forward convolutions over at most 32 channels with outputs of 16² or more use F(4×4, 3×3)
// instead (see forward_tile): the same scheme with 4×4 output tiles, 6×6 patches overlapping by 2,
// 36 products, and the transforms of the points 0, 1, −1, 2, −½ (input_transform6,
// kernel_transform6, output_transform6; of the point sets tried, the one with the least rounding
// error, about a third of that of Lavin's 0, ±1, ±2).
//
// Each 2×2 output tile t of output channel o is Aᵀ·[Σ_i U[o,i] ⊙ V[i,t]]·A, where V[i,t] = Bᵀ·d·B is
// the transform of the 4×4 input patch d of channel i under the tile (patches overlap by 2; zero
// outside the input) and U[o,i] = G·w[o,i]·Gᵀ the transform of the 3×3 weight:
//   Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1],  G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1],
//   Aᵀ = [1 1 1 0; 0 1 −1 −1].
// The sum over channels is, for each of the 16 transform positions ξ, one GEMM
// M[ξ] = U[ξ]·V[ξ] of [out_channels, in_channels]·[in_channels, tiles]: 16 multiply-adds per tile
// and channel pair instead of the direct 36 (2.25× fewer; 1.7× on a 7×7 image, whose last tiles
// are half outside it).
//
// The work is cut into blocks of whole tile rows (across samples), sized so that a block's V and M
// stay near L2; a thread transforms a block's input, runs its 16 products against the transformed
// weights (packed once per call, shared by all threads) and transforms the products into the
// output, applying the fused epilogue as it writes. Within a block, tile row q's tiles are lanes
// q·tiles_x to q·tiles_x + tiles_x − 1 of the products: lane k's 4×4 patch is columns 2k, 2k + 1
// of four "strips" that lay the block's padded input rows end to end and the same columns of four
// more that lay them shifted by two (fill_strips), so both transforms run as long loops over lanes
// that the compiler vectorises, whatever the image width. Each output's 16 sums run over the input
// channels in the GEMM's fixed order whatever the block, so results do not depend on the thread
// count or the batch's other samples.
//
// Rounding differs from the direct convolution (the transforms add and halve before the sums), by
// about as much as the direct sum's own reassociation for these small transforms; the tests hold
// it to the same tolerance against the reference.
#include "winograd.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <type_traits>
#include <vector>

#include "epilogue.h"
#include "gemm.h"
#include "scratch.h"
#include "thread_pool.h"
#include "vector_clones.h"
#include "vector_lanes.h"

namespace tensile {

namespace {

// Transform positions of F(2×2, 3×3) (the weight gradient, and forward tiles of 2).
constexpr int kPositions = 16;
// A set of F(2×2, 3×3) transform rows as a mask: bit a stands for ξ = 4a .. 4a + 3 (row a of Bᵀ·d·B
// or of A·dY·Aᵀ). The weight gradient's threads each make the rows of their own ξ.
constexpr int kAllTransformRows = 0b1111;

// Calls body(std::integral_constant<int, rows'>()), with rows' = rows where the transforms have code
// of their own for that set (the threads' shares on one, two or four threads), all four otherwise.
// Inlined, with body, into the vector clones that call it.
template <typename Body>
__attribute__((always_inline)) inline void with_transform_rows(int rows, Body&& body) {
  switch (rows) {
    case 0b0011:
      return body(std::integral_constant<int, 0b0011>());
    case 0b1100:
      return body(std::integral_constant<int, 0b1100>());
    case 0b0001:
      return body(std::integral_constant<int, 0b0001>());
    case 0b0010:
      return body(std::integral_constant<int, 0b0010>());
    case 0b0100:
      return body(std::integral_constant<int, 0b0100>());
    case 0b1000:
      return body(std::integral_constant<int, 0b1000>());
    default:
      return body(std::integral_constant<int, kAllTransformRows>());
  }
}

// The transform rows that code made for `rows` makes (see with_transform_rows).
int listed_transform_rows(int rows) {
  int listed = kAllTransformRows;
  with_transform_rows(rows, [&](auto made) { listed = decltype(made)::value; });
  return listed;
}

// The patch rows (bit r: row r of the 4×4 patch) that Bᵀ·d·B's rows in `rows` read: Bᵀ's row 0 reads
// patch rows 0 and 2, rows 1 and 2 read rows 1 and 2, row 3 reads rows 1 and 3.
constexpr int input_patch_rows(int rows) {
  return ((rows & 1) ? 0b0101 : 0) | ((rows & 6) ? 0b0110 : 0) | ((rows & 8) ? 0b1010 : 0);
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

// Floats between the 16 regions of V or M: regions a multiple of 4 KiB apart would put the 16
// streams the transforms touch together in the same L1 sets, so each is padded by 256 bytes.
int64_t region_stride(int64_t floats) { return round_up(floats, 1024) + 64; }

bool enabled_by_environment() {
  const char* value = std::getenv("TENSILE_NATIVE_WINOGRAD");
  return value == nullptr || std::strcmp(value, "0") != 0;
}

bool winograd_enabled = enabled_by_environment();

// Floats of a block's V and M together (512 KiB): half of L2, leaving room for the weights.
constexpr int64_t kBlockFloats = 1 << 17;
// Floats of a shared block's V and M together (4 MiB).
constexpr int64_t kSharedBlockFloats = 1 << 20;

// Transform positions of tiles of `tile` outputs a side: the (tile + 2)² values of a patch.
int transform_positions(int tile) { return (tile + 2) * (tile + 2); }

// The plan of one call: tiles, blocks of tile rows, and the scratch layout per thread.
struct Plan {
  int tile;  // output tile side: 2 (F(2×2, 3×3)) or 4 (F(4×4, 3×3))
  int64_t tiles_y, tiles_x;  // tiles_x: a tile row's lanes (see fill_strips for why none is spare)
  int64_t tile_rows;         // batch · tiles_y
  int64_t rows_per_block;    // tile rows in a block
  int64_t blocks;
  int64_t lanes;   // columns of a block's V and M: rows_per_block · tiles_x rounded up to panels
  int64_t strip;   // floats of one strip: `tile` per lane, and room for fill_strips' whole vectors
  int64_t v_stride, m_stride;
  // All threads work on one block at a time (transforms split by channel, products by transform
  // position and output channels), so that blocks can be larger than one thread's share.
  bool shared;

  int positions() const { return transform_positions(tile); }
};

// Chooses rows per block. Where one sample's tile rows fit a block (up to twice the target lanes),
// blocks are whole samples (see below for how many): then a block's input of each channel is one run
// of memory, where blocks cut across samples read runs of a few rows that the hardware prefetchers
// never get going on (at batch 256 of 28² images, the input copy took twice as long). Otherwise:
// blocks of tile rows whose lanes fill whole GEMM panels as far as possible, of up to four times
// the target lanes (the target keeps V and M near L2; blocks past it cost less than half-empty
// panels or shared blocks: 32² images at 64 channels and batch 32 ran 1.5× faster with 15 rows of
// 17 lanes, a spare one each then, than in shared blocks of 3), the larger among equally full ones,
// and at least two blocks per thread when there are enough tile rows. Where even such blocks would
// fill less than 80% of their panels (few tile rows, as with one small image), all threads share
// larger blocks instead.
// With `whole_samples` (the weight gradient's shared blocks, whose lanes need not fill panels),
// blocks that hold a sample or more are cut down to whole samples, so that each channel's input is
// again one run of memory a sample: the seed CNN's 32-channel 28² layer's weight gradient (two
// threads, its data in memory as in a training step) 4.60–4.81 → 4.33–4.70 ms.
// Blocks of `rows` tile rows, and what follows from them.
void set_block_rows(Plan& plan, const ConvGeometry& g, int nr, int64_t rows) {
  plan.rows_per_block = rows;
  plan.blocks = ceil_div(plan.tile_rows, rows);
  plan.lanes = round_up(rows * plan.tiles_x, nr);
  // `tile` floats per lane, and room for the zeros fill_strips writes in whole vectors past the last
  // lane (up to 15 floats; the transforms read no further than lane lanes − 1's floats).
  plan.strip = plan.tile * plan.lanes + 32;
  plan.v_stride = region_stride(g.in_channels * plan.lanes);
  plan.m_stride = region_stride(g.out_channels * plan.lanes);
}

Plan make_plan(const ConvGeometry& g, int nr, int threads, bool shared, int tile, bool whole_samples = false) {
  Plan plan;
  plan.tile = tile;
  plan.tiles_y = ceil_div(g.out_height, tile);
  plan.tiles_x = ceil_div(g.out_width, tile);
  plan.tile_rows = g.batch * plan.tiles_y;
  plan.shared = shared;
  const int64_t channels = g.in_channels + g.out_channels;
  const int64_t budget = shared ? kSharedBlockFloats : kBlockFloats;
  const int64_t target = std::clamp<int64_t>(budget / (plan.positions() * channels), 32, shared ? 512 : 256);
  const int64_t sample_lanes = plan.tiles_y * plan.tiles_x;
  int64_t best = 1;
  double best_use = 0.0;
  if (!shared && sample_lanes <= 2 * target && g.batch >= 2 * threads) {
    // As many samples as fill the panels best (fewest among equals), up to four times the target
    // lanes: five 14² samples (49 lanes each) fill 245 of 8 panels' 256 lanes where one fills 49 of
    // 64 (with a spare lane a tile row, four such samples filling 7 panels exactly ran 7% faster
    // than one at 64 channels, though V and M then outgrow L2).
    const int64_t most = std::max<int64_t>(1, std::min(4 * target / sample_lanes, g.batch / (2 * threads)));
    for (int64_t samples = 1; samples <= most; ++samples) {
      const int64_t lanes = samples * sample_lanes;
      const double use = static_cast<double>(lanes) / static_cast<double>(round_up(lanes, nr));
      if (use > best_use + 1e-9) {
        best = samples * plan.tiles_y;
        best_use = use;
      }
    }
  }
  if (best_use < 0.8) {
    const int64_t max_rows = std::max<int64_t>(1, (shared ? 1 : 4) * target / plan.tiles_x);
    const int64_t spread_rows = shared ? plan.tile_rows : std::max<int64_t>(1, plan.tile_rows / (2 * threads));
    const int64_t limit = std::max<int64_t>(1, std::min(max_rows, spread_rows));
    best = 1;
    best_use = 0.0;
    for (int64_t rows = 1; rows <= limit; ++rows) {
      const int64_t lanes = rows * plan.tiles_x;
      const double use = static_cast<double>(lanes) / static_cast<double>(round_up(lanes, nr));
      // Prefer fuller panels; among equally full ones, larger blocks (fewer passes over U).
      if (use > best_use + 1e-9 || (use > best_use - 1e-9 && rows > best)) {
        best = rows;
        best_use = use;
      }
    }
    if (!shared && best_use < 0.8) return make_plan(g, nr, threads, true, tile);
  }
  if (whole_samples && plan.tiles_y <= best) best -= best % plan.tiles_y;
  set_block_rows(plan, g, nr, best);
  return plan;
}

// U = G·w·Gᵀ of one 3×3 kernel w (row-major), into u[16] (row-major 4×4).
void transform_kernel(const float* w, float* u) {
  float t[4][3];
  for (int j = 0; j < 3; ++j) {
    const float a = w[j];
    const float b = w[3 + j];
    const float c = w[6 + j];
    t[0][j] = a;
    t[1][j] = 0.5f * ((a + b) + c);
    t[2][j] = 0.5f * ((a - b) + c);
    t[3][j] = c;
  }
  for (int r = 0; r < 4; ++r) {
    const float a = t[r][0];
    const float b = t[r][1];
    const float c = t[r][2];
    u[r * 4 + 0] = a;
    u[r * 4 + 1] = 0.5f * ((a + b) + c);
    u[r * 4 + 2] = 0.5f * ((a - b) + c);
    u[r * 4 + 3] = c;
  }
}

// G·(a, b, c) for F(4×4, 3×3):
//   G = [1 0 0; −⅓ −⅓ −⅓; ⅓ −⅓ ⅓; 1/15 2/15 4/15; −16/15 8/15 −4/15; 0 0 1].
inline void kernel_transform6(double a, double b, double c, double (&u)[6]) {
  u[0] = a;
  u[1] = -(a + b + c) / 3;
  u[2] = (a - b + c) / 3;
  u[3] = (a + 2 * b + 4 * c) / 15;
  u[4] = (-16 * a + 8 * b - 4 * c) / 15;
  u[5] = c;
}

// U = G·w·Gᵀ of one 3×3 kernel w for F(4×4, 3×3), into u[36] (row-major 6×6): computed in double
// and rounded once, since the fractions have no exact float.
void transform_kernel4(const float* w, float* u) {
  double t[3][6];
  for (int j = 0; j < 3; ++j) kernel_transform6(w[j], w[3 + j], w[6 + j], t[j]);
  for (int r = 0; r < 6; ++r) {
    double row[6];
    kernel_transform6(t[0][r], t[1][r], t[2][r], row);
    for (int c = 0; c < 6; ++c) u[r * 6 + c] = static_cast<float>(row[c]);
  }
}

// Writes the transformed weight matrices U[ξ] ([out_channels, in_channels] each; 16 for tiles of 2,
// 36 for tiles of 4) as packed A operands of panel width mr, laid end to end `packed_stride` floats
// apart. With `flipped`, the
// kernel of (o, i) is the transposed, flipped w[i, o, 2 − kh, 2 − kw] (the input gradient's
// convolution), w then being [in_channels, out_channels, 3, 3] of this convolution's channels.
void pack_transformed_weights(const float* weight, bool flipped, int64_t out_channels, int64_t in_channels, int mr,
                              int tile, int64_t packed_stride, float* packed) {
  const int64_t panels = ceil_div(out_channels, mr);
  const int positions = transform_positions(tile);
  ThreadPool& threads = pool();
  threads.run(panels, [&](int64_t panel, int) {
    for (int xi = 0; xi < positions; ++xi) {
      std::memset(packed + xi * packed_stride + panel * in_channels * mr, 0,
                  static_cast<size_t>(in_channels * mr) * sizeof(float));
    }
    const int64_t o_end = std::min(out_channels, (panel + 1) * mr);
    for (int64_t o = panel * mr; o < o_end; ++o) {
      const int64_t lane = o - panel * mr;
      for (int64_t i = 0; i < in_channels; ++i) {
        float kernel[9];
        if (flipped) {
          const float* from = weight + (i * out_channels + o) * 9;
          for (int tap = 0; tap < 9; ++tap) kernel[tap] = from[8 - tap];
        } else {
          std::memcpy(kernel, weight + (o * in_channels + i) * 9, sizeof(kernel));
        }
        float u[36];
        if (tile == 4) {
          transform_kernel4(kernel, u);
        } else {
          transform_kernel(kernel, u);
        }
        float* to = packed + panel * in_channels * mr + i * mr + lane;
        for (int xi = 0; xi < positions; ++xi) to[xi * packed_stride] = u[xi];
      }
    }
  });
}

// to[j] for j in [0, part): pixel first + j − offset of an image row of `width` pixels (line), zero
// where that is no pixel. The pixels go in whole vectors; the zeros after them in whole vectors too
// where `spill` (their last vector may run up to 15 floats past `part`).
__attribute__((always_inline)) inline void fill_part(const float* line, int64_t width, int64_t first, int64_t offset,
                                                     int64_t part, float* to) {
  const int64_t count = std::clamp<int64_t>(width - first, 0, part - offset);
  for (int64_t j = 0; j < offset; ++j) to[j] = 0.0f;
  const float* from = line + first;
  if (count >= 16) {
    copy_in_vectors<Lanes16>(from, count, to + offset);
  } else if (count >= 8) {
    copy_in_vectors<Lanes8>(from, count, to + offset);
  } else {
    for (int64_t j = 0; j < count; ++j) to[offset + j] = from[j];
  }
  for (int64_t j = offset + count; j < part; ++j) to[j] = 0.0f;
}

// Lays rows tile·ty + first_row + r (r < count) of one plane (height × width) for the block's tile
// rows end to end, one strip per r: tile row q's part (tile · tiles_x floats) starts at
// q·tile·tiles_x; rows outside the plane are zeros.
// For the output gradient (`patches` false; tiles of 2, count 2, first_row 0) a part is the row from
// its first pixel, then zeros: lane k's tile row r is floats 2k, 2k + 1 of strip r.
// For the input (`patches`; count tile + 2, first_row −1) lane k's patch row r is the tile + 2
// floats from padded column tile·k (padded column c is pixel c − 1; column 0 and columns past the
// row are the padding's zeros). Neighbouring lanes' patches overlap by two columns, so one strip
// cannot hold them at a fixed stride across a tile row's end: strip r holds each lane's first
// `tile` floats (padded columns tile·k ..) and strip count + r the two after them (padded columns
// tile·k + tile ..: the row again, shifted by `tile`). So every lane is a tile, where one strip
// with a spare lane at each tile row's end wasted a GEMM column in every tiles_x + 1 (a third at
// 4×4 outputs, a fifth at 8×8). `strips` then holds 2·count strips.
// `strips` strips are plan.strip floats apart; only those in `wanted` (bit r: strip r, and with
// `patches` strip count + r) are written. Rows are copied and cleared in whole vectors where they
// are long enough (a part's zeros of a row outside the plane may spill into the next part, which is
// written after it, or into the strip's tail, cleared last): the rows are tens of floats, where
// calls to memcpy and memset, or loops with scalar heads and tails, cost more than the copy.
// The plane is read in memory order, tile row by tile row with each of its `count` rows in turn.
// Strip by strip, it was read in `count` passes whose rows lie a tile row apart, which the hardware
// prefetchers follow less well (one thread, data in memory, 64×32→32 at 28²: forward 5.84 → 5.63 ms,
// input gradient 6.37 → 5.90, weight gradient 7.69 → 7.52; the same bits).
__attribute__((optimize("no-tree-loop-distribute-patterns"))) TENSILE_VECTOR_CLONES
void fill_strips(const float* plane_of_sample0, int64_t sample_stride, int64_t height, int64_t width, const Plan& plan,
                 int64_t row_begin, int64_t row_end, int count, int first_row, bool patches, float* strips,
                 unsigned wanted = ~0u) {
  const int64_t part = plan.tile * plan.tiles_x;
  const int64_t used = (row_end - row_begin) * part;
  const Lanes16 zeros = {};
  int64_t n = row_begin / plan.tiles_y;
  int64_t ty = row_begin % plan.tiles_y;
  for (int64_t at = 0, row = row_begin; row < row_end; ++row, at += part) {
    for (int r = 0; r < count; ++r) {
      if (((wanted >> r) & 1) == 0) continue;
      float* strip = strips + r * plan.strip;
      float* shifted = strips + (count + r) * plan.strip;
      const int64_t y = plan.tile * ty + first_row + r;
      if (y < 0 || y >= height) {
        for (int64_t j = 0; j < part; j += 16) store<Lanes16>(strip + at + j, zeros);
        if (patches) {
          for (int64_t j = 0; j < part; j += 16) store<Lanes16>(shifted + at + j, zeros);
        }
      } else {
        const float* line = plane_of_sample0 + n * sample_stride + y * width;
        if (patches) {
          fill_part(line, width, 0, 1, part, strip + at);
          fill_part(line, width, plan.tile - 1, 0, part, shifted + at);
        } else {
          fill_part(line, width, 0, 0, part, strip + at);
        }
      }
    }
    if (++ty == plan.tiles_y) {
      ty = 0;
      ++n;
    }
  }
  // Lanes past the block's rows (to the end of the last panel) read zeros.
  for (int r = 0; r < count; ++r) {
    if (((wanted >> r) & 1) == 0) continue;
    float* strip = strips + r * plan.strip;
    float* shifted = strips + (count + r) * plan.strip;
    std::memset(strip + used, 0, static_cast<size_t>(plan.strip - used) * sizeof(float));
    if (patches) std::memset(shifted + used, 0, static_cast<size_t>(plan.strip - used) * sizeof(float));
  }
}

// Floats of the strips fill_strips lays for a block's input: two for each of the tile + 2 patch rows.
int64_t input_strip_floats(const Plan& plan) { return 2 * (plan.tile + 2) * plan.strip; }

// One vector of lanes (as many as Lanes holds) of transform_input_lanes: lane k's patch row r reads
// (d0, d1) = floats 2k, 2k + 1 of strip r and (d2, d3) those of strip 4 + r (fill_strips), the even
// and odd floats of two vectors each.
// Only the transform rows in kRows (bit a: ξ = 4a .. 4a + 3) are written, and only the patch rows
// they need are read: each is the same expression whichever others are made.
template <int kRows, typename Lanes, typename Indices>
__attribute__((always_inline)) inline void transform_input_vector(const float* strips, int64_t strip, int64_t v_stride,
                                                                  const Indices& evens, const Indices& odds,
                                                                  float* to) {
  constexpr int width = sizeof(Lanes) / sizeof(float);
  constexpr int kReads = input_patch_rows(kRows);
  Lanes rows[4][4];
  for (int r = 0; r < 4; ++r) {
    if (((kReads >> r) & 1) == 0) continue;
    const float* from = strips + r * strip;
    const Lanes low = load<Lanes>(from);
    const Lanes high = load<Lanes>(from + width);
    const Lanes next_low = load<Lanes>(from + 4 * strip);
    const Lanes next_high = load<Lanes>(from + 4 * strip + width);
    const Lanes d0 = __builtin_shuffle(low, high, evens);
    const Lanes d1 = __builtin_shuffle(low, high, odds);
    const Lanes d2 = __builtin_shuffle(next_low, next_high, evens);
    const Lanes d3 = __builtin_shuffle(next_low, next_high, odds);
    // d·B: [d0 − d2, d1 + d2, d2 − d1, d1 − d3].
    rows[r][0] = d0 - d2;
    rows[r][1] = d1 + d2;
    rows[r][2] = d2 - d1;
    rows[r][3] = d1 - d3;
  }
  // Bᵀ down the columns: rows [a − c, b + c, c − b, b − d].
  for (int j = 0; j < 4; ++j) {
    if (kRows & 1) store<Lanes>(to + (0 * 4 + j) * v_stride, rows[0][j] - rows[2][j]);
    if (kRows & 2) store<Lanes>(to + (1 * 4 + j) * v_stride, rows[1][j] + rows[2][j]);
    if (kRows & 4) store<Lanes>(to + (2 * 4 + j) * v_stride, rows[2][j] - rows[1][j]);
    if (kRows & 8) store<Lanes>(to + (3 * 4 + j) * v_stride, rows[1][j] - rows[3][j]);
  }
}

template <int kRows>
__attribute__((always_inline)) inline void transform_input_lanes_of(const float* strips, int64_t strip, int64_t first,
                                                                    int64_t count, int64_t v_stride, float* to) {
  const Indices16 evens16 = {0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30};
  const Indices16 odds16 = {1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31};
  const Indices8 evens8 = {0, 2, 4, 6, 8, 10, 12, 14};
  const Indices8 odds8 = {1, 3, 5, 7, 9, 11, 13, 15};
  int64_t k = 0;
  for (; k + 16 <= count; k += 16) {
    transform_input_vector<kRows, Lanes16>(strips + 2 * (first + k), strip, v_stride, evens16, odds16, to + k);
  }
  for (; k < count; k += 8) {
    transform_input_vector<kRows, Lanes8>(strips + 2 * (first + k), strip, v_stride, evens8, odds8, to + k);
  }
}

// V[ξ] lanes [first, first + count) of input channel i from the strips (count a multiple of 8);
// Bᵀ·d·B with Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1]. Values go to to[ξ·v_stride + k − first],
// for the ξ of the transform rows in `rows` (see kAllTransformRows; a mask the weight gradient's
// threads never use makes all four). Sixteen lanes at a time (one AVX-512 register each), then eight.
TENSILE_VECTOR_CLONES
void transform_input_lanes(const float* strips, int64_t strip, int64_t first, int64_t count, int64_t v_stride,
                           float* to, int rows) {
  with_transform_rows(rows, [&](auto listed) __attribute__((always_inline)) {
    transform_input_lanes_of<decltype(listed)::value>(strips, strip, first, count, v_stride, to);
  });
}

// The F(4×4, 3×3) transforms multiply by constants such as 1.5 and 2.5: contracted into fused
// multiply-adds in one vector width and not in another (a block's lanes take the 16-lane, 8-lane or
// scalar code by where they fall), their results would depend on the blocks, hence on the thread
// count. Every product is rounded on its own instead.
#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")

// Bᵀ·d of one column (or row) d of a 6×6 patch for F(4×4, 3×3), T a float or a vector of them:
//   Bᵀ = [1 3/2 −2 −3/2 1 0; 0 −1 −5/2 −1/2 1 0; 0 1 1/2 −5/2 1 0; 0 −1/2 −1 1/2 1 0;
//         0 2 −1 −2 1 0; 0 1 3/2 −2 −3/2 1].
template <typename T>
__attribute__((always_inline)) inline void input_transform6(const T (&d)[6], T (&r)[6]) {
  const T odd = d[1] - d[3];
  const T even = d[4] - d[2];
  r[0] = ((d[0] - 2.0f * d[2]) + d[4]) + 1.5f * odd;
  r[1] = (d[4] - 2.5f * d[2]) - (d[1] + 0.5f * d[3]);
  r[2] = (d[4] + 0.5f * d[2]) + (d[1] - 2.5f * d[3]);
  r[3] = even - 0.5f * odd;
  r[4] = even + 2.0f * odd;
  r[5] = ((d[1] - 2.0f * d[3]) + d[5]) + 1.5f * (d[2] - d[4]);
}

// Floats from[4k] for the lanes k of one vector: every fourth float of four vectors' worth.
template <typename Lanes, typename Indices>
__attribute__((always_inline)) inline Lanes every_fourth(const float* from, const Indices& pick, const Indices& join) {
  constexpr int width = sizeof(Lanes) / sizeof(float);
  const Lanes low = __builtin_shuffle(load<Lanes>(from), load<Lanes>(from + width), pick);
  const Lanes high = __builtin_shuffle(load<Lanes>(from + 2 * width), load<Lanes>(from + 3 * width), pick);
  return __builtin_shuffle(low, high, join);
}

// One vector of lanes of transform_input_lanes4: lane k's patch row r is floats 4k .. 4k + 3 of
// strip r, then 4k, 4k + 1 of strip 6 + r (fill_strips).
template <typename Lanes, typename Indices>
__attribute__((always_inline)) inline void transform_input_vector4(const float* strips, int64_t strip,
                                                                   int64_t v_stride, const Indices& pick,
                                                                   const Indices& join, float* to) {
  Lanes rows[6][6];
  for (int r = 0; r < 6; ++r) {
    Lanes d[6];
    for (int j = 0; j < 4; ++j) d[j] = every_fourth<Lanes>(strips + r * strip + j, pick, join);
    for (int j = 4; j < 6; ++j) d[j] = every_fourth<Lanes>(strips + (6 + r) * strip + j - 4, pick, join);
    input_transform6(d, rows[r]);
  }
  for (int j = 0; j < 6; ++j) {
    const Lanes column[6] = {rows[0][j], rows[1][j], rows[2][j], rows[3][j], rows[4][j], rows[5][j]};
    Lanes values[6];
    input_transform6(column, values);
    for (int i = 0; i < 6; ++i) store<Lanes>(to + (i * 6 + j) * v_stride, values[i]);
  }
}

// V[ξ] lanes [first, first + count) of input channel i from the strips for F(4×4, 3×3) (count a
// multiple of 8): Bᵀ·d·B, values to to[ξ·v_stride + k − first]. Sixteen lanes at a time, then eight.
TENSILE_VECTOR_CLONES
void transform_input_lanes4(const float* strips, int64_t strip, int64_t first, int64_t count, int64_t v_stride,
                            float* to) {
  const Indices16 pick16 = {0, 4, 8, 12, 16, 20, 24, 28, 0, 4, 8, 12, 16, 20, 24, 28};
  const Indices16 join16 = {0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23};
  const Indices8 pick8 = {0, 4, 8, 12, 0, 4, 8, 12};
  const Indices8 join8 = {0, 1, 2, 3, 8, 9, 10, 11};
  int64_t k = 0;
  for (; k + 16 <= count; k += 16) {
    transform_input_vector4<Lanes16>(strips + 4 * (first + k), strip, v_stride, pick16, join16, to + k);
  }
  for (; k < count; k += 8) {
    transform_input_vector4<Lanes8>(strips + 4 * (first + k), strip, v_stride, pick8, join8, to + k);
  }
}

#pragma GCC pop_options

// V[ξ] of one block, every input channel, as packed B operands: panels of nr lanes, each spanning
// every input channel (lane k of channel i at (k / nr)·in_channels·nr + i·nr + k % nr).
void transform_input_block(const float* x, const ConvGeometry& g, const Plan& plan, int nr, int64_t row_begin,
                           int64_t row_end, int64_t channel_begin, int64_t channel_end, float* strips, float* v,
                           int rows = kAllTransformRows) {
  const int64_t plane = g.in_height * g.in_width;
  // Only the patch rows the transform rows read (a thread of the weight gradient on two threads
  // reads three of the four: each reads all of x, so the rest would be copied for nothing).
  const unsigned wanted = plan.tile == 4 ? ~0u : static_cast<unsigned>(input_patch_rows(listed_transform_rows(rows)));
  for (int64_t i = channel_begin; i < channel_end; ++i) {
    fill_strips(x + i * plane, g.in_channels * plane, g.in_height, g.in_width, plan, row_begin, row_end,
                plan.tile + 2, -1, true, strips, wanted);
    for (int64_t first = 0; first < plan.lanes; first += nr) {
      float* to = v + first * g.in_channels + i * nr;
      if (plan.tile == 4) {
        transform_input_lanes4(strips, plan.strip, first, nr, plan.v_stride, to);
      } else {
        transform_input_lanes(strips, plan.strip, first, nr, plan.v_stride, to, rows);
      }
    }
  }
}

// Aᵀ·m·A of one tile, or of a vector of tiles (T a vector type): m·A of each row i is
// [m0 + m1 + m2, m1 − m2 − m3]; then Aᵀ = [1 1 1 0; 0 1 −1 −1] down the columns. out: the top row's
// even and odd column, then the bottom row's.
template <typename T>
__attribute__((always_inline)) inline void output_tile(const T (&m)[kPositions], T (&out)[4]) {
  const T r0 = (m[0] + m[1]) + m[2], q0 = (m[1] - m[2]) - m[3];
  const T r1 = (m[4] + m[5]) + m[6], q1 = (m[5] - m[6]) - m[7];
  const T r2 = (m[8] + m[9]) + m[10], q2 = (m[9] - m[10]) - m[11];
  const T r3 = (m[12] + m[13]) + m[14], q3 = (m[13] - m[14]) - m[15];
  out[0] = (r0 + r1) + r2;
  out[1] = (q0 + q1) + q2;
  out[2] = (r1 - r2) - r3;
  out[3] = (q1 - q2) - q3;
}

// output_tile of every lane of one output channel, m[ξ] at from + ξ·m_stride, into out[0..3] (lanes
// each): output row 2·ty at even and odd columns, then row 2·ty + 1 at even and odd columns (for
// the fused pooling, whose windows are then the same lane of the four).
TENSILE_VECTOR_CLONES
void transform_output_lanes(const float* __restrict from, int64_t m_stride, int64_t lanes, float* __restrict out) {
  for (int64_t k = 0; k < lanes; ++k) {
    float m[kPositions];
    for (int xi = 0; xi < kPositions; ++xi) m[xi] = from[xi * m_stride + k];
    float tile[4];
    output_tile(m, tile);
    for (int j = 0; j < 4; ++j) out[j * lanes + k] = tile[j];
  }
}

// One vector of lanes of transform_output_interleaved: output_tile of each lane, each tile's two
// columns then interleaved into its place in the two strips.
template <typename Lanes, typename Indices>
__attribute__((always_inline)) inline void transform_output_vector(const float* from, int64_t m_stride,
                                                                   const Indices& low, const Indices& high,
                                                                   float* top, float* bottom) {
  constexpr int width = sizeof(Lanes) / sizeof(float);
  Lanes m[kPositions];
  for (int xi = 0; xi < kPositions; ++xi) m[xi] = load<Lanes>(from + xi * m_stride);
  Lanes tile[4];
  output_tile(m, tile);
  store<Lanes>(top, __builtin_shuffle(tile[0], tile[1], low));
  store<Lanes>(top + width, __builtin_shuffle(tile[0], tile[1], high));
  store<Lanes>(bottom, __builtin_shuffle(tile[2], tile[3], low));
  store<Lanes>(bottom + width, __builtin_shuffle(tile[2], tile[3], high));
}

// output_tile of every lane of one output channel, m[ξ] at from + ξ·m_stride: lane k's top output
// row at top[2k], top[2k + 1] and its bottom row at bottom[2k], bottom[2k + 1], so that an output
// row is one run of a strip (a tile row's lanes are neighbours), as in the input strips of
// fill_strips. Sixteen lanes at a time, then eight, then one.
TENSILE_VECTOR_CLONES
void transform_output_interleaved(const float* __restrict from, int64_t m_stride, int64_t lanes, float* __restrict top,
                                  float* __restrict bottom) {
  const Indices16 low16 = {0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23};
  const Indices16 high16 = {8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
  const Indices8 low8 = {0, 8, 1, 9, 2, 10, 3, 11};
  const Indices8 high8 = {4, 12, 5, 13, 6, 14, 7, 15};
  int64_t k = 0;
  for (; k + 16 <= lanes; k += 16) {
    transform_output_vector<Lanes16>(from + k, m_stride, low16, high16, top + 2 * k, bottom + 2 * k);
  }
  for (; k + 8 <= lanes; k += 8) {
    transform_output_vector<Lanes8>(from + k, m_stride, low8, high8, top + 2 * k, bottom + 2 * k);
  }
  for (; k < lanes; ++k) {
    float m[kPositions];
    for (int xi = 0; xi < kPositions; ++xi) m[xi] = from[xi * m_stride + k];
    float tile[4];
    output_tile(m, tile);
    top[2 * k] = tile[0];
    top[2 * k + 1] = tile[1];
    bottom[2 * k] = tile[2];
    bottom[2 * k + 1] = tile[3];
  }
}

// The max of one 2×2 window's values in max_pool2d_forward's order (row-major: the first value,
// then any greater one or NaN).
__attribute__((always_inline)) inline float window_max(float a, float b, float c, float d) {
  float best = a;
  best = (b > best) | (b != b) ? b : best;
  best = (c > best) | (c != c) ? c : best;
  best = (d > best) | (d != d) ? d : best;
  return best;
}

// One pooled output row: the 2×2 window of tile k is (top_even[k], top_odd[k], bottom_even[k],
// bottom_odd[k]), after the epilogue (window_max).
TENSILE_VECTOR_CLONES
void pool_tiles(const float* __restrict top_even, const float* __restrict top_odd, const float* __restrict bottom_even,
                const float* __restrict bottom_odd, int64_t count, float* __restrict to) {
  for (int64_t k = 0; k < count; ++k) to[k] = window_max(top_even[k], top_odd[k], bottom_even[k], bottom_odd[k]);
}

#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")

// Aᵀ·m of one column (or row) m of a 6×6 product for F(4×4, 3×3), T a float or a vector of them:
//   Aᵀ = [1 1 1 1 1 0; 0 1 −1 2 −½ 0; 0 1 1 4 ¼ 0; 0 1 −1 8 −⅛ 1].
template <typename T>
__attribute__((always_inline)) inline void output_transform6(const T (&m)[6], T (&o)[4]) {
  const T sum12 = m[1] + m[2], difference12 = m[1] - m[2];
  o[0] = (m[0] + sum12) + (m[3] + m[4]);
  o[1] = difference12 + (2.0f * m[3] - 0.5f * m[4]);
  o[2] = sum12 + (4.0f * m[3] + 0.25f * m[4]);
  o[3] = (difference12 + (8.0f * m[3] - 0.125f * m[4])) + m[5];
}

template <typename T>
__attribute__((always_inline)) inline T load_value(const float* from) {
  if constexpr (sizeof(T) == sizeof(float)) {
    return *from;
  } else {
    return load<T>(from);
  }
}

// The 4×4 output tile Aᵀ·M·A of one lane (T float) or a vector of lanes, m[ξ] at from + ξ·m_stride:
// tile[r][c] is output row r, column c of the tile.
template <typename T>
__attribute__((always_inline)) inline void output_tile4(const float* from, int64_t m_stride, T (&tile)[4][4]) {
  T across[6][4];
  for (int i = 0; i < 6; ++i) {
    T m[6];
    for (int j = 0; j < 6; ++j) m[j] = load_value<T>(from + (i * 6 + j) * m_stride);
    output_transform6(m, across[i]);
  }
  for (int c = 0; c < 4; ++c) {
    const T column[6] = {across[0][c], across[1][c], across[2][c], across[3][c], across[4][c], across[5][c]};
    T values[4];
    output_transform6(column, values);
    for (int r = 0; r < 4; ++r) tile[r][c] = values[r];
  }
}

// output_tile4 of every lane of one output channel: lane k's output row r at rows[r][4k .. 4k + 3],
// so that an output row is one run of a strip. Sixteen lanes at a time (the four columns of each
// row interleaved by two rounds of shuffles), then eight, then one. Returns whether every value is
// finite (see winograd_forward: a NaN or infinity spreads further through these transforms than
// through the direct sum); the check is a product by zero summed in registers.
TENSILE_VECTOR_CLONES
bool transform_output_interleaved4(const float* __restrict from, int64_t m_stride, int64_t lanes, float* const* rows) {
  Lanes16 zeros16 = {};
  Lanes8 zeros8 = {};
  float zeros = 0.0f;
  const Indices16 low16 = {0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23};
  const Indices16 high16 = {8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
  const Indices16 first16 = {0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23};
  const Indices16 second16 = {8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31};
  const Indices8 low8 = {0, 8, 1, 9, 2, 10, 3, 11};
  const Indices8 high8 = {4, 12, 5, 13, 6, 14, 7, 15};
  const Indices8 first8 = {0, 1, 8, 9, 2, 3, 10, 11};
  const Indices8 second8 = {4, 5, 12, 13, 6, 7, 14, 15};
  int64_t k = 0;
  for (; k + 16 <= lanes; k += 16) {
    Lanes16 tile[4][4];
    output_tile4<Lanes16>(from + k, m_stride, tile);
    for (int r = 0; r < 4; ++r) {
      zeros16 += ((tile[r][0] * 0.0f + tile[r][1] * 0.0f) + (tile[r][2] * 0.0f + tile[r][3] * 0.0f));
      const Lanes16 low01 = __builtin_shuffle(tile[r][0], tile[r][1], low16);
      const Lanes16 high01 = __builtin_shuffle(tile[r][0], tile[r][1], high16);
      const Lanes16 low23 = __builtin_shuffle(tile[r][2], tile[r][3], low16);
      const Lanes16 high23 = __builtin_shuffle(tile[r][2], tile[r][3], high16);
      float* to = rows[r] + 4 * k;
      store<Lanes16>(to, __builtin_shuffle(low01, low23, first16));
      store<Lanes16>(to + 16, __builtin_shuffle(low01, low23, second16));
      store<Lanes16>(to + 32, __builtin_shuffle(high01, high23, first16));
      store<Lanes16>(to + 48, __builtin_shuffle(high01, high23, second16));
    }
  }
  for (; k + 8 <= lanes; k += 8) {
    Lanes8 tile[4][4];
    output_tile4<Lanes8>(from + k, m_stride, tile);
    for (int r = 0; r < 4; ++r) {
      zeros8 += ((tile[r][0] * 0.0f + tile[r][1] * 0.0f) + (tile[r][2] * 0.0f + tile[r][3] * 0.0f));
      const Lanes8 low01 = __builtin_shuffle(tile[r][0], tile[r][1], low8);
      const Lanes8 high01 = __builtin_shuffle(tile[r][0], tile[r][1], high8);
      const Lanes8 low23 = __builtin_shuffle(tile[r][2], tile[r][3], low8);
      const Lanes8 high23 = __builtin_shuffle(tile[r][2], tile[r][3], high8);
      float* to = rows[r] + 4 * k;
      store<Lanes8>(to, __builtin_shuffle(low01, low23, first8));
      store<Lanes8>(to + 8, __builtin_shuffle(low01, low23, second8));
      store<Lanes8>(to + 16, __builtin_shuffle(high01, high23, first8));
      store<Lanes8>(to + 24, __builtin_shuffle(high01, high23, second8));
    }
  }
  for (; k < lanes; ++k) {
    float tile[4][4];
    output_tile4<float>(from + k, m_stride, tile);
    for (int r = 0; r < 4; ++r) {
      for (int c = 0; c < 4; ++c) {
        rows[r][4 * k + c] = tile[r][c];
        zeros += tile[r][c] * 0.0f;
      }
    }
  }
  for (int j = 0; j < 16; ++j) zeros += zeros16[j];
  for (int j = 0; j < 8; ++j) zeros += zeros8[j];
  return zeros == 0.0f;
}

#pragma GCC pop_options

// One pooled row of 2×2 windows over two output rows laid as strips: window w is (top[2w],
// top[2w + 1], bottom[2w], bottom[2w + 1]) (window_max).
TENSILE_VECTOR_CLONES
void pool_rows(const float* __restrict top, const float* __restrict bottom, int64_t count, float* __restrict to) {
  for (int64_t w = 0; w < count; ++w) to[w] = window_max(top[2 * w], top[2 * w + 1], bottom[2 * w], bottom[2 * w + 1]);
}

// Whether the output blocks apply the epilogue row by row as they copy the rows out: for rows of a
// vector or more, and with a residual (laid out as the output). Rows shorter than a vector (7 or
// 14 outputs) without one take it over the strips whole first, lanes past the block too, and are then
// copied: row by row they ran mostly the vectorised loop's scalar tail.
inline bool epilogue_per_row(const ConvEpilogue* epilogue, const ConvGeometry& g) {
  return epilogue != nullptr && (epilogue->residual != nullptr || g.out_width >= 16);
}

// transform_output_block for tiles of 4: each output channel's tiles into four row strips (six
// strips of plan.strip floats in `strips`, the last two for pooled rows), then to the output.
// Returns whether every output value was finite (see transform_output_interleaved4).
// Both output blocks are cloned for the vector widths (with contraction off for their inlined
// epilogues): built for baseline x86-64, their row copies (copy_run) moved each sixteen floats
// through the stack, 10% of a 32-channel layer's forward time at 28².
#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")
TENSILE_VECTOR_CLONES
bool transform_output_block4(const float* m, const ConvGeometry& g, const Plan& plan, int64_t row_begin,
                             int64_t row_end, int64_t channel_begin, int64_t channel_end,
                             const ConvEpilogue* epilogue, float* strips, float* out) {
  const int64_t plane = g.out_height * g.out_width;
  const int64_t lanes = (row_end - row_begin) * plan.tiles_x;
  float* const rows[4] = {strips, strips + plan.strip, strips + 2 * plan.strip, strips + 3 * plan.strip};
  float* const pooled[2] = {strips + 4 * plan.strip, strips + 5 * plan.strip};
  const bool pool = epilogue != nullptr && epilogue->max_pool;
  const int64_t pooled_height = g.out_height / 2;
  const int64_t pooled_width = g.out_width / 2;
  bool finite = true;
  for (int64_t o = channel_begin; o < channel_end; ++o) {
    finite = transform_output_interleaved4(m + o * plan.lanes, plan.m_stride, lanes, rows) && finite;
    if (pool) {
      // The epilogue over every value of the strips and each window's max over all lanes at once
      // (tiles past the image and lanes past the block too), then each tile row's whole windows to
      // the output.
      for (int r = 0; r < 4; ++r) {
        apply_epilogue(rows[r], rows[r], nullptr, 4 * lanes, epilogue->scale[o], epilogue->shift[o], epilogue->relu);
      }
      pool_rows(rows[0], rows[1], 2 * lanes, pooled[0]);
      pool_rows(rows[2], rows[3], 2 * lanes, pooled[1]);
      for (int64_t row = row_begin; row < row_end; ++row) {
        const int64_t n = row / plan.tiles_y;
        const int64_t ty = row % plan.tiles_y;
        for (int half = 0; half < 2 && 2 * ty + half < pooled_height; ++half) {
          std::memcpy(out + ((n * g.out_channels + o) * pooled_height + 2 * ty + half) * pooled_width,
                      pooled[half] + 2 * (row - row_begin) * plan.tiles_x,
                      static_cast<size_t>(pooled_width) * sizeof(float));
        }
      }
      continue;
    }
    const bool per_row = epilogue_per_row(epilogue, g);
    if (epilogue != nullptr && !per_row) {
      for (int r = 0; r < 4; ++r) {
        apply_epilogue(rows[r], rows[r], nullptr, 4 * lanes, epilogue->scale[o], epilogue->shift[o], epilogue->relu);
      }
    }
    for (int64_t row = row_begin; row < row_end; ++row) {
      const int64_t n = row / plan.tiles_y;
      const int64_t oh = 4 * (row % plan.tiles_y);
      const int64_t first = 4 * (row - row_begin) * plan.tiles_x;
      for (int r = 0; r < 4 && oh + r < g.out_height; ++r) {
        const int64_t at = (n * g.out_channels + o) * plane + (oh + r) * g.out_width;
        const float* from = rows[r] + first;
        if (!per_row) {
          copy_run(from, g.out_width, out + at);
          continue;
        }
        apply_epilogue(from, out + at, epilogue->residual == nullptr ? nullptr : epilogue->residual + at, g.out_width,
                       epilogue->scale[o], epilogue->shift[o], epilogue->relu);
      }
    }
  }
  return finite;
}

// out[n, o] for the block's tile rows from M, then the epilogue (and with epilogue->max_pool, the
// pooling). `strips` holds 4·lanes + max(width, lanes) floats. Returns false where tiles of 4 gave
// a value that is not finite (see winograd_forward); tiles of 2 always return true.
TENSILE_VECTOR_CLONES
bool transform_output_block(const float* m, const ConvGeometry& g, const Plan& plan, int64_t row_begin,
                            int64_t row_end, int64_t channel_begin, int64_t channel_end,
                            const ConvEpilogue* epilogue, float* strips, float* out) {
  if (plan.tile == 4) {
    return transform_output_block4(m, g, plan, row_begin, row_end, channel_begin, channel_end, epilogue, strips, out);
  }
  const int64_t plane = g.out_height * g.out_width;
  const int64_t lanes = (row_end - row_begin) * plan.tiles_x;
  float* top = strips;
  float* bottom = strips + plan.strip;
  float* row_buffer = strips + 4 * lanes;
  const bool pool = epilogue != nullptr && epilogue->max_pool;
  const int64_t pooled_height = g.out_height / 2;
  const int64_t pooled_width = g.out_width / 2;
  for (int64_t o = channel_begin; o < channel_end; ++o) {
    if (pool) {
      transform_output_lanes(m + o * plan.lanes, plan.m_stride, lanes, strips);
      // The epilogue over all four values of every tile, then each window's max, over all lanes at
      // once (half-outside tiles and lanes past the block too: rows are too short to vectorise one
      // by one),
      // into row_buffer; then each tile row's whole windows to the output.
      apply_epilogue(strips, strips, nullptr, 4 * lanes, epilogue->scale[o], epilogue->shift[o], epilogue->relu);
      pool_tiles(strips, strips + lanes, strips + 2 * lanes, strips + 3 * lanes, lanes, row_buffer);
      for (int64_t row = row_begin; row < row_end; ++row) {
        const int64_t n = row / plan.tiles_y;
        const int64_t ty = row % plan.tiles_y;
        if (ty >= pooled_height) continue;
        std::memcpy(out + ((n * g.out_channels + o) * pooled_height + ty) * pooled_width,
                    row_buffer + (row - row_begin) * plan.tiles_x, static_cast<size_t>(pooled_width) * sizeof(float));
      }
      continue;
    }
    transform_output_interleaved(m + o * plan.lanes, plan.m_stride, lanes, top, bottom);
    const bool per_row = epilogue_per_row(epilogue, g);
    if (epilogue != nullptr && !per_row) {
      apply_epilogue(top, top, nullptr, 2 * lanes, epilogue->scale[o], epilogue->shift[o], epilogue->relu);
      apply_epilogue(bottom, bottom, nullptr, 2 * lanes, epilogue->scale[o], epilogue->shift[o], epilogue->relu);
    }
    for (int64_t row = row_begin; row < row_end; ++row) {
      const int64_t n = row / plan.tiles_y;
      const int64_t oh = 2 * (row % plan.tiles_y);
      const int64_t first = 2 * (row - row_begin) * plan.tiles_x;
      for (int half = 0; half < 2 && oh + half < g.out_height; ++half) {
        const int64_t at = (n * g.out_channels + o) * plane + (oh + half) * g.out_width;
        const float* from = (half == 0 ? top : bottom) + first;
        if (!per_row) {
          copy_run(from, g.out_width, out + at);
          continue;
        }
        apply_epilogue(from, out + at, epilogue->residual == nullptr ? nullptr : epilogue->residual + at,
                       g.out_width, epilogue->scale[o], epilogue->shift[o], epilogue->relu);
      }
    }
  }
  return true;
}
#pragma GCC pop_options

// The blocks one after another, each by all threads: input transforms split by input channel, the 16
// products by transform position and panels of output channels, output transforms by output
// channel. V and M are the calling thread's scratch, shared.
bool shared_blocks(const float* x, const ConvGeometry& g, const Plan& plan, const GemmKernels& kernels,
                   const float* packed, int64_t packed_stride, const ConvEpilogue* epilogue, float* out) {
  std::atomic<bool> finite{true};
  ThreadPool& threads = pool();
  const int64_t workers = threads.threads();
  float* v = scratch(ScratchSlot::kColumns, 0, 0);
  float* m = scratch(ScratchSlot::kTile, 0, 0);
  const int64_t row_panels = ceil_div(g.out_channels, kernels.mr);
  const int64_t row_chunks = std::min(row_panels, ceil_div(4 * workers, plan.positions()));
  const int64_t in_tasks = std::min(g.in_channels, 4 * workers);
  const int64_t out_tasks = std::min(g.out_channels, 4 * workers);
  for (int64_t block = 0; block < plan.blocks; ++block) {
    const int64_t row_begin = block * plan.rows_per_block;
    const int64_t row_end = std::min(plan.tile_rows, row_begin + plan.rows_per_block);
    const int64_t lanes = (row_end - row_begin) * plan.tiles_x;
    threads.run(in_tasks, [&](int64_t task, int thread) {
      transform_input_block(x, g, plan, kernels.nr, row_begin, row_end, g.in_channels * task / in_tasks,
                            g.in_channels * (task + 1) / in_tasks, scratch(ScratchSlot::kPartial, thread, 0), v);
    });
    threads.run(plan.positions() * row_chunks, [&](int64_t task, int) {
      const int64_t xi = task % plan.positions();
      const int64_t chunk = task / plan.positions();
      gemm_packed(kernels, g.out_channels, lanes, g.in_channels, packed + xi * packed_stride, v + xi * plan.v_stride,
                  m + xi * plan.m_stride, plan.lanes, false, row_panels * chunk / row_chunks,
                  row_panels * (chunk + 1) / row_chunks, 0, ceil_div(lanes, kernels.nr));
    });
    threads.run(out_tasks, [&](int64_t task, int thread) {
      if (!transform_output_block(m, g, plan, row_begin, row_end, g.out_channels * task / out_tasks,
                                  g.out_channels * (task + 1) / out_tasks, epilogue,
                                  scratch(ScratchSlot::kPartial, thread, 0), out)) {
        finite.store(false, std::memory_order_relaxed);
      }
    });
  }
  return finite.load();
}

// One vector of lanes of transform_gradient_lanes: lane k's tile is [a, b; c, d] with a, b the
// floats 2k, 2k + 1 of the top strip and c, d those of the bottom strip.
template <int kRows, typename Lanes, typename Indices>
__attribute__((always_inline)) inline void transform_gradient_vector(const float* top, const float* bottom,
                                                                     int64_t m_stride, const Indices& evens,
                                                                     const Indices& odds, float* to) {
  constexpr int width = sizeof(Lanes) / sizeof(float);
  const Lanes top_low = load<Lanes>(top), top_high = load<Lanes>(top + width);
  const Lanes bottom_low = load<Lanes>(bottom), bottom_high = load<Lanes>(bottom + width);
  const Lanes a = __builtin_shuffle(top_low, top_high, evens), b = __builtin_shuffle(top_low, top_high, odds);
  const Lanes c = __builtin_shuffle(bottom_low, bottom_high, evens);
  const Lanes d = __builtin_shuffle(bottom_low, bottom_high, odds);
  // A·dY: rows [a, b], [a + c, b + d], [a − c, b − d], [−c, −d]; then each row [p, q] times Aᵀ:
  // [p, p + q, p − q, −q].
  const Lanes rows[4][2] = {{a, b}, {a + c, b + d}, {a - c, b - d}, {-c, -d}};
  for (int r = 0; r < 4; ++r) {
    if (((kRows >> r) & 1) == 0) continue;
    const Lanes p = rows[r][0], q = rows[r][1];
    store<Lanes>(to + (r * 4 + 0) * m_stride, p);
    store<Lanes>(to + (r * 4 + 1) * m_stride, p + q);
    store<Lanes>(to + (r * 4 + 2) * m_stride, p - q);
    store<Lanes>(to + (r * 4 + 3) * m_stride, -q);
  }
}

template <int kRows>
__attribute__((always_inline)) inline void transform_gradient_lanes_of(const float* top, const float* bottom,
                                                                       int64_t lanes, int64_t m_stride, float* to) {
  const Indices16 evens16 = {0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30};
  const Indices16 odds16 = {1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31};
  const Indices8 evens8 = {0, 2, 4, 6, 8, 10, 12, 14};
  const Indices8 odds8 = {1, 3, 5, 7, 9, 11, 13, 15};
  int64_t k = 0;
  for (; k + 16 <= lanes; k += 16) {
    transform_gradient_vector<kRows, Lanes16>(top + 2 * k, bottom + 2 * k, m_stride, evens16, odds16, to + k);
  }
  for (; k < lanes; k += 8) {
    transform_gradient_vector<kRows, Lanes8>(top + 2 * k, bottom + 2 * k, m_stride, evens8, odds8, to + k);
  }
}

// The output gradient's tiles of one output channel as M'[ξ] = A·dY·Aᵀ (the transpose of the output
// transform), plain rows of `lanes` floats (a multiple of 8) per ξ at to + ξ·m_stride, with
// A = [1 0; 1 1; 1 −1; 0 −1], for the ξ of the transform rows in `rows` (as transform_input_lanes).
// Sixteen lanes at a time, then eight.
TENSILE_VECTOR_CLONES
void transform_gradient_lanes(const float* top, const float* bottom, int64_t lanes, int64_t m_stride, float* to,
                              int rows) {
  with_transform_rows(rows, [&](auto listed) __attribute__((always_inline)) {
    transform_gradient_lanes_of<decltype(listed)::value>(top, bottom, lanes, m_stride, to);
  });
}

// M' of one block for output channels [channel_begin, channel_end): plain [out_channels, lanes] rows
// per ξ. `strips` holds two strips (the tile rows' output-gradient rows 2·ty and 2·ty + 1, laid end
// to end with two floats per lane, zeros past the image and past the block's lanes).
void transform_gradient_block(const float* grad_out, const ConvGeometry& g, const Plan& plan, int64_t row_begin,
                              int64_t row_end, int64_t channel_begin, int64_t channel_end, float* strips, float* m,
                              int rows = kAllTransformRows) {
  const int64_t plane = g.out_height * g.out_width;
  for (int64_t o = channel_begin; o < channel_end; ++o) {
    fill_strips(grad_out + o * plane, g.out_channels * plane, g.out_height, g.out_width, plan, row_begin, row_end, 2,
                0, false, strips);
    transform_gradient_lanes(strips, strips + plan.strip, plan.lanes, plan.m_stride, m + o * plan.lanes, rows);
  }
}

// gradW[o, i] = Gᵀ·gradU[o, i]·G (3×3) from the 16 values gradU[ξ][o, i] at u + ξ·stride.
inline void inverse_kernel_transform(const float* u, int64_t stride, float* w) {
  float t[3][4];
  for (int j = 0; j < 4; ++j) {
    const float u0 = u[(0 * 4 + j) * stride], u1 = u[(1 * 4 + j) * stride];
    const float u2 = u[(2 * 4 + j) * stride], u3 = u[(3 * 4 + j) * stride];
    // Gᵀ = [1 ½ ½ 0; 0 ½ −½ 0; 0 ½ ½ 1].
    t[0][j] = u0 + 0.5f * (u1 + u2);
    t[1][j] = 0.5f * (u1 - u2);
    t[2][j] = 0.5f * (u1 + u2) + u3;
  }
  for (int r = 0; r < 3; ++r) {
    w[r * 3 + 0] = t[r][0] + 0.5f * (t[r][1] + t[r][2]);
    w[r * 3 + 1] = 0.5f * (t[r][1] - t[r][2]);
    w[r * 3 + 2] = 0.5f * (t[r][1] + t[r][2]) + t[r][3];
  }
}

// F(2×2, 3×3) needs a 3×3 kernel at stride 1, padding 1 and an output the size of the input.
bool winograd_shape(const ConvGeometry& g) {
  return winograd_enabled && g.kernel_height == 3 && g.kernel_width == 3 && g.stride_height == 1 &&
         g.stride_width == 1 && g.dilation_height == 1 && g.dilation_width == 1 && g.pad_top == 1 && g.pad_left == 1 &&
         g.out_height == g.in_height && g.out_width == g.in_width && g.in_height > 0 && g.in_width > 0;
}

// Output tile side of the forward convolution (and of the input gradient, a forward convolution of
// its own): 4, F(4×4, 3×3), where its sums run over at most 32 channels and its tiles need at most
// three quarters of F(2×2, 3×3)'s products (36 a tile of 4 against 16 a tile of 2, tiles past the
// image's edge counted: 9·tiles(4) ≤ ¾·4·tiles(2)); else 2. Its transforms' larger coefficients
// cost about ten times the rounding error: 0.35–0.4 of the conformance tolerance at 32 channels
// (F(2×2, 3×3): 0.02–0.05), 0.8–0.9 at 64 and past it at 256, measured on 10⁶ outputs of uniform
// data. Hence the channel limit. The share: one thread, 128 × 32 → 32, F(2×2, 3×3) against
// F(4×4, 3×3): 14² 5.5 → 4.3 ms, 13² 5.5 → 4.9, 11² 3.9 → 3.6, but 10² 3.1 → 3.6 and 9² 3.2 →
// 3.5 (three tiles of 4 a side cover 12², so 30% of their outputs lie past the image); 64 × 32 → 32
// at 7² 0.88 → 0.71 ms. Like the choice of path, it never depends on the batch.
int forward_tile(const ConvGeometry& g) {
  const auto tiles = [&](int64_t side) { return ceil_div(g.out_height, side) * ceil_div(g.out_width, side); };
  return g.in_channels <= 32 && g.out_height >= 7 && g.out_width >= 7 && 3 * tiles(4) <= tiles(2) ? 4 : 2;
}

}  // namespace

void set_winograd_enabled(bool enabled) { winograd_enabled = enabled; }
bool winograd_is_enabled() { return winograd_enabled; }

bool winograd_applies(const ConvGeometry& g) {
  // The transforms cost per tile and channel what the products save per tile and channel pair, so
  // fewer than ~32 channels on either side gain nothing (32 → 32 at 28² gains 10–15% with blocks
  // of whole samples, nothing with blocks cut across samples). At 512 × 512 channels the weights'
  // transform alone (16 MB written per call, 2.4 ms on one core) takes what the products save on
  // ResNet's 7×7 layers at batch 8 (and on its 4×4 layers at batch 32 in training). The choice never
  // depends on the batch size, so a sample gives the same bits alone as in any batch.
  return winograd_shape(g) && g.in_channels >= 32 && g.out_channels >= 32 &&
         g.in_channels * g.out_channels <= 256 * 256;
}

bool winograd_weight_gradient_applies(const ConvGeometry& g) {
  // The weight gradient transforms no weights (its products' depth is the batch's tiles), so it
  // gains from 32 channels a side up to 512 × 512 (ResNet's 4×4 layers at batch 32: 6.2 → 4.6 ms);
  // past that its 16 sums (16 MB at 512 × 512) outgrow what scratch memory should hold.
  return winograd_shape(g) && g.in_channels >= 32 && g.out_channels >= 32 &&
         g.in_channels * g.out_channels <= 512 * 512;
}

namespace {

// winograd_forward with output tiles of `tile`; *finite tells whether every output value was (always
// true for tiles of 2).
bool forward_tiles(const float* x, const float* weight, bool flipped, float* out, const ConvGeometry& g,
                   const ConvEpilogue* epilogue, int tile, bool* finite) {
  const GemmKernels& kernels = active_kernels();
  ThreadPool& threads = pool();
  const int workers = threads.threads();
  const Plan plan = make_plan(g, kernels.nr, workers, false, tile);
  const int64_t packed_stride = region_stride(packed_size(g.out_channels, g.in_channels, kernels.mr));
  float* packed = scratch(ScratchSlot::kPackedA, 0, static_cast<size_t>(plan.positions() * packed_stride));
  const int owners = plan.shared ? 1 : workers;
  // Strips: two for each of the input's tile + 2 rows (fill_strips), then the output's rows (and for
  // tiles of 4 two pooled ones) in the same space.
  const int64_t strips = input_strip_floats(plan);
  if (packed == nullptr || !reserve_scratch(ScratchSlot::kColumns, owners, plan.positions() * plan.v_stride) ||
      !reserve_scratch(ScratchSlot::kTile, owners, plan.positions() * plan.m_stride) ||
      !reserve_scratch(ScratchSlot::kPartial, workers, strips)) {
    return false;
  }
  pack_transformed_weights(weight, flipped, g.out_channels, g.in_channels, kernels.mr, plan.tile, packed_stride,
                           packed);

  if (plan.shared) {
    *finite = shared_blocks(x, g, plan, kernels, packed, packed_stride, epilogue, out);
    return true;
  }
  std::atomic<bool> all_finite{true};
  threads.run(plan.blocks, [&](int64_t block, int thread) {
    float* v = scratch(ScratchSlot::kColumns, thread, 0);
    float* m = scratch(ScratchSlot::kTile, thread, 0);
    float* strips = scratch(ScratchSlot::kPartial, thread, 0);
    const int64_t row_begin = block * plan.rows_per_block;
    const int64_t row_end = std::min(plan.tile_rows, row_begin + plan.rows_per_block);
    // The last block may hold fewer rows: its products need only the panels its lanes reach.
    const int64_t lanes = (row_end - row_begin) * plan.tiles_x;
    transform_input_block(x, g, plan, kernels.nr, row_begin, row_end, 0, g.in_channels, strips, v);
    for (int xi = 0; xi < plan.positions(); ++xi) {
      gemm_packed(kernels, g.out_channels, lanes, g.in_channels, packed + xi * packed_stride, v + xi * plan.v_stride,
                  m + xi * plan.m_stride, plan.lanes, false);
    }
    if (!transform_output_block(m, g, plan, row_begin, row_end, 0, g.out_channels, epilogue, strips, out)) {
      all_finite.store(false, std::memory_order_relaxed);
    }
  });
  *finite = all_finite.load();
  return true;
}

}  // namespace

bool winograd_forward(const float* x, const float* weight, bool flipped, float* out, const ConvGeometry& g,
                      const ConvEpilogue* epilogue) {
  bool finite = true;
  if (!forward_tiles(x, weight, flipped, out, g, epilogue, forward_tile(g), &finite)) return false;
  // A NaN or infinity in the input reaches every output of its F(4×4, 3×3) tiles (the transforms
  // mix a patch's 36 values, and NaN · 0 is NaN), where the direct sum and F(2×2, 3×3) confine it
  // to the outputs whose windows hold it. Such calls (and any whose outputs overflow) run again on
  // tiles of 2, so non-finite values land where they always did.
  if (!finite) return forward_tiles(x, weight, flipped, out, g, epilogue, 2, &finite);
  return true;
}

namespace {

// Most input × output channels of a Winograd weight gradient summed by chunks (64 × 64; see
// winograd_weight_gradient).
constexpr int64_t kChunkSumChannels = 64 * 64;

// Chunks of the batch that the weight gradient sums apart: a number of the geometry's, never of the
// thread count, so that the sums' grouping is the same on any number of threads.
constexpr int64_t kGradientChunks = 4;

// A thread's V and M' for all 16 ξ of one block, in floats (1 MiB, this host's L2): lanes per block
// are this over 16 · (in + out channels).
constexpr int64_t kChunkBlockFloats = 1 << 18;

// The weight gradient's blocks hold a multiple of 8 lanes (the transforms' vectors); the lanes are
// its products' depth, so they need not fill panels.
constexpr int kGradientLaneMultiple = 8;

// to[j] += from[j] for j < count.
TENSILE_VECTOR_CLONES
void add_floats(const float* __restrict from, int64_t count, float* __restrict to) {
  for (int64_t j = 0; j < count; ++j) to[j] += from[j];
}

// Whether the weight gradient reads M'[ξ]'s rows in place rather than packed (see gradient_product).
bool gradient_in_place(const ConvGeometry& g, const GemmKernels& kernels) { return g.in_channels <= 4 * kernels.nr; }

// The per-thread scratch of both weight-gradient paths: the strips, V[ξ] packed, M'[ξ] packed where
// it is not read in place. False when memory runs out.
bool reserve_gradient_scratch(const ConvGeometry& g, const Plan& plan, const GemmKernels& kernels, int workers) {
  return reserve_scratch(ScratchSlot::kPartial, workers, input_strip_floats(plan)) &&
         reserve_scratch(ScratchSlot::kBatchColumns, workers, packed_size(g.in_channels, plan.lanes, kernels.nr)) &&
         reserve_scratch(ScratchSlot::kPackedA, workers,
                         gradient_in_place(g, kernels) ? 0 : packed_size(g.out_channels, plan.lanes, kernels.mr));
}

// Where row o of M'[ξ] starts (o · lanes), for the in-place product.
std::vector<int64_t> gradient_row_offsets(const ConvGeometry& g, const Plan& plan) {
  std::vector<int64_t> offsets(static_cast<size_t>(g.out_channels));
  for (int64_t o = 0; o < g.out_channels; ++o) offsets[static_cast<size_t>(o)] = o * plan.lanes;
  return offsets;
}

// target (+)= M'[ξ]·V[ξ]ᵀ ([out_channels, in_channels]) for one block of `lanes` lanes, V and M' at
// v and m as the transforms left them. M'[ξ]'s rows are read once per panel of V[ξ]: in place where
// there are few panels, packed where packing pays for itself over more of them (the same products
// either way). Measured: in place 8-12% faster at 32-64 input channels (two panels), even at 128, 5%
// slower at 256.
void gradient_product(const GemmKernels& kernels, const ConvGeometry& g, const Plan& plan, const float* v,
                      const float* m, const int64_t* row_offsets, int64_t lanes, int xi, int thread, float* target,
                      bool accumulate) {
  float* packed_input = scratch(ScratchSlot::kBatchColumns, thread, 0);
  kernels.pack(v + xi * plan.v_stride, plan.lanes, 1, g.in_channels, lanes, kernels.nr, packed_input);
  if (gradient_in_place(g, kernels)) {
    gemm_indirect_a(kernels, 0, g.out_channels, g.in_channels, lanes, m + xi * plan.m_stride, row_offsets, packed_input,
                    target, g.in_channels, accumulate);
    return;
  }
  float* packed_gradient = scratch(ScratchSlot::kPackedA, thread, 0);
  kernels.pack(m + xi * plan.m_stride, plan.lanes, 1, g.out_channels, lanes, kernels.mr, packed_gradient);
  gemm_packed(kernels, g.out_channels, g.in_channels, lanes, packed_gradient, packed_input, target, g.in_channels,
              accumulate);
}

// Blocks for weight_gradient_by_chunks: kChunkBlockFloats of V and M' a block. Where that holds a
// sample or more, blocks are whole samples, their count rounded up to a multiple of the chunks where
// the batch allows (seven blocks of ten 14² samples left one of two threads a block behind); else
// tile rows, cut across samples.
void set_chunk_blocks(Plan& plan, const ConvGeometry& g) {
  const int64_t target = std::max<int64_t>(
      kGradientLaneMultiple, kChunkBlockFloats / (kPositions * (g.in_channels + g.out_channels)));
  const int64_t sample_lanes = plan.tiles_y * plan.tiles_x;
  if (target >= sample_lanes) {
    const int64_t blocks = round_up(ceil_div(g.batch, target / sample_lanes), kGradientChunks);
    set_block_rows(plan, g, kGradientLaneMultiple, ceil_div(g.batch, blocks) * plan.tiles_y);
  } else {
    set_block_rows(plan, g, kGradientLaneMultiple, std::max<int64_t>(1, target / plan.tiles_x));
  }
}

// gradU[ξ] = Σ over chunks c, in chunk order, of chunk c's Σ over its blocks b, in block order, of
// block b's M'[ξ]·V[ξ]ᵀ. The blocks are cut into kGradientChunks runs; a thread takes whole chunks,
// reads only their x and dY, once, and adds each block's products into its chunk's own gradU; the
// chunks' gradU are added at the end. The grouping depends on the geometry alone, so the sums do not
// depend on the thread count.
bool weight_gradient_by_chunks(const float* x, const float* grad_out, float* grad_weight, const ConvGeometry& g,
                               const Plan& plan) {
  const GemmKernels& kernels = active_kernels();
  ThreadPool& threads = pool();
  const int workers = threads.threads();
  const int64_t chunks = std::min(kGradientChunks, plan.blocks);
  const int64_t u_stride = g.out_channels * g.in_channels;
  const int64_t chunk_floats = kPositions * u_stride;
  float* partials = scratch(ScratchSlot::kPackedB, 0, static_cast<size_t>(chunks * chunk_floats));
  float* u = scratch(ScratchSlot::kBatchProducts, 0, static_cast<size_t>(chunk_floats));
  if (partials == nullptr || u == nullptr || !reserve_gradient_scratch(g, plan, kernels, workers) ||
      !reserve_scratch(ScratchSlot::kColumns, workers, kPositions * plan.v_stride) ||
      !reserve_scratch(ScratchSlot::kTile, workers, kPositions * plan.m_stride)) {
    return false;
  }
  const std::vector<int64_t> row_offsets = gradient_row_offsets(g, plan);
  threads.run(chunks, [&](int64_t chunk, int thread) {
    float* strips = scratch(ScratchSlot::kPartial, thread, 0);
    float* v = scratch(ScratchSlot::kColumns, thread, 0);
    float* m = scratch(ScratchSlot::kTile, thread, 0);
    float* sums = partials + chunk * chunk_floats;
    const int64_t first = plan.blocks * chunk / chunks;
    const int64_t last = plan.blocks * (chunk + 1) / chunks;
    for (int64_t block = first; block < last; ++block) {
      const int64_t row_begin = block * plan.rows_per_block;
      const int64_t row_end = std::min(plan.tile_rows, row_begin + plan.rows_per_block);
      const int64_t lanes = (row_end - row_begin) * plan.tiles_x;
      transform_input_block(x, g, plan, static_cast<int>(plan.lanes), row_begin, row_end, 0, g.in_channels, strips,
                            v);
      transform_gradient_block(grad_out, g, plan, row_begin, row_end, 0, g.out_channels, strips, m);
      for (int xi = 0; xi < kPositions; ++xi) {
        gradient_product(kernels, g, plan, v, m, row_offsets.data(), lanes, xi, thread, sums + xi * u_stride,
                         block > first);
      }
    }
  });
  // gradU = the chunks' sums added in chunk order, then each weight's inverse transform.
  const int64_t tasks = std::min<int64_t>(g.out_channels, 4 * workers);
  threads.run(tasks, [&](int64_t task, int) {
    const int64_t o_begin = g.out_channels * task / tasks;
    const int64_t o_end = g.out_channels * (task + 1) / tasks;
    const int64_t count = (o_end - o_begin) * g.in_channels;
    for (int xi = 0; xi < kPositions; ++xi) {
      float* to = u + xi * u_stride + o_begin * g.in_channels;
      const float* from = partials + xi * u_stride + o_begin * g.in_channels;
      std::memcpy(to, from, static_cast<size_t>(count) * sizeof(float));
      for (int64_t chunk = 1; chunk < chunks; ++chunk) add_floats(from + chunk * chunk_floats, count, to);
    }
    for (int64_t o = o_begin; o < o_end; ++o) {
      for (int64_t i = 0; i < g.in_channels; ++i) {
        inverse_kernel_transform(u + o * g.in_channels + i, u_stride, grad_weight + (o * g.in_channels + i) * 9);
      }
    }
  });
  return true;
}

}  // namespace

bool winograd_weight_gradient(const float* x, const float* grad_out, float* grad_weight, const ConvGeometry& g) {
  const GemmKernels& kernels = active_kernels();
  ThreadPool& threads = pool();
  const int workers = threads.threads();
  // Shared blocks (kGradientLaneMultiple). The plan does not depend on the thread count, nor do the
  // ξ split's sums below: each gradU[ξ] adds the blocks' products in block order.
  const Plan plan = make_plan(g, kGradientLaneMultiple, workers, true, 2, true);
  const int64_t u_stride = g.out_channels * g.in_channels;
  // Up to 64 × 64 channels, the batch is cut into kGradientChunks chunks, each summed into a gradU
  // of its own by one thread, the four added at the end (weight_gradient_by_chunks), so that threads
  // split the batch and each reads only its chunks' x and dY, where the ξ split below has every
  // thread read all of them. Two threads, data in memory, ξ split against chunks (fastest of 40):
  // 64×64→64 at 14² 3.43–3.45 → 2.94–3.09 ms, 32×64→64 at 32² 8.07–8.54 → 7.33–8.09; 64×32→32
  // at 28² level with the earlier partial a block (3.91 → 3.88). With more channels the chunks'
  // gradU (16·Cin·Cout floats each, 1 MiB at 128 × 128) leave the caches between blocks: 128 × 128
  // at 16² level to 5% slower inside a ResNet-18 step, at 28² (batch 8) 3–15% slower, 256 × 256 at
  // 14² (batch 8) 16% slower. The choice and the sums' grouping depend on the geometry alone.
  if (g.in_channels * g.out_channels <= kChunkSumChannels) {
    Plan chunked = plan;
    set_chunk_blocks(chunked, g);
    if (chunked.blocks >= 2) return weight_gradient_by_chunks(x, grad_out, grad_weight, g, chunked);
  }
  float* v = scratch(ScratchSlot::kColumns, 0, static_cast<size_t>(kPositions * plan.v_stride));
  float* m = scratch(ScratchSlot::kTile, 0, static_cast<size_t>(kPositions * plan.m_stride));
  float* u = scratch(ScratchSlot::kBatchProducts, 0, static_cast<size_t>(kPositions * u_stride));
  if (v == nullptr || m == nullptr || u == nullptr || !reserve_gradient_scratch(g, plan, kernels, workers)) {
    return false;
  }
  const std::vector<int64_t> row_offsets = gradient_row_offsets(g, plan);
  // gradU[ξ] (+)= M'[ξ]·V[ξ]ᵀ for one block of `lanes` lanes.
  auto product = [&](int64_t block, int64_t lanes, int xi, int thread) {
    gradient_product(kernels, g, plan, v, m, row_offsets.data(), lanes, xi, thread, u + xi * u_stride, block > 0);
  };
  auto block_rows = [&](int64_t block, int64_t* row_begin, int64_t* row_end) {
    *row_begin = block * plan.rows_per_block;
    *row_end = std::min(plan.tile_rows, *row_begin + plan.rows_per_block);
    return (*row_end - *row_begin) * plan.tiles_x;
  };
  if (workers == 1 || workers == 2 || workers == 4) {
    // Each thread makes the transform rows of its own ξ, for every channel and block, and sums
    // their products: what a thread writes only it reads. Split by channels for the transforms and
    // by ξ for the products, every block's V and M' crossed between the threads' caches, which on
    // a host that puts the two threads on different dies (two cores 330 ns apart instead of 80)
    // made this 2.5-3× slower than one thread. Each thread reads all of x and dY instead.
    const int rows_per_group = 4 / workers;
    threads.run(workers, [&](int64_t group, int thread) {
      const int rows = ((1 << rows_per_group) - 1) << (group * rows_per_group);
      float* strips = scratch(ScratchSlot::kPartial, thread, 0);
      for (int64_t block = 0; block < plan.blocks; ++block) {
        int64_t row_begin = 0, row_end = 0;
        const int64_t lanes = block_rows(block, &row_begin, &row_end);
        transform_input_block(x, g, plan, static_cast<int>(plan.lanes), row_begin, row_end, 0, g.in_channels, strips,
                              v, rows);
        transform_gradient_block(grad_out, g, plan, row_begin, row_end, 0, g.out_channels, strips, m, rows);
        for (int xi = 4 * rows_per_group * static_cast<int>(group); xi < 4 * rows_per_group * (group + 1); ++xi) {
          product(block, lanes, xi, thread);
        }
      }
    });
  } else {
    // Other thread counts share each block: transforms split by channel, products by ξ.
    const int64_t in_tasks = std::min<int64_t>(g.in_channels, 4 * workers);
    const int64_t out_tasks = std::min<int64_t>(g.out_channels, 4 * workers);
    for (int64_t block = 0; block < plan.blocks; ++block) {
      int64_t row_begin = 0, row_end = 0;
      const int64_t lanes = block_rows(block, &row_begin, &row_end);
      // V as plain [in_channels, lanes] rows per ξ: one "panel" as wide as the block.
      threads.run(in_tasks + out_tasks, [&](int64_t task, int thread) {
        float* strips = scratch(ScratchSlot::kPartial, thread, 0);
        if (task < in_tasks) {
          transform_input_block(x, g, plan, static_cast<int>(plan.lanes), row_begin, row_end,
                                g.in_channels * task / in_tasks, g.in_channels * (task + 1) / in_tasks, strips, v);
        } else {
          task -= in_tasks;
          transform_gradient_block(grad_out, g, plan, row_begin, row_end, g.out_channels * task / out_tasks,
                                   g.out_channels * (task + 1) / out_tasks, strips, m);
        }
      });
      threads.run(kPositions, [&](int64_t xi, int thread) { product(block, lanes, static_cast<int>(xi), thread); });
    }
  }
  threads.run(std::min<int64_t>(g.out_channels, 4 * workers), [&](int64_t task, int) {
    const int64_t tasks = std::min<int64_t>(g.out_channels, 4 * workers);
    for (int64_t o = g.out_channels * task / tasks; o < g.out_channels * (task + 1) / tasks; ++o) {
      for (int64_t i = 0; i < g.in_channels; ++i) {
        inverse_kernel_transform(u + o * g.in_channels + i, u_stride, grad_weight + (o * g.in_channels + i) * 9);
      }
    }
  });
  return true;
}

}  // namespace tensile
