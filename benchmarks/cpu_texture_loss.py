"""Speed of the ``cpu`` backend's texture loss against the reference (issue 3, item 5).

Forward plus backward of ``gram_texture_loss`` at the paper's batch: B = 8, 192 x 192, C = 3, K = 6
local candidates, k = 4, Gram target. Compares the ``cpu`` backend with the ``reference`` backend and
with ``torch.compile`` of the reference, and prints both speed-ups (targets: >= 5x and >= 1.5x).

    python -m benchmarks.cpu_texture_loss [--batch 8] [--size 192] [--candidates 6] [--no-compile]
"""

from __future__ import annotations

import argparse

import torch
import torch.utils.benchmark as benchmark

import gramgan.ops as ops
from gramgan.ops import reference as ref


def reference_step(sr: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
    """Forward and backward of the reference texture loss (mean reduction)."""
    loss = ref.texture_loss(sr, candidates, 4, "local", 0.0, "gram", "mse").mean()
    (grad,) = torch.autograd.grad(loss, sr)
    return grad


def fused_step(sr: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
    """Forward and backward of the cpu backend's texture loss (mean reduction)."""
    loss = ops.gram_texture_loss(sr, candidates, backend="cpu")
    (grad,) = torch.autograd.grad(loss, sr)
    return grad


def measure(label: str, fn, sr: torch.Tensor, candidates: torch.Tensor, min_run_time: float) -> float:
    """Median seconds per call (after one warm-up call, which also triggers compilation)."""
    fn(sr, candidates)
    timer = benchmark.Timer(
        stmt="fn(sr, candidates)", globals={"fn": fn, "sr": sr, "candidates": candidates}, label=label
    )
    result = timer.blocked_autorange(min_run_time=min_run_time)
    print(f"{label:<28} {result.median * 1e3:9.2f} ms  (IQR {result.iqr * 1e3:.2f} ms, {len(result.times)} runs)")
    return result.median


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=192)
    parser.add_argument("--candidates", type=int, default=6)
    parser.add_argument("--min-run-time", type=float, default=2.0, help="seconds of timing per variant")
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile of the reference")
    args = parser.parse_args()

    gen = torch.Generator().manual_seed(0)
    shape = (args.batch, 3, args.size, args.size)
    sr = torch.rand(shape, generator=gen).requires_grad_()
    candidates = torch.rand((args.batch, args.candidates, *shape[1:]), generator=gen)
    print(
        f"texture loss forward+backward, B={args.batch}, {args.size}x{args.size}, C=3, K={args.candidates}, "
        f"k=4, float32, {torch.get_num_threads()} threads, torch {torch.__version__}"
    )

    torch.testing.assert_close(fused_step(sr, candidates), reference_step(sr, candidates), rtol=1e-4, atol=1e-9)
    fused = measure("cpu backend", fused_step, sr, candidates, args.min_run_time)
    reference = measure("reference", reference_step, sr, candidates, args.min_run_time)
    print(f"speed-up over the reference:          {reference / fused:6.1f}x  (target >= 5x)")
    if not args.no_compile:
        compiled = measure("torch.compile(reference)", torch.compile(reference_step), sr, candidates, args.min_run_time)
        print(f"speed-up over compiled reference:     {compiled / fused:6.1f}x  (target >= 1.5x)")


if __name__ == "__main__":
    main()
