"""What the benchmark scripts share, one job per module.

- :mod:`~gramgan.benchmarking.environment`: what a run was measured on (device, versions, commit);
- :mod:`~gramgan.benchmarking.results`: the results folder and atomic JSON / text / PNG files;
- :mod:`~gramgan.benchmarking.cli`: the shared options, the device and thread set-up;
- :mod:`~gramgan.benchmarking.backends`: which op backends run here, and ``torch.compile`` wrappers;
- :mod:`~gramgan.benchmarking.timing` / :mod:`~gramgan.benchmarking.memory`: run time and peak memory of a call;
- :mod:`~gramgan.benchmarking.profiling`: where a call's time goes (launches, device-busy time, costliest kernels);
- :mod:`~gramgan.benchmarking.cases`: the runner over (case x backend);
- :mod:`~gramgan.benchmarking.tables` / :mod:`~gramgan.benchmarking.plots`: the table, targets and charts;
- :mod:`~gramgan.benchmarking.op_benchmark`: the whole body of an op benchmark.

The names below are re-exported so that a script reads ``from gramgan import benchmarking as harness`` and
``harness.Case(...)``.
"""

from gramgan.benchmarking.backends import ALL_BACKENDS, auto_backend, backend_reasons, compiled, parse_backends
from gramgan.benchmarking.cases import (
    Case,
    RunConfig,
    Skip,
    add_roofline,
    compare_outputs,
    failure_reason,
    fraction_differing,
    free_memory,
    run_cases,
)
from gramgan.benchmarking.cli import (
    LARGE_SIZES,
    PAPER,
    add_run_options,
    add_size_options,
    apply_threads,
    base_parser,
    check_sizes,
    parse_sizes,
    pick_device,
)
from gramgan.benchmarking.environment import cpu_cores, device_name, device_slug, environment, slug, today
from gramgan.benchmarking.memory import probe_call
from gramgan.benchmarking.op_benchmark import DTYPES, op_parser, partial_saver, run_op_benchmark
from gramgan.benchmarking.plots import bandwidth_points, finish_figure, roofline_axes, speedup_bars, start_figure
from gramgan.benchmarking.profiling import LaunchProfile, launch_profile, write_profile_table
from gramgan.benchmarking.results import RESULTS_ROOT, results_dir, save_figure, write_json, write_text
from gramgan.benchmarking.tables import Target, find_row, format_table
from gramgan.benchmarking.timing import (
    Timing,
    copy_bandwidth,
    synchronize,
    time_alternating,
    time_function,
    warm_up,
)

__all__ = [
    "ALL_BACKENDS",
    "DTYPES",
    "LARGE_SIZES",
    "PAPER",
    "RESULTS_ROOT",
    "Case",
    "LaunchProfile",
    "RunConfig",
    "Skip",
    "Target",
    "Timing",
    "add_run_options",
    "add_size_options",
    "add_roofline",
    "apply_threads",
    "auto_backend",
    "backend_reasons",
    "bandwidth_points",
    "check_sizes",
    "base_parser",
    "compare_outputs",
    "compiled",
    "copy_bandwidth",
    "cpu_cores",
    "device_name",
    "device_slug",
    "environment",
    "failure_reason",
    "finish_figure",
    "find_row",
    "format_table",
    "fraction_differing",
    "free_memory",
    "op_parser",
    "parse_backends",
    "parse_sizes",
    "partial_saver",
    "launch_profile",
    "pick_device",
    "probe_call",
    "results_dir",
    "roofline_axes",
    "run_cases",
    "run_op_benchmark",
    "save_figure",
    "slug",
    "speedup_bars",
    "start_figure",
    "synchronize",
    "time_alternating",
    "warm_up",
    "time_function",
    "today",
    "write_json",
    "write_profile_table",
    "write_text",
]
