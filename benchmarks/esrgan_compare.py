"""Gram-GAN's training iteration, plain and on the fast path, against BasicSR's ESRGAN step, same sizes, one run.

    python -m benchmarks.esrgan_compare [--device cpu|cuda] [--paper] [--quick] [--compile auto|yes|no] [--profile]
                                        [--out DIR]

Rows, each a ratio to the peer, BasicSR's ESRGAN ``optimize_parameters`` in fp32 eager: gramgan fp32
eager; bf16 autocast; + channels_last; + ``torch.compile`` of G, D and VGG19; + fused Adam (the whole
``train.fast`` path); then the last of those again without the Gram-GAN terms (texture loss, texture
mask, D-perceptual), the same networks, timed in alternation with it, to give what those terms cost.
Each gramgan row is the G step and the D step as ``gramgan/train/steps.py`` runs them
(``benchmarks.train_step``'s ``Trainer``: RRDBNet, the project's discriminator, VGG19 perceptual, the
full ``GramGANLoss``), its networks set up by ``gramgan.train.fast`` (D stays float32 under bf16).
ESRGAN: BasicSR's ``ESRGANModel`` built from an options dict (RRDBNet of the same size, BasicSR's
``VGGStyleDiscriminator`` nf 64 at 128 px, pixel L1 0.01, VGG19 conv5_4 perceptual 1.0, vanilla GAN
0.005), VGG19 on random weights (no download: torchvision's constructor is called with ``weights=None``).
All rows alternate, iteration by iteration, after a warm-up; the table gives the medians, the ratio to
the peer, the peak memory and the first call's warm-up (compile, autotuning); a variant that cannot run
is a row with its error, not the end of the run. Goals: the fast path <= 0.4x the peer at no more peak
memory (allocated above what is resident before the call), gramgan fp32 eager <= 1.1x, and the Gram-GAN
terms <= 5 % of the fast step. ``--profile``: one more iteration of the fastest variant under the
profiler, its costliest kernels in ``esrgan_compare_profile.txt``, and three more for the share of its
step the GPU is busy (near 100 %: kernel-bound, so CUDA graphs could not help).

Then a short training comparison: the demo preset trained twice from the same seed, fp32 eager and
``train.fast=true``: loss curves and final PSNR-Y side by side (``esrgan_compare_training.png``).

Sizes: ``--paper`` batch 16, 32 -> 128, 23 blocks (BasicSR's discriminator takes 128 or 256 px only);
default batch 2, 4 blocks. ``--quick`` fits about two minutes on an H200 (3 timed iterations, a
100-iteration training comparison without compile); on the CPU it is a smoke test of seconds (1 block
of 8 features, batch 1, no compiled rows unless ``--compile yes``). BasicSR is optional
(``requirements-bench.txt``): without it the script says how to install it and exits 0.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from collections.abc import Callable, Sequence
from types import SimpleNamespace
from typing import Any

import torch

from gramgan import benchmarking as harness
from gramgan.benchmarking.training import Size, Trainer
from gramgan.losses import GramGANLoss, GramGANLossConfig

INSTALL = "pip install -r requirements-bench.txt && pip install --no-deps basicsr-fixed==1.4.2"
GOAL = 1.1


def import_esrgan() -> Any | None:
    """BasicSR's ``ESRGANModel`` class, or None when BasicSR is not importable."""
    try:
        from basicsr.models.esrgan_model import ESRGANModel
    except Exception:  # noqa: BLE001 - any import failure means "not installed here"
        return None
    return ESRGANModel


@contextlib.contextmanager
def random_vgg19():
    """BasicSR's VGG feature extractor builds torchvision's VGG19 with ``pretrained=True`` (a download)
    unless a local file exists: hand it a constructor that builds random weights instead."""
    import torchvision
    from basicsr.archs import vgg_arch

    saved = vgg_arch.vgg
    vgg_arch.vgg = SimpleNamespace(vgg19=lambda pretrained=False: torchvision.models.vgg19(weights=None))
    try:
        yield
    finally:
        vgg_arch.vgg = saved


