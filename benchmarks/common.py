"""Shared pieces of the benchmark scripts: device naming, timing, peak memory, the copy-bandwidth
roofline, the backend list, one runner over (case x backend), and table / JSON output.

Every benchmark script builds a list of :class:`Case` objects (what to run, how many bytes it must move
at the least) and hands them to :func:`run_cases`, which times every backend that can run here, skips
the others with the reason, and adds the ratios to the reference and to ``torch.compile`` of it.

Timing: on a GPU ``triton.testing.do_bench`` (CUDA events, L2 flushed before every run), falling back to
plain CUDA events; on the CPU ``torch.utils.benchmark.Timer.blocked_autorange`` with every intra-op
thread (a call slower than the time budget is timed once; one slower than 3 s is timed by its
warm-up call alone). Both report the median.

Peak memory: ``torch.cuda.max_memory_allocated`` on a GPU; on the CPU the running total of the
profiler's allocation events (``profile_memory=True``), i.e. bytes that torch's allocator hands out
during one call above what existed before it (memory a C++ kernel takes outside torch's allocator is
not seen).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import platform
import re
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(REPO_ROOT))

import torch  # noqa: E402

RESULTS_ROOT = REPO_ROOT / "benchmarks" / "results"

# Backends of the op benchmarks, in table order. "compile" is torch.compile of the reference backend.
ALL_BACKENDS = ("reference", "compile", "cpu", "triton", "cuda")


# ----------------------------------------------------------------------------------------------------
# Device, naming, output files
# ----------------------------------------------------------------------------------------------------


def pick_device(name: str | None) -> torch.device:
    """``cuda`` when asked for (error if there is no GPU) or when None and a GPU exists, else ``cpu``."""
    if name is None:
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name not in ("cpu", "cuda"):
        raise ValueError(f"--device must be 'cpu' or 'cuda', got {name!r}")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda asked for, but torch sees no CUDA GPU here")
    return torch.device(name)


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else platform.processor()."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown-cpu"


def cpu_cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def device_name(device: torch.device) -> str:
    """Human-readable device name: the GPU's name, or the CPU model and core count."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{cpu_model()} ({cpu_cores()} cores)"


def slug(text: str) -> str:
    """Lower case, runs of anything but letters and digits become one '-'."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "unknown"


def device_slug(device: torch.device) -> str:
    """Folder-name form of the device: ``nvidia-h100-80gb-hbm3`` or ``cpu-amd-epyc-2core``."""
    if device.type == "cuda":
        return slug(torch.cuda.get_device_name(device))
    return f"cpu-{slug(cpu_model())}-{cpu_cores()}core"


def today() -> str:
    """UTC date, YYYY-MM-DD."""
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d")


def results_dir(out: str | os.PathLike[str] | None, device: torch.device) -> Path:
    """``out`` if given, else ``benchmarks/results/<device>-<date>/``; created."""
    path = Path(out) if out is not None else RESULTS_ROOT / f"{device_slug(device)}-{today()}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; results are for everyone to read
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_text(path: Path, text: str) -> None:
    """Writes ``text`` atomically (temp file in the same folder, then os.replace)."""
    _atomic_write(path, text.encode("utf-8"))


def write_json(path: Path, obj: Any) -> None:
    """Writes ``obj`` as indented JSON, atomically; NaN/inf become null."""
    _atomic_write(path, (json.dumps(_json_safe(obj), indent=2) + "\n").encode("utf-8"))


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {str(key): _json_safe(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(value) for value in obj]
    return obj


def save_figure(fig: Any, path: Path) -> None:
    """Saves a matplotlib figure as PNG, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".png")
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=110, bbox_inches="tight")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def environment(device: torch.device) -> dict[str, Any]:
    """What the numbers were measured on: device, versions, threads, date, git commit."""
    info: dict[str, Any] = {
        "device": device_name(device),
        "device_slug": device_slug(device),
        "date_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "cpu": cpu_model(),
        "cpu_cores": cpu_cores(),
        "torch_threads": torch.get_num_threads(),
        "git_commit": _git_commit(),
        "extension_built": _extension_state(),
    }
    try:
        import triton

        info["triton"] = triton.__version__
    except ImportError:
        info["triton"] = None
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info["gpu_memory_GiB"] = round(props.total_memory / 2**30, 1)
        info["gpu_multiprocessors"] = props.multi_processor_count
        info["gpu_capability"] = f"{props.major}.{props.minor}"
    return info


