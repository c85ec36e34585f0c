"""Two builds of gramgan timed against each other: ``texture_term.py``'s rows, old and new in alternation.

    python benchmarks/compare_builds.py --old /path/to/old-checkout --new . [--rounds 3] [--size 192]

Each checkout holds its own in-place built extension (``gramgan/_C*.so``). Every round runs
``texture_term.py`` (this folder's copy, so both builds are timed by the same measurement code) once for
the old build and once for the new one, each in a fresh subprocess whose ``PYTHONPATH`` starts with that
checkout. The subprocess checks that ``gramgan`` and ``gramgan._C`` were imported from the checkout, that
the backend runs there, and that no call fell back to the reference backend; any of these failing stops
the comparison with the reason. A round runs old, then new (``--order balanced``: new first in every
second round), so that a shared machine's slow spells weigh on both builds alike.

Per row: the median over the rounds of each build's median time; the ratio new / old, the median of the
rounds' ratios (a round's old and new run back to back, so a slow drift of the machine's speed cancels in
each; the ratio of the two medians is in the JSON too); the range of the rounds' ratios (the noise); and
whether the ratio is within the tolerance (default +-10 %).
Rows that run no gramgan kernel (the read passes, the eager Beby-GAN search) are controls: their ratios
measure the noise alone. Writes ``compare_builds.{txt,json,png}`` under
``benchmarks/results/<device>-<date>/`` (or ``--out``); exits 1 when a subprocess fails.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from gramgan import benchmarking as harness

HERE = Path(__file__).resolve().parent
MEASURED_SCRIPT = HERE / "texture_term.py"
CHILD_FLAG = "--run-in-checkout"  # how the parent starts a subprocess: CHILD_FLAG CHECKOUT OUT_DIR -- ARGS
# texture_term's rows that time no gramgan kernel: their old/new ratio is the machine's noise alone.
CONTROL_ROWS = ("read: sum", "read: amax", "Beby-GAN eager (Grams + bmm)")
# Warnings of gramgan.ops that mean a call ran on the reference backend instead of the one measured.
FALLBACK_MARKERS = ("using 'reference'", "using the slow 'reference'")
BUILDS = ("old", "new")
RUN_FIELDS = ("wall_s", "load_before", "environment", "provenance")  # what compare_builds.json keeps of a run
NAME_WIDTH = 48


class ComparisonError(RuntimeError):
    """A build cannot be measured as asked (wrong gramgan imported, backend missing, fallback, crash)."""


# --- the subprocess: one texture_term run on one checkout -------------------------------------------------


def is_under(path: str | os.PathLike[str], root: Path) -> bool:
    return Path(path).resolve().is_relative_to(root.resolve())


def check_imports(checkout: Path, backend: str, device: str) -> dict[str, Any]:
    """Imports gramgan and its ops; raises :class:`ComparisonError` unless both the package and its
    extension come from ``checkout`` and ``backend`` runs on ``device``. Returns where they came from."""
    try:
        import gramgan
        import gramgan.ops as ops
    except ImportError as error:
        raise ComparisonError(f"cannot import gramgan from checkout {checkout}: {error}") from error
    if not is_under(gramgan.__file__, checkout):
        raise ComparisonError(
            f"imported gramgan from {Path(gramgan.__file__).parent}, not from checkout {checkout} "
            "(is it a checkout of the repository, with gramgan/ at its root?)"
        )
    reason = ops.backend_availability(device).get(backend, f"unknown backend {backend!r}")
    if reason is not None:
        raise ComparisonError(f"backend {backend} cannot run from checkout {checkout}: {reason}")
    extension = sys.modules.get("gramgan._C")
    ext_file = getattr(extension, "__file__", None)
    if ext_file is not None and not is_under(ext_file, checkout):
        raise ComparisonError(f"gramgan._C came from {ext_file}, not from checkout {checkout}")
    return {"gramgan": str(Path(gramgan.__file__).parent), "extension": ext_file}


def load_measured_script() -> Any:
    """``texture_term.py`` of this folder as a module (whatever ``sys.path`` holds)."""
    spec = importlib.util.spec_from_file_location("texture_term", MEASURED_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_in_checkout(checkout: Path, out_dir: Path, bench_argv: Sequence[str]) -> None:
    """The subprocess's body: checks the imports, runs texture_term.py into ``out_dir``, and writes
    ``provenance.json`` there (where gramgan came from); raises :class:`ComparisonError` on a fallback."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--backend", default="cpu")
    parser.add_argument("--device", default="cpu")
    known, _ = parser.parse_known_args(bench_argv)
    provenance = check_imports(checkout, known.backend, known.device)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_measured_script().main([*bench_argv, "--out", str(out_dir), "--no-plot", "--quiet"])
    fallbacks = sorted({str(w.message) for w in caught if any(m in str(w.message) for m in FALLBACK_MARKERS)})
    if fallbacks:
        raise ComparisonError(f"checkout {checkout}: calls fell back to the reference backend: {fallbacks}")
    provenance = {**provenance, **check_imports(checkout, known.backend, known.device)}  # _C now loaded
    harness.write_json(out_dir / "provenance.json", provenance)


