// Per-channel kernels over x viewed as [batch, channels, spatial]: batch norm, affine maps, sums.
//
// Channel statistics are sums of up to batch·spatial values. They are added in float over short
// runs (eight independent lanes, so the compiler can vectorise without reassociating) and the run
// totals in double, which keeps them close to the reference's float64 sums at float speed. Every
// channel is reduced by one task in a fixed order, so results do not depend on the thread count.
//
// The loops are compiled three times (TENSILE_VECTOR_CLONES) without fused multiply-adds, which GCC
// would otherwise contract in the AVX2 and AVX-512 clones: every clone then rounds as the baseline
// one, and as the convolution epilogue that applies the same affine maps fused (epilogue.h).
#pragma GCC optimize("fp-contract=off")

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "kernels.h"
#include "thread_pool.h"
#include "vector_clones.h"

namespace tensile {

namespace {

constexpr int64_t kRun = 256;

// Eight float lanes as one GCC/Clang vector: one AVX register in the AVX2 and AVX-512 clones of the
// functions below (TENSILE_VECTOR_CLONES), two SSE or NEON registers elsewhere. The sums keep the
// same eight lanes and the same order in every clone, so every CPU gives the same bits.
typedef float Lanes __attribute__((vector_size(32), aligned(4), may_alias));

__attribute__((always_inline)) inline Lanes load(const float* p) {
  Lanes v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

__attribute__((always_inline)) inline Lanes splat(float value) {
  return Lanes{value, value, value, value, value, value, value, value};
}

__attribute__((always_inline)) inline float total_of(Lanes v) {
  return ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7]));
}

// Σ values[i] over [0, count).
TENSILE_VECTOR_CLONES
double sum_of(const float* values, int64_t count) {
  double total = 0.0;
  for (int64_t start = 0; start < count; start += kRun) {
    const int64_t end = std::min(count, start + kRun);
    Lanes lanes = splat(0.0f);
    int64_t i = start;
    for (; i + 8 <= end; i += 8) lanes += load(values + i);
    float tail = 0.0f;
    for (; i < end; ++i) tail += values[i];
    total += static_cast<double>(total_of(lanes) + tail);
  }
  return total;
}

// Σ (values[i] - center)² over [0, count).
TENSILE_VECTOR_CLONES
double squares_about(const float* values, int64_t count, float center) {
  double total = 0.0;
  const Lanes middle = splat(center);
  for (int64_t start = 0; start < count; start += kRun) {
    const int64_t end = std::min(count, start + kRun);
    Lanes lanes = splat(0.0f);
    int64_t i = start;
    for (; i + 8 <= end; i += 8) {
      const Lanes d = load(values + i) - middle;
      lanes += d * d;
    }
    float tail = 0.0f;
    for (; i < end; ++i) {
      const float d = values[i] - center;
      tail += d * d;
    }
    total += static_cast<double>(total_of(lanes) + tail);
  }
  return total;
}

// Σ grad[i] and Σ grad[i]·(x[i] - center) over [0, count).
TENSILE_VECTOR_CLONES
void gradient_sums(const float* grad, const float* x, int64_t count, float center, double* sum_grad,
                   double* sum_grad_centered) {
  const Lanes middle = splat(center);
  for (int64_t start = 0; start < count; start += kRun) {
    const int64_t end = std::min(count, start + kRun);
    Lanes lanes_g = splat(0.0f);
    Lanes lanes_gx = splat(0.0f);
    int64_t i = start;
    for (; i + 8 <= end; i += 8) {
      const Lanes g = load(grad + i);
      lanes_g += g;
      lanes_gx += g * (load(x + i) - middle);
    }
    float tail_g = 0.0f;
    float tail_gx = 0.0f;
    for (; i < end; ++i) {
      tail_g += grad[i];
      tail_gx += grad[i] * (x[i] - center);
    }
    *sum_grad += static_cast<double>(total_of(lanes_g) + tail_g);
    *sum_grad_centered += static_cast<double>(total_of(lanes_gx) + tail_gx);
  }
}

