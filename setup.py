"""Builds gramgan and its extension ``gramgan._C`` (the fused ops of docs/ops.md).

    pip install -e . --no-build-isolation

The CPU kernels (csrc/gramgan.cpp, csrc/cpu/*.cpp) are always built. The CUDA kernels (csrc/cuda/*.cu,
csrc/cuda/*.cpp) are added, as the big PyTorch extension projects do, when torch sees a GPU, or when
``FORCE_CUDA=1`` or ``TORCH_CUDA_ARCH_LIST`` is set (a CUDA build on a machine without a GPU: CI, a
wheel for elsewhere); ``FORCE_CUDA=0`` leaves them out whatever else is set. An nvcc on PATH alone does
not start a CUDA build (minutes of compiling that a machine without a GPU cannot use). Without a GPU
and without ``TORCH_CUDA_ARCH_LIST`` the architectures are ``DEFAULT_ARCH_LIST``; with a GPU, its own.
The build writes ``gramgan/_build_info.json`` next to the extension (whether it holds CUDA code, for
which architectures, why, and the digest of the csrc/ sources it was built from), which
``python -m gramgan.info`` prints. ``CUDA_HOME`` is found from
nvcc when unset (see ``resolve_cuda_home``); ``MAX_JOBS`` bounds the parallel compile jobs (ninja).
"""

from __future__ import annotations

import glob
import importlib.util
import json
import os
import re
import shutil

from setuptools import find_packages, setup

ROOT = os.path.dirname(os.path.abspath(__file__))


def _is_cuda_root(path: str) -> bool:
    """A CUDA toolkit root has bin/nvcc and include/cuda_runtime.h."""
    return os.path.isfile(os.path.join(path, "bin", "nvcc")) and os.path.isfile(
        os.path.join(path, "include", "cuda_runtime.h")
    )


def _roots_from_nvcc(nvcc: str) -> list[str]:
    """Toolkit roots an nvcc on PATH points at: its real path, or the target of a wrapper script."""
    roots = [os.path.dirname(os.path.dirname(os.path.realpath(nvcc)))]
    try:
        with open(nvcc, "rb") as handle:
            head = handle.read(4096)
    except OSError:
        return roots
    if head.startswith(b"#!"):  # a shell wrapper such as `exec /usr/local/cuda-13.0/bin/nvcc "$@"`
        for match in re.finditer(rb"(/[^\s\"']+)/bin/nvcc\b", head):
            roots.insert(0, match.group(1).decode(errors="replace"))
    return roots


def resolve_cuda_home() -> str | None:
    """Sets ``CUDA_HOME`` (when unset) to the toolkit that nvcc belongs to, before torch reads it.

    torch.utils.cpp_extension guesses the toolkit as the parent of nvcc's folder, which is wrong for a
    wrapper script such as /usr/local/bin/nvcc; here the wrapper's target, nvcc's real path and
    /usr/local/cuda are tried in turn.
    """
    for variable in ("CUDA_HOME", "CUDA_PATH"):
        if os.environ.get(variable):
            print(f"gramgan setup: using {variable}={os.environ[variable]}")
            return os.environ[variable]
    candidates = []
    nvcc = shutil.which("nvcc")
    if nvcc:
        candidates += _roots_from_nvcc(nvcc)
    candidates.append("/usr/local/cuda")
    for root in candidates:
        if _is_cuda_root(root):
            os.environ["CUDA_HOME"] = root
            print(f"gramgan setup: CUDA_HOME unset, using {root} (nvcc on PATH: {nvcc})")
            return root
    print("gramgan setup: no CUDA toolkit found (CUDA_HOME unset, no usable nvcc)")
    return None


CUDA_ROOT = resolve_cuda_home()

# Imported only now: torch.utils.cpp_extension reads CUDA_HOME when it is imported.
import torch  # noqa: E402
from torch.utils.cpp_extension import BuildExtension, CppExtension, CUDAExtension  # noqa: E402