def _git_commit() -> str | None:
    head = REPO_ROOT / ".git" / "HEAD"
    try:
        ref = head.read_text().strip()
        if ref.startswith("ref: "):
            return (REPO_ROOT / ".git" / ref[5:]).read_text().strip()[:12]
        return ref[:12]
    except OSError:
        return None


def _extension_state() -> str:
    try:
        import gramgan._C as ext
    except Exception as error:  # noqa: BLE001 - any import failure means "not usable"
        return f"not importable ({type(error).__name__}: {error})"
    probe = getattr(ext, "built_with_cuda", None) or getattr(ext, "has_cuda", None)
    return f"built (CUDA part: {bool(probe())})" if callable(probe) else "built"


def base_parser(doc: str | None, backends_help: str | None = None) -> argparse.ArgumentParser:
    """The options every benchmark script shares."""
    parser = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default=None, help="default: cuda if present")
    parser.add_argument("--quick", action="store_true", help="smaller sizes and sweeps, shorter timings")
    parser.add_argument("--out", default=None, help="output folder (default benchmarks/results/<device>-<date>)")
    parser.add_argument("--backends", default=None, help=backends_help or "comma list of " + ",".join(ALL_BACKENDS))
    parser.add_argument("--min-time", type=float, default=None, help="seconds of timed runs per measurement")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory probe")
    parser.add_argument("--no-plot", action="store_true", help="no PNG chart")
    parser.add_argument("--quiet", action="store_true", help="no per-row progress on stderr")
    return parser


def apply_threads(threads: int | None) -> None:
    """``torch.set_num_threads`` when asked (on a loaded machine 1 thread gives steadier CPU numbers)."""
    if threads is not None:
        if threads < 1:
            raise ValueError(f"--threads must be >= 1, got {threads}")
        torch.set_num_threads(threads)


# ----------------------------------------------------------------------------------------------------
# Backends
# ----------------------------------------------------------------------------------------------------


def backend_reasons(device: torch.device, wanted: Sequence[str], compile_ok: bool = True) -> dict[str, str | None]:
    """For each wanted op backend: ``None`` if it can run on ``device`` here, else why not."""
    from gramgan.ops._dispatch import _table

    reasons: dict[str, str | None] = {}
    for name in wanted:
        if name not in ALL_BACKENDS:
            raise ValueError(f"unknown backend {name!r}: expected some of {', '.join(ALL_BACKENDS)}")
        if name == "reference":
            reasons[name] = None
        elif name == "compile":
            reasons[name] = None if compile_ok else "torch.compile switched off (--no-compile)"
        elif name == "cpu" and device.type != "cpu":
            reasons[name] = "runs on CPU tensors only (run again with --device cpu)"
        elif name in ("cuda", "triton") and device.type != "cuda":
            reasons[name] = "needs a CUDA GPU (Triton's CPU interpreter is a test tool, not timed)"
        else:
            reasons[name] = _table(name).unavailable_reason(device)
    return reasons


def parse_backends(text: str | None) -> list[str]:
    """``"reference,cpu"`` -> ``["reference", "cpu"]`` in table order; None -> every backend."""
    if not text:
        return list(ALL_BACKENDS)
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [name for name in names if name not in ALL_BACKENDS]
    if unknown:
        raise ValueError(f"unknown backend(s) {unknown}: expected some of {', '.join(ALL_BACKENDS)}")
    if "reference" not in names:
        names.insert(0, "reference")  # every ratio is against the reference of the same run
    return [name for name in ALL_BACKENDS if name in names]


