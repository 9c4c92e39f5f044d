// Node-API bindings: argument checking and dispatch to the kernels.
//
// Kernels work zero-copy on the typed arrays' own memory. Every length is checked against the
// geometry before a kernel runs, so a wrong shape from JavaScript raises a RangeError instead of
// reading or writing out of bounds. Calls are serialised by one mutex: the thread pool and the
// scratch buffers are process-wide, and an addon may be loaded by several worker threads.
#include <node_api.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <mutex>
#include <thread>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "gemm.h"
#include "winograd.h"
#include "kernels.h"
#include "scratch.h"
#include "thread_pool.h"

namespace tensile {

namespace {

std::mutex kernel_mutex;

template <typename T>
struct ArrayView {
  T* data = nullptr;
  int64_t length = 0;
};

// Reads the arguments of one call. The first problem throws a JavaScript error; after that every
// accessor returns a harmless default and failed() is true, so bindings check once at the end.
class Call {
 public:
  Call(napi_env env, napi_callback_info info) : env_(env) {
    if (napi_get_cb_info(env, info, &argc_, argv_, nullptr, nullptr) != napi_ok) fail_type("bad call");
  }

  bool failed() const { return failed_; }
  napi_env env() const { return env_; }

  ArrayView<float> floats(size_t index, const char* name) {
    ArrayView<float> view;
    void* data = nullptr;
    size_t length = 0;
    if (!typed_array(index, name, napi_float32_array, "a Float32Array", &data, &length)) return view;
    view.data = static_cast<float*>(data);
    view.length = static_cast<int64_t>(length);
    return view;
  }

  ArrayView<int32_t> ints(size_t index, const char* name) {
    ArrayView<int32_t> view;
    void* data = nullptr;
    size_t length = 0;
    if (!typed_array(index, name, napi_int32_array, "an Int32Array", &data, &length)) return view;
    view.data = static_cast<int32_t*>(data);
    view.length = static_cast<int64_t>(length);
    return view;
  }

  // A whole number in [minimum, 2^31).
  int64_t integer(size_t index, const char* name, int64_t minimum) {
    if (failed_) return minimum;
    double value = 0;
    if (index >= argc_ || napi_get_value_double(env_, argv_[index], &value) != napi_ok) {
      fail_type(name, "must be a number");
      return minimum;
    }
    const bool in_range = value >= static_cast<double>(minimum) && value < 2147483648.0;
    if (!in_range || value != static_cast<double>(static_cast<int64_t>(value))) {
      fail_range(name, "must be a whole number in range");
      return minimum;
    }
    return static_cast<int64_t>(value);
  }

  double number(size_t index, const char* name) {
    if (failed_) return 0;
    double value = 0;
    if (index >= argc_ || napi_get_value_double(env_, argv_[index], &value) != napi_ok) {
      fail_type(name, "must be a number");
    }
    return value;
  }

  bool flag(size_t index, const char* name) {
    if (failed_) return false;
    bool value = false;
    if (index >= argc_ || napi_get_value_bool(env_, argv_[index], &value) != napi_ok) {
      fail_type(name, "must be a boolean");
    }
    return value;
  }

  // Whether argument index is null or undefined (an optional array left out).
  bool is_null(size_t index) {
    if (failed_ || index >= argc_) return true;
    napi_valuetype type;
    if (napi_typeof(env_, argv_[index], &type) != napi_ok) return true;
    return type == napi_null || type == napi_undefined;
  }

  // Product of sizes, failing on overflow.
  int64_t product(std::initializer_list<int64_t> sizes) {
    int64_t total = 1;
    for (int64_t size : sizes) {
      if (__builtin_mul_overflow(total, size, &total)) {
        fail_range("shape", "is too large");
        return 0;
      }
    }
    return total;
  }

  template <typename T>
  void require(const ArrayView<T>& view, int64_t needed, const char* name) {
    if (failed_ || view.length >= needed) return;
    char message[160];
    std::snprintf(message, sizeof message, "%s has %lld elements but the geometry needs %lld", name,
                  static_cast<long long>(view.length), static_cast<long long>(needed));
    fail_range_message(message);
  }

  void fail_type(const char* name, const char* problem = "") {
    char message[160];
    std::snprintf(message, sizeof message, "%s %s", name, problem);
    if (!failed_) napi_throw_type_error(env_, nullptr, message);
    failed_ = true;
  }

  void fail_range(const char* name, const char* problem) {
    char message[160];
    std::snprintf(message, sizeof message, "%s %s", name, problem);
    fail_range_message(message);
  }

  void fail_range_message(const char* message) {
    if (!failed_) napi_throw_range_error(env_, nullptr, message);
    failed_ = true;
  }

  void fail_memory() {
    if (!failed_) napi_throw_error(env_, nullptr, "tensile native: out of memory for scratch buffers");
    failed_ = true;
  }

