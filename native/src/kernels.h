// Entry points of the native kernels. Shapes and semantics are those of the typed Backend interface
// in src/backend/types.ts; every tensor is a flat, contiguous, row-major float32 array.
//
// Functions returning bool return false only when scratch memory could not be allocated; they have
// then written nothing useful and the caller raises an error.
#pragma once

#include <cstdint>

namespace tensile {

// Matches Conv2dGeometry: x [batch, in_channels, in_height, in_width], weight [out_channels,
// in_channels, kernel_height, kernel_width], out [batch, out_channels, out_height, out_width].
struct ConvGeometry {
  int64_t batch, in_channels, in_height, in_width;
  int64_t out_channels, kernel_height, kernel_width;
  int64_t stride_height, stride_width, pad_top, pad_left, dilation_height, dilation_width;
  int64_t out_height, out_width;
};

bool conv2d_forward(const float* x, const float* weight, float* out, const ConvGeometry& g);
// What conv2d_forward_fused does to each output value v of channel c as it writes it back, in this
// order, each step rounded to float as the separate kernels round it (channel_affine, binary add,
// relu), so the result has the same bits as running them one after another:
//   v = v·scale[c] + shift[c];  v = v + residual[same index] (when residual is set);  v = max(v, 0)
// (NaN to 0, as relu) when relu is set. residual is [batch, out_channels, out_height, out_width].
struct ConvEpilogue {
  const float* scale;
  const float* shift;
  const float* residual;  // may be null
  bool relu;
  // Then 2×2 max pooling with stride 2 (no residual): out is [batch, out_channels, out_height / 2,
  // out_width / 2] (rounded down), the values max_pool2d_forward gives on the convolution's output.
  bool max_pool = false;
};

bool conv2d_forward_fused(const float* x, const float* weight, float* out, const ConvGeometry& g,
                          const ConvEpilogue& epilogue);
// conv2d_forward_fused with epilogue.max_pool set, where the convolution can pool as it writes
// (the Winograd shapes, whose 2×2 output tiles are the pooling windows); false, touching nothing,
// elsewhere.
bool conv2d_forward_fused_max_pool(const float* x, const float* weight, float* out, const ConvGeometry& g,
                                   const ConvEpilogue& epilogue, bool* declined);
bool conv2d_backward_input(const float* grad_out, const float* weight, float* grad_x, const ConvGeometry& g);
bool conv2d_backward_weight(const float* x, const float* grad_out, float* grad_weight, const ConvGeometry& g);

// Matches Pool2dGeometry: x [batch, channels, in_height, in_width], out [batch, channels, out_height,
// out_width].
struct PoolGeometry {
  int64_t batch, channels, in_height, in_width;
  int64_t kernel_height, kernel_width, stride_height, stride_width, pad_top, pad_left;
  int64_t out_height, out_width;
};

// argmax may be null (inference: only the values are wanted).
void max_pool2d_forward(const float* x, float* out, int32_t* argmax, const PoolGeometry& g);
void max_pool2d_backward(const float* grad_out, const int32_t* argmax, float* grad_x, const PoolGeometry& g);
// One plane of max_pool2d_forward with 2×2 windows, stride 2 and no padding (2·out_height ≤ the
// plane's height, 2·out_width ≤ in_width): the same values and argmax.
void max_pool_2x2_plane(const float* in, int64_t in_width, int64_t out_height, int64_t out_width, float* out,
                        int32_t* argmax);
void avg_pool2d_forward(const float* x, float* out, const PoolGeometry& g, bool count_include_pad);
void avg_pool2d_backward(const float* grad_out, float* grad_x, const PoolGeometry& g, bool count_include_pad);

// x viewed as [batch, channels, spatial].
struct ChannelGeometry {
  int64_t batch, channels, spatial;
};

void batch_norm_train_forward(const float* x, const float* gamma, const float* beta, float* out, float* mean,
                              float* inv_std, double eps, const ChannelGeometry& g);
void batch_norm_train_backward(const float* x, const float* grad_out, const float* gamma, const float* mean,
                               const float* inv_std, float* grad_x, float* grad_gamma, float* grad_beta,
                               const ChannelGeometry& g);
// Batch norm followed by ReLU in one pass (out = max(y, 0)); the backward recomputes the ReLU mask
// from x, gamma, beta, mean and inv_std exactly as the forward computed the output.
void batch_norm_relu_train_forward(const float* x, const float* gamma, const float* beta, float* out, float* mean,
                                   float* inv_std, double eps, const ChannelGeometry& g);
void batch_norm_relu_train_backward(const float* x, const float* grad_out, const float* gamma, const float* beta,
                                    const float* mean, const float* inv_std, float* grad_x, float* grad_gamma,
                                    float* grad_beta, const ChannelGeometry& g);
// batch_norm_relu_train_forward, then max_pool2d_forward over its output with 2×2 windows, stride 2
// and no padding (p: the pooling's geometry, floor sizes), never writing the batch-norm output: the
// same out, argmax, mean and inv_std bits. The backward gives the bits of max_pool2d_backward of
// grad_out (pooled) followed by batch_norm_relu_train_backward.
void batch_norm_relu_max_pool_train_forward(const float* x, const float* gamma, const float* beta, float* out,
                                            int32_t* argmax, float* mean, float* inv_std, double eps,
                                            const PoolGeometry& p);
void batch_norm_relu_max_pool_train_backward(const float* x, const float* grad_out, const int32_t* argmax,
                                             const float* gamma, const float* beta, const float* mean,
                                             const float* inv_std, float* grad_x, float* grad_gamma, float* grad_beta,
                                             const PoolGeometry& p);
void channel_affine(const float* x, const float* scale, const float* shift, float* out, const ChannelGeometry& g);
void channel_affine_relu(const float* x, const float* scale, const float* shift, float* out, const ChannelGeometry& g);
void channel_affine_with(const float* x, const float* scale, const float* shift, float* out, const ChannelGeometry& g,
                         bool relu);
void channel_sum(const float* x, float* out, const ChannelGeometry& g);

// Activation codes shared with src/backend/native/index.ts.
enum class Activation : int32_t { kRelu = 0, kLeakyRelu = 1, kAbs = 2, kNeg = 3, kSquare = 4 };
void activation_forward(Activation kind, const float* x, float* out, int64_t size, float alpha);
void activation_backward(Activation kind, const float* x, const float* y, const float* grad_out, float* grad_x,
                         int64_t size, float alpha);

// out = x·scale + shift elementwise (Backend.scaleShift); out may be x.
void scale_shift(const float* x, float* out, int64_t size, double scale, double shift);

// Binary codes shared with index.ts, in BinaryKind order.
enum class BinaryOp : int32_t { kAdd = 0, kSub = 1, kMul = 2, kDiv = 3, kMaximum = 4, kMinimum = 5 };
// How an operand is read while walking out viewed as [outer, middle, inner].
enum class Operand : int32_t { kFull = 0, kMiddle = 1, kScalar = 2 };
// out[o, m, i] = a(o, m, i) op b(o, m, i); a full operand is read at the same flat index as out, a
// middle one at index m, a scalar one at index 0.
void binary(BinaryOp op, const float* a, Operand a_mode, const float* b, Operand b_mode, float* out, int64_t outer,
            int64_t middle, int64_t inner);

// One Adam/AdamW step in place (Backend.adamUpdate); bias corrections are 1 - beta^t.
struct AdamSettings {
  double lr, beta1, beta2, eps, weight_decay;
  bool decoupled;
  double bias_correction1, bias_correction2;
};
void adam_update(float* parameter, const float* gradient, float* m, float* v, int64_t count,
                 const AdamSettings& settings);

// One SGD step in place (Backend.sgdUpdate); momentum_buffer is null when momentum is 0.
struct SgdSettings {
  double lr, momentum, dampening, weight_decay;
  bool nesterov, first_step;
};
void sgd_update(float* parameter, const float* gradient, float* momentum_buffer, int64_t count,
                const SgdSettings& settings);

// Splits [0, count) into about `parts` ranges for elementwise work, all threads when large enough.
int64_t elementwise_tasks(int64_t count);

}  // namespace tensile