def child_main(argv: Sequence[str]) -> int:
    """``CHILD_FLAG CHECKOUT OUT_DIR -- ARGS``: exit 0, or 3 with the reason on stderr."""
    if len(argv) < 3 or argv[2] != "--":
        print(f"usage: {CHILD_FLAG} CHECKOUT OUT_DIR -- TEXTURE_TERM_ARGS", file=sys.stderr)
        return 2
    try:
        run_in_checkout(Path(argv[0]).resolve(), Path(argv[1]), argv[3:])
    except ComparisonError as error:
        print(f"compare_builds: {error}", file=sys.stderr)
        return 3
    return 0


# --- the parent: checkouts, the alternating runs, the summary ---------------------------------------------


def describe_checkout(label: str, path: str, needs_extension: bool) -> dict[str, Any]:
    """The checkout's root, git commit and extension file (with its SHA-256, which tells two builds
    apart); raises :class:`ComparisonError` when it has no gramgan/ or, if needed, no built extension."""
    root = Path(path).resolve()
    if not (root / "gramgan" / "__init__.py").is_file():
        raise ComparisonError(f"--{label} {path}: not a checkout of the repository (no gramgan/__init__.py)")
    built = sorted((root / "gramgan").glob("_C*.so")) + sorted((root / "gramgan").glob("_C*.pyd"))
    if needs_extension and not built:
        raise ComparisonError(
            f"--{label} {path}: no built extension gramgan/_C*.so "
            "(build it there: FORCE_CUDA=0 python setup.py build_ext --inplace)"
        )
    info: dict[str, Any] = {"root": str(root), "git_commit": git_output(root, "rev-parse", "--short=12", "HEAD")}
    info["git_dirty"] = bool(git_output(root, "status", "--porcelain", "--untracked-files=no"))
    if built:
        info["extension_file"] = str(built[0])
        info["extension_sha256"] = hashlib.sha256(built[0].read_bytes()).hexdigest()
    return info


