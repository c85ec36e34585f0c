// Autograd of the differentiable gramgan ops, registered in C++ for the Autograd key (CPU and CUDA alike).
//
// The formulas are those of gramgan/ops/_contract.py, which registers them in Python for the other
// namespaces (the Triton ops, the host emulation of the CUDA kernels): gradients flow to the first
// argument only; the local and sampled texture losses save SR and the residual, the global one SR, the
// index and the candidate images, patch_gram its input and the masked pair hr. Written here in C++, a
// training step's forward and backward through the extension's ops never enter Python: the autograd
// engine runs the backward on its own thread without the GIL, and the generic Python layer of
// torch.library.register_autograd (tens of microseconds a call, as much as a small op's whole GPU time)
// is gone. tests/ops/test_contract.py checks that both registrations compute the same gradients.
//
// Second-order gradients (docs/ops.md): the masked pair's gradient, grad * M(hr), is differentiable again;
// the fused backward kernels of the other ops are not, and a gradient they give under create_graph=True is
// marked so that differentiating it again stops with an error (refuse_second_backward) instead of treating
// it as a constant.
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/core/grad_mode.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/csrc/autograd/functions/basic_ops.h>
#include <torch/library.h>

#include <string>
#include <tuple>

namespace gramgan {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The op gramgan::<name> with C++ signature Sig. Its schema is defined from Python (define_ops), so it is
// looked up at the first call, never at load time.
template <typename Sig>
c10::TypedOperatorHandle<Sig> find_op(const char* name) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, "").typed<Sig>();
}

// What every loss backward reads back: the patch size, the target and the criterion.
void save_loss_args(AutogradContext* ctx, int64_t k, c10::string_view target, c10::string_view criterion) {
  ctx->saved_data["k"] = k;
  ctx->saved_data["target"] = std::string(target);
  ctx->saved_data["criterion"] = std::string(criterion);
}

// The gradient of the first input, then an undefined one for each other input (`inputs` in all, counting
// every tensor of a list argument as one input, as torch::autograd::Function does).
variable_list first_input_grad(at::Tensor grad, size_t inputs) {
  variable_list grads(inputs);
  grads[0] = std::move(grad);
  return grads;
}

// `grad`, computed by a fused backward kernel of op `op` ("gramgan::<name>") from `depends_on`, as it is when
// the backward builds no graph. Under create_graph=True (grad mode on inside a backward) it would be a constant to a
// second backward, which would then silently leave out this op's second derivative: it is returned as an alias whose
// own backward, reached from anything it depends on, raises instead (torch's once_differentiable, in C++).
at::Tensor refuse_second_backward(const at::Tensor& grad, const char* op, variable_list depends_on) {
  if (!grad.defined() || !at::GradMode::is_enabled()) return grad;
  depends_on.insert(depends_on.begin(), grad);
  const std::string message = std::string(op) +
                              ": the gradient of the fused kernels cannot be differentiated again (a second backward "
                              "through create_graph=True, e.g. a gradient penalty); backend='reference' can";
  const auto size = static_cast<int64_t>(depends_on.size());
  return torch::autograd::DelayedError(message, size).apply(std::move(depends_on))[0];
}

struct PatchGram : torch::autograd::Function<PatchGram> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, int64_t k) {
    static const auto op = find_op<at::Tensor(const at::Tensor&, int64_t)>("gramgan::patch_gram");
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    ctx->save_for_backward({x});
    ctx->saved_data["k"] = k;
    return op.call(x, k);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    static const auto op =
        find_op<at::Tensor(const at::Tensor&, const at::Tensor&, int64_t)>("gramgan::patch_gram_backward");
    at::Tensor grad_x;
    if (ctx->needs_input_grad(0)) {
      const at::Tensor x = ctx->get_saved_variables()[0];
      {
        const at::NoGradGuard kernels_only;
        grad_x = op.call(grads[0], x, ctx->saved_data["k"].toInt());
      }
      grad_x = refuse_second_backward(grad_x, "gramgan::patch_gram", {grads[0], x});
    }
    return first_input_grad(grad_x, 2);
  }
};

using LossOutputs = std::tuple<at::Tensor, at::Tensor, at::Tensor>;

// The local and sampled losses, one Function for both: op kOp takes SR, its candidates' Sources (the stack;
// or hr, the half-size image and the maps), then k, gt_weight, target and criterion. The forward saves SR
// and the residual (G(e) - G(c*), or e - c*), nothing of the candidates or their sources; the index and
// residual outputs take no gradient and none is made up for them.
template <const char* kOp, typename... Sources>
struct ResidualLoss : torch::autograd::Function<ResidualLoss<kOp, Sources...>> {
  static constexpr size_t kInputs = 1 + sizeof...(Sources) + 4;  // the forward's arguments, a gradient each