_COMPILED: dict[Callable[..., Any], Callable[..., Any]] = {}


def compiled(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``torch.compile(fn, dynamic=False)``, one wrapper per function: each input shape gets its own
    static-shape graph, reused by every case of that shape. The recompile limit is raised so that a
    sweep never silently falls back to eager."""
    config = torch._dynamo.config
    for name in ("recompile_limit", "cache_size_limit"):
        try:
            if getattr(config, name) < 256:
                setattr(config, name, 256)
        except AttributeError:
            pass
    if fn not in _COMPILED:
        _COMPILED[fn] = torch.compile(fn, dynamic=False)
    return _COMPILED[fn]


# ----------------------------------------------------------------------------------------------------
# Timing and memory
# ----------------------------------------------------------------------------------------------------


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class Timing:
    """Median and spread of one function's run time, in seconds, over ``samples`` measurements that
    took ``calls`` calls in all (on the CPU each sample is the mean of a block of calls)."""

    median_s: float
    p20_s: float
    p80_s: float
    samples: int
    calls: int


def _quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    low, high = math.floor(pos), math.ceil(pos)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def time_function(
    fn: Callable[[], Any], device: torch.device, min_time_s: float, expected_s: float | None = None
) -> Timing:
    """Median run time of ``fn`` (already warmed up), measured for about ``min_time_s`` seconds.

    ``expected_s`` is one call's time if known (the warm-up's): on a GPU it stretches the budget to at
    least 3 runs; on the CPU a call longer than ``min_time_s`` is timed exactly once (a global-scope
    reference call at the paper's size takes 10 s on 2 cores; autorange would add a calibration run)."""
    if device.type == "cuda":
        if expected_s is not None:
            min_time_s = max(min_time_s, 3 * expected_s)
        times_ms = _cuda_times_ms(fn, min_time_s)
        times = [t / 1e3 for t in times_ms]
        calls = len(times)
    else:
        from torch.utils.benchmark import Timer

        timer = Timer(stmt="fn()", globals={"fn": fn}, num_threads=torch.get_num_threads())
        if expected_s is not None and expected_s > min_time_s:
            times, calls = [timer.timeit(number=1).median], 1
        else:
            measurement = timer.blocked_autorange(min_run_time=min_time_s)
            times = list(measurement.times)
            calls = len(times) * measurement.number_per_run
    return Timing(_quantile(times, 0.5), _quantile(times, 0.2), _quantile(times, 0.8), len(times), calls)


def _cuda_times_ms(fn: Callable[[], Any], min_time_s: float) -> list[float]:
    rep_ms = max(1.0, min_time_s * 1e3)
    try:
        from triton.testing import do_bench

        times = do_bench(fn, warmup=max(1.0, rep_ms / 4), rep=rep_ms, return_mode="all")
        if isinstance(times, (list, tuple)) and times:
            return [float(t) for t in times]
    except (ImportError, TypeError, AssertionError):
        pass
    return _cuda_event_times_ms(fn, rep_ms)


def _cuda_event_times_ms(fn: Callable[[], Any], rep_ms: float) -> list[float]:
    """Fallback of do_bench: CUDA events around each call, L2 flushed by a 256 MiB write before each."""
    flush = torch.empty(64 * 2**20, dtype=torch.int32, device="cuda")
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    fn()
    end.record()
    torch.cuda.synchronize()
    estimate = max(start.elapsed_time(end), 1e-3)
    count = max(3, min(1000, int(rep_ms / estimate)))
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(count)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(count)]
    for i in range(count):
        flush.zero_()
        starts[i].record()
        fn()
        ends[i].record()
    torch.cuda.synchronize()
    return [s.elapsed_time(e) for s, e in zip(starts, ends)]