// Σ grad[i]·m[i] and Σ grad[i]·m[i]·(x[i] - center), with the ReLU mask m[i] = 1 where the fused
// forward's output (x[i] - center)·scale + shift was positive, else 0: gradient_sums of the masked
// gradient. The mask is recomputed with the forward's float operations (same values, same bits)
// rather than read from the output, which saves a stream over memory; grad·m is the product ReLU's
// backward forms, so a NaN gradient stays NaN as in the unfused kernels.
TENSILE_VECTOR_CLONES
void masked_gradient_sums(const float* grad, const float* x, int64_t count, float center, float scale, float shift,
                          double* sum_grad, double* sum_grad_centered) {
  const Lanes middle = splat(center);
  const Lanes scales = splat(scale);
  const Lanes shifts = splat(shift);
  const Lanes zero = splat(0.0f);
  const Lanes one = splat(1.0f);
  for (int64_t start = 0; start < count; start += kRun) {
    const int64_t end = std::min(count, start + kRun);
    Lanes lanes_g = splat(0.0f);
    Lanes lanes_gx = splat(0.0f);
    int64_t i = start;
    for (; i + 8 <= end; i += 8) {
      const Lanes centered = load(x + i) - middle;
      const Lanes value = centered * scales + shifts;
      const Lanes mask = value > zero ? one : zero;
      const Lanes g = load(grad + i) * mask;
      lanes_g += g;
      lanes_gx += g * centered;
    }
    float tail_g = 0.0f;
    float tail_gx = 0.0f;
    for (; i < end; ++i) {
      const float centered = x[i] - center;
      const float g = grad[i] * (centered * scale + shift > 0.0f ? 1.0f : 0.0f);
      tail_g += g;
      tail_gx += g * centered;
    }
    *sum_grad += static_cast<double>(total_of(lanes_g) + tail_g);
    *sum_grad_centered += static_cast<double>(total_of(lanes_gx) + tail_gx);
  }
}

// The elementwise loops, as functions with __restrict pointers so that GCC vectorises them without
// run-time overlap checks.
TENSILE_VECTOR_CLONES
void affine_about(const float* __restrict from, float* __restrict to, int64_t count, float center, float scale,
                  float shift) {
  for (int64_t i = 0; i < count; ++i) to[i] = (from[i] - center) * scale + shift;
}

TENSILE_VECTOR_CLONES
void scale_shift(const float* __restrict from, float* __restrict to, int64_t count, float scale, float shift) {
  for (int64_t i = 0; i < count; ++i) to[i] = from[i] * scale + shift;
}

// The ReLU variants: the value the plain loop stores, then `v > 0 ? v : 0` as the ReLU kernel does.
TENSILE_VECTOR_CLONES
void affine_about_relu(const float* __restrict from, float* __restrict to, int64_t count, float center, float scale,
                       float shift) {
  for (int64_t i = 0; i < count; ++i) {
    const float v = (from[i] - center) * scale + shift;
    to[i] = v > 0.0f ? v : 0.0f;
  }
}

TENSILE_VECTOR_CLONES
void scale_shift_relu(const float* __restrict from, float* __restrict to, int64_t count, float scale, float shift) {
  for (int64_t i = 0; i < count; ++i) {
    const float v = from[i] * scale + shift;
    to[i] = v > 0.0f ? v : 0.0f;
  }
}

// ∂L/∂x = a·g + b·(x - μ) + d.
TENSILE_VECTOR_CLONES
void batch_norm_input_gradient(const float* __restrict grad, const float* __restrict x, float* __restrict to,
                               int64_t count, float center, float a, float b, float d) {
  for (int64_t i = 0; i < count; ++i) to[i] = a * grad[i] + b * (x[i] - center) + d;
}

// ∂L/∂x = a·(g·m) + b·(x - μ) + d with the ReLU mask m recomputed as in masked_gradient_sums.
TENSILE_VECTOR_CLONES
void batch_norm_relu_input_gradient(const float* __restrict grad, const float* __restrict x, float* __restrict to,
                                    int64_t count, float center, float scale, float shift, float a, float b, float d) {
  for (int64_t i = 0; i < count; ++i) {
    const float centered = x[i] - center;
    const float g = grad[i] * (centered * scale + shift > 0.0f ? 1.0f : 0.0f);
    to[i] = a * g + b * centered + d;
  }
}

