// Fused optimizer steps: one pass over a parameter, its gradient and its state buffers, instead of
// the JavaScript loop that read and wrote each element through typed-array accessors.
//
// Every element is computed in double and rounded once on store, in the reference backend's order of
// operations (src/backend/reference/index.ts), so the result is the same bits as the reference and
// independent of the thread count (elements are independent). Two things keep it exact:
// - no fused multiply-add: GCC contracts a*b + c into an FMA whenever the target has one, even with
//   -std=c++17, and an FMA rounds once where JavaScript rounds twice;
// - the moment buffers are read back as stored floats before the parameter update, as the reference
//   reads m[i] and v[i] after writing them.
// The loops are plain C++ compiled three times (AVX-512, AVX2, baseline x86-64) and chosen at load
// time by the CPU; without FMA every clone rounds identically.
#pragma GCC optimize("fp-contract=off")

#include <algorithm>
#include <cmath>

#include "kernels.h"
#include "thread_pool.h"
#include "vector_clones.h"

namespace tensile {

namespace {

TENSILE_VECTOR_CLONES
void adam_range(float* __restrict parameter, const float* __restrict gradient, float* __restrict m,
                float* __restrict v, int64_t count, const AdamSettings& s) {
  const double step_size = s.lr / s.bias_correction1;
  const double correction2_root = std::sqrt(s.bias_correction2);
  const double l2 = s.decoupled ? 0.0 : s.weight_decay;
  const double decay = s.decoupled ? 1.0 - s.lr * s.weight_decay : 1.0;
  const double beta1 = s.beta1;
  const double beta2 = s.beta2;
  const double one_minus_beta1 = 1.0 - beta1;
  const double one_minus_beta2 = 1.0 - beta2;
  const double eps = s.eps;
  for (int64_t i = 0; i < count; ++i) {
    const double theta = parameter[i];
    const double decayed = theta * decay;
    const double g = static_cast<double>(gradient[i]) + l2 * theta;
    const float m_new = static_cast<float>(beta1 * static_cast<double>(m[i]) + one_minus_beta1 * g);
    const float v_new = static_cast<float>(beta2 * static_cast<double>(v[i]) + one_minus_beta2 * g * g);
    m[i] = m_new;
    v[i] = v_new;
    const double denominator = std::sqrt(static_cast<double>(v_new)) / correction2_root + eps;
    parameter[i] = static_cast<float>(decayed - (step_size * static_cast<double>(m_new)) / denominator);
  }
}

TENSILE_VECTOR_CLONES
void sgd_range(float* __restrict parameter, const float* __restrict gradient, int64_t count, double lr,
               double weight_decay) {
  for (int64_t i = 0; i < count; ++i) {
    const double theta = parameter[i];
    const double g = static_cast<double>(gradient[i]) + weight_decay * theta;
    parameter[i] = static_cast<float>(theta - lr * g);
  }
}

TENSILE_VECTOR_CLONES
void sgd_momentum_range(float* __restrict parameter, const float* __restrict gradient, float* __restrict buffer,
                        int64_t count, const SgdSettings& s) {
  const double momentum = s.momentum;
  const double one_minus_dampening = 1.0 - s.dampening;
  const double lr = s.lr;
  const double weight_decay = s.weight_decay;
  for (int64_t i = 0; i < count; ++i) {
    const double theta = parameter[i];
    const double g = static_cast<double>(gradient[i]) + weight_decay * theta;
    const float b = s.first_step
                        ? static_cast<float>(g)
                        : static_cast<float>(momentum * static_cast<double>(buffer[i]) + one_minus_dampening * g);
    buffer[i] = b;
    const double direction = s.nesterov ? g + momentum * static_cast<double>(b) : static_cast<double>(b);
    parameter[i] = static_cast<float>(theta - lr * direction);
  }
}

// Runs body(begin, end) over [0, count) split across the pool for large tensors. The per-element
// work is a few dozen flops, so a task pays for itself sooner than a plain copy's would.
template <typename Body>
void for_optimizer_ranges(int64_t count, Body&& body) {
  constexpr int64_t kMinimumPerTask = 1 << 14;
  const int64_t tasks = std::max<int64_t>(1, std::min<int64_t>(pool().threads() * 2, count / kMinimumPerTask));
  if (tasks == 1) {
    body(0, count);
    return;
  }
  pool().run(tasks, [&](int64_t task, int) {
    const int64_t begin = count * task / tasks / 16 * 16;
    const int64_t end = task + 1 == tasks ? count : count * (task + 1) / tasks / 16 * 16;
    body(begin, end);
  });
}

}  // namespace

void adam_update(float* parameter, const float* gradient, float* m, float* v, int64_t count,
                 const AdamSettings& settings) {
  for_optimizer_ranges(count, [&](int64_t begin, int64_t end) {
    adam_range(parameter + begin, gradient + begin, m + begin, v + begin, end - begin, settings);
  });
}

void sgd_update(float* parameter, const float* gradient, float* momentum_buffer, int64_t count,
                const SgdSettings& settings) {
  for_optimizer_ranges(count, [&](int64_t begin, int64_t end) {
    if (momentum_buffer == nullptr) {
      sgd_range(parameter + begin, gradient + begin, end - begin, settings.lr, settings.weight_decay);
    } else {
      sgd_momentum_range(parameter + begin, gradient + begin, momentum_buffer + begin, end - begin, settings);
    }
  });
}

}  // namespace tensile