def probe_call(fn: Callable[[], Any], device: torch.device, track_memory: bool) -> tuple[Any, float, int | None]:
    """Runs ``fn`` once: (its result, wall seconds, peak bytes allocated above the start or None).

    On the CPU the memory is read from the profiler, which slows the call: the seconds are then only
    indicative (this call is a warm-up, never a timing)."""
    synchronize(device)
    if device.type == "cuda":
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        start = time.perf_counter()
        out = fn()
        torch.cuda.synchronize(device)
        seconds = time.perf_counter() - start
        peak = torch.cuda.max_memory_allocated(device) - before if track_memory else None
        return out, seconds, peak
    if not track_memory:
        start = time.perf_counter()
        out = fn()
        return out, time.perf_counter() - start, None
    return _cpu_profiled_call(fn)


def _cpu_profiled_call(fn: Callable[[], Any]) -> tuple[Any, float, int | None]:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        start = time.perf_counter()
        out = fn()
        seconds = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        trace = Path(tmp) / "trace.json"
        prof.export_chrome_trace(str(trace))
        events = json.loads(trace.read_text()).get("traceEvents", [])
    memory = [
        event["args"]
        for event in sorted(events, key=lambda event: event.get("ts", 0))
        if event.get("name") == "[memory]" and event.get("args", {}).get("Device Type", 0) == 0
    ]
    if not memory:
        return out, seconds, 0
    # "Total Allocated" is a running total that carries over between profiler sessions: measure from
    # the value just before the first event of this one.
    start = memory[0]["Total Allocated"] - memory[0]["Bytes"]
    return out, seconds, max(0, max(args["Total Allocated"] for args in memory) - start)