// Runs body(begin, end) over runs of neighbouring channels, `runs_per_thread` runs a thread (or one
// run on the calling thread where the tensor is small).
template <typename Body>
void for_channel_runs(const ChannelGeometry& g, int64_t runs_per_thread, Body&& body) {
  ThreadPool& threads = pool();
  const bool small = g.batch * g.channels * g.spatial < 16384;
  if (small || g.channels == 1) {
    body(int64_t{0}, g.channels);
    return;
  }
  const int64_t tasks = std::min<int64_t>(g.channels, runs_per_thread * threads.threads());
  threads.run(tasks, [&](int64_t task, int) { body(g.channels * task / tasks, g.channels * (task + 1) / tasks); });
}

// Runs body(channel) for every channel; a task takes a run of neighbouring channels. One task per
// channel made a global average pool's 4,096 planes of 49 values cost a millisecond: the tasks were
// shorter than claiming them, and neighbouring channels' results shared cache lines across threads.
// Eight runs a thread still balance channels of unequal cost; each channel is computed the same way
// whichever task takes it.
template <typename Body>
void for_channels(const ChannelGeometry& g, Body&& body) {
  for_channel_runs(g, 8, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) body(c);
  });
}

}  // namespace

namespace {

// The scale of a channel's forward affine map, from the stored (rounded) invStd, so that the fused ReLU
// backward recomputes exactly the values the forward wrote, and with them the ReLU mask.
inline float forward_scale(float gamma, float inv_std) {
  return static_cast<float>(static_cast<double>(gamma) * static_cast<double>(inv_std));
}

// One channel's running statistics over its planes so far (Chan et al.'s pairwise update).
struct PlaneStatistics {
  double mu = 0.0;
  double squares = 0.0;
};

// Merges plane n of a channel (spatial values) into its statistics: the plane's own mean and centred
// sum of squares, read twice from L1, merged in double with Chan et al.'s pairwise update. Two passes
// over the whole channel (sum, then squares about the mean) would read the activations from memory
// twice.
inline void merge_plane(const float* plane, int64_t spatial, int64_t n, PlaneStatistics& statistics) {
  const double plane_count = static_cast<double>(spatial);
  const double plane_mean = sum_of(plane, spatial) / plane_count;
  const float center = static_cast<float>(plane_mean);
  // Σ(x − center)² = Σ(x − mean)² + count·(mean − center)²; remove the second term exactly.
  const double offset = plane_mean - static_cast<double>(center);
  // Clamp rounding's tiny negatives to 0 but keep a NaN (std::max(0.0, NaN) is 0.0), so a NaN in
  // x gives a NaN invStd and running variance, as the reference's and PyTorch's do.
  const double about = squares_about(plane, spatial, center) - plane_count * offset * offset;
  const double plane_squares = about < 0.0 ? 0.0 : about;
  if (n == 0) {
    statistics.mu = plane_mean;
    statistics.squares = plane_squares;
    return;
  }
  const double seen = plane_count * static_cast<double>(n);
  const double total = seen + plane_count;
  const double delta = plane_mean - statistics.mu;
  statistics.mu += delta * (plane_count / total);
  statistics.squares += plane_squares + delta * delta * (seen * plane_count / total);
}

// The affine map a channel's forward applies about its mean.
struct ChannelMap {
  float mean, scale, shift;
};

// Per thread: a run's channel statistics and affine maps.
thread_local std::vector<PlaneStatistics> run_statistics;
thread_local std::vector<ChannelMap> run_maps;

// Batch-norm statistics of every channel, then write(c, n, plane, mean, scale, shift) for each of its
// sample planes, which applies the affine map about the mean (and maybe more) and stores the result.
// A task takes a run of channels and walks it sample by sample (the run's planes of one sample lie
// end to end in memory, a stream the hardware prefetchers follow), once for the statistics and once
// to write (two runs a thread; the second walk reads the run's planes again from L2 or L3: 1.6 MB
// for 8 channels of 64 samples at 28²). Walked channel by channel, each 3 KB plane was a run of its
// own, and with the activations in memory (as in a training step) the kernel read them at about half
// the rate a copy does: 64×32×28² with ReLU, two threads, 0.87–0.93 → 0.57–0.62 ms; 32×64×32² 1.0 →
// 0.58–0.64 ms. Each channel's planes still merge in sample order, so the bits are those of a
// channel-by-channel walk.
template <typename Write>
void batch_norm_forward_with(const float* x, const float* gamma, const float* beta, float* mean, float* inv_std,
                             double eps, const ChannelGeometry& g, Write&& write) {
  const double count = static_cast<double>(g.batch * g.spatial);
  const int64_t stride = g.channels * g.spatial;
  for_channel_runs(g, 2, [&](int64_t begin, int64_t end) {
    const int64_t channels = end - begin;
    std::vector<PlaneStatistics>& statistics = run_statistics;
    statistics.assign(static_cast<size_t>(channels), PlaneStatistics{});
    for (int64_t n = 0; n < g.batch; ++n) {
      for (int64_t c = begin; c < end; ++c) {
        merge_plane(x + n * stride + c * g.spatial, g.spatial, n, statistics[static_cast<size_t>(c - begin)]);
      }
    }
    std::vector<ChannelMap>& maps = run_maps;
    maps.resize(static_cast<size_t>(channels));
    for (int64_t c = begin; c < end; ++c) {
      double mu = statistics[static_cast<size_t>(c - begin)].mu;
      double squares = statistics[static_cast<size_t>(c - begin)].squares;
      if (g.batch == 0 || g.spatial == 0) {
        // No values: 0/0, as the reference's mean of nothing.
        mu = std::numeric_limits<double>::quiet_NaN();
        squares = mu;
      }
      const float mu_f = static_cast<float>(mu);
      const double inverse = 1.0 / std::sqrt(squares / count + eps);
      mean[c] = mu_f;
      inv_std[c] = static_cast<float>(inverse);
      maps[static_cast<size_t>(c - begin)] = {mu_f, forward_scale(gamma[c], inv_std[c]), beta[c]};
    }
    for (int64_t n = 0; n < g.batch; ++n) {
      for (int64_t c = begin; c < end; ++c) {
        const ChannelMap& map = maps[static_cast<size_t>(c - begin)];
        write(c, n, x + n * stride + c * g.spatial, map.mean, map.scale, map.shift);
      }
    }
  });
}

// Per thread: batch_norm_relu_max_pool_train_forward's batch-norm output, one plane at a time (a
// few KB stay in L1 between the ReLU that writes them and the pooling that reads them); the
// backward's gradient planes of one run of channels.
thread_local std::vector<float> plane_buffer;

}  // namespace