def esrgan_options(size: Size, device: torch.device) -> dict[str, Any]:
    """BasicSR's options of an ESRGAN model at ``size`` (its ``train_ESRGAN_x4`` settings, no pretrained files)."""
    adam = {"type": "Adam", "lr": 1e-4, "weight_decay": 0, "betas": [0.9, 0.99]}
    return {
        "is_train": True,
        "dist": False,
        "num_gpu": 1 if device.type == "cuda" else 0,
        "scale": 4,
        "network_g": {"type": "RRDBNet", "num_in_ch": 3, "num_out_ch": 3, "num_feat": size.features,
                      "num_block": size.blocks, "num_grow_ch": 32},
        "network_d": {"type": "VGGStyleDiscriminator", "num_in_ch": 3, "num_feat": size.disc_features,
                      "input_size": size.hr_size},
        "path": {"pretrain_network_g": None, "pretrain_network_d": None, "strict_load_g": True, "resume_state": None},
        "train": {
            "ema_decay": 0,
            "optim_g": dict(adam),
            "optim_d": dict(adam),
            "scheduler": {"type": "MultiStepLR", "milestones": [400000], "gamma": 0.5},
            "pixel_opt": {"type": "L1Loss", "loss_weight": 0.01, "reduction": "mean"},
            "perceptual_opt": {"type": "PerceptualLoss", "layer_weights": {"conv5_4": 1}, "vgg_type": "vgg19",
                               "use_input_norm": True, "range_norm": False, "perceptual_weight": 1.0,
                               "style_weight": 0, "criterion": "l1"},
            "gan_opt": {"type": "GANLoss", "gan_type": "vanilla", "real_label_val": 1.0, "fake_label_val": 0.0,
                        "loss_weight": 0.005},
            "net_d_iters": 1,
            "net_d_init_iters": 0,
        },
        "logger": {"print_freq": 100},
        "val": None,
    }  # fmt: skip


def build_esrgan(model_cls: Any, size: Size, device: torch.device, hr: torch.Tensor, lr: torch.Tensor) -> Any:
    with random_vgg19():
        model = model_cls(esrgan_options(size, device))
    model.feed_data({"lq": lr, "gt": hr})
    return model