 private:
  bool typed_array(size_t index, const char* name, napi_typedarray_type wanted, const char* wanted_name, void** data,
                   size_t* length) {
    if (failed_) return false;
    bool is_typed = false;
    if (index >= argc_ || napi_is_typedarray(env_, argv_[index], &is_typed) != napi_ok || !is_typed) {
      char problem[64];
      std::snprintf(problem, sizeof problem, "must be %s", wanted_name);
      fail_type(name, problem);
      return false;
    }
    napi_typedarray_type type;
    napi_value buffer;
    size_t offset = 0;
    if (napi_get_typedarray_info(env_, argv_[index], &type, length, data, &buffer, &offset) != napi_ok ||
        type != wanted) {
      char problem[64];
      std::snprintf(problem, sizeof problem, "must be %s", wanted_name);
      fail_type(name, problem);
      return false;
    }
    return true;
  }

  napi_env env_;
  size_t argc_ = 24;
  napi_value argv_[24];
  bool failed_ = false;
};

napi_value undefined(napi_env env) {
  napi_value value;
  napi_get_undefined(env, &value);
  return value;
}

// Reads Conv2dGeometry's fields from arguments [first, first + 15) in the interface's order.
ConvGeometry conv_geometry(Call& call, size_t first) {
  ConvGeometry g;
  g.batch = call.integer(first + 0, "batch", 0);
  g.in_channels = call.integer(first + 1, "inChannels", 0);
  g.in_height = call.integer(first + 2, "inHeight", 0);
  g.in_width = call.integer(first + 3, "inWidth", 0);
  g.out_channels = call.integer(first + 4, "outChannels", 0);
  g.kernel_height = call.integer(first + 5, "kernelHeight", 0);
  g.kernel_width = call.integer(first + 6, "kernelWidth", 0);
  g.stride_height = call.integer(first + 7, "strideHeight", 1);
  g.stride_width = call.integer(first + 8, "strideWidth", 1);
  g.pad_top = call.integer(first + 9, "padTop", 0);
  g.pad_left = call.integer(first + 10, "padLeft", 0);
  g.dilation_height = call.integer(first + 11, "dilationHeight", 1);
  g.dilation_width = call.integer(first + 12, "dilationWidth", 1);
  g.out_height = call.integer(first + 13, "outHeight", 0);
  g.out_width = call.integer(first + 14, "outWidth", 0);
  return g;
}

PoolGeometry pool_geometry(Call& call, size_t first) {
  PoolGeometry g;
  g.batch = call.integer(first + 0, "batch", 0);
  g.channels = call.integer(first + 1, "channels", 0);
  g.in_height = call.integer(first + 2, "inHeight", 0);
  g.in_width = call.integer(first + 3, "inWidth", 0);
  g.kernel_height = call.integer(first + 4, "kernelHeight", 0);
  g.kernel_width = call.integer(first + 5, "kernelWidth", 0);
  g.stride_height = call.integer(first + 6, "strideHeight", 1);
  g.stride_width = call.integer(first + 7, "strideWidth", 1);
  g.pad_top = call.integer(first + 8, "padTop", 0);
  g.pad_left = call.integer(first + 9, "padLeft", 0);
  g.out_height = call.integer(first + 10, "outHeight", 0);
  g.out_width = call.integer(first + 11, "outWidth", 0);
  return g;
}

ChannelGeometry channel_geometry(Call& call, size_t first) {
  ChannelGeometry g;
  g.batch = call.integer(first + 0, "batch", 0);
  g.channels = call.integer(first + 1, "channels", 0);
  g.spatial = call.integer(first + 2, "spatial", 0);
  return g;
}

// matmul(a, b, out, m, n, k, transposeA, transposeB, accumulate)
napi_value Matmul(napi_env env, napi_callback_info info) {
  Call call(env, info);
  auto a = call.floats(0, "a");
  auto b = call.floats(1, "b");
  auto out = call.floats(2, "out");
  const int64_t m = call.integer(3, "m", 0);
  const int64_t n = call.integer(4, "n", 0);
  const int64_t k = call.integer(5, "k", 0);
  const bool transpose_a = call.flag(6, "transposeA");
  const bool transpose_b = call.flag(7, "transposeB");
  const bool accumulate = call.flag(8, "accumulate");
  call.require(a, call.product({m, k}), "a");
  call.require(b, call.product({k, n}), "b");
  call.require(out, call.product({m, n}), "out");
  if (call.failed()) return nullptr;
  const MatrixView view_a = transpose_a ? MatrixView{a.data, 1, m} : MatrixView{a.data, k, 1};
  const MatrixView view_b = transpose_b ? MatrixView{b.data, 1, k} : MatrixView{b.data, n, 1};
  std::lock_guard<std::mutex> lock(kernel_mutex);
  if (!gemm(m, n, k, view_a, view_b, out.data, n, accumulate)) call.fail_memory();
  return call.failed() ? nullptr : undefined(env);
}

void require_conv(Call& call, const ConvGeometry& g, const ArrayView<float>& x, const char* x_name,
                  const ArrayView<float>& weight, const char* weight_name, const ArrayView<float>& y,
                  const char* y_name) {
  call.require(x, call.product({g.batch, g.in_channels, g.in_height, g.in_width}), x_name);
  call.require(weight, call.product({g.out_channels, g.in_channels, g.kernel_height, g.kernel_width}), weight_name);
  call.require(y, call.product({g.batch, g.out_channels, g.out_height, g.out_width}), y_name);
}

// conv2dForward(x, weight, out, ...geometry)
napi_value Conv2dForward(napi_env env, napi_callback_info info) {
  Call call(env, info);
  auto x = call.floats(0, "x");
  auto weight = call.floats(1, "weight");
  auto out = call.floats(2, "out");
  const ConvGeometry g = conv_geometry(call, 3);
  require_conv(call, g, x, "x", weight, "weight", out, "out");
  if (call.failed()) return nullptr;
  std::lock_guard<std::mutex> lock(kernel_mutex);
  if (!conv2d_forward(x.data, weight.data, out.data, g)) call.fail_memory();
  return call.failed() ? nullptr : undefined(env);
}

// conv2dBackwardInput(gradOut, weight, gradX, ...geometry)
napi_value Conv2dBackwardInput(napi_env env, napi_callback_info info) {
  Call call(env, info);
  auto grad_out = call.floats(0, "gradOut");
  auto weight = call.floats(1, "weight");
  auto grad_x = call.floats(2, "gradX");
  const ConvGeometry g = conv_geometry(call, 3);
  require_conv(call, g, grad_x, "gradX", weight, "weight", grad_out, "gradOut");
  if (call.failed()) return nullptr;
  std::lock_guard<std::mutex> lock(kernel_mutex);
  if (!conv2d_backward_input(grad_out.data, weight.data, grad_x.data, g)) call.fail_memory();
  return call.failed() ? nullptr : undefined(env);
}

// conv2dBackwardWeight(x, gradOut, gradWeight, ...geometry)
napi_value Conv2dBackwardWeight(napi_env env, napi_callback_info info) {
  Call call(env, info);
  auto x = call.floats(0, "x");
  auto grad_out = call.floats(1, "gradOut");
  auto grad_weight = call.floats(2, "gradWeight");
  const ConvGeometry g = conv_geometry(call, 3);
  require_conv(call, g, x, "x", grad_weight, "gradWeight", grad_out, "gradOut");
  if (call.failed()) return nullptr;
  std::lock_guard<std::mutex> lock(kernel_mutex);
  if (!conv2d_backward_weight(x.data, grad_out.data, grad_weight.data, g)) call.fail_memory();
  return call.failed() ? nullptr : undefined(env);
}

void require_pool(Call& call, const PoolGeometry& g, const ArrayView<float>& x, const char* x_name, int64_t y_length,
                  const char* y_name) {
  call.require(x, call.product({g.batch, g.channels, g.in_height, g.in_width}), x_name);
  const int64_t needed = call.product({g.batch, g.channels, g.out_height, g.out_width});
  if (!call.failed() && y_length < needed) {
    char message[160];
    std::snprintf(message, sizeof message, "%s has %lld elements but the geometry needs %lld", y_name,
                  static_cast<long long>(y_length), static_cast<long long>(needed));
    call.fail_range_message(message);
  }
}

// conv2dForwardFused(x, weight, scale, shift, residual or null, out, relu, ...geometry): the forward
// convolution with ConvEpilogue applied as each output value is written.
napi_value Conv2dForwardFused(napi_env env, napi_callback_info info) {
  Call call(env, info);
  auto x = call.floats(0, "x");
  auto weight = call.floats(1, "weight");
  auto scale = call.floats(2, "scale");
  auto shift = call.floats(3, "shift");
  const bool has_residual = !call.is_null(4);
  ArrayView<float> residual;
  if (has_residual) residual = call.floats(4, "residual");
  auto out = call.floats(5, "out");
  const bool relu = call.flag(6, "relu");
  const ConvGeometry g = conv_geometry(call, 7);
  require_conv(call, g, x, "x", weight, "weight", out, "out");
  call.require(scale, g.out_channels, "scale");
  call.require(shift, g.out_channels, "shift");
  if (has_residual) call.require(residual, out.length, "residual");
  if (call.failed()) return nullptr;
  const ConvEpilogue epilogue{scale.data, shift.data, has_residual ? residual.data : nullptr, relu};
  std::lock_guard<std::mutex> lock(kernel_mutex);
  if (!conv2d_forward_fused(x.data, weight.data, out.data, g, epilogue)) call.fail_memory();
  return call.failed() ? nullptr : undefined(env);
}

// conv2dForwardFusedMaxPool(x, weight, scale, shift, out, relu, ...geometry): conv2dForwardFused
// (no residual) followed by 2×2 max pooling with stride 2, out [batch, out_channels, out_height / 2,
// out_width / 2]. Returns false, touching nothing, where the convolution cannot pool as it writes.
napi_value Conv2dForwardFusedMaxPool(napi_env env, napi_callback_info info) {
  Call call(env, info);
  auto x = call.floats(0, "x");
  auto weight = call.floats(1, "weight");
  auto scale = call.floats(2, "scale");
  auto shift = call.floats(3, "shift");
  auto out = call.floats(4, "out");
  const bool relu = call.flag(5, "relu");
  const ConvGeometry g = conv_geometry(call, 6);
  call.require(x, call.product({g.batch, g.in_channels, g.in_height, g.in_width}), "x");
  call.require(weight, call.product({g.out_channels, g.in_channels, g.kernel_height, g.kernel_width}), "weight");
  call.require(out, call.product({g.batch, g.out_channels, g.out_height / 2, g.out_width / 2}), "out");
  call.require(scale, g.out_channels, "scale");
  call.require(shift, g.out_channels, "shift");
  if (call.failed()) return nullptr;
  const ConvEpilogue epilogue{scale.data, shift.data, nullptr, relu};
  bool declined = false;
  {
    std::lock_guard<std::mutex> lock(kernel_mutex);
    if (!conv2d_forward_fused_max_pool(x.data, weight.data, out.data, g, epilogue, &declined)) call.fail_memory();
  }
  if (call.failed()) return nullptr;
  napi_value result;
  napi_get_boolean(env, !declined, &result);
  return result;
}

// maxPool2dValues(x, out, ...geometry): max pooling without the argmax (inference).
napi_value MaxPool2dValues(napi_env env, napi_callback_info info) {
  Call call(env, info);
  auto x = call.floats(0, "x");
  auto out = call.floats(1, "out");
  const PoolGeometry g = pool_geometry(call, 2);
  require_pool(call, g, x, "x", out.length, "out");
  if (call.failed()) return nullptr;
  std::lock_guard<std::mutex> lock(kernel_mutex);
  max_pool2d_forward(x.data, out.data, nullptr, g);
  return undefined(env);
}

// maxPool2dForward(x, out, argmax, ...geometry)
napi_value MaxPool2dForward(napi_env env, napi_callback_info info) {
  Call call(env, info);
  auto x = call.floats(0, "x");
  auto out = call.floats(1, "out");
  auto argmax = call.ints(2, "argmax");
  const PoolGeometry g = pool_geometry(call, 3);
  require_pool(call, g, x, "x", out.length, "out");
  require_pool(call, g, x, "x", argmax.length, "argmax");
  if (call.failed()) return nullptr;
  std::lock_guard<std::mutex> lock(kernel_mutex);
  max_pool2d_forward(x.data, out.data, argmax.data, g);
  return undefined(env);
}

// maxPool2dBackward(gradOut, argmax, gradX, ...geometry)
napi_value MaxPool2dBackward(napi_env env, napi_callback_info info) {
  Call call(env, info);
  auto grad_out = call.floats(0, "gradOut");
  auto argmax = call.ints(1, "argmax");
  auto grad_x = call.floats(2, "gradX");
  const PoolGeometry g = pool_geometry(call, 3);
  require_pool(call, g, grad_x, "gradX", grad_out.length, "gradOut");
  require_pool(call, g, grad_x, "gradX", argmax.length, "argmax");
  if (call.failed()) return nullptr;
  std::lock_guard<std::mutex> lock(kernel_mutex);
  max_pool2d_backward(grad_out.data, argmax.data, grad_x.data, g);
  return undefined(env);
}

// avgPool2dForward(x, out, countIncludePad, ...geometry)
napi_value AvgPool2dForward(napi_env env, napi_callback_info info) {
  Call call(env, info);
  auto x = call.floats(0, "x");
  auto out = call.floats(1, "out");
  const bool count_include_pad = call.flag(2, "countIncludePad");
  const PoolGeometry g = pool_geometry(call, 3);
  require_pool(call, g, x, "x", out.length, "out");
  if (call.failed()) return nullptr;
  std::lock_guard<std::mutex> lock(kernel_mutex);
  avg_pool2d_forward(x.data, out.data, g, count_include_pad);
  return undefined(env);
}

// avgPool2dBackward(gradOut, gradX, countIncludePad, ...geometry)
napi_value AvgPool2dBackward(napi_env env, napi_callback_info info) {
  Call call(env, info);
  auto grad_out = call.floats(0, "gradOut");
  auto grad_x = call.floats(1, "gradX");
  const bool count_include_pad = call.flag(2, "countIncludePad");
  const PoolGeometry g = pool_geometry(call, 3);
  require_pool(call, g, grad_x, "gradX", grad_out.length, "gradOut");
  if (call.failed()) return nullptr;
  std::lock_guard<std::mutex> lock(kernel_mutex);
  avg_pool2d_backward(grad_out.data, grad_x.data, g, count_include_pad);
  return undefined(env);
}

// batchNormTrainForward(x, gamma, beta, out, mean, invStd, eps, batch, channels, spatial), and
// batchNormReluTrainForward with the same arguments.
napi_value BatchNormForward(napi_env env, napi_callback_info info, bool relu) {
  Call call(env, info);
  auto x = call.floats(0, "x");
  auto gamma = call.floats(1, "gamma");
  auto beta = call.floats(2, "beta");
  auto out = call.floats(3, "out");
  auto mean = call.floats(4, "mean");
  auto inv_std = call.floats(5, "invStd");
  const double eps = call.number(6, "eps");
  const ChannelGeometry g = channel_geometry(call, 7);
  const int64_t total = call.product({g.batch, g.channels, g.spatial});
  call.require(x, total, "x");
  call.require(out, total, "out");
  call.require(gamma, g.channels, "gamma");
  call.require(beta, g.channels, "beta");
  call.require(mean, g.channels, "mean");
  call.require(inv_std, g.channels, "invStd");
  if (call.failed()) return nullptr;
  std::lock_guard<std::mutex> lock(kernel_mutex);
  (relu ? batch_norm_relu_train_forward : batch_norm_train_forward)(x.data, gamma.data, beta.data, out.data,
                                                                     mean.data, inv_std.data, eps, g);
  return undefined(env);
}

napi_value BatchNormTrainForward(napi_env env, napi_callback_info info) { return BatchNormForward(env, info, false); }
napi_value BatchNormReluTrainForward(napi_env env, napi_callback_info info) {
  return BatchNormForward(env, info, true);
}

// batchNormTrainBackward(x, gradOut, gamma, mean, invStd, gradX, gradGamma, gradBeta, batch, channels, spatial),
// and batchNormReluTrainBackward with beta after gamma.
napi_value BatchNormBackward(napi_env env, napi_callback_info info, bool relu) {
  Call call(env, info);
  const size_t first = relu ? 1 : 0;
  auto x = call.floats(0, "x");
  auto grad_out = call.floats(1, "gradOut");
  auto gamma = call.floats(2, "gamma");
  ArrayView<float> beta;
  if (relu) beta = call.floats(3, "beta");
  auto mean = call.floats(first + 3, "mean");
  auto inv_std = call.floats(first + 4, "invStd");
  auto grad_x = call.floats(first + 5, "gradX");
  auto grad_gamma = call.floats(first + 6, "gradGamma");
  auto grad_beta = call.floats(first + 7, "gradBeta");
  const ChannelGeometry g = channel_geometry(call, first + 8);
  const int64_t total = call.product({g.batch, g.channels, g.spatial});
  call.require(x, total, "x");
  if (relu) call.require(beta, g.channels, "beta");
  call.require(grad_out, total, "gradOut");
  call.require(grad_x, total, "gradX");
  call.require(gamma, g.channels, "gamma");
  call.require(mean, g.channels, "mean");
  call.require(inv_std, g.channels, "invStd");
  call.require(grad_gamma, g.channels, "gradGamma");
  call.require(grad_beta, g.channels, "gradBeta");
  if (call.failed()) return nullptr;
  std::lock_guard<std::mutex> lock(kernel_mutex);
  if (relu) {
    batch_norm_relu_train_backward(x.data, grad_out.data, gamma.data, beta.data, mean.data, inv_std.data,
                                   grad_x.data, grad_gamma.data, grad_beta.data, g);
  } else {
    batch_norm_train_backward(x.data, grad_out.data, gamma.data, mean.data, inv_std.data, grad_x.data,
                              grad_gamma.data, grad_beta.data, g);
  }
  return undefined(env);
}

napi_value BatchNormTrainBackward(napi_env env, napi_callback_info info) { return BatchNormBackward(env, info, false); }
napi_value BatchNormReluTrainBackward(napi_env env, napi_callback_info info) {
  return BatchNormBackward(env, info, true);
}

// The pooling of the fused batch norm + ReLU + max pooling kernels: 2×2 windows, stride 2, no
// padding, whole windows only.
void require_two_by_two(Call& call, const PoolGeometry& g) {
  if (call.failed()) return;
  const bool two_by_two = g.kernel_height == 2 && g.kernel_width == 2 && g.stride_height == 2 && g.stride_width == 2 &&
                          g.pad_top == 0 && g.pad_left == 0 && g.out_height == g.in_height / 2 &&
                          g.out_width == g.in_width / 2;
  if (!two_by_two) call.fail_range_message("the pooling must be 2x2 with stride 2, no padding and floor sizes");
}

// batchNormReluMaxPoolTrainForward(x, gamma, beta, out, argmax, mean, invStd, eps, ...poolGeometry)
napi_value BatchNormReluMaxPoolTrainForward(napi_env env, napi_callback_info info) {
  Call call(env, info);
  auto x = call.floats(0, "x");
  auto gamma = call.floats(1, "gamma");
  auto beta = call.floats(2, "beta");
  auto out = call.floats(3, "out");
  auto argmax = call.ints(4, "argmax");
  auto mean = call.floats(5, "mean");
  auto inv_std = call.floats(6, "invStd");
  const double eps = call.number(7, "eps");
  const PoolGeometry g = pool_geometry(call, 8);
  require_two_by_two(call, g);
  require_pool(call, g, x, "x", out.length, "out");
  require_pool(call, g, x, "x", argmax.length, "argmax");
  call.require(gamma, g.channels, "gamma");
  call.require(beta, g.channels, "beta");
  call.require(mean, g.channels, "mean");
  call.require(inv_std, g.channels, "invStd");
  if (call.failed()) return nullptr;
  std::lock_guard<std::mutex> lock(kernel_mutex);
  batch_norm_relu_max_pool_train_forward(x.data, gamma.data, beta.data, out.data, argmax.data, mean.data,
                                         inv_std.data, eps, g);
  return undefined(env);
}

// batchNormReluMaxPoolTrainBackward(x, gradOut, argmax, gamma, beta, mean, invStd, gradX, gradGamma, gradBeta,
// ...poolGeometry)
napi_value BatchNormReluMaxPoolTrainBackward(napi_env env, napi_callback_info info) {
  Call call(env, info);
  auto x = call.floats(0, "x");
  auto grad_out = call.floats(1, "gradOut");
  auto argmax = call.ints(2, "argmax");
  auto gamma = call.floats(3, "gamma");
  auto beta = call.floats(4, "beta");
  auto mean = call.floats(5, "mean");
  auto inv_std = call.floats(6, "invStd");
  auto grad_x = call.floats(7, "gradX");
  auto grad_gamma = call.floats(8, "gradGamma");
  auto grad_beta = call.floats(9, "gradBeta");
  const PoolGeometry g = pool_geometry(call, 10);
  require_two_by_two(call, g);
  require_pool(call, g, x, "x", grad_out.length, "gradOut");
  require_pool(call, g, x, "x", argmax.length, "argmax");
  call.require(grad_x, call.product({g.batch, g.channels, g.in_height, g.in_width}), "gradX");
  call.require(gamma, g.channels, "gamma");
  call.require(beta, g.channels, "beta");
  call.require(mean, g.channels, "mean");
  call.require(inv_std, g.channels, "invStd");
  call.require(grad_gamma, g.channels, "gradGamma");
  call.require(grad_beta, g.channels, "gradBeta");
  if (call.failed()) return nullptr;
  std::lock_guard<std::mutex> lock(kernel_mutex);
  batch_norm_relu_max_pool_train_backward(x.data, grad_out.data, argmax.data, gamma.data, beta.data, mean.data,
                                          inv_std.data, grad_x.data, grad_gamma.data, grad_beta.data, g);
  return undefined(env);
}

// channelAffine(x, scale, shift, out, batch, channels, spatial), and channelAffineRelu likewise.
napi_value ChannelAffineWith(napi_env env, napi_callback_info info, bool relu) {
  Call call(env, info);
  auto x = call.floats(0, "x");
  auto scale = call.floats(1, "scale");
  auto shift = call.floats(2, "shift");
  auto out = call.floats(3, "out");
  const ChannelGeometry g = channel_geometry(call, 4);
  const int64_t total = call.product({g.batch, g.channels, g.spatial});
  call.require(x, total, "x");
  call.require(out, total, "out");
  call.require(scale, g.channels, "scale");
  call.require(shift, g.channels, "shift");
  if (call.failed()) return nullptr;
  std::lock_guard<std::mutex> lock(kernel_mutex);
  channel_affine_with(x.data, scale.data, shift.data, out.data, g, relu);
  return undefined(env);
}

napi_value ChannelAffine(napi_env env, napi_callback_info info) { return ChannelAffineWith(env, info, false); }
napi_value ChannelAffineRelu(napi_env env, napi_callback_info info) { return ChannelAffineWith(env, info, true); }

// channelSum(x, out, batch, channels, spatial)
napi_value ChannelSum(napi_env env, napi_callback_info info) {
  Call call(env, info);
  auto x = call.floats(0, "x");
  auto out = call.floats(1, "out");
  const ChannelGeometry g = channel_geometry(call, 2);
  call.require(x, call.product({g.batch, g.channels, g.spatial}), "x");
  call.require(out, g.channels, "out");
  if (call.failed()) return nullptr;
  std::lock_guard<std::mutex> lock(kernel_mutex);
  channel_sum(x.data, out.data, g);
  return undefined(env);
}

// activationForward(kindCode, x, out, alpha)
napi_value ActivationForward(napi_env env, napi_callback_info info) {
  Call call(env, info);
  const int64_t kind = call.integer(0, "kind", 0);
  auto x = call.floats(1, "x");
  auto out = call.floats(2, "out");
  const double alpha = call.number(3, "alpha");
  if (!call.failed() && kind > static_cast<int64_t>(Activation::kSquare)) call.fail_range("kind", "is unknown");
  call.require(out, x.length, "out");
  if (call.failed()) return nullptr;
  std::lock_guard<std::mutex> lock(kernel_mutex);
  activation_forward(static_cast<Activation>(kind), x.data, out.data, x.length, static_cast<float>(alpha));
  return undefined(env);
}

// activationBackward(kindCode, x, y, gradOut, gradX, alpha)
napi_value ActivationBackward(napi_env env, napi_callback_info info) {
  Call call(env, info);
  const int64_t kind = call.integer(0, "kind", 0);
  auto x = call.floats(1, "x");
  auto y = call.floats(2, "y");
  auto grad_out = call.floats(3, "gradOut");
  auto grad_x = call.floats(4, "gradX");
  const double alpha = call.number(5, "alpha");
  if (!call.failed() && kind > static_cast<int64_t>(Activation::kSquare)) call.fail_range("kind", "is unknown");
  call.require(y, x.length, "y");
  call.require(grad_out, x.length, "gradOut");
  call.require(grad_x, x.length, "gradX");
  if (call.failed()) return nullptr;
  std::lock_guard<std::mutex> lock(kernel_mutex);
  activation_backward(static_cast<Activation>(kind), x.data, y.data, grad_out.data, grad_x.data, x.length,
                      static_cast<float>(alpha));
  return undefined(env);
}

// scaleShift(x, scale, shift, out)
napi_value ScaleShift(napi_env env, napi_callback_info info) {
  Call call(env, info);
  auto x = call.floats(0, "x");
  const double scale = call.number(1, "scale");
  const double shift = call.number(2, "shift");
  auto out = call.floats(3, "out");
  call.require(out, x.length, "out");
  if (call.failed()) return nullptr;
  std::lock_guard<std::mutex> lock(kernel_mutex);
  scale_shift(x.data, out.data, x.length, scale, shift);
  return undefined(env);
}

int64_t operand_length(Operand mode, int64_t total, int64_t middle) {
  return mode == Operand::kFull ? total : mode == Operand::kMiddle ? middle : 1;
}

// binary(kindCode, a, aMode, b, bMode, out, outer, middle, inner)
napi_value Binary(napi_env env, napi_callback_info info) {
  Call call(env, info);
  const int64_t kind = call.integer(0, "kind", 0);
  auto a = call.floats(1, "a");
  const int64_t a_mode = call.integer(2, "aMode", 0);
  auto b = call.floats(3, "b");
  const int64_t b_mode = call.integer(4, "bMode", 0);
  auto out = call.floats(5, "out");
  const int64_t outer = call.integer(6, "outer", 0);
  const int64_t middle = call.integer(7, "middle", 0);
  const int64_t inner = call.integer(8, "inner", 0);
  if (!call.failed() && (kind > static_cast<int64_t>(BinaryOp::kMinimum) || a_mode > 2 || b_mode > 2)) {
    call.fail_range("kind or operand mode", "is unknown");
  }
  const int64_t total = call.product({outer, middle, inner});
  call.require(out, total, "out");
  call.require(a, operand_length(static_cast<Operand>(a_mode), total, middle), "a");
  call.require(b, operand_length(static_cast<Operand>(b_mode), total, middle), "b");
  if (call.failed()) return nullptr;
  std::lock_guard<std::mutex> lock(kernel_mutex);
  binary(static_cast<BinaryOp>(kind), a.data, static_cast<Operand>(a_mode), b.data, static_cast<Operand>(b_mode),
         out.data, outer, middle, inner);
  return undefined(env);
}

// adamUpdate(parameter, gradient, m, v, lr, beta1, beta2, eps, weightDecay, decoupled, biasCorrection1,
// biasCorrection2)
napi_value AdamUpdate(napi_env env, napi_callback_info info) {
  Call call(env, info);
  auto parameter = call.floats(0, "parameter");
  auto gradient = call.floats(1, "gradient");
  auto m = call.floats(2, "m");
  auto v = call.floats(3, "v");
  AdamSettings settings;
  settings.lr = call.number(4, "lr");
  settings.beta1 = call.number(5, "beta1");
  settings.beta2 = call.number(6, "beta2");
  settings.eps = call.number(7, "eps");
  settings.weight_decay = call.number(8, "weightDecay");
  settings.decoupled = call.flag(9, "decoupledWeightDecay");
  settings.bias_correction1 = call.number(10, "biasCorrection1");
  settings.bias_correction2 = call.number(11, "biasCorrection2");
  call.require(gradient, parameter.length, "gradient");
  call.require(m, parameter.length, "m");
  call.require(v, parameter.length, "v");
  if (call.failed()) return nullptr;
  std::lock_guard<std::mutex> lock(kernel_mutex);
  adam_update(parameter.data, gradient.data, m.data, v.data, parameter.length, settings);
  return undefined(env);
}

// sgdUpdate(parameter, gradient, momentumBuffer or null, lr, momentum, dampening, nesterov, weightDecay,
// firstStep)
napi_value SgdUpdate(napi_env env, napi_callback_info info) {
  Call call(env, info);
  auto parameter = call.floats(0, "parameter");
  auto gradient = call.floats(1, "gradient");
  const bool has_buffer = !call.is_null(2);
  ArrayView<float> buffer;
  if (has_buffer) buffer = call.floats(2, "momentumBuffer");
  SgdSettings settings;
  settings.lr = call.number(3, "lr");
  settings.momentum = call.number(4, "momentum");
  settings.dampening = call.number(5, "dampening");
  settings.nesterov = call.flag(6, "nesterov");
  settings.weight_decay = call.number(7, "weightDecay");
  settings.first_step = call.flag(8, "firstStep");
  call.require(gradient, parameter.length, "gradient");
  if (has_buffer) call.require(buffer, parameter.length, "momentumBuffer");
  if (call.failed()) return nullptr;
  std::lock_guard<std::mutex> lock(kernel_mutex);
  sgd_update(parameter.data, gradient.data, has_buffer ? buffer.data : nullptr, parameter.length, settings);
  return undefined(env);
}

// setThreads(count): total threads used by the kernels, the calling thread included.
napi_value SetThreads(napi_env env, napi_callback_info info) {
  Call call(env, info);
  const int64_t count = call.integer(0, "count", 1);
  if (!call.failed() && count > kMaxThreads) call.fail_range("count", "exceeds the maximum of 256");
  if (call.failed()) return nullptr;
  std::lock_guard<std::mutex> lock(kernel_mutex);
  pool().set_threads(static_cast<int>(count));
  return undefined(env);
}

napi_value GetThreads(napi_env env, napi_callback_info) {
  napi_value value;
  std::lock_guard<std::mutex> lock(kernel_mutex);
  napi_create_int32(env, pool().threads(), &value);
  return value;
}

// setIsa(name): "avx2" or "scalar"; returns whether that variant is now in use.
napi_value SetIsa(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  char name[16] = {0};
  size_t length = 0;
  if (argc < 1 || napi_get_value_string_utf8(env, argv[0], name, sizeof name, &length) != napi_ok) {
    napi_throw_type_error(env, nullptr, "name must be a string");
    return nullptr;
  }
  std::lock_guard<std::mutex> lock(kernel_mutex);
  napi_value result;
  napi_get_boolean(env, select_kernels(name), &result);
  return result;
}

// setWinograd(enabled): switches the Winograd path of 3×3 convolutions; returns the previous setting.
napi_value SetWinograd(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  bool enabled = false;
  if (argc < 1 || napi_get_value_bool(env, argv[0], &enabled) != napi_ok) {
    napi_throw_type_error(env, nullptr, "enabled must be a boolean");
    return nullptr;
  }
  std::lock_guard<std::mutex> lock(kernel_mutex);
  napi_value result;
  napi_get_boolean(env, winograd_is_enabled(), &result);
  set_winograd_enabled(enabled);
  return result;
}

napi_value GetIsa(napi_env env, napi_callback_info) {
  napi_value value;
  std::lock_guard<std::mutex> lock(kernel_mutex);
  napi_create_string_utf8(env, active_kernels().name, NAPI_AUTO_LENGTH, &value);
  return value;
}

napi_value CpuHasAvx2(napi_env env, napi_callback_info) {
  napi_value value;
  napi_get_boolean(env, cpu_has_avx2_fma(), &value);
  return value;
}

// Keeps freed activation-sized blocks in the process heap. tensile allocates its large outputs with
// malloc and without zero-filling (allocateUninitialized in src/tensor/memory.ts), so that a training
// step reuses the memory the previous step freed. glibc's defaults defeat that: blocks above the mmap
// threshold (it adapts, but only up to the largest block freed so far) are unmapped when freed, and
// the heap top is trimmed past 2× that, so the next step faults in fresh zeroed pages again (some
// 1,400 faults a step for the seed CNN's training; a third of that with these settings). Raising
// both thresholds keeps the pages mapped; the heap then stays at its peak instead of shrinking
// between steps. Skipped when the user tuned malloc through the environment, or with
// TENSILE_NATIVE_MALLOC=default.
void tune_malloc() {
#if defined(__GLIBC__) && defined(M_MMAP_THRESHOLD) && defined(M_TRIM_THRESHOLD)
  const char* choice = std::getenv("TENSILE_NATIVE_MALLOC");
  if (choice != nullptr && std::strcmp(choice, "default") == 0) return;
  for (const char* name : {"MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES"}) {
    if (std::getenv(name) != nullptr) return;
  }
  mallopt(M_MMAP_THRESHOLD, 32 << 20);  // glibc's maximum on 64-bit systems
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
#endif
}

}  // namespace

}  // namespace tensile

