// gramgan._C: the Python module that loads the fused Gram-GAN kernels.
//
// The operator schemas and fake (meta) kernels live once, in Python (gramgan/ops/_contract.py), which
// defines them for every namespace (torch.ops.gramgan.* here, see gramgan/ops/_cpp.py); the C++ files
// only register kernels for them with TORCH_LIBRARY_IMPL (csrc/cpu, csrc/cuda) and their autograd
// (csrc/autograd.cpp). The dispatcher accepts those before the schema is defined, so the import order
// does not matter.
// Python.h first, as the Python docs ask; no pybind11 / torch/extension.h: they triple the build time.
#include <Python.h>

#include "gramgan_common.h"

namespace {

// The values of a coverage list (gramgan_common.h) as a Python tuple.
template <int... Vs>
PyObject* coverage_tuple(std::integer_sequence<int, Vs...>) {
  PyObject* tuple = PyTuple_New(sizeof...(Vs));
  Py_ssize_t i = 0;
  (PyTuple_SET_ITEM(tuple, i++, PyLong_FromLong(Vs)), ...);  // (steals the new references)
  return tuple;
}

PyObject* kernel_coverage(PyObject* /*self*/, PyObject* /*args*/) {
  return Py_BuildValue("(NN)", coverage_tuple(gramgan::KernelPatchSizes{}),
                       coverage_tuple(gramgan::KernelChannelCounts{}));
}

PyObject* built_with_cuda(PyObject* /*self*/, PyObject* /*args*/) {
#ifdef GRAMGAN_WITH_CUDA
  Py_RETURN_TRUE;
#else
  Py_RETURN_FALSE;
#endif
}

PyMethodDef module_methods[] = {
    {"built_with_cuda", built_with_cuda, METH_NOARGS, "Whether this build holds the CUDA kernels."},
    {"kernel_coverage", kernel_coverage, METH_NOARGS,
     "The coverage rule of the fused kernels: (patch sizes k, channel counts C), csrc/include/gramgan_common.h."},
    {nullptr, nullptr, 0, nullptr},
};

PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_C", "gramgan's fused Gram-GAN operators, registered as torch.ops.gramgan.*", -1,
    module_methods,
};

}  // namespace

// Loading the module runs the TORCH_LIBRARY_IMPL registrations of csrc/cpu and csrc/cuda.
PyMODINIT_FUNC PyInit__C(void) { return PyModule_Create(&module_def); }