def alternate(
    fns: dict[str, Callable[[], Any]], device: torch.device, warmup: int, iters: int
) -> dict[str, list[float]]:
    """Runs every function ``warmup`` times, then ``iters`` rounds of one call each, alternating: seconds per
    call. A progress line after each round (a run cut short by its time limit shows how far it got)."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    harness.synchronize(device)
    times: dict[str, list[float]] = {name: [] for name in fns}
    for round_ in range(iters):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            harness.synchronize(device)
            times[name].append(time.perf_counter() - start)
        latest = ", ".join(f"{name} {values[-1] * 1e3:.1f} ms" for name, values in times.items())
        print(f"[esrgan_compare] round {round_ + 1}/{iters}: {latest}", flush=True)
    return times


# name -> (bf16 autocast, channels_last, torch.compile, fused Adam); the last row is train.fast's path.
VARIANTS = {
    "gramgan fp32 eager": (False, False, False, False),
    "gramgan bf16": (True, False, False, False),
    "gramgan bf16 + channels_last": (True, True, False, False),
    "gramgan bf16 + channels_last + compile": (True, True, True, False),
    "gramgan fast (+ fused Adam = train.fast)": (True, True, True, True),
}
PEER = "esrgan (BasicSR) fp32 eager"
FAST_GOAL = 0.4  # the fast path's step / the peer's
# The fastest variant again, same networks and optimisers, minus the Gram-GAN terms (texture loss, texture
# mask, D-perceptual): L1 + perceptual + RaGAN on unmasked images (``Trainer.iteration(None)``).
WITHOUT_TERMS = "  same, without the Gram-GAN terms"
TERMS_GOAL = 5.0  # % of the fast step spent in the Gram-GAN terms


def gramgan_variant(
    size: Size,
    device: torch.device,
    flags: tuple[bool, bool, bool, bool],
    backend: str,
    compile_backend: str,
    dperc_masked: bool,
) -> tuple[Callable[[], Any], Callable[[], Any]]:
    """One G + D iteration of gramgan set up as the fast path sets up a run (``gramgan.train.fast``): its
    own models from the same seed, D kept float32 under bf16, G / D / VGG19 compiled in place; and the
    same iteration of the same networks without the Gram-GAN terms (what those terms cost is the difference)."""
    from gramgan.train.fast import compile_in_place, float32_forward, to_channels_last

    bf16, channels_last, compiled, fused = flags
    trainer = Trainer(size, device)
    if channels_last:
        to_channels_last(trainer.generator, trainer.discriminator, trainer.vgg)
    if fused:
        trainer.g_opt = torch.optim.Adam(trainer.generator.parameters(), lr=1e-4, betas=(0.9, 0.999), fused=True)
        trainer.d_opt = torch.optim.Adam(trainer.discriminator.parameters(), lr=1e-4, betas=(0.9, 0.999), fused=True)
    if bf16:
        float32_forward(trainer.discriminator)
    if compiled:
        for module in (trainer.generator, trainer.discriminator, trainer.vgg):
            compile_in_place(module, compile_backend)
    loss_fn = GramGANLoss(GramGANLossConfig(backend=backend, disc_perceptual_masked=dperc_masked), vgg=trainer.vgg)
    autocast = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext

    def iteration() -> None:
        with autocast():
            trainer.iteration(loss_fn)

    def without_terms() -> None:
        with autocast():
            trainer.iteration(None)

    return iteration, without_terms


def training_comparison(
    device: torch.device, iters: int, compiled: bool, compile_backend: str, tiny: bool, out_dir: Any
) -> dict[str, Any]:
    """The demo preset trained twice from the same seed, fp32 eager and ``train.fast=true``: both loss
    curves (from log.jsonl), the final PSNR-Y of each (of G itself: a run this short keeps no EMA, whose
    0.999 decay would leave it near the initial weights), and the wall time."""
    import json
    import tempfile

    from gramgan.train.config import load_config
    from gramgan.train.loop import train

    half = max(1, iters // 2)
    common = [
        f"train.device={device.type}", f"train.total_iters={iters}", f"train.psnr_iters={half}",
        f"schedule.cycle_iters=[{half}, {max(iters - half, 2)}]", f"schedule.warmup_iters={min(20, half // 4)}",
        "train.val_every=0", "train.ema_decay=0",  # PSNR-Y of the trained G, not of an EMA still near its start
        f"train.log_every={max(1, iters // 25)}", f"train.save_every={iters}", "train.progress=false",
        "loss.perceptual_optional=true", "loss.vgg_download=false",
    ]  # fmt: skip
    if tiny:  # seconds on a CPU: the training tests' tiny networks
        common += ["model.num_feat=8", "model.num_block=1", "model.num_grow_ch=4", "discriminator.num_feat=4",
                   "train.batch_size=2", "data.val_crop=64"]  # fmt: skip
    runs: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, extra in (("fp32 eager", ["train.fast=false"]),
                            ("fast", ["train.fast=true", f"train.compile={str(compiled).lower()}",
                                      f"train.compile_backend={compile_backend}"])):  # fmt: skip
            torch._dynamo.reset()
            cfg = load_config(preset="demo", overrides=[*common, *extra])
            result = train(cfg, output_dir=f"{tmp}/{name.replace(' ', '_')}")
            records = [json.loads(line) for line in (result.output_dir / "log.jsonl").read_text().splitlines()]
            curve = [(r["iteration"], r.get("loss/total", r.get("loss/l1"))) for r in records if r.get("kind") != "val"]
            runs[name] = {"psnr_y": result.metrics.get("psnr_y"), "wall_s": result.wall_time_s,
                          "curve": [(i, v) for i, v in curve if v is not None]}  # fmt: skip
    plot_training(runs, iters, half, out_dir / "esrgan_compare_training.png")
    return runs


def plot_training(runs: dict[str, Any], iters: int, half: int, path: Any) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for name, run in runs.items():
        label = f"{name}: PSNR-Y {run['psnr_y']:.2f} dB" if run["psnr_y"] is not None else name
        for ax, phase in zip(axes, (lambda i: i <= half, lambda i: i > half)):
            points = [(i, v) for i, v in run["curve"] if phase(i)]
            if points:
                ax.plot(*zip(*points), label=label)
    axes[0].set_title(f"L1 phase (iterations 1-{half}): loss/l1", fontsize=9)
    axes[1].set_title(f"Gram-GAN phase ({half + 1}-{iters}): loss/total", fontsize=9)
    for ax in axes:
        ax.set_xlabel("iteration")
        ax.legend(fontsize=8)
    fig.suptitle("demo preset, same seed: fp32 eager vs train.fast", fontsize=10)
    fig.tight_layout()
    harness.save_figure(fig, path)
    plt.close(fig)


def warm_up(
    fns: dict[str, Callable[[], Any]],
    device: torch.device,
    first_s: dict[str, float],
    peak: dict[str, int | None],
    failed: dict[str, str],
) -> None:
    """Each function's first call (compiles, autotuning: its seconds into ``first_s``) and a second call
    for its peak memory; a function that raises goes from ``fns`` to ``failed``. One progress line each,
    with the second call's time: a first look at the step time even if the run is cut short later."""
    for name, fn in list(fns.items()):
        try:
            _, first_s[name], _ = harness.probe_call(fn, device, track_memory=False)
            _, second_s, peak[name] = harness.probe_call(fn, device, track_memory=True)
        except Exception as error:  # noqa: BLE001 - a report, not a crash
            failed[name] = harness.failure_reason(error)
            del fns[name]
        if name in fns:
            memory = "" if peak[name] is None else f", peak {peak[name] / 2**20:.0f} MiB"
            done = f"first call {first_s[name]:.1f} s, second {second_s * 1e3:.1f} ms{memory}"
        else:
            done = f"failed: {failed[name]}"
        print(f"[esrgan_compare] {name}: {done}", flush=True)