void batch_norm_train_forward(const float* x, const float* gamma, const float* beta, float* out, float* mean,
                              float* inv_std, double eps, const ChannelGeometry& g) {
  batch_norm_forward_with(x, gamma, beta, mean, inv_std, eps, g,
                          [&](int64_t c, int64_t n, const float* from, float center, float scale, float shift) {
                            float* to = out + (n * g.channels + c) * g.spatial;
                            affine_about(from, to, g.spatial, center, scale, shift);
                          });
}

void batch_norm_relu_train_forward(const float* x, const float* gamma, const float* beta, float* out, float* mean,
                                   float* inv_std, double eps, const ChannelGeometry& g) {
  batch_norm_forward_with(x, gamma, beta, mean, inv_std, eps, g,
                          [&](int64_t c, int64_t n, const float* from, float center, float scale, float shift) {
                            float* to = out + (n * g.channels + c) * g.spatial;
                            affine_about_relu(from, to, g.spatial, center, scale, shift);
                          });
}

void batch_norm_relu_max_pool_train_forward(const float* x, const float* gamma, const float* beta, float* out,
                                            int32_t* argmax, float* mean, float* inv_std, double eps,
                                            const PoolGeometry& p) {
  const ChannelGeometry g{p.batch, p.channels, p.in_height * p.in_width};
  const int64_t pooled = p.out_height * p.out_width;
  batch_norm_forward_with(x, gamma, beta, mean, inv_std, eps, g,
                          [&](int64_t c, int64_t n, const float* from, float center, float scale, float shift) {
                            std::vector<float>& plane = plane_buffer;
                            plane.resize(static_cast<size_t>(g.spatial));
                            affine_about_relu(from, plane.data(), g.spatial, center, scale, shift);
                            const int64_t at = (n * g.channels + c) * pooled;
                            max_pool_2x2_plane(plane.data(), p.in_width, p.out_height, p.out_width, out + at,
                                               argmax + at);
                          });
}

