"""Shared helpers of the training tests: a tiny configuration that trains in milliseconds."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# A 1-block, 8-feature RRDB and a 4-feature discriminator on 64-pixel crops (the smallest the
# discriminator takes) of the built-in photos, one thread: fast and reproducible.
TINY = [
    "name=tiny",
    "model.num_feat=8",
    "model.num_block=1",
    "model.num_grow_ch=4",
    "discriminator.num_feat=4",
    "data.hr_crop=64",
    "data.repeat=2",
    "data.num_workers=0",
    "data.val_crop=64",
    "train.batch_size=2",
    "train.num_threads=1",
    "train.progress=false",
    "train.log_every=2",
    "train.val_images_saved=1",
    "schedule.warmup_iters=2",
]


def gan_run_args(total: int, save_every: int) -> list[str]:
    """The tiny configuration as a resumable GAN run of ``total`` iterations: 3 of L1 first (so that faults
    land in the GAN phase: D, both optimisers, the loss's randomness), a record per iteration, a checkpoint
    every ``save_every`` and at the end, all kept, no validation before the end."""
    return [
        *TINY,
        "train.psnr_iters=3",
        f"train.total_iters={total}",
        "schedule.cycle_iters=[3, 40]",
        f"train.save_every={save_every}",
        "train.val_every=0",
        "train.keep_checkpoints=20",
        "train.log_every=1",
    ]


def start_group(command: list[str], env: dict[str, str]) -> subprocess.Popen:
    """Start ``command`` from the repository root in a session of its own (torchrun and its workers),
    output and errors together."""
    return subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (torchrun starts its workers in sessions of their own)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        kids = children.get(todo.pop(), [])
        found += kids
        todo += kids
    return found


def finish_groups(procs: list[subprocess.Popen], timeout: float = 300) -> list[str]:
    """The outputs of :func:`start_group`'s processes once all have ended; on a timeout they and every
    process they started (torchrun's workers) are killed, and the test fails."""
    try:
        return [proc.communicate(timeout=timeout)[0] for proc in procs]
    except subprocess.TimeoutExpired:
        for proc in procs:
            for pid in [*_descendants(proc.pid), proc.pid]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, 9)
        pytest.fail(f"{len(procs)} process group(s) did not finish within {timeout} s")


@pytest.fixture
def isolated_vgg(tmp_path, monkeypatch):
    """No VGG19 weights anywhere: an empty torch hub folder, no env path, offline."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.delenv("GRAMGAN_VGG19_WEIGHTS", raising=False)
    monkeypatch.setenv("GRAMGAN_OFFLINE", "1")


@pytest.fixture
def repo_root() -> Path:
    """The checkout the subprocesses run from."""
    return REPO


@pytest.fixture
def tiny() -> list[str]:
    """Overrides (on top of the demo preset) for the tiny configuration."""
    return list(TINY)


@pytest.fixture(scope="module")
def tiny_for_module() -> list[str]:
    """:func:`tiny` for module-scoped fixtures."""
    return list(TINY)


def cli_environment(folder: Path) -> dict[str, str]:
    """Environment of a ``python -m gramgan.train`` subprocess: this checkout, offline, 1 thread, no VGG19
    weights (torch hub's cache is an empty folder under ``folder``)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(GRAMGAN_OFFLINE="1", TORCH_HOME=str(folder / "torch_home"), OMP_NUM_THREADS="1")
    env.pop("GRAMGAN_VGG19_WEIGHTS", None)
    return env


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    """:func:`cli_environment` in this test's temporary folder."""
    return cli_environment(tmp_path)


@pytest.fixture
def run_cli(cli_env):
    """Run ``python -m gramgan.train ARGS`` from the repository root; returns the CompletedProcess."""

    def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "gramgan.train", *args]
        return subprocess.run(command, cwd=REPO, env=cli_env, capture_output=True, text=True, timeout=timeout)

    return run


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """The output folder of a finished 4-iteration psnr run made with ``python -m gramgan.train``
    (in-process) under umask 022, with checkpoints at iterations 2 and 4."""
    from gramgan.train.__main__ import main

    out = tmp_path_factory.mktemp("finished") / "run"
    overrides = ["train.stage=psnr", "train.total_iters=4", "train.save_every=2", "train.keep_checkpoints=5"]
    old_umask = os.umask(0o022)
    try:
        assert main(["--output", str(out), *TINY, *overrides]) == 0
    finally:
        os.umask(old_umask)
    return out