def cuda_decision() -> tuple[bool, str]:
    """Whether to build the CUDA kernels, and why: ``FORCE_CUDA`` (1 or 0) decides when set, else
    ``TORCH_CUDA_ARCH_LIST`` being set, else whether torch sees a GPU."""
    force = os.environ.get("FORCE_CUDA", "").strip()
    if force == "1":
        return True, "FORCE_CUDA=1"
    if force == "0":
        return False, "FORCE_CUDA=0"
    if os.environ.get("TORCH_CUDA_ARCH_LIST", "").strip():
        return True, f"TORCH_CUDA_ARCH_LIST={os.environ['TORCH_CUDA_ARCH_LIST']}"
    if torch.version.cuda is None:
        return False, "torch is a CPU-only build"
    if torch.cuda.device_count() > 0:
        return True, "torch sees a GPU"
    return False, "torch sees no GPU, and neither FORCE_CUDA=1 nor TORCH_CUDA_ARCH_LIST is set"


# Architectures built when no GPU is visible and TORCH_CUDA_ARCH_LIST is unset (torch itself would fail):
# A100 and H100/H200, plus PTX that newer GPUs compile at load time.
DEFAULT_ARCH_LIST = "8.0;9.0+PTX"


def cuda_arch_list() -> str:
    """TORCH_CUDA_ARCH_LIST, set here when unset so that the build records it: the visible GPUs'
    architectures, or DEFAULT_ARCH_LIST on a machine without a visible GPU."""
    if not os.environ.get("TORCH_CUDA_ARCH_LIST", "").strip():
        capabilities = {torch.cuda.get_device_capability(i) for i in range(torch.cuda.device_count())}
        found = ";".join(f"{major}.{minor}" for major, minor in sorted(capabilities))
        os.environ["TORCH_CUDA_ARCH_LIST"] = found or DEFAULT_ARCH_LIST
    return os.environ["TORCH_CUDA_ARCH_LIST"]


def version() -> str:
    with open(os.path.join(ROOT, "gramgan", "__init__.py"), encoding="utf-8") as handle:
        return re.search(r'^__version__ = "([^"]+)"', handle.read(), re.M).group(1)


# The supported range (README, "Supported versions"): CI tests the oldest (requirements-oldest.txt)
# and the pinned newest (requirements.txt). The extension is built against the installed torch, so
# install with --no-build-isolation (an isolated build could compile against another torch).
INSTALL_REQUIRES = [
    "torch>=2.11,<2.15",
    "torchvision>=0.26,<0.30",
    "numpy>=2.0",
    "pillow",
    "pyyaml",
    "tqdm",
    "matplotlib",
    "safetensors",
    "scikit-image",
]
# Triton is optional: torch's CUDA wheels for Linux bring a matching one; CPU-only installs run without
# it (the triton backend then reports itself unavailable, see gramgan.ops.backend_availability).
# BasicSR (gramgan.integrations.basicsr, docs/basicsr.md) and ONNX export (python -m gramgan.export) are
# optional too; `import gramgan` imports neither. basicsr-fixed is BasicSR 1.4 for current torchvision.
EXTRAS_REQUIRE = {
    "triton": ["triton>=3.6,<3.9"],
    "basicsr": ["basicsr-fixed==1.4.2"],
    "onnx": ["onnx>=1.18", "onnxscript>=0.4", "onnxruntime>=1.20"],
}


BUILD_INFO = "_build_info.json"  # written next to the extension; read by gramgan/info.py