namespace {

// Where one channel's output gradient lies: sample n's plane at base + n·sample_stride.
struct ChannelPlanes {
  const float* base;
  int64_t sample_stride;
};

// One channel's backward: its sums over the planes so far, then the affine map of its input gradient.
struct ChannelBackward {
  double sum_grad = 0.0;
  double sum_grad_centered = 0.0;
  float mu = 0.0f, forward_scale = 0.0f, forward_shift = 0.0f;
  float a = 0.0f, b = 0.0f, d = 0.0f;
};

// Per thread: the channels of one run of batch_norm_backward_with, and their gradient planes.
thread_local std::vector<ChannelBackward> run_backward;
thread_local std::vector<ChannelPlanes> run_planes;

// With beta (the fused forward's shift) the gradient is masked by the forward's ReLU; beta null: plain
// batch norm. gradient_of(begin, end, planes) gives channels [begin, end)'s output gradient
// (gradOut's own planes, or planes built from a pooled gradient) in planes[c − begin], asked once
// per run by the thread that computes it, for at most `most_channels` channels at a time. A task
// walks a run of channels sample by sample, as batch_norm_forward_with does (the run's planes of a
// sample lie end to end in memory). Each channel's sums add its planes in sample order, so the bits
// are those of a channel-by-channel walk.
template <typename GradientOf>
void batch_norm_backward_with(const float* x, const float* gamma, const float* beta, const float* mean,
                              const float* inv_std, float* grad_x, float* grad_gamma, float* grad_beta,
                              const ChannelGeometry& g, int64_t most_channels, GradientOf&& gradient_of) {
  const double count = static_cast<double>(g.batch * g.spatial);
  const int64_t stride = g.channels * g.spatial;
  auto run = [&](int64_t begin, int64_t end) {
    std::vector<ChannelBackward>& channels = run_backward;
    channels.assign(static_cast<size_t>(end - begin), ChannelBackward{});
    std::vector<ChannelPlanes>& planes = run_planes;
    planes.resize(static_cast<size_t>(end - begin));
    gradient_of(begin, end, planes.data());
    for (int64_t c = begin; c < end; ++c) {
      ChannelBackward& channel = channels[static_cast<size_t>(c - begin)];
      channel.mu = mean[c];
      channel.forward_scale = forward_scale(gamma[c], inv_std[c]);
      channel.forward_shift = beta != nullptr ? beta[c] : 0.0f;
    }
    for (int64_t n = 0; n < g.batch; ++n) {
      for (int64_t c = begin; c < end; ++c) {
        ChannelBackward& channel = channels[static_cast<size_t>(c - begin)];
        const ChannelPlanes& gradient = planes[static_cast<size_t>(c - begin)];
        const int64_t base = n * stride + c * g.spatial;
        const float* grad = gradient.base + n * gradient.sample_stride;
        if (beta != nullptr) {
          masked_gradient_sums(grad, x + base, g.spatial, channel.mu, channel.forward_scale, channel.forward_shift,
                               &channel.sum_grad, &channel.sum_grad_centered);
        } else {
          gradient_sums(grad, x + base, g.spatial, channel.mu, &channel.sum_grad, &channel.sum_grad_centered);
        }
      }
    }
    for (int64_t c = begin; c < end; ++c) {
      ChannelBackward& channel = channels[static_cast<size_t>(c - begin)];
      const double inverse = inv_std[c];
      // Σ g·x̂ with x̂ = (x - μ)·invStd.
      const double sum_grad_xhat = channel.sum_grad_centered * inverse;
      grad_beta[c] = static_cast<float>(channel.sum_grad);
      grad_gamma[c] = static_cast<float>(sum_grad_xhat);
      // ∂L/∂x = γ·invStd·(g - Σg/count - x̂·Σ(g·x̂)/count), expanded to a·g + b·(x - μ) + d.
      const double scale = static_cast<double>(gamma[c]) * inverse;
      channel.a = static_cast<float>(scale);
      channel.b = static_cast<float>(-scale * inverse * sum_grad_xhat / count);
      channel.d = static_cast<float>(-scale * channel.sum_grad / count);
    }
    for (int64_t n = 0; n < g.batch; ++n) {
      for (int64_t c = begin; c < end; ++c) {
        const ChannelBackward& channel = channels[static_cast<size_t>(c - begin)];
        const ChannelPlanes& gradient = planes[static_cast<size_t>(c - begin)];
        const int64_t base = n * stride + c * g.spatial;
        const float* grad = gradient.base + n * gradient.sample_stride;
        if (beta != nullptr) {
          batch_norm_relu_input_gradient(grad, x + base, grad_x + base, g.spatial, channel.mu, channel.forward_scale,
                                         channel.forward_shift, channel.a, channel.b, channel.d);
        } else {
          batch_norm_input_gradient(grad, x + base, grad_x + base, g.spatial, channel.mu, channel.a, channel.b,
                                    channel.d);
        }
      }
    }
  };
  for_channel_runs(g, 2, [&](int64_t begin, int64_t end) {
    for (int64_t first = begin; first < end; first += most_channels) run(first, std::min(end, first + most_channels));
  });
}

// gradOut's own planes.
auto planes_of(const float* grad_out, const ChannelGeometry& g) {
  return [grad_out, g](int64_t begin, int64_t end, ChannelPlanes* planes) {
    for (int64_t c = begin; c < end; ++c) planes[c - begin] = {grad_out + c * g.spatial, g.channels * g.spatial};
  };
}

}  // namespace