def goals(
    env: dict[str, Any],
    medians: dict[str, float],
    peak: dict[str, int | None],
    fastest: str,
    compiled: bool,
    terms_percent: float | None,
) -> list[Any]:
    """The benchmark's goals, each as a ratio to the peer (the terms' share: None = not measured)."""
    peer_ms, where = medians[PEER], env["device"]
    fp32 = medians.get("gramgan fp32 eager")
    memory = peak[fastest] / peak[PEER] if peak.get(fastest) and peak.get(PEER) else None
    return [
        harness.Target(f"{fastest} / ESRGAN (BasicSR) fp32 eager on {where}", medians[fastest] / peer_ms,
                       FAST_GOAL if compiled else GOAL, lower_is_better=True),
        harness.Target(f"gramgan fp32 eager / ESRGAN (BasicSR) fp32 eager on {where}",
                       None if fp32 is None else fp32 / peer_ms, GOAL, lower_is_better=True),
        harness.Target(f"Gram-GAN terms' share of the {fastest} step on {where}", terms_percent,
                       TERMS_GOAL, "%", lower_is_better=True),
        harness.Target(f"{fastest} peak memory / ESRGAN (BasicSR)'s on {where}", memory, 1.0,
                       lower_is_better=True),
    ]  # fmt: skip


def warm_up_seconds(first_s: dict[str, float], medians: dict[str, float]) -> dict[str, float]:
    """Each variant's first call's time above its median (ms): its compiles and autotuning, in seconds."""
    return {name: max(0.0, first_s[name] - ms / 1e3) for name, ms in medians.items()}


def render(
    title: str,
    medians: dict[str, float],
    peak: dict[str, int | None],
    warm: dict[str, float],
    failed: dict[str, str],
    iters: int,
    targets: list[Any],
) -> str:
    """The table: each variant's median, its ratio to the peer, peak memory and first-call warm-up."""

    def mib(value: int | None) -> str:
        return "n/a" if value is None else f"{value / 2**20:.0f}"

    peer_ms = medians[PEER]
    header = f"  {'variant':<44} {'median ms':>10} {'vs peer':>8} {'peak MiB':>9} {'warm-up s':>10}"
    rows = [f"  {name:<44} {ms:>10.1f} {ms / peer_ms:>7.3f}x {mib(peak.get(name)):>9} "
            f"{warm[name]:>10.1f}" for name, ms in medians.items()]  # fmt: skip
    rows += [f"  {name:<44} {'n/a':>10}  {why}" for name, why in failed.items()]
    lines = [title, "", header, *rows, f"  ({iters} timed iterations each, alternating; warm-up s: the first "
             "call's time above the median, i.e. compile and autotuning)", ""]  # fmt: skip
    return "\n".join([*lines, *(target.line() for target in targets)])