def extension(build_cuda: bool, why: str) -> CppExtension:
    """gramgan._C: CPU sources always, CUDA sources when ``build_cuda``."""
    sources = sorted(glob.glob("csrc/*.cpp")) + sorted(glob.glob("csrc/cpu/*.cpp"))
    include_dirs = [os.path.join(ROOT, "csrc", "include"), os.path.join(ROOT, "csrc", "cpu")]
    # Python's CFLAGS add -g (slow to build) and -fwrapv (which makes the patch loops 2-3x slower).
    cxx_flags = ["-O3", "-g0", "-fno-wrapv", "-fopenmp"]
    # OpenMP for at::parallel_for; an rpath to torch's libraries so that `import gramgan._C` works on its own.
    link_flags = ["-fopenmp", f"-Wl,-rpath,{os.path.join(os.path.dirname(torch.__file__), 'lib')}"]
    if build_cuda:
        if CUDA_ROOT is None:
            raise SystemExit(
                f"gramgan setup: the CUDA kernels were asked for ({why}) but no CUDA toolkit was found: "
                "set CUDA_HOME, or FORCE_CUDA=0 for the CPU kernels only"
            )
        print(f"gramgan setup: building the CPU and CUDA kernels ({why}), TORCH_CUDA_ARCH_LIST={cuda_arch_list()}")
        return CUDAExtension(
            "gramgan._C",
            sources + sorted(glob.glob("csrc/cuda/*.cu")) + sorted(glob.glob("csrc/cuda/*.cpp")),
            include_dirs=include_dirs + [os.path.join(ROOT, "csrc", "cuda")],
            define_macros=[("GRAMGAN_WITH_CUDA", None)],
            # No --use_fast_math: NaN must propagate (docs/ops.md, "NaN in, NaN out").
            extra_compile_args={"cxx": cxx_flags, "nvcc": ["-O3"]},
            extra_link_args=link_flags,
        )
    print(f"gramgan setup: building the CPU kernels only ({why}; FORCE_CUDA=1 builds the CUDA kernels too)")
    return CppExtension(
        "gramgan._C",
        sources,
        include_dirs=include_dirs,
        extra_compile_args={"cxx": cxx_flags},
        extra_link_args=link_flags,
    )


def source_digest() -> str | None:
    """The digest of csrc/'s sources (gramgan/_build_sources.py, loaded by its path: importing the package
    here would need it built)."""
    spec = importlib.util.spec_from_file_location("_build_sources", os.path.join(ROOT, "gramgan", "_build_sources.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.source_digest(ROOT)


class BuildExtensionWithInfo(BuildExtension.with_options(use_ninja=True)):
    """torch's BuildExtension, then ``_build_info.json`` written next to ``gramgan._C`` (in place, in
    the wheel's build folder, or in the source tree for an editable install): what was built, for which
    architectures, why, and from which sources."""

    def run(self) -> None:
        super().run()
        info = {
            "cuda": BUILD_CUDA,
            "torch_cuda_arch_list": os.environ.get("TORCH_CUDA_ARCH_LIST") if BUILD_CUDA else None,
            "why": WHY,
            "torch": torch.__version__,
            "sources": source_digest(),
        }
        path = os.path.join(os.path.dirname(self.get_ext_fullpath("gramgan._C")), BUILD_INFO)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(info, handle, indent=2)
            handle.write("\n")
        print(f"gramgan setup: wrote {path}")


BUILD_CUDA, WHY = cuda_decision()
os.environ.setdefault("MAX_JOBS", str(os.cpu_count() or 1))
setup(
    name="gramgan",
    version=version(),
    description="Gram-GAN super-resolution with fused Gram-matrix kernels",
    # The Triton kernels live in the top-level folder kernels/ but install as gramgan.kernels, never as a
    # top-level `kernels` module (an unrelated PyPI package has that name).
    packages=find_packages(include=["gramgan", "gramgan.*"]) + ["gramgan.kernels"],
    package_dir={"gramgan.kernels": "kernels"},
    package_data={
        "gramgan.configs": ["*.yaml", "ablation/*.yaml"],
        "gramgan.integrations.basicsr": ["examples/*.yml"],
    },
    python_requires=">=3.10,<3.13",
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS_REQUIRE,
    classifiers=[
        "Programming Language :: Python :: 3.10",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Operating System :: POSIX :: Linux",
    ],
    ext_modules=[extension(BUILD_CUDA, WHY)],
    cmdclass={"build_ext": BuildExtensionWithInfo},
    zip_safe=False,
)