def git_output(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def run_build(checkout: Path, bench_argv: Sequence[str], work: Path, timeout_s: float) -> dict[str, Any]:
    """One subprocess: texture_term.py on ``checkout``'s gramgan; returns its JSON plus provenance, the
    wall time and the 1-minute load average before it. Raises :class:`ComparisonError` with the
    subprocess's last output when it fails."""
    work.mkdir(parents=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(checkout), os.environ.get("PYTHONPATH")]))}
    argv = [sys.executable, str(Path(__file__).resolve()), CHILD_FLAG, str(checkout), str(work), "--", *bench_argv]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    start = time.perf_counter()
    try:
        done = subprocess.run(argv, cwd=checkout, env=env, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired as error:
        raise ComparisonError(f"texture_term.py on {checkout} took longer than {timeout_s:g} s") from error
    wall_s = time.perf_counter() - start
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise ComparisonError(f"texture_term.py on {checkout} failed (exit {done.returncode}):\n{tail}")
    result = json.loads((work / "texture_term.json").read_text())
    provenance = json.loads((work / "provenance.json").read_text())
    return {**result, "provenance": provenance, "wall_s": wall_s, "load_before": load}


def is_control(name: str) -> bool:
    return any(name.endswith(control) for control in CONTROL_ROWS)


def summarize(runs: dict[str, list[dict[str, Any]]], tolerance: float) -> list[dict[str, Any]]:
    """One row per texture_term measurement: each build's per-round medians and their median over the
    rounds; each round's ratio new / old and, as ``ratio``, the median of those (judged against
    ``tolerance``: a round's old and new ran back to back, so a slow drift cancels), and the ratio of the
    two medians."""
    names = list(dict.fromkeys(name for run in runs["old"] + runs["new"] for name in run["timings"]))
    rows = []
    for name in names:
        row: dict[str, Any] = {"name": name, "control": is_control(name)}
        entries = {build: [run["timings"].get(name, {}) for run in runs[build]] for build in BUILDS}
        missing = [e for build in BUILDS for e in entries[build] if e.get("status") != "ok"]
        if missing:
            row.update(status="n/a", reason=missing[0].get("reason", "not measured in every run"))
            rows.append(row)
            continue
        for build in BUILDS:
            row[f"{build}_ms"] = [e["median_ms"] for e in entries[build]]
            row[f"{build}_median_ms"] = statistics.median(row[f"{build}_ms"])
        rounds = [new / old for old, new in zip(row["old_ms"], row["new_ms"])]
        ratio = statistics.median(rounds)
        verdict = "within" if abs(ratio - 1) <= tolerance else ("slower" if ratio > 1 else "faster")
        row.update(status="ok", ratio=ratio, round_ratios=rounds, verdict=verdict)
        row["ratio_of_medians"] = row["new_median_ms"] / row["old_median_ms"]
        rows.append(row)
    return rows


def overall(rows: Sequence[dict[str, Any]], tolerance: float) -> dict[str, Any]:
    """Whether every kernel row is within ``tolerance``, and the noise seen on the control rows."""
    kernel = [r for r in rows if r["status"] == "ok" and not r["control"]]
    outside = [r["name"].strip() for r in kernel if r["verdict"] != "within"]
    controls = [r for r in rows if r["status"] == "ok" and r["control"]]
    pairs = [q for r in rows if r["status"] == "ok" for q in r["round_ratios"]]
    return {
        "kernel_rows": len(kernel),
        "kernel_rows_within": len(kernel) - len(outside),
        "outside": outside,
        "not_measured": [r["name"].strip() for r in rows if r["status"] != "ok"],
        "all_within": bool(kernel) and not outside,
        "control_max_deviation": max((abs(r["ratio"] - 1) for r in controls), default=None),
        "round_ratio_max_deviation": max((abs(q - 1) for q in pairs), default=None),
        "tolerance": tolerance,
    }


def percent(ratio: float) -> str:
    return f"{(ratio - 1) * 100:+.1f} %"


def format_report(title: str, rows: Sequence[dict[str, Any]], verdict: dict[str, Any], notes: Sequence[str]) -> str:
    tol = f"+-{verdict['tolerance'] * 100:g} %"
    head = f"{'measurement':<{NAME_WIDTH}} {'old ms':>10} {'new ms':>10} {'new/old':>8} {'rounds new/old':>22}  {tol}"
    lines = [title, "", head, "-" * len(head)]
    for row in rows:
        name = f"{row['name']}{' [control]' if row['control'] else ''}"
        if row["status"] != "ok":
            lines.append(f"{name:<{NAME_WIDTH}} n/a ({row['reason'].split('. ')[0][:80]})")
            continue
        spread = f"{min(row['round_ratios']):.3f} .. {max(row['round_ratios']):.3f}"
        shown = "yes" if row["verdict"] == "within" else f"NO ({row['verdict']} {percent(row['ratio'])})"
        lines.append(
            f"{name:<{NAME_WIDTH}} {row['old_median_ms']:>10.3f} {row['new_median_ms']:>10.3f} "
            f"{row['ratio']:>8.3f} {spread:>22}  {shown}"
        )
    lines += ["", summary_line(verdict), *notes]
    return "\n".join(lines)


def summary_line(verdict: dict[str, Any]) -> str:
    tol = f"+-{verdict['tolerance'] * 100:g} %"
    text = f"RESULT {verdict['kernel_rows_within']} of {verdict['kernel_rows']} kernel rows within {tol}"
    if verdict["outside"]:
        text += f"; outside: {', '.join(verdict['outside'])}"
    if verdict["not_measured"]:
        text += f"; not measured: {', '.join(verdict['not_measured'])}"
    if verdict["control_max_deviation"] is not None:
        text += f". Noise: control rows within +-{verdict['control_max_deviation'] * 100:.1f} %"
    if verdict["round_ratio_max_deviation"] is not None:
        text += f", single rounds' ratios within +-{verdict['round_ratio_max_deviation'] * 100:.1f} %"
    return text + "."


def plot(rows: Sequence[dict[str, Any]], tolerance: float, title: str, path: Path) -> None:
    """Each row's ratio new / old as a bar (controls grey), each round's ratio as a dot, the band of
    the tolerance shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    timed = [row for row in rows if row["status"] == "ok"][::-1]
    fig, ax = plt.subplots(figsize=(9, 0.4 * len(timed) + 1.5))
    names = [row["name"] + (" [control]" if row["control"] else "") for row in timed]
    colors = ["0.6" if r["control"] else ("C2" if r["verdict"] == "within" else "C3") for r in timed]
    ax.barh(names, [row["ratio"] - 1 for row in timed], left=1, color=colors)
    for y, row in enumerate(timed):
        ax.scatter(row["round_ratios"], [y] * len(row["round_ratios"]), color="k", s=10, zorder=3)
    ax.axvspan(1 - tolerance, 1 + tolerance, color="C2", alpha=0.12, label=f"+-{tolerance * 100:g} %")
    ax.axvline(1, color="k", lw=0.8)
    ax.set_xlabel("time new / old (bars: median of the rounds' ratios; dots: single rounds)")
    ax.legend(fontsize=8, loc="lower right")
    harness.finish_figure(plt, fig, title, path)


def load_note(loads: Sequence[float | None], cores: int) -> str:
    """The machine's 1-minute load average before the runs, and what it means for the ratios."""
    seen = [load for load in loads if load is not None]
    if not seen:
        return "load average: not available here"
    text = f"load average (1 min) before each run: {min(seen):.1f} .. {max(seen):.1f} on {cores} cores"
    if max(seen) > cores:
        text += ": other processes shared the cores, expect noisy ratios (compare the [control] rows)"
    return text


def cpu_features() -> str:
    """The SIMD levels the CPU reports (Linux), and the GRAMGAN_CPU_SIMD cap when set."""
    flags: set[str] = set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            flags = next((set(line.split(":", 1)[1].split()) for line in handle if line.startswith("flags")), set())
    except OSError:
        pass
    found = [name for name in ("avx2", "fma", "avx512f", "avx512bw", "avx512vl") if name in flags]
    cap = os.environ.get("GRAMGAN_CPU_SIMD")
    return (" ".join(found) or "no AVX2/AVX-512 flags seen") + (f", GRAMGAN_CPU_SIMD={cap}" if cap else "")


def round_order(round_: int, order: str) -> tuple[str, ...]:
    """Which build runs first in round ``round_`` (from 1): always old, or with ``balanced`` new in every
    second round, so that an advantage of running second (seen on a shared VM) weighs on both builds."""
    return BUILDS[::-1] if order == "balanced" and round_ % 2 == 0 else BUILDS


def bench_args(args: argparse.Namespace) -> list[str]:
    """The options passed to texture_term.py."""
    argv = ["--device", args.device, "--backend", args.backend, "--batch", str(args.batch), "--size", str(args.size)]
    if args.min_time is not None:
        argv += ["--min-time", str(args.min_time)]
    if args.threads is not None:
        argv += ["--threads", str(args.threads)]
    if args.large is not None:
        argv.append("--large" if args.large else "--no-large")
    return argv


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--old", required=True, help="checkout of the old build (with gramgan/_C*.so built in place)")
    parser.add_argument("--new", required=True, help="checkout of the new build")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of old, new (default 3)")
    parser.add_argument(
        "--order",
        choices=("alternate", "balanced"),
        default="alternate",
        help="alternate: old first in every round (default); balanced: new first in every second round",
    )
    parser.add_argument("--tolerance", type=float, default=0.10, help="allowed |new/old - 1| (default 0.10)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="texture_term --device (cpu)")
    parser.add_argument("--backend", default="cpu", help="texture_term --backend (default cpu)")
    parser.add_argument("--batch", type=int, default=harness.PAPER[0], help="texture_term --batch (default 8)")
    parser.add_argument("--size", type=int, default=harness.PAPER[1], help="texture_term --size (default 192)")
    parser.add_argument("--min-time", type=float, default=None, help="texture_term --min-time (its default)")
    parser.add_argument("--threads", type=int, default=None, help="texture_term --threads (torch's default)")
    parser.add_argument("--large", action=argparse.BooleanOptionalAction, default=None, help="texture_term --large")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per texture_term run (default 900)")
    parser.add_argument("--out", default=None, help="output folder (default benchmarks/results/<device>-<date>)")
    parser.add_argument("--no-plot", action="store_true", help="no PNG chart")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if not 0 < args.tolerance < 1:
        parser.error("--tolerance must be a fraction between 0 and 1, e.g. 0.10")
    return args


def compare(args: argparse.Namespace) -> dict[str, Any]:
    """The whole comparison; returns what it writes to JSON."""
    builds = {label: describe_checkout(label, getattr(args, label), args.backend != "reference") for label in BUILDS}
    device = torch.device(args.device)
    env = harness.environment(device)
    out_dir = harness.results_dir(args.out, device)
    argv = bench_args(args)
    runs: dict[str, list[dict[str, Any]]] = {label: [] for label in BUILDS}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="compare_builds-") as work:
        for round_ in range(1, args.rounds + 1):
            for label in round_order(round_, args.order):
                root = Path(builds[label]["root"])
                run = run_build(root, argv, Path(work) / f"{label}-{round_}", args.timeout)
                runs[label].append(run)
                print(f"round {round_}/{args.rounds} {label}: {run['wall_s']:.1f} s ({root})", flush=True)
    for label in BUILDS:
        builds[label]["imported"] = runs[label][0]["provenance"]
    rows = summarize(runs, args.tolerance)
    verdict = overall(rows, args.tolerance)
    title = (
        f"old vs new build, texture_term.py backend {args.backend} on {env['device']} [{cpu_features()}]: "
        f"B={args.batch}, {args.size}x{args.size}, {args.rounds} rounds ({args.order}), {env['date_utc'][:10]}"
    )
    notes = [f"{label}: {b['root']} (commit {b.get('git_commit')}{', uncommitted changes' if b['git_dirty'] else ''})"
             for label, b in builds.items()]  # fmt: skip
    if builds["old"].get("extension_sha256") and builds["old"].get("extension_sha256") == builds["new"].get(
        "extension_sha256"
    ):
        notes.append("old and new load identical extension files: every ratio is noise")
    notes.append(load_note([run.get("load_before") for label in BUILDS for run in runs[label]], env["cpu_cores"]))
    notes.append(f"total {time.perf_counter() - start:.0f} s; [control] rows run no gramgan kernel")
    text = format_report(title, rows, verdict, notes)
    print(text)
    result = {
        "benchmark": "compare_builds",
        "environment": env,
        "cpu_features": cpu_features(),
        "args": vars(args),
        "texture_term_args": argv,
        "builds": builds,
        "rows": rows,
        "verdict": verdict,
        "runs": {label: [{key: r[key] for key in RUN_FIELDS} for r in runs[label]] for label in BUILDS},
    }
    harness.write_text(out_dir / "compare_builds.txt", text + "\n")
    harness.write_json(out_dir / "compare_builds.json", result)
    if not args.no_plot:
        plot(rows, args.tolerance, title.split(": B=")[0], out_dir / "compare_builds.png")
    print(f"\nwrote {out_dir}/compare_builds.{{txt,json{'' if args.no_plot else ',png'}}}")
    return result


def main(argv: Sequence[str] | None = None) -> dict[str, Any] | int:
    """Runs the comparison (or, with CHILD_FLAG, one subprocess's share of it)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == [CHILD_FLAG]:
        return child_main(argv[1:])
    args = parse_args(argv)
    try:
        return compare(args)
    except ComparisonError as error:
        raise SystemExit(f"compare_builds: {error}") from error


if __name__ == "__main__":
    outcome = main()
    sys.exit(outcome if isinstance(outcome, int) else 0)