void batch_norm_train_backward(const float* x, const float* grad_out, const float* gamma, const float* mean,
                               const float* inv_std, float* grad_x, float* grad_gamma, float* grad_beta,
                               const ChannelGeometry& g) {
  batch_norm_backward_with(x, gamma, nullptr, mean, inv_std, grad_x, grad_gamma, grad_beta, g, g.channels,
                           planes_of(grad_out, g));
}

void batch_norm_relu_train_backward(const float* x, const float* grad_out, const float* gamma, const float* beta,
                                    const float* mean, const float* inv_std, float* grad_x, float* grad_gamma,
                                    float* grad_beta, const ChannelGeometry& g) {
  batch_norm_backward_with(x, gamma, beta, mean, inv_std, grad_x, grad_gamma, grad_beta, g, g.channels,
                           planes_of(grad_out, g));
}

void batch_norm_relu_max_pool_train_backward(const float* x, const float* grad_out, const int32_t* argmax,
                                             const float* gamma, const float* beta, const float* mean,
                                             const float* inv_std, float* grad_x, float* grad_gamma, float* grad_beta,
                                             const PoolGeometry& p) {
  const ChannelGeometry g{p.batch, p.channels, p.in_height * p.in_width};
  const int64_t pooled = p.out_height * p.out_width;
  // The run's gradient planes as max_pool2d_backward writes them (zeros, plus the pooled gradient at
  // each window's argmax), built sample by sample in a buffer (1.6 MB for 8 channels of 64 samples of
  // 28²) instead of a tensor the size of x in memory; runs of at most 4 MB of planes, or one channel
  // (32 samples of 224² would otherwise take 100 MB a thread for a run of 16 channels).
  constexpr int64_t kRunFloats = 1 << 20;
  const int64_t most_channels = std::max<int64_t>(1, kRunFloats / std::max<int64_t>(1, g.batch * g.spatial));
  batch_norm_backward_with(
      x, gamma, beta, mean, inv_std, grad_x, grad_gamma, grad_beta, g, most_channels,
      [&](int64_t begin, int64_t end, ChannelPlanes* planes_of_run) {
        const int64_t channels = end - begin;
        std::vector<float>& planes = plane_buffer;
        planes.assign(static_cast<size_t>(g.batch * channels * g.spatial), 0.0f);
        for (int64_t n = 0; n < g.batch; ++n) {
          for (int64_t c = begin; c < end; ++c) {
            float* plane = planes.data() + (n * channels + c - begin) * g.spatial;
            const int64_t at = (n * g.channels + c) * pooled;
            for (int64_t o = 0; o < pooled; ++o) {
              const int64_t i = argmax[at + o];
              if (i >= 0 && i < g.spatial) plane[i] += grad_out[at + o];
            }
          }
        }
        for (int64_t c = begin; c < end; ++c) {
          planes_of_run[c - begin] = {planes.data() + (c - begin) * g.spatial, channels * g.spatial};
        }
      });
}