def copy_bandwidth(device: torch.device, nbytes: int, min_time_s: float) -> float:
    """Bytes per second of a large tensor copy, counting bytes read plus bytes written (the roofline)."""
    src = torch.rand(nbytes // 4, device=device)
    dst = torch.empty_like(src)
    dst.copy_(src)
    synchronize(device)
    timing = time_function(lambda: dst.copy_(src), device, min_time_s)
    return 2 * src.numel() * 4 / timing.median_s


# ----------------------------------------------------------------------------------------------------
# The runner
# ----------------------------------------------------------------------------------------------------


class Skip(Exception):
    """Raised by a case's builder when a backend does not apply to it (the message says why)."""


@dataclass
class Case:
    """One thing to time on every backend.

    ``build(backend)`` returns a zero-argument callable (inputs already on the device) whose result is
    compared with the reference's; it may raise :class:`Skip`. ``bytes_moved`` is the least traffic
    the operation needs (each input read once, each output written once): the roofline numerator.
    """

    group: str
    label: str
    params: dict[str, Any]
    bytes_moved: int
    build: Callable[[str], Callable[[], Any]]
    backends: Sequence[str] | None = None  # None: every backend; else only these (others "not run here")
    note: str = ""
    compare: Callable[[Any, Any], float | None] | None = None  # (out, reference_out) -> diff; default below
    extra: dict[str, Any] = field(default_factory=dict)  # the builder's memo (inputs shared by backends)

    def release(self) -> None:
        """Drops the inputs the builder memoised, once every backend has run."""
        self.extra.clear()


@dataclass
class RunConfig:
    """Timing budget: ``min_time_s`` of timed runs per (case, backend); memory tracking on or off."""

    min_time_s: float = 0.5
    track_memory: bool = True
    verbose: bool = True
    # On the CPU, a warm-up call slower than this is itself the (only) timing: the global-scope
    # reference at the paper's size takes ~10 s per call on 2 cores.
    single_call_s: float = 3.0


def compare_outputs(out: Any, ref: Any) -> float | None:
    """How far ``out`` is from the reference's result: relative max error for float tensors, the
    fraction of differing entries for integer tensors (selections), None if not comparable."""
    if isinstance(out, (tuple, list)):
        out = out[0] if out else None
        ref = ref[0] if isinstance(ref, (tuple, list)) and ref else ref
    if not isinstance(out, torch.Tensor) or not isinstance(ref, torch.Tensor) or out.shape != ref.shape:
        return None
    out, ref = out.detach().cpu(), ref.detach().cpu()
    if out.numel() == 0:
        return 0.0
    if not out.is_floating_point():
        return float((out != ref).double().mean())
    scale = ref.double().abs().max().clamp_min(1e-30)
    return float((out.double() - ref.double()).abs().max() / scale)


def fraction_differing(out: Any, ref: Any) -> float | None:
    """Fraction of entries that differ (NaN equals NaN): for masks and selections."""
    if not isinstance(out, torch.Tensor) or not isinstance(ref, torch.Tensor) or out.shape != ref.shape:
        return None
    out, ref = out.detach().cpu(), ref.detach().cpu()
    if out.numel() == 0:
        return 0.0
    same = (out == ref) | (out.isnan() & ref.isnan()) if out.is_floating_point() else out == ref
    return float((~same).double().mean())


def run_cases(
    cases: Sequence[Case],
    reasons: dict[str, str | None],
    device: torch.device,
    config: RunConfig,
    on_case_done: Callable[[list[dict[str, Any]]], None] | None = None,
) -> list[dict[str, Any]]:
    """Times every case on every backend of ``reasons`` and returns one row (a dict) per pair.

    ``on_case_done(rows_so_far)`` runs after each case (e.g. to save partial results, so that a run
    killed by a time limit still leaves what it measured)."""
    rows: list[dict[str, Any]] = []
    for case in cases:
        case_rows, reference_out = [], None
        for backend, reason in reasons.items():
            row = {"group": case.group, "label": case.label, **case.params, "backend": backend}
            row["bytes_moved"] = case.bytes_moved
            if reason is not None:
                row.update(status="skipped", reason=reason)
            elif case.backends is not None and backend not in case.backends:
                row.update(status="skipped", reason=case.note or "not run at this size")
            else:
                out = _run_one(case, backend, device, config, row)
                if backend == "reference":
                    reference_out = out
                elif out is not None and reference_out is not None:
                    row["diff_vs_reference"] = (case.compare or compare_outputs)(out, reference_out)
                del out
            case_rows.append(row)
            if config.verbose:
                print(_progress_line(row), file=sys.stderr, flush=True)
            free_memory(device)
        _add_ratios(case_rows)
        rows.extend(case_rows)
        del reference_out
        case.release()
        free_memory(device)
        if on_case_done is not None:
            on_case_done(rows)
    return rows


def _run_one(case: Case, backend: str, device: torch.device, config: RunConfig, row: dict[str, Any]) -> Any:
    try:
        fn = case.build(backend)
        # A separate warm-up call where the first one may compile (torch.compile, Triton's JIT and
        # autotuning, cuDNN): the probe after it then times a warm call. On the CPU otherwise the
        # probe is the warm-up (a global-scope reference call takes 10 s there).
        warm_up = backend == "compile" or device.type == "cuda"
        if warm_up:
            _, first_s, _ = probe_call(fn, device, track_memory=False)
            row["first_call_ms"] = first_s * 1e3
        first_out, call_s, peak = probe_call(fn, device, config.track_memory)
        if not warm_up:
            row["first_call_ms"] = call_s * 1e3
        first_out = _detached(first_out)  # keep the value for the comparison, not the autograd graph
        if device.type == "cpu" and call_s > config.single_call_s:
            timing = Timing(call_s, call_s, call_s, 1, 1)
        else:
            timing = time_function(fn, device, config.min_time_s, expected_s=call_s)
    except Skip as why:
        row.update(status="skipped", reason=str(why))
        return None
    except Exception as error:  # noqa: BLE001 - a failing backend is a result, not a crash
        message = f"{type(error).__name__}: {error}".splitlines()[0][:300]
        row.update(status="failed", reason=message)
        if isinstance(error, torch.OutOfMemoryError):
            free_memory(device)
        return None
    row.update(
        status="ok",
        median_ms=timing.median_s * 1e3,
        p20_ms=timing.p20_s * 1e3,
        p80_ms=timing.p80_s * 1e3,
        samples=timing.samples,
        calls=timing.calls,
        peak_mem_bytes=peak,
        bytes_per_s=case.bytes_moved / timing.median_s,
    )
    del fn
    return first_out


def _detached(out: Any) -> Any:
    if isinstance(out, torch.Tensor):
        return out.detach()
    if isinstance(out, (tuple, list)):
        return type(out)(_detached(value) for value in out)
    return out


def free_memory(device: torch.device) -> None:
    """Returns cached GPU memory between cases, so that one case's peak does not hide in another's."""
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _add_ratios(case_rows: list[dict[str, Any]]) -> None:
    """speedup_vs_X = X's median / this row's median (> 1: faster than X), within one case."""
    medians = {row["backend"]: row.get("median_ms") for row in case_rows if row.get("status") == "ok"}
    for row in case_rows:
        if row.get("status") != "ok":
            continue
        for base in ("reference", "compile"):
            base_ms = medians.get(base)
            row[f"speedup_vs_{base}"] = base_ms / row["median_ms"] if base_ms else None


def partial_saver(
    out_dir: Path,
    name: str,
    title: str,
    shape_columns: Sequence[tuple[str, str]],
    copy_bytes_per_s: float,
    meta: dict[str, Any],
) -> Callable[[list[dict[str, Any]]], None]:
    """An ``on_case_done`` callback that saves ``<name>.json`` (``"partial": true``) and the table so
    far, so that a run killed by a time limit still leaves what it measured."""

    def save(rows_so_far: list[dict[str, Any]]) -> None:
        add_roofline(rows_so_far, copy_bytes_per_s)
        saved = {**meta, "partial": True, "copy_bytes_per_s": copy_bytes_per_s, "rows": rows_so_far}
        write_json(out_dir / f"{name}.json", saved)
        table = format_table(rows_so_far, shape_columns)
        write_text(out_dir / f"{name}.txt", f"{title}\nPARTIAL (the run stopped or is still going)\n\n{table}\n")

    return save


def add_roofline(rows: list[dict[str, Any]], copy_bytes_per_s: float) -> None:
    """fraction_of_copy = achieved bytes/s over the copy bandwidth measured in the same run."""
    for row in rows:
        if row.get("status") == "ok":
            row["fraction_of_copy"] = row["bytes_per_s"] / copy_bytes_per_s


def _progress_line(row: dict[str, Any]) -> str:
    if row.get("status") == "ok":
        return f"  {row['group']:<13} {row['label']:<28} {row['backend']:<9} {row['median_ms']:10.3f} ms"
    return f"  {row['group']:<13} {row['label']:<28} {row['backend']:<9} {row['status']}: {row.get('reason', '')}"


# ----------------------------------------------------------------------------------------------------
# Output: table, targets
# ----------------------------------------------------------------------------------------------------


def _fmt(value: Any, spec: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return format(value, spec)


def format_table(rows: Sequence[dict[str, Any]], shape_columns: Sequence[tuple[str, str]]) -> str:
    """Fixed-width text table: the shape columns (key, header), then backend and the measured figures.

    A backend skipped on every row for one reason (e.g. no GPU) gets no rows, only a note at the end;
    a backend skipped or failed on some rows shows the status there and the reason once in the notes.
    """
    headers = [header for _, header in shape_columns] + [
        "backend",
        "median ms",
        "x ref",
        "x compile",
        "GB/s",
        "% copy",
        "peak MiB",
        "diff",
    ]
    reasons_by_backend: dict[str, set[str]] = {}
    for row in rows:
        reason = f"{row['status']}: {row.get('reason', '')}" if row.get("status") != "ok" else "ok"
        reasons_by_backend.setdefault(row["backend"], set()).add(reason)
    hidden = {name for name, seen in reasons_by_backend.items() if len(seen) == 1 and "ok" not in seen}
    lines_data: list[list[str]] = []
    notes: dict[tuple[str, str], None] = {}
    for row in rows:
        if row["backend"] in hidden:
            notes[(row["backend"], f"{row['status']}: {row.get('reason', '')}")] = None
            continue
        cells = [str(row.get(key, "")) for key, _ in shape_columns] + [row["backend"]]
        if row.get("status") == "ok":
            peak = row.get("peak_mem_bytes")
            cells += [
                _fmt(row["median_ms"], ".3f"),
                _fmt(row.get("speedup_vs_reference"), ".2f"),
                _fmt(row.get("speedup_vs_compile"), ".2f"),
                _fmt(row["bytes_per_s"] / 1e9, ".1f"),
                _fmt(100 * row["fraction_of_copy"], ".1f") if "fraction_of_copy" in row else "-",
                _fmt(peak / 2**20, ".1f") if peak is not None else "n/a",
                _fmt(row.get("diff_vs_reference"), ".1e"),
            ]
        else:
            cells += [row["status"]] + [""] * 7
            notes[(row["backend"], f"{row['status']}: {row.get('reason', '')}")] = None
        lines_data.append(cells)
    widths = [max(len(headers[i]), *(len(cells[i]) for cells in lines_data)) for i in range(len(headers))]
    out = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip(), "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip() for cells in lines_data]
    if notes:
        out.append("")
        out += [f"  {backend} {reason}" for backend, reason in notes]
    return "\n".join(out)


@dataclass
class Target:
    """A goal the benchmark tracks (not a test): ``value`` (None: not measured here) against ``goal``,
    met when ``value >= goal`` (``value <= goal`` with ``lower_is_better``)."""

    name: str
    value: float | None
    goal: float
    unit: str = "x"
    lower_is_better: bool = False

    @property
    def verdict(self) -> str:
        if self.value is None:
            return "not measured"
        met = self.value <= self.goal if self.lower_is_better else self.value >= self.goal
        return "met" if met else "missed"

    def line(self) -> str:
        shown = "-" if self.value is None else f"{self.value:.2f}{self.unit}"
        relation = "<" if self.lower_is_better else ">="
        return f"TARGET {self.name}: {shown} (goal {relation} {self.goal:g}{self.unit}) {self.verdict}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": self.value,
            "goal": self.goal,
            "unit": self.unit,
            "lower_is_better": self.lower_is_better,
            "verdict": self.verdict,
        }


def find_row(rows: Sequence[dict[str, Any]], **match: Any) -> dict[str, Any] | None:
    """The first ok row whose fields equal ``match``."""
    for row in rows:
        if row.get("status") == "ok" and all(row.get(key) == value for key, value in match.items()):
            return row
    return None


# ----------------------------------------------------------------------------------------------- op benchmarks

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def run_op_benchmark(
    name: str,
    what: str,
    args: argparse.Namespace,
    plan: Callable[[torch.device, torch.dtype], list[Case]],
    shape_columns: Sequence[tuple[str, str]],
    notes: Sequence[str],
    plot: Callable[[list[dict[str, Any]], float, str, Path], None],
    targets: Callable[[list[dict[str, Any]], torch.device], list[Target]] | None = None,
) -> dict[str, Any]:
    """The shared body of the op benchmarks: set up, time every case, write ``name``.{txt,json,png}.

    ``plan(device, dtype)`` gives the cases; ``notes`` are printed under the title; ``targets`` turns
    the rows into the goals the benchmark tracks. Returns what was written to JSON.
    """
    apply_threads(args.threads)
    device = pick_device(args.device)
    min_time = args.min_time if args.min_time is not None else (0.1 if device.type == "cuda" or args.quick else 0.3)
    reasons = backend_reasons(device, parse_backends(args.backends), compile_ok=not args.no_compile)
    out_dir = results_dir(args.out, device)
    env = environment(device)

    copy_bw = copy_bandwidth(device, (1 << 30) if device.type == "cuda" else (128 << 20), min_time)
    cases = plan(device, DTYPES[args.dtype])
    title = f"{what} on {env['device']}, {args.dtype}, {env['date_utc'][:10]}"
    meta = {"benchmark": name, "environment": env, "args": vars(args), "backends": reasons}
    save_partial = partial_saver(out_dir, name, title, shape_columns, copy_bw, meta)
    config = RunConfig(min_time, not args.no_memory, not args.quiet)
    rows = run_cases(cases, reasons, device, config, on_case_done=save_partial)
    add_roofline(rows, copy_bw)
    goals = targets(rows, device) if targets is not None else []

    lines = [
        title,
        f"copy bandwidth (read + write) measured in this run: {copy_bw / 1e9:.1f} GB/s",
        *notes,
        "",
        format_table(rows, shape_columns),
    ]
    if goals:
        lines += ["", *[goal.line() for goal in goals]]
    text = "\n".join(lines)
    print(text)
    result = {
        **meta,
        "partial": False,
        "dtype": args.dtype,
        "copy_bytes_per_s": copy_bw,
        "targets": [goal.as_dict() for goal in goals],
        "rows": rows,
    }
    write_text(out_dir / f"{name}.txt", text + "\n")
    write_json(out_dir / f"{name}.json", result)
    if not args.no_plot:
        plot(rows, copy_bw, title, out_dir / f"{name}.png")
    print(f"\nwrote {out_dir}/{name}.{{txt,json{'' if args.no_plot else ',png'}}}")
    return result


# ----------------------------------------------------------------------------------------------- charts


def start_figure(rows: Sequence[dict[str, Any]], ncols: int, figsize: tuple[float, float]) -> tuple[Any, ...]:
    """``(plt, fig, axes, backends, colors)``: a row of ``ncols`` panels, the backends that produced
    timings (in :data:`ALL_BACKENDS` order) and one fixed colour per backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    backends = [name for name in ALL_BACKENDS if any(r["backend"] == name and r["status"] == "ok" for r in rows)]
    colors = {name: f"C{i}" for i, name in enumerate(ALL_BACKENDS)}
    fig, axes = plt.subplots(1, ncols, figsize=figsize)
    return plt, fig, axes, backends, colors


def finish_figure(plt: Any, fig: Any, title: str, path: Path) -> None:
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def speedup_bars(
    ax: Any,
    rows: Sequence[dict[str, Any]],
    backends: Sequence[str],
    colors: dict[str, str],
    cases: Sequence[tuple[str, str]],
    ticks: Sequence[str],
    title: str,
    rotation: float = 0,
) -> None:
    """One bar per backend and ``(group, label)`` case: its speedup over the eager reference (log)."""
    width = 0.8 / max(1, len(backends))
    for i, name in enumerate(backends):
        values = []
        for group, label in cases:
            row = find_row(rows, group=group, label=label, backend=name) or {}
            values.append(row.get("speedup_vs_reference") or 0)
        ax.bar([x + i * width for x in range(len(cases))], values, width, label=name, color=colors[name])
    ax.set_xticks([x + width * (len(backends) - 1) / 2 for x in range(len(cases))])
    ax.set_xticklabels(ticks, rotation=rotation, ha="right" if rotation else "center", fontsize=8)
    ax.set_yscale("log")
    ax.axhline(1, color="gray", lw=0.8)
    ax.set_ylabel("speedup over eager reference (x)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)


def bandwidth_points(rows: Sequence[dict[str, Any]], backend: str, **match: Any) -> list[tuple[float, float]]:
    """``(B*H*W, achieved GB/s)`` of the backend's timed rows whose fields equal ``match``, by size."""
    return sorted(
        (r["batch"] * r["height"] * r["width"], r["bytes_per_s"] / 1e9)
        for r in rows
        if r["backend"] == backend and r["status"] == "ok" and all(r.get(k) == v for k, v in match.items())
    )


def roofline_axes(ax: Any, copy_bytes_per_s: float, title: str, legend_size: int = 8) -> None:
    """The copy-bandwidth line and the log-log labelling of a bandwidth-over-size panel."""
    ax.axhline(copy_bytes_per_s / 1e9, color="black", ls="--", lw=1, label="copy bandwidth")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("B*H*W pixels")
    ax.set_ylabel("achieved GB/s (least traffic / time)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=legend_size)