NAPI_MODULE_INIT() {
  using namespace tensile;
  tune_malloc();
  const napi_property_descriptor properties[] = {
      {"matmul", nullptr, Matmul, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"conv2dForward", nullptr, Conv2dForward, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"conv2dBackwardInput", nullptr, Conv2dBackwardInput, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"conv2dBackwardWeight", nullptr, Conv2dBackwardWeight, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"conv2dForwardFused", nullptr, Conv2dForwardFused, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"conv2dForwardFusedMaxPool", nullptr, Conv2dForwardFusedMaxPool, nullptr, nullptr, nullptr, napi_default,
       nullptr},
      {"maxPool2dForward", nullptr, MaxPool2dForward, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"maxPool2dValues", nullptr, MaxPool2dValues, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"maxPool2dBackward", nullptr, MaxPool2dBackward, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"avgPool2dForward", nullptr, AvgPool2dForward, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"avgPool2dBackward", nullptr, AvgPool2dBackward, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"batchNormTrainForward", nullptr, BatchNormTrainForward, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"batchNormReluMaxPoolTrainForward", nullptr, BatchNormReluMaxPoolTrainForward, nullptr, nullptr, nullptr,
       napi_default, nullptr},
      {"batchNormReluMaxPoolTrainBackward", nullptr, BatchNormReluMaxPoolTrainBackward, nullptr, nullptr, nullptr,
       napi_default, nullptr},
      {"batchNormTrainBackward", nullptr, BatchNormTrainBackward, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"channelAffine", nullptr, ChannelAffine, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"batchNormReluTrainForward", nullptr, BatchNormReluTrainForward, nullptr, nullptr, nullptr, napi_default,
       nullptr},
      {"batchNormReluTrainBackward", nullptr, BatchNormReluTrainBackward, nullptr, nullptr, nullptr, napi_default,
       nullptr},
      {"channelAffineRelu", nullptr, ChannelAffineRelu, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"channelSum", nullptr, ChannelSum, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"activationForward", nullptr, ActivationForward, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"activationBackward", nullptr, ActivationBackward, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"binary", nullptr, Binary, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"scaleShift", nullptr, ScaleShift, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"adamUpdate", nullptr, AdamUpdate, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"sgdUpdate", nullptr, SgdUpdate, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"setThreads", nullptr, SetThreads, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"getThreads", nullptr, GetThreads, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"setIsa", nullptr, SetIsa, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"setWinograd", nullptr, SetWinograd, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"getIsa", nullptr, GetIsa, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"cpuHasAvx2", nullptr, CpuHasAvx2, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, sizeof properties / sizeof properties[0], properties);
  return exports;
}
