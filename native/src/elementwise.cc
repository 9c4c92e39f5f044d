// Elementwise kernels: activations and broadcast-free binary operations. They are memory-bound, so
// the point is to stream once with vector instructions and, for large tensors, on every core.
#include <algorithm>
#include <cmath>

#include "kernels.h"
#include "thread_pool.h"

namespace tensile {

int64_t elementwise_tasks(int64_t count) {
  // Below this a second thread costs more to wake than it saves.
  constexpr int64_t kMinimumPerTask = 1 << 15;
  const int64_t threads = pool().threads();
  return std::max<int64_t>(1, std::min(threads * 2, count / kMinimumPerTask));
}

namespace {

// Runs body(begin, end) over [0, count) in contiguous ranges; ranges start on 16-element boundaries
// so that vector loops see the same alignment whichever thread runs them.
template <typename Body>
void for_ranges(int64_t count, Body&& body) {
  const int64_t tasks = elementwise_tasks(count);
  if (tasks == 1) {
    body(0, count);
    return;
  }
  pool().run(tasks, [&](int64_t task, int) {
    const int64_t begin = std::min(count, count * task / tasks / 16 * 16);
    const int64_t end = task + 1 == tasks ? count : std::min(count, count * (task + 1) / tasks / 16 * 16);
    body(begin, end);
  });
}

}  // namespace

namespace {

// Each loop is its own function with __restrict pointers: inside a lambda GCC kept them scalar, as
// its run-time overlap checks did not cover the captured pointers. In-place use (out == x) is still
// correct since every element is read before it is written.
void relu_forward(const float* __restrict x, float* __restrict out, int64_t count) {
  // Not max(x, 0): NaN must map to 0 like the reference's `x > 0 ? x : 0`.
  for (int64_t i = 0; i < count; ++i) out[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void leaky_relu_forward(const float* __restrict x, float* __restrict out, int64_t count, double slope) {
  // The slope product in double, then one rounding, as the reference computes it.
  for (int64_t i = 0; i < count; ++i) {
    const double factor = x[i] > 0.0f ? 1.0 : slope;
    out[i] = static_cast<float>(factor * static_cast<double>(x[i]));
  }
}

void abs_forward(const float* __restrict x, float* __restrict out, int64_t count) {
  for (int64_t i = 0; i < count; ++i) out[i] = std::fabs(x[i]);
}

void neg_forward(const float* __restrict x, float* __restrict out, int64_t count) {
  for (int64_t i = 0; i < count; ++i) out[i] = -x[i];
}

void square_forward(const float* __restrict x, float* __restrict out, int64_t count) {
  for (int64_t i = 0; i < count; ++i) out[i] = x[i] * x[i];
}

void relu_backward(const float* __restrict x, const float* __restrict g, float* __restrict out, int64_t count) {
  // g·1 or g·0, exactly the reference's product (g·0 keeps its NaN and signed zeros), branch-free.
  for (int64_t i = 0; i < count; ++i) out[i] = g[i] * (x[i] > 0.0f ? 1.0f : 0.0f);
}

void leaky_relu_backward(const float* __restrict x, const float* __restrict g, float* __restrict out, int64_t count,
                         double slope) {
  for (int64_t i = 0; i < count; ++i) {
    const double factor = x[i] > 0.0f ? 1.0 : slope;
    out[i] = static_cast<float>(static_cast<double>(g[i]) * factor);
  }
}

void abs_backward(const float* __restrict x, const float* __restrict g, float* __restrict out, int64_t count) {
  for (int64_t i = 0; i < count; ++i) {
    const float sign = x[i] > 0.0f ? 1.0f : (x[i] < 0.0f ? -1.0f : 0.0f);
    out[i] = g[i] * sign;
  }
}

void neg_backward(const float* __restrict g, float* __restrict out, int64_t count) {
  for (int64_t i = 0; i < count; ++i) out[i] = -g[i];
}

void square_backward(const float* __restrict x, const float* __restrict g, float* __restrict out, int64_t count) {
  for (int64_t i = 0; i < count; ++i) out[i] = g[i] * (2.0f * x[i]);
}

}  // namespace

void activation_forward(Activation kind, const float* x, float* out, int64_t size, float alpha) {
  for_ranges(size, [&](int64_t begin, int64_t end) {
    const int64_t count = end - begin;
    switch (kind) {
      case Activation::kRelu:
        return relu_forward(x + begin, out + begin, count);
      case Activation::kLeakyRelu:
        return leaky_relu_forward(x + begin, out + begin, count, alpha);
      case Activation::kAbs:
        return abs_forward(x + begin, out + begin, count);
      case Activation::kNeg:
        return neg_forward(x + begin, out + begin, count);
      case Activation::kSquare:
        return square_forward(x + begin, out + begin, count);
    }
  });
}

void activation_backward(Activation kind, const float* x, const float* y, const float* grad_out, float* grad_x,
                         int64_t size, float alpha) {
  (void)y;
  for_ranges(size, [&](int64_t begin, int64_t end) {
    const int64_t count = end - begin;
    switch (kind) {
      case Activation::kRelu:
        return relu_backward(x + begin, grad_out + begin, grad_x + begin, count);
      case Activation::kLeakyRelu:
        return leaky_relu_backward(x + begin, grad_out + begin, grad_x + begin, count, alpha);
      case Activation::kAbs:
        return abs_backward(x + begin, grad_out + begin, grad_x + begin, count);
      case Activation::kNeg:
        return neg_backward(grad_out + begin, grad_x + begin, count);
      case Activation::kSquare:
        return square_backward(x + begin, grad_out + begin, grad_x + begin, count);
    }
  });
}

namespace {

// out = x·scale + shift in double, rounded once, as the reference computes it (no FMA: this file is
// compiled for baseline x86-64, and the product is rounded to double before the sum either way).
void scale_shift_range(const float* __restrict x, float* __restrict out, int64_t count, double scale, double shift) {
  for (int64_t i = 0; i < count; ++i) out[i] = static_cast<float>(static_cast<double>(x[i]) * scale + shift);
}

}  // namespace

void scale_shift(const float* x, float* out, int64_t size, double scale, double shift) {
  for_ranges(size, [&](int64_t begin, int64_t end) {
    scale_shift_range(x + begin, out + begin, end - begin, scale, shift);
  });
}

namespace {

template <typename Op>
void binary_with(Op op, const float* a, Operand a_mode, const float* b, Operand b_mode, float* out, int64_t outer,
                 int64_t middle, int64_t inner) {
  const int64_t total = outer * middle * inner;
  if (a_mode == Operand::kFull && b_mode == Operand::kFull) {
    for_ranges(total, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) out[i] = op(a[i], b[i]);
    });
    return;
  }
  if (a_mode == Operand::kFull && b_mode == Operand::kScalar) {
    const float s = b[0];
    for_ranges(total, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) out[i] = op(a[i], s);
    });
    return;
  }
  if (a_mode == Operand::kScalar && b_mode == Operand::kFull) {
    const float s = a[0];
    for_ranges(total, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) out[i] = op(s, b[i]);
    });
    return;
  }
  // One operand indexed by the middle axis (a per-channel bias or scale): rows of `inner` elements.
  const int64_t rows = outer * middle;
  const int64_t tasks = elementwise_tasks(total);
  auto run_rows = [&](int64_t row_begin, int64_t row_end) {
    for (int64_t row = row_begin; row < row_end; ++row) {
      const int64_t m = row % middle;
      const int64_t base = row * inner;
      if (a_mode == Operand::kMiddle) {
        const float s = a[m];
        if (b_mode == Operand::kFull) {
          for (int64_t i = 0; i < inner; ++i) out[base + i] = op(s, b[base + i]);
        } else {
          const float t = b_mode == Operand::kMiddle ? b[m] : b[0];
          for (int64_t i = 0; i < inner; ++i) out[base + i] = op(s, t);
        }
      } else {
        // b may be a scalar here too (both operands scalars), so read it by its own mode.
        const float t = b_mode == Operand::kMiddle ? b[m] : b[0];
        if (a_mode == Operand::kFull) {
          for (int64_t i = 0; i < inner; ++i) out[base + i] = op(a[base + i], t);
        } else {
          const float s = a[0];
          for (int64_t i = 0; i < inner; ++i) out[base + i] = op(s, t);
        }
      }
    }
  };
  if (tasks == 1) {
    run_rows(0, rows);
    return;
  }
  const int64_t row_tasks = std::min(tasks, rows);
  pool().run(row_tasks, [&](int64_t task, int) { run_rows(rows * task / row_tasks, rows * (task + 1) / row_tasks); });
}

}  // namespace

void binary(BinaryOp op, const float* a, Operand a_mode, const float* b, Operand b_mode, float* out, int64_t outer,
            int64_t middle, int64_t inner) {
  switch (op) {
    case BinaryOp::kAdd:
      return binary_with([](float p, float q) { return p + q; }, a, a_mode, b, b_mode, out, outer, middle, inner);
    case BinaryOp::kSub:
      return binary_with([](float p, float q) { return p - q; }, a, a_mode, b, b_mode, out, outer, middle, inner);
    case BinaryOp::kMul:
      return binary_with([](float p, float q) { return p * q; }, a, a_mode, b, b_mode, out, outer, middle, inner);
    case BinaryOp::kDiv:
      return binary_with([](float p, float q) { return p / q; }, a, a_mode, b, b_mode, out, outer, middle, inner);
    case BinaryOp::kMaximum:
      return binary_with([](float p, float q) { return p >= q ? p : q; }, a, a_mode, b, b_mode, out, outer, middle,
                         inner);
    case BinaryOp::kMinimum:
      return binary_with([](float p, float q) { return p <= q ? p : q; }, a, a_mode, b, b_mode, out, outer, middle,
                         inner);
  }
}

}  // namespace tensile