  static variable_list forward(AutogradContext* ctx, const at::Tensor& sr, const Sources&... sources, int64_t k,
                               double gt_weight, c10::string_view target, c10::string_view criterion) {
    static const auto op =
        find_op<LossOutputs(const at::Tensor&, const Sources&..., int64_t, double, c10::string_view, c10::string_view)>(
            kOp);
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    const auto [loss, index, residual] = op.call(sr, sources..., k, gt_weight, target, criterion);
    ctx->save_for_backward({sr, residual});
    ctx->mark_non_differentiable({index, residual});
    ctx->set_materialize_grads(false);
    save_loss_args(ctx, k, target, criterion);
    return {loss, index, residual};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    static const auto op =
        find_op<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, int64_t, c10::string_view,
                           c10::string_view)>("gramgan::texture_loss_residual_backward");
    at::Tensor grad_sr;
    if (ctx->needs_input_grad(0)) {
      const variable_list saved = ctx->get_saved_variables();
      if (grads[0].defined()) {
        {
          const at::NoGradGuard kernels_only;
          grad_sr = op.call(grads[0], saved[0], saved[1], ctx->saved_data["k"].toInt(),
                            ctx->saved_data["target"].toStringRef(), ctx->saved_data["criterion"].toStringRef());
        }
        grad_sr = refuse_second_backward(grad_sr, kOp, {grads[0], saved[0]});
      } else {  // the loss took no part in what was differentiated
        grad_sr = at::zeros_like(saved[0]);
      }
    }
    return first_input_grad(grad_sr, kInputs);
  }
};

constexpr char kLocalLoss[] = "gramgan::texture_loss_local";
constexpr char kSampledLoss[] = "gramgan::texture_loss_sampled";
using TextureLossLocal = ResidualLoss<kLocalLoss, at::Tensor>;                              // the stack
using TextureLossSampled = ResidualLoss<kSampledLoss, at::Tensor, at::Tensor, at::Tensor>;  // hr, half, thetas

// Global scope: the backward re-reads the chosen candidate patches in place, from SR, the index and the
// candidate images themselves (no patch copies).
struct TextureLossGlobal : torch::autograd::Function<TextureLossGlobal> {
  static variable_list forward(AutogradContext* ctx, const at::Tensor& sr, at::TensorList candidates, int64_t k,
                               double gt_weight, c10::string_view target, c10::string_view criterion) {
    static const auto op =
        find_op<std::tuple<at::Tensor, at::Tensor>(const at::Tensor&, at::TensorList, int64_t, double, c10::string_view,
                                                   c10::string_view)>("gramgan::texture_loss_global");
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    const auto [loss, index] = op.call(sr, candidates, k, gt_weight, target, criterion);
    variable_list saved = {sr, index};
    saved.insert(saved.end(), candidates.begin(), candidates.end());
    ctx->save_for_backward(std::move(saved));
    ctx->mark_non_differentiable({index});
    save_loss_args(ctx, k, target, criterion);
    return {loss, index};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    static const auto op =
        find_op<at::Tensor(const at::Tensor&, const at::Tensor&, at::TensorList, const at::Tensor&, int64_t,
                           c10::string_view, c10::string_view)>("gramgan::texture_loss_global_backward");
    const variable_list saved = ctx->get_saved_variables();
    const at::TensorList images = at::TensorList(saved).slice(2);
    at::Tensor grad_sr;
    if (ctx->needs_input_grad(0)) {
      {
        const at::NoGradGuard kernels_only;
        grad_sr = op.call(grads[0], saved[0], images, saved[1], ctx->saved_data["k"].toInt(),
                          ctx->saved_data["target"].toStringRef(), ctx->saved_data["criterion"].toStringRef());
      }
      grad_sr = refuse_second_backward(grad_sr, "gramgan::texture_loss_global", {grads[0], saved[0]});
    }
    return first_input_grad(grad_sr, 1 + images.size() + 4);
  }
};

// The masked pair: the gradient of sr * M(hr) is grad * M(hr), the mask recomputed from the saved hr.
struct MaskPair : torch::autograd::Function<MaskPair> {
  using Outputs = std::tuple<at::Tensor, at::Tensor>;

