"""Compiles every Triton kernel of gramgan.kernels ahead of time for a GPU target, without a GPU.

Run as a script (tests/ops/test_triton_aot.py does, with TRITON_INTERPRET unset):

    python tests/ops/aot_compile_kernels.py [ARCH]      (ARCH: 90 for sm_90, the default)

Each kernel is compiled once, with its first GPU autotuning configuration, fp32 pointers (int64 for
the selected indices), int32 integer scalars and representative constexprs, down to a cubin. Prints
one line per kernel; exits 0 when all compiled, 1 when one failed, 77 when the CUDA backend of this
Triton cannot compile here (the reason on the last line).
"""

from __future__ import annotations

import os
import sys
import time

UNUSABLE = 77
FLOAT_SCALARS = {"gt_weight", "threshold", "inv_n", "inv_n1"}
POINTER_TYPES = {"idx_ptr": "*i64"}
# Representative constexprs: 4x4 patches of RGB (C*C = 9 padded to 16), fp32, every optional path on.
CONSTEXPRS = {
    "PATCH": 4, "C": 3, "CC_P": 16, "F64": False, "IO64": False, "USE_GT": True, "LOSS": 1,
    "GRAM_LOSS": True, "TARGET_GRAM": True, "LOCAL": True, "L1": False, "MODE": 0,
}  # fmt: skip


def kernels() -> dict[str, object]:
    """``{module.name: Autotuner or JITFunction}`` for every ``*_kernel`` of gramgan.kernels."""
    from gramgan.kernels import gram, texture_loss, texture_loss_sampled, texture_mask

    found = {}
    for module in (gram, texture_loss, texture_loss_sampled, texture_mask):
        for name, obj in vars(module).items():
            if name.endswith("_kernel") and hasattr(obj, "run"):
                found[f"{module.__name__.rsplit('.', 1)[-1]}.{name}"] = obj
    return found


def compile_one(kernel: object, target: object) -> None:
    import triton
    from triton.compiler import ASTSource

    fn = getattr(kernel, "fn", kernel)  # an Autotuner wraps the JITFunction
    configs = getattr(kernel, "configs", None)
    meta = dict(configs[0].kwargs) if configs else {}
    options = {"num_warps": configs[0].num_warps, "num_stages": configs[0].num_stages} if configs else {}
    signature, constexprs = {}, {}
    for param in fn.params:
        name = param.name
        if param.is_constexpr:
            signature[name] = "constexpr"
            constexprs[name] = meta[name] if name in meta else CONSTEXPRS[name]
        elif name.endswith("_ptr"):
            signature[name] = POINTER_TYPES.get(name, "*fp32")
        else:
            signature[name] = "fp32" if name in FLOAT_SCALARS else "i32"
    compiled = triton.compile(ASTSource(fn, signature, constexprs=constexprs), target=target, options=options)
    if not compiled.asm.get("cubin"):
        raise RuntimeError("no cubin produced")


def main(arch: int) -> int:
    if os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
        print("TRITON_INTERPRET is set: the kernels would be interpreter functions")
        return UNUSABLE
    try:
        import triton
        from triton.backends import backends
        from triton.backends.compiler import GPUTarget
    except ImportError as error:
        print(f"triton cannot be imported: {error}")
        return UNUSABLE
    if "nvidia" not in backends:
        print(f"triton {triton.__version__} has no CUDA backend (backends: {sorted(backends)})")
        return UNUSABLE
    target = GPUTarget("cuda", arch, 32)
    try:  # the CUDA backend needs its bundled ptxas; a broken install fails here, not in our kernels
        backends["nvidia"].compiler(target).parse_options({})
    except Exception as error:  # noqa: BLE001 - any failure means "cannot compile here"
        print(f"triton {triton.__version__}'s CUDA backend is not usable here: {error!r}")
        return UNUSABLE
    failed = 0
    for name, kernel in kernels().items():
        start = time.perf_counter()
        try:
            compile_one(kernel, target)
            print(f"ok      {name} sm_{arch} ({time.perf_counter() - start:.1f}s)")
        except Exception as error:  # noqa: BLE001 - report every kernel, then fail
            failed += 1
            print(f"FAILED  {name} sm_{arch}: {type(error).__name__}: {error}")
    print(f"triton {triton.__version__}: {len(kernels()) - failed} of {len(kernels())} kernels compiled for sm_{arch}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 90))