void channel_affine(const float* x, const float* scale, const float* shift, float* out, const ChannelGeometry& g) {
  channel_affine_with(x, scale, shift, out, g, false);
}

void channel_affine_relu(const float* x, const float* scale, const float* shift, float* out,
                         const ChannelGeometry& g) {
  channel_affine_with(x, scale, shift, out, g, true);
}

void channel_affine_with(const float* x, const float* scale, const float* shift, float* out, const ChannelGeometry& g,
                         bool relu) {
  const int64_t planes = g.batch * g.channels;
  ThreadPool& threads = pool();
  const int64_t total = planes * g.spatial;
  const int64_t tasks = total < 32768 ? 1 : std::min<int64_t>(planes, threads.threads() * 4);
  threads.run(tasks, [&](int64_t task, int) {
    const int64_t end = planes * (task + 1) / tasks;
    for (int64_t plane = planes * task / tasks; plane < end; ++plane) {
      const int64_t c = plane % g.channels;
      const float a = scale[c];
      const float b = shift[c];
      if (relu) {
        scale_shift_relu(x + plane * g.spatial, out + plane * g.spatial, g.spatial, a, b);
      } else {
        scale_shift(x + plane * g.spatial, out + plane * g.spatial, g.spatial, a, b);
      }
    }
  });
}

namespace {

// Adds one row of x into the double accumulators: total[c] += x[c].
void add_row(const float* __restrict row, double* __restrict total, int64_t count) {
  for (int64_t c = 0; c < count; ++c) total[c] += static_cast<double>(row[c]);
}

}  // namespace

void channel_sum(const float* x, float* out, const ChannelGeometry& g) {
  if (g.spatial == 1) {
    // A [batch, channels] matrix (a dense layer's bias gradient): walking each column would touch one
    // float per cache line, so sum rows into per-channel doubles instead. Each channel still adds its
    // values in batch order in double, the same bits as the general path below.
    constexpr int64_t kBlock = 512;
    const int64_t blocks = (g.channels + kBlock - 1) / kBlock;
    const bool small = g.batch * g.channels < 16384;
    auto sum_block = [&](int64_t block, int) {
      const int64_t begin = block * kBlock;
      const int64_t count = std::min(kBlock, g.channels - begin);
      double total[kBlock] = {};
      for (int64_t n = 0; n < g.batch; ++n) add_row(x + n * g.channels + begin, total, count);
      for (int64_t c = 0; c < count; ++c) out[begin + c] = static_cast<float>(total[c]);
    };
    if (small) {
      for (int64_t block = 0; block < blocks; ++block) sum_block(block, 0);
    } else {
      pool().run(blocks, sum_block);
    }
    return;
  }
  const int64_t stride = g.channels * g.spatial;
  for_channels(g, [&](int64_t c) {
    double sum = 0.0;
    for (int64_t n = 0; n < g.batch; ++n) sum += sum_of(x + n * stride + c * g.spatial, g.spatial);
    out[c] = static_cast<float>(sum);
  });
}

}  // namespace tensile