def busy_line(name: str, launches: harness.LaunchProfile, median_ms: float) -> str:
    """How much of the step the GPU is busy (near 100 %: kernel-bound, and CUDA graphs could not help; well
    below: the host's launches hold it back); on the CPU, the operators dispatched per step."""
    if launches.device_ms is None:
        return f"{name}: {launches.launches:.0f} top-level operators per step"
    return (f"{name}: {launches.launches:.0f} kernels and copies per step, the GPU busy {launches.device_ms:.1f} ms "
            f"of the {median_ms:.1f} ms median step ({launches.busy_share(median_ms):.0%})")  # fmt: skip


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default=None, help="default: cuda if present")
    parser.add_argument("--paper", action="store_true", help="batch 16, 128 px HR, 23 blocks (GPU)")
    parser.add_argument("--quick", action="store_true",
                        help="within ~2 minutes on an H200 (fewer iterations, a shorter training comparison); "
                             "on the CPU: tiny networks, seconds")  # fmt: skip
    parser.add_argument("--blocks", type=int, default=None, help="RRDB blocks (default 4, --paper 23)")
    parser.add_argument("--batch", type=int, default=None, help="batch (default 2, --paper 16, CPU --quick 1)")
    parser.add_argument("--hr-size", type=int, default=128, choices=(128, 256), help="HR patch (BasicSR's D: 128/256)")
    parser.add_argument("--features", type=int, default=None, help="RRDB width (64; CPU --quick 8)")
    parser.add_argument("--disc-features", type=int, default=None, help="discriminator nf (64; CPU --quick 8)")
    parser.add_argument("--backend", default=None, help="gramgan op backend (default: the best here)")
    parser.add_argument("--dperc-masked", action="store_true", help="loss.disc_perceptual_masked: 2 D passes in G")
    parser.add_argument(
        "--compile",
        choices=("auto", "yes", "no"),
        default="auto",
        help="time the compiled variants (auto: on CUDA only; CPU inductor compiles take minutes)",
    )
    parser.add_argument("--compile-backend", default="inductor", help="torch.compile backend (inductor)")
    parser.add_argument(
        "--train-iters",
        type=int,
        default=None,
        help="iterations of the training comparison (CUDA 400, --quick 100 without compile; CPU 6); 0 = skip",
    )
    parser.add_argument("--profile", action="store_true",
                        help="profile one iteration of the fastest variant: esrgan_compare_profile.txt")
    parser.add_argument("--warmup", type=int, default=None, help="untimed iterations after the first (default 1)")
    parser.add_argument("--iters", type=int, default=None, help="timed iterations of each, alternating (5, --quick 3)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", default=None, help="output folder (default benchmarks/results/<device>-<date>)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any] | None:
    """Runs the comparison; returns what it wrote to JSON (None when BasicSR is missing)."""
    args = parse_args(argv)
    model_cls = import_esrgan()
    if model_cls is None:
        print(f"BasicSR is not importable: the ESRGAN comparison needs it. Install it with\n    {INSTALL}")
        return None
    harness.apply_threads(args.threads)
    device = harness.pick_device(args.device)
    tiny = device.type == "cpu" and args.quick
    size = Size(
        blocks=args.blocks or (23 if args.paper else 1 if tiny else 4),
        features=args.features or (8 if tiny else 64),
        batch=args.batch or (16 if args.paper else 1 if tiny else 2),
        lr_size=args.hr_size // 4,
        disc_features=args.disc_features or (8 if tiny else 64),
    )
    compiled = args.compile == "yes" or (args.compile == "auto" and device.type == "cuda")
    iters = args.iters or (1 if tiny else 3 if args.quick else 5)
    warmup = args.warmup if args.warmup is not None else 0 if tiny else 1
    train_iters = args.train_iters if args.train_iters is not None else (
        6 if device.type == "cpu" else 100 if args.quick else 400)  # fmt: skip
    backend = args.backend or harness.auto_backend(device)
    env = harness.environment(device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    # Every compiled variant has its own G, D and VGG19, each compiled once per distinct call (D: about
    # five); one training run needs far fewer than dynamo's default limit of 8, these variants together not.
    torch._dynamo.config.recompile_limit = max(64, torch._dynamo.config.recompile_limit)
    peer_trainer = Trainer(size, device)
    esrgan = build_esrgan(model_cls, size, device, peer_trainer.hr, peer_trainer.lr)
    counter = iter(range(1, 10**9))
    fns: dict[str, Callable[[], Any]] = {PEER: lambda: esrgan.optimize_parameters(next(counter))}
    failed: dict[str, str] = {}  # variant -> why it could not run (a row of the table, not a crash)
    without_terms, last_built = None, None  # the Gram-GAN terms left out of the last variant built
    for name, flags in VARIANTS.items():
        if flags[2] and not compiled:
            continue
        try:
            fns[name], without_terms = gramgan_variant(size, device, flags, backend, args.compile_backend,
                                                       args.dperc_masked)  # fmt: skip
            last_built = name
        except Exception as error:  # noqa: BLE001
            failed[name] = harness.failure_reason(error)
    first_s: dict[str, float] = {}
    peak: dict[str, int | None] = {}
    warm_up(fns, device, first_s, peak, failed)
    if PEER not in fns or len(fns) < 2:
        print(f"the comparison could not run: {failed}")
        return None
    times = alternate(fns, device, warmup, iters)
    medians = {name: statistics.median(values) * 1e3 for name, values in times.items()}
    fastest = [name for name in VARIANTS if name in fns][-1]  # the last variant that ran
    title = (
        f"training iteration (G step + D step) on {env['device']}: RRDB {size.blocks}x{size.features}, D nf "
        f"{size.disc_features}, batch {size.batch}, {size.lr_size}->{size.hr_size}, gramgan backend {backend}"
        f"{', disc_perceptual_masked' if args.dperc_masked else ''}"
        f"{'' if compiled else ', compiled variants not run (--compile)'}"
    )
    out_dir = harness.results_dir(args.out, device)
    # The table so far, before the slower parts: a run cut short by its time limit still shows it.
    print(render(title, medians, peak, warm_up_seconds(first_s, medians), failed, iters,
                 goals(env, medians, peak, fastest, compiled, None)))  # fmt: skip
    # The fastest variant's networks without the Gram-GAN terms (D's calls without taps compile anew),
    # alternating with the fastest variant itself: the terms' share of its step.
    terms_percent, pair_ms = None, None
    if without_terms is not None and fastest == last_built:
        pair = {WITHOUT_TERMS: without_terms}
        warm_up(pair, device, first_s, peak, failed)
        if pair:
            pair_times = alternate({fastest: fns[fastest], **pair}, device, warmup, iters)
            with_ms, without_ms = (statistics.median(pair_times[name]) * 1e3 for name in (fastest, WITHOUT_TERMS))
            medians[WITHOUT_TERMS], times[WITHOUT_TERMS] = without_ms, pair_times[WITHOUT_TERMS]
            terms_percent = 100.0 * (1.0 - without_ms / with_ms)
            pair_ms = {"with": with_ms, "without": without_ms}
    targets = goals(env, medians, peak, fastest, compiled, terms_percent)
    warm = warm_up_seconds(first_s, medians)
    lines = [render(title, medians, peak, warm, failed, iters, [])]
    launches = None
    if args.profile:
        harness.write_profile_table(fns[fastest], device, out_dir / "esrgan_compare_profile.txt", f"{fastest}: {title}")
        launches = harness.launch_profile(fns[fastest], device, calls=3)
        lines += [busy_line(fastest, launches, medians[fastest]), ""]
    training = None
    if train_iters > 0:
        # --quick: the fast run without compile (its warm-up would take most of the budget)
        train_compiled = compiled and not args.quick
        try:
            training = training_comparison(device, train_iters, train_compiled, args.compile_backend,
                                           device.type == "cpu", out_dir)  # fmt: skip
        except Exception as error:  # noqa: BLE001 - the table above stands without it
            lines += [f"training comparison could not run: {harness.failure_reason(error)}", ""]
    if training is not None:
        lines.append(f"training comparison: demo preset, {train_iters} iterations, same seed "
                     f"(picture: esrgan_compare_training.png)")  # fmt: skip
        for name, run in training.items():
            final = run["curve"][-1][1] if run["curve"] else float("nan")
            psnr = "n/a" if run["psnr_y"] is None else f"{run['psnr_y']:.2f} dB"
            lines.append(
                f"  {name:<12} final PSNR-Y {psnr:>9}  last logged loss {final:.4g}  wall {run['wall_s']:.0f} s"
            )
        lines.append("")
    lines += [target.line() for target in targets]
    text = "\n".join(lines)
    print(text)
    result = {"benchmark": "esrgan_compare", "environment": env, "args": vars(args), "size": vars(size),
              "backend": backend, "times_s": times, "median_ms": medians, "peak_mem_bytes": peak,
              "warmup_s": warm, "failed": failed, "terms_pair_ms": pair_ms, "training": training,
              "launch_profile": None if launches is None else launches.fields(),
              "targets": [t.as_dict() for t in targets]}  # fmt: skip
    harness.write_text(out_dir / "esrgan_compare.txt", text + "\n")
    harness.write_json(out_dir / "esrgan_compare.json", result)
    return result


if __name__ == "__main__":
    main()
