"""The CUDA kernels under host emulation (``cuda_emulated``, docs/cuda-emulation.md).

The shared tests of test_backends.py run the emulated kernels like every other backend; here: the driver
that runs all ``cuda_emulated`` tests in a subprocess with the ASan runtime preloaded (so that the README's
test command runs them too), a global search long enough to span several shared-memory tiles, opcheck
of the emulated ops' registration, and the emulator itself (csrc/emulation/selftest.cpp).
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import torch

import gramgan.ops as ops
from gramgan.ops import _emulated
from gramgan.ops import reference as ref

# Files whose cuda_emulated tests the driver runs (paths from the repository root).
EMULATED_TEST_FILES = (
    "tests/ops/test_backends.py",
    "tests/ops/test_cuda_emulated.py",
    "tests/ops/test_sampled.py",
    "tests/ops/test_downsample.py",
    "tests/ops/test_contract.py",
    "tests/ops/test_second_order.py",
)
DRIVER_TIMEOUT_S = 1800


@pytest.mark.cuda_emulated
def test_emulated_suite_under_sanitizers():
    """Runs every cuda_emulated test in a child pytest with ASan + UBSan; fails with its output if one fails."""
    if _emulated.sanitizer_runtime_loaded():
        pytest.skip("this process is the sanitizer run")
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--capture=sys", "-m", "cuda_emulated"]
    start = time.monotonic()
    result = subprocess.run(
        [*command, *EMULATED_TEST_FILES],
        cwd=_emulated.REPO_ROOT,
        env=_emulated.sanitizer_environment(),
        capture_output=True,
        text=True,
        timeout=DRIVER_TIMEOUT_S,
    )
    output = result.stdout + result.stderr
    summary = output.strip().splitlines()[-1] if output.strip() else "(no output)"
    print(f"cuda_emulated subprocess: {time.monotonic() - start:.0f} s, exit code {result.returncode}: {summary}")
    assert result.returncode == 0, f"the emulated CUDA tests failed (exit code {result.returncode}):\n{output[-12000:]}"


@pytest.mark.cuda_emulated
def test_global_search_across_tiles(emulated_dispatch):
    """M = 304 candidate patches (three shared-memory tiles of 128): exact copies of every SR patch lie on
    both sides of a tile boundary and again in the last tile; the first copy wins, as in the reference."""
    gen = torch.Generator().manual_seed(0)
    k = 2
    sr = torch.rand(2, 3, 8, 8, generator=gen)
    levels = [torch.rand(2, 3, 8, 8, generator=gen), torch.rand(2, 3, 32, 32, generator=gen)]
    levels[1][:, :, 12:20, 24:32] = sr  # level-1 patch rows 6..9, columns 12..15: flat 124..175
    levels[1][:, :, 24:32, 0:8] = sr  # rows 12..15, columns 0..3: flat 208..259
    index = ops.gram_select(sr, levels, k, scope="global", backend=_emulated.NAME)
    rows, cols = torch.meshgrid(torch.arange(4), torch.arange(4), indexing="ij")
    first_copy = 16 + (6 + rows) * 16 + 12 + cols
    assert torch.equal(index, first_copy.expand(2, 4, 4))
    assert torch.equal(index, ref.gram_select(sr, levels, k, "global", 0.0))
    loss = ops.gram_texture_loss(sr, levels, k, "global", reduction="none", backend=_emulated.NAME)
    assert torch.equal(loss, torch.zeros_like(loss))


def _opcheck_cases(gen: torch.Generator) -> list[tuple[str, tuple]]:
    sr = torch.rand(2, 3, 8, 12, generator=gen)
    cand = torch.rand(2, 3, 3, 8, 12, generator=gen)
    levels = [torch.rand(2, 3, 8, 12, generator=gen), torch.rand(2, 3, 4, 8, generator=gen)]
    hr = 0.5 + 0.01 * torch.randn(2, 3, 8, 12, generator=gen)
    return [
        ("patch_gram", (sr.clone().requires_grad_(), 4)),
        ("texture_loss_local", (sr.clone().requires_grad_(), cand, 4, 1.0, "pixel", "l1")),
        ("texture_loss_global", (sr.clone().requires_grad_(), levels, 4, 0.0, "gram", "mse")),
        ("mask_pair", (sr.clone().requires_grad_(), hr, 4, 0.005, 1, 2, "sliding", 3)),
    ]


@pytest.mark.cuda_emulated
@pytest.mark.parametrize("case", range(4), ids=["patch_gram", "loss_local", "loss_global", "mask_pair"])
def test_opcheck(emulated_kernels, case):
    name, args = _opcheck_cases(torch.Generator().manual_seed(case))[case]
    torch.library.opcheck(getattr(getattr(torch.ops, _emulated.NAMESPACE), name).default, args)


@pytest.mark.cuda_emulated
def test_emulator_runs_every_thread_once(emulated_kernels):
    ids = torch.ops.gramgan_emulator_selftest.coverage(3, 2, 8, 4)
    assert torch.equal(ids, torch.arange(1, 3 * 2 * 8 * 4 + 1))


@pytest.mark.cuda_emulated
def test_emulator_barrier_orders_shared_memory(emulated_kernels):
    """A shared-memory tree reduction is exact only if every __syncthreads() holds back every thread."""
    for n in (1, 127, 1000):
        x = torch.randint(0, 100, (n,), generator=torch.Generator().manual_seed(n)).float()
        for _ in range(5):
            assert torch.ops.gramgan_emulator_selftest.block_sum(x).item() == x.sum().item()


@pytest.mark.cuda_emulated
def test_emulator_rejects_a_divergent_barrier(emulated_kernels):
    with pytest.raises(RuntimeError, match="__syncthreads"):
        torch.ops.gramgan_emulator_selftest.divergent_barrier()


def test_loading_needs_the_sanitizer_runtime():
    """In a process without the ASan runtime the library is never loaded (that would abort): a clear error."""
    if _emulated.sanitizer_runtime_loaded():
        pytest.skip("this process has the ASan runtime")
    assert _emulated.EMULATED_BACKEND.unavailable_reason(torch.device("cpu")) is not None
    with pytest.raises(RuntimeError, match="preloaded"):
        _emulated.load()
    env = _emulated.sanitizer_environment({})
    assert "libasan" in env["LD_PRELOAD"] and "detect_leaks=0" in env["ASAN_OPTIONS"]


def test_emulation_contracts_multiply_adds_as_nvcc_does():
    """The emulated build lets g++ fuse a * b + c where the CPU can (docs/cuda-emulation.md): -mfma on x86-64
    only with FMA (else the library would not run here), -fexpensive-optimizations since the build is -O1."""
    contract = ["-ffp-contract=fast", "-fexpensive-optimizations"]
    assert _emulated.contraction_flags("x86_64", "fpu sse2 avx2 fma bmi2") == ["-mfma", *contract]
    assert _emulated.contraction_flags("x86_64", "fpu sse2 sse4_2") == []
    assert _emulated.contraction_flags("aarch64", "") == contract
    assert set(_emulated.contraction_flags()) <= set(_emulated.CFLAGS)
