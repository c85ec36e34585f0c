"""The ahead-of-time GPU compile guard (tests/ops/aot_compile_kernels.py) and its launch recorder.

The interpreter, which runs the other Triton tests, never runs Triton's GPU compiler. CI therefore
records every launch signature of the test suite (``GRAMGAN_TRITON_SIGNATURES``) and compiles each for
sm_90 afterwards (.ci/run with Triton 3.8, .ci/oldest.sh with 3.6). These tests check the guard itself
on a small package of its own: what counts as a kernel, what is recorded, what is compiled, and that
the errors only a GPU compile sees (a non-constexpr global, a loop-carried type that follows a scalar
argument's type) fail it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("triton", reason="triton is not installed")

from tests.ops import aot_compile_kernels as aot  # noqa: E402
from tests.ops import triton_signatures  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "aot_guard_sample"

# A package like gramgan.kernels: an autotuned kernel calling a helper (directly and through its module),
# a plain kernel, and the two GPU-only errors (each kernel is correct under the interpreter).
SAMPLE = {
    "__init__.py": "",
    "helpers.py": """
        import triton
        import triton.language as tl


        @triton.jit
        def twice(x):
            return x * 2
    """,
    "kernels.py": """
        import os

        import triton
        import triton.language as tl

        from . import helpers
        from .helpers import twice

        TAPS = 4  # a plain global: the GPU compiler refuses to read it
        TAPS_OK = tl.constexpr(4)
        # As kernels/_autotune.py does: one config under the interpreter, several for a GPU.
        CONFIGS = [triton.Config({"BLOCK": 16})]
        if os.environ.get("TRITON_INTERPRET") != "1":
            CONFIGS.append(triton.Config({"BLOCK": 32}))


        @triton.jit
        def scale(x, w):
            return helpers.twice(x) * w


        @triton.autotune(configs=CONFIGS, key=["n"])
        @triton.jit
        def good_kernel(x_ptr, out_ptr, n, w, annotated: tl.float64, F64: tl.constexpr, BLOCK: tl.constexpr):
            i = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
            acc = tl.float64 if F64 else tl.float32
            x = tl.load(x_ptr + i, mask=i < n, other=0.0).to(acc)
            total = tl.zeros([BLOCK], dtype=acc)
            for _ in tl.static_range(TAPS_OK):
                total += scale(x, tl.cast(w, acc)) + twice(tl.cast(annotated, acc))
            tl.store(out_ptr + i, total, mask=i < n)


        @triton.jit
        def global_kernel(x_ptr, n, BLOCK: tl.constexpr):
            i = tl.arange(0, BLOCK)
            total = tl.zeros([BLOCK], dtype=tl.float32)
            for _ in tl.static_range(TAPS):
                total += tl.load(x_ptr + i, mask=i < n, other=0.0)
            tl.store(x_ptr + i, total, mask=i < n)


        @triton.jit
        def loop_type_kernel(x_ptr, n, w, BLOCK: tl.constexpr):
            i = tl.arange(0, BLOCK)
            best = tl.full([BLOCK], float("inf"), tl.float32)
            for j in range(0, n):
                best = tl.minimum(best, tl.load(x_ptr + i, mask=i < n, other=0.0) * w)
            tl.store(x_ptr + i, best, mask=i < n)
    """,
}
KERNELS = {f"{PACKAGE}.kernels.{name}" for name in ("good_kernel", "global_kernel", "loop_type_kernel")}


@pytest.fixture
def sample(tmp_path, monkeypatch) -> Path:
    """The sample package, importable (its modules forgotten afterwards); the folder holding it."""
    for name, text in SAMPLE.items():
        path = tmp_path / PACKAGE / name
        path.parent.mkdir(exist_ok=True)
        path.write_text(textwrap.dedent(text))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
        del sys.modules[name]


def launch_sample(recorder_folder: Path) -> list[dict]:
    """Runs each sample kernel once under the interpreter, recording; the recorded signatures."""
    import torch
    from aot_guard_sample import kernels

    recorder = triton_signatures.LaunchRecorder(PACKAGE)
    stop = recorder.install()
    try:
        x = torch.ones(8)
        kernels.good_kernel[lambda meta: (1,)](x, torch.empty(8), 8, 0.5, 0.25, F64=False)
        kernels.good_kernel[lambda meta: (1,)](x.double(), torch.empty(8, dtype=torch.float64), 8, 0.5, 0.25, F64=True)
        kernels.global_kernel[(1,)](x, 8, BLOCK=8)
        kernels.loop_type_kernel[(1,)](x, 8, 0.5, BLOCK=8)
    finally:
        stop()
    recorder.write(recorder_folder, "gw9")
    return triton_signatures.read(recorder_folder)


def test_discovery_finds_the_kernels_not_the_helpers(sample):
    """Every jit function no jit function calls is a kernel, whatever its name or wrapper."""
    assert set(aot.discover(PACKAGE)) == KERNELS


def test_discovery_finds_every_kernel_of_gramgan():
    """Each kernel the triton backend launches is found (resize.py was missing from the old hand list)."""
    found = {name.rsplit(".", 1)[1] for name in aot.discover()}
    from gramgan.ops import _triton, _triton_sampled

    launched = {name for module in (_triton, _triton_sampled) for name in vars(module) if name.endswith("_kernel")}
    assert launched and launched <= found
    assert not found & {"load_gram", "gram_score", "_mirror", "threshold_std"}  # helpers


@pytest.mark.skipif(os.environ.get("TRITON_INTERPRET") != "1", reason="records interpreted launches")
def test_recorder_types_arguments_as_the_jit_does(sample, tmp_path):
    signatures = launch_sample(tmp_path / "signatures")
    good = [s for s in signatures if s["kernel"].endswith("good_kernel")]
    assert len(signatures) == 4 and len(good) == 2
    fp32 = next(s for s in good if not s["constexprs"]["F64"])
    assert fp32["types"] == {
        "x_ptr": "*fp32", "out_ptr": "*fp32", "n": "i32", "w": "fp32", "annotated": "fp64",
        "F64": "constexpr", "BLOCK": "constexpr",
    }  # fmt: skip
    assert fp32["constexprs"] == {"F64": False, "BLOCK": 16}  # the config the interpreter ran
    assert {s["types"]["x_ptr"] for s in good} == {"*fp32", "*fp64"}
    inductor = triton_signatures.with_float_scalars(fp32, "fp64")["types"]
    assert inductor["w"] == inductor["annotated"] == "fp64" and inductor["n"] == "i32" and inductor["x_ptr"] == "*fp32"
    mutation_analysis = triton_signatures.with_float_scalars(fp32, "fp32")["types"]
    assert mutation_analysis["w"] == mutation_analysis["annotated"] == "fp32"


@pytest.mark.skipif(os.environ.get("TRITON_INTERPRET") != "1", reason="records interpreted launches")
def test_plan_covers_signatures_configs_and_fails_unlaunched_kernels(sample, tmp_path, monkeypatch):
    import triton

    signatures = launch_sample(tmp_path / "signatures")
    kernels = aot.discover(PACKAGE)
    gpu_configs = [triton.Config({"BLOCK": 16}), triton.Config({"BLOCK": 32})]  # what a GPU process has
    monkeypatch.setattr(aot, "autotune_configs", lambda kernel: gpu_configs if hasattr(kernel, "configs") else None)
    work = aot.plan(kernels, signatures)
    assert not work.never_launched and not work.stale
    good = [job for job in work.jobs if job.kernel.endswith("good_kernel")]
    # 2 signatures x (fp32 scalars, fp64 scalars) with the first config, and the second config once
    assert len(good) == 5
    assert {dict(job.constexprs)["BLOCK"] for job in good} == {16, 32}
    assert {dict(job.types)["w"] for job in good} == {"fp32", "fp64"}
    without_one = aot.plan(kernels, [s for s in signatures if not s["kernel"].endswith("global_kernel")])
    assert without_one.never_launched == [f"{PACKAGE}.kernels.global_kernel"]
    renamed = [{**s, "types": {"y" if k == "x_ptr" else k: v for k, v in s["types"].items()}} for s in signatures]
    assert aot.plan(kernels, renamed).stale == sorted(KERNELS)


def run_guard(folder: Path, sample_root: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(sample_root), env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "tests.ops.aot_compile_kernels", str(folder), *args]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.skipif(os.environ.get("TRITON_INTERPRET") != "1", reason="records interpreted launches")
def test_guard_fails_on_what_only_a_gpu_compile_sees(sample, tmp_path):
    """The non-constexpr global and the fp64-typed scalar in a loop-carried value fail; the rest compiles."""
    folder = tmp_path / "signatures"
    launch_sample(folder)
    done = run_guard(folder, sample, "--package", PACKAGE, "--jobs", "1")
    out = done.stdout + done.stderr
    if done.returncode == aot.UNUSABLE:
        pytest.skip(out.strip().splitlines()[-1])
    assert done.returncode == 1, out
    assert "Cannot access global variable TAPS" in out, out
    assert "Loop-carried variable best has initial type" in out and "fp64" in out, out
    assert re.search(rf"ok +5 compilations +{PACKAGE}\.kernels\.good_kernel", out), out
    assert "1 of 3 kernels ok" in out, out


def test_guard_needs_recorded_signatures(tmp_path):
    done = run_guard(tmp_path, tmp_path)
    if done.returncode == aot.UNUSABLE:
        pytest.skip(done.stdout.strip().splitlines()[-1])
    assert done.returncode == aot.NO_SIGNATURES and "GRAMGAN_TRITON_SIGNATURES" in done.stdout


def test_guard_refuses_the_interpreter(tmp_path):
    """Under TRITON_INTERPRET=1 the kernels are interpreter functions: the guard says so, exit 77."""
    (tmp_path / "signatures-main.json").write_text(json.dumps({"signatures": []}))
    env = dict(os.environ, TRITON_INTERPRET="1")
    command = [sys.executable, "-m", "tests.ops.aot_compile_kernels", str(tmp_path)]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == aot.UNUSABLE and "TRITON_INTERPRET" in done.stdout
