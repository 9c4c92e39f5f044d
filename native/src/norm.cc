// Per-channel kernels over x viewed as [batch, channels, spatial]: batch norm, affine maps, sums.
//
// Channel statistics are sums of up to batch·spatial values. They are added in float over short
// runs (eight independent lanes, so the compiler can vectorise without reassociating) and the run
// totals in double, which keeps them close to the reference's float64 sums at float speed. Every
// channel is reduced by one task in a fixed order, so results do not depend on the thread count.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels.h"
#include "thread_pool.h"

namespace tensile {

namespace {

constexpr int64_t kRun = 256;

// Eight float lanes as two GCC/Clang 4-lane vectors (SSE registers on baseline x86-64, NEON
// elsewhere). Written explicitly because the vectoriser turned a plain array of lanes into shuffles
// and scalar adds, and an 8-wide vector type lives on the stack without AVX.
typedef float Quad __attribute__((vector_size(16)));

struct Lanes {
  Quad low, high;
};

inline Lanes load(const float* p) {
  Lanes v;
  std::memcpy(&v.low, p, sizeof v.low);
  std::memcpy(&v.high, p + 4, sizeof v.high);
  return v;
}

inline Lanes splat(float value) {
  const Quad q = {value, value, value, value};
  return {q, q};
}

inline Lanes operator+(Lanes a, Lanes b) { return {a.low + b.low, a.high + b.high}; }
inline Lanes operator-(Lanes a, Lanes b) { return {a.low - b.low, a.high - b.high}; }
inline Lanes operator*(Lanes a, Lanes b) { return {a.low * b.low, a.high * b.high}; }
inline Lanes& operator+=(Lanes& a, Lanes b) { return a = a + b; }

inline float total_of(Lanes v) {
  return ((v.low[0] + v.low[1]) + (v.low[2] + v.low[3])) + ((v.high[0] + v.high[1]) + (v.high[2] + v.high[3]));
}

// Σ values[i] over [0, count).
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

// The elementwise loops, as functions with __restrict pointers so that GCC vectorises them without
// run-time overlap checks.
void affine_about(const float* __restrict from, float* __restrict to, int64_t count, float center, float scale,
                  float shift) {
  for (int64_t i = 0; i < count; ++i) to[i] = (from[i] - center) * scale + shift;
}

void scale_shift(const float* __restrict from, float* __restrict to, int64_t count, float scale, float shift) {
  for (int64_t i = 0; i < count; ++i) to[i] = from[i] * scale + shift;
}

// ∂L/∂x = a·g + b·(x - μ) + d.
void batch_norm_input_gradient(const float* __restrict grad, const float* __restrict x, float* __restrict to,
                               int64_t count, float center, float a, float b, float d) {
  for (int64_t i = 0; i < count; ++i) to[i] = a * grad[i] + b * (x[i] - center) + d;
}

// Runs body(channel) for every channel, one channel per task.
template <typename Body>
void for_channels(const ChannelGeometry& g, Body&& body) {
  ThreadPool& threads = pool();
  const bool small = g.batch * g.channels * g.spatial < 16384;
  if (small || g.channels == 1) {
    for (int64_t c = 0; c < g.channels; ++c) body(c);
    return;
  }
  threads.run(g.channels, [&](int64_t c, int) { body(c); });
}

}  // namespace

void batch_norm_train_forward(const float* x, const float* gamma, const float* beta, float* out, float* mean,
                              float* inv_std, double eps, const ChannelGeometry& g) {
  const double count = static_cast<double>(g.batch * g.spatial);
  const int64_t stride = g.channels * g.spatial;
  for_channels(g, [&](int64_t c) {
    double sum = 0.0;
    for (int64_t n = 0; n < g.batch; ++n) sum += sum_of(x + n * stride + c * g.spatial, g.spatial);
    const double mu = sum / count;
    const float mu_f = static_cast<float>(mu);
    double squares = 0.0;
    for (int64_t n = 0; n < g.batch; ++n) squares += squares_about(x + n * stride + c * g.spatial, g.spatial, mu_f);
    const double inverse = 1.0 / std::sqrt(squares / count + eps);
    mean[c] = mu_f;
    inv_std[c] = static_cast<float>(inverse);
    const float scale = static_cast<float>(static_cast<double>(gamma[c]) * inverse);
    const float shift = beta[c];
    for (int64_t n = 0; n < g.batch; ++n) {
      const float* from = x + n * stride + c * g.spatial;
      float* to = out + n * stride + c * g.spatial;
      affine_about(from, to, g.spatial, mu_f, scale, shift);
    }
  });
}

void batch_norm_train_backward(const float* x, const float* grad_out, const float* gamma, const float* mean,
                               const float* inv_std, float* grad_x, float* grad_gamma, float* grad_beta,
                               const ChannelGeometry& g) {
  const double count = static_cast<double>(g.batch * g.spatial);
  const int64_t stride = g.channels * g.spatial;
  for_channels(g, [&](int64_t c) {
    const float mu = mean[c];
    const double inverse = inv_std[c];
    double sum_grad = 0.0;
    double sum_grad_centered = 0.0;
    for (int64_t n = 0; n < g.batch; ++n) {
      const int64_t base = n * stride + c * g.spatial;
      gradient_sums(grad_out + base, x + base, g.spatial, mu, &sum_grad, &sum_grad_centered);
    }
    // Σ g·x̂ with x̂ = (x - μ)·invStd.
    const double sum_grad_xhat = sum_grad_centered * inverse;
    grad_beta[c] = static_cast<float>(sum_grad);
    grad_gamma[c] = static_cast<float>(sum_grad_xhat);
    // ∂L/∂x = γ·invStd·(g - Σg/count - x̂·Σ(g·x̂)/count), expanded to a·g + b·(x - μ) + d.
    const double scale = static_cast<double>(gamma[c]) * inverse;
    const float a = static_cast<float>(scale);
    const float b = static_cast<float>(-scale * inverse * sum_grad_xhat / count);
    const float d = static_cast<float>(-scale * sum_grad / count);
    for (int64_t n = 0; n < g.batch; ++n) {
      const int64_t base = n * stride + c * g.spatial;
      batch_norm_input_gradient(grad_out + base, x + base, grad_x + base, g.spatial, mu, a, b, d);
    }
  });
}

void channel_affine(const float* x, const float* scale, const float* shift, float* out, const ChannelGeometry& g) {
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
      scale_shift(x + plane * g.spatial, out + plane * g.spatial, g.spatial, a, b);
    }
  });
}

void channel_sum(const float* x, float* out, const ChannelGeometry& g) {
  const int64_t stride = g.channels * g.spatial;
  for_channels(g, [&](int64_t c) {
    double sum = 0.0;
    for (int64_t n = 0; n < g.batch; ++n) sum += sum_of(x + n * stride + c * g.spatial, g.spatial);
    out[c] = static_cast<float>(sum);
  });
}

}  // namespace tensile
