// gramgan._C: the operator schemas of the fused Gram-GAN ops (one per op family, shared by the CPU
// and CUDA kernels registered in csrc/cpu and csrc/cuda) and the Python module that loads them.
//
// Fake (meta) kernels and autograd are registered in Python, in gramgan/ops/_cpp.py, which
// set_python_module names so that torch can find them when it needs them.
// Python.h first, as the Python docs ask; no pybind11 / torch/extension.h: they triple the build time.
#include <Python.h>
#include <torch/library.h>

TORCH_LIBRARY(gramgan, m) {
  m.set_python_module("gramgan.ops._cpp");
  // (B, C, H, W) -> (B, H/k, W/k, C, C) Gram of every k x k patch, float32 (float64 for float64).
  m.def("patch_gram(Tensor x, int k) -> Tensor");
  m.def("patch_gram_backward(Tensor grad, Tensor x, int k) -> Tensor");
  // Index of the chosen candidate per SR patch, int64 (B, H/k, W/k).
  m.def("gram_select_local(Tensor sr, Tensor candidates, int k, float gt_weight) -> Tensor");
  m.def("gram_select_global(Tensor sr, Tensor[] candidates, int k, float gt_weight) -> Tensor");
  // Per-patch texture loss (B, H/k, W/k) and the selected index (saved for the backward).
  m.def(
      "texture_loss_local(Tensor sr, Tensor candidates, int k, float gt_weight, str target, str criterion)"
      " -> (Tensor loss, Tensor index)");
  m.def(
      "texture_loss_local_backward(Tensor grad, Tensor sr, Tensor candidates, Tensor index, int k, str target,"
      " str criterion) -> Tensor");
  m.def(
      "texture_loss_global(Tensor sr, Tensor[] candidates, int k, float gt_weight, str target, str criterion)"
      " -> (Tensor loss, Tensor index)");
  m.def(
      "texture_loss_global_backward(Tensor grad, Tensor sr, Tensor[] candidates, Tensor index, int k,"
      " str target, str criterion) -> Tensor");
  // 0/1 (NaN for a NaN std) mask (B, 1, H, W) in x's dtype; mask_pair also returns sr * M and hr * M.
  m.def(
      "texture_mask(Tensor x, int k, float threshold, int offset_y, int offset_x, str mode, int window)"
      " -> Tensor");
  m.def(
      "mask_pair(Tensor sr, Tensor hr, int k, float threshold, int offset_y, int offset_x, str mode,"
      " int window) -> (Tensor sr_masked, Tensor hr_masked, Tensor mask)");
}

namespace {

PyObject* built_with_cuda(PyObject* /*self*/, PyObject* /*args*/) {
#ifdef GRAMGAN_WITH_CUDA
  Py_RETURN_TRUE;
#else
  Py_RETURN_FALSE;
#endif
}

PyMethodDef module_methods[] = {
    {"built_with_cuda", built_with_cuda, METH_NOARGS, "Whether this build holds the CUDA kernels."},
    {nullptr, nullptr, 0, nullptr},
};

PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_C", "gramgan's fused Gram-GAN operators, registered as torch.ops.gramgan.*", -1,
    module_methods,
};

}  // namespace

// Loading the module runs the TORCH_LIBRARY registrations above (and those of csrc/cpu, csrc/cuda).
PyMODINIT_FUNC PyInit__C(void) { return PyModule_Create(&module_def); }