  static variable_list forward(AutogradContext* ctx, const at::Tensor& sr, const at::Tensor& hr, int64_t k,
                               double threshold, int64_t offset_y, int64_t offset_x, c10::string_view mode,
                               int64_t window) {
    static const auto op = find_op<Outputs(const at::Tensor&, const at::Tensor&, int64_t, double, int64_t, int64_t,
                                           c10::string_view, int64_t)>("gramgan::mask_pair");
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    const auto [sr_masked, hr_masked] = op.call(sr, hr, k, threshold, offset_y, offset_x, mode, window);
    ctx->save_for_backward({hr});
    ctx->mark_non_differentiable({hr_masked});
    ctx->saved_data["k"] = k;
    ctx->saved_data["threshold"] = threshold;
    ctx->saved_data["offset_y"] = offset_y;
    ctx->saved_data["offset_x"] = offset_x;
    ctx->saved_data["mode"] = std::string(mode);
    ctx->saved_data["window"] = window;
    return {sr_masked, hr_masked};
  }

  // The fused grad * M(hr); under create_graph=True the mask and then an ATen product, so that the gradient
  // is differentiable again (with respect to grad; the mask is a constant of hr).
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    using MaskSig = at::Tensor(const at::Tensor&, int64_t, double, int64_t, int64_t, c10::string_view, int64_t);
    using GradSig =
        at::Tensor(const at::Tensor&, const at::Tensor&, int64_t, double, int64_t, int64_t, c10::string_view, int64_t);
    static const auto mask_op = find_op<MaskSig>("gramgan::texture_mask");
    static const auto grad_op = find_op<GradSig>("gramgan::mask_pair_backward");
    at::Tensor grad_sr;
    if (ctx->needs_input_grad(0)) {
      const auto& data = ctx->saved_data;
      const at::Tensor hr = ctx->get_saved_variables()[0];
      const int64_t k = data.at("k").toInt(), offset_y = data.at("offset_y").toInt();
      const int64_t offset_x = data.at("offset_x").toInt(), window = data.at("window").toInt();
      const double threshold = data.at("threshold").toDouble();
      const c10::string_view mode = data.at("mode").toStringRef();
      if (at::GradMode::is_enabled()) {
        at::Tensor mask;
        {
          const at::NoGradGuard constant_of_hr;
          mask = mask_op.call(hr, k, threshold, offset_y, offset_x, mode, window);
        }
        grad_sr = at::mul(grads[0], mask);
      } else {
        grad_sr = grad_op.call(grads[0], hr, k, threshold, offset_y, offset_x, mode, window);
      }
    }
    return first_input_grad(grad_sr, 8);
  }
};

// The Autograd-key kernels: the ops' signatures, outputs as the schemas return them.

at::Tensor patch_gram(const at::Tensor& x, int64_t k) { return PatchGram::apply(x, k); }

LossOutputs texture_loss_local(const at::Tensor& sr, const at::Tensor& candidates, int64_t k, double gt_weight,
                               c10::string_view target, c10::string_view criterion) {
  const variable_list out = TextureLossLocal::apply(sr, candidates, k, gt_weight, target, criterion);
  return {out[0], out[1], out[2]};
}

LossOutputs texture_loss_sampled(const at::Tensor& sr, const at::Tensor& hr, const at::Tensor& hr_half,
                                 const at::Tensor& thetas, int64_t k, double gt_weight, c10::string_view target,
                                 c10::string_view criterion) {
  const variable_list out = TextureLossSampled::apply(sr, hr, hr_half, thetas, k, gt_weight, target, criterion);
  return {out[0], out[1], out[2]};
}

std::tuple<at::Tensor, at::Tensor> texture_loss_global(const at::Tensor& sr, at::TensorList candidates, int64_t k,
                                                       double gt_weight, c10::string_view target,
                                                       c10::string_view criterion) {
  const variable_list out = TextureLossGlobal::apply(sr, candidates, k, gt_weight, target, criterion);
  return {out[0], out[1]};
}

std::tuple<at::Tensor, at::Tensor> mask_pair(const at::Tensor& sr, const at::Tensor& hr, int64_t k, double threshold,
                                             int64_t offset_y, int64_t offset_x, c10::string_view mode,
                                             int64_t window) {
  const variable_list out = MaskPair::apply(sr, hr, k, threshold, offset_y, offset_x, mode, window);
  return {out[0], out[1]};
}

}  // namespace
}  // namespace gramgan

TORCH_LIBRARY_IMPL(gramgan, Autograd, m) {
  m.impl("patch_gram", &gramgan::patch_gram);
  m.impl("texture_loss_local", &gramgan::texture_loss_local);
  m.impl("texture_loss_sampled", &gramgan::texture_loss_sampled);
  m.impl("texture_loss_global", &gramgan::texture_loss_global);
  m.impl("mask_pair", &gramgan::mask_pair);
}
