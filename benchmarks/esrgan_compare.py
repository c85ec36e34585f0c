"""One Gram-GAN training iteration against BasicSR's ESRGAN ``optimize_parameters``, same sizes, same run.

    python -m benchmarks.esrgan_compare [--device cpu|cuda] [--paper] [--channels-last] [--bf16] [--out DIR]

Gram-GAN: the G step and the D step as ``gramgan/train/steps.py`` runs them (``benchmarks.train_step``'s
``Trainer``: RRDBNet, the project's discriminator, VGG19 perceptual, the full ``GramGANLoss``). ESRGAN:
BasicSR's ``ESRGANModel`` built from an options dict (RRDBNet of the same size, BasicSR's
``VGGStyleDiscriminator`` nf 64 at 128 px, pixel L1 0.01, VGG19 conv5_4 perceptual 1.0, vanilla GAN
0.005), VGG19 on random weights (no download: torchvision's constructor is called with ``weights=None``).
The two alternate, iteration by iteration, after a warm-up; the ratio of the medians is the result
(goal: Gram-GAN <= 1.1x ESRGAN). BasicSR is optional (``requirements-bench.txt``): without it the
script says how to install it and exits 0. CPU default: batch 2, 128 px HR, 4 blocks; ``--paper``:
batch 16, 128 px, 23 blocks (BasicSR's discriminator takes 128 or 256 px only).
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


def to_channels_last(*modules: torch.nn.Module | None) -> None:
    for module in modules:
        if module is not None:
            module.to(memory_format=torch.channels_last)


def alternate(
    fns: dict[str, Callable[[], Any]], device: torch.device, warmup: int, iters: int
) -> dict[str, list[float]]:
    """Runs every function ``warmup`` times, then ``iters`` rounds of one call each, alternating: seconds per call."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    harness.synchronize(device)
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(iters):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            harness.synchronize(device)
            times[name].append(time.perf_counter() - start)
    return times


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default=None, help="default: cuda if present")
    parser.add_argument("--paper", action="store_true", help="batch 16, 128 px HR, 23 blocks (GPU)")
    parser.add_argument("--blocks", type=int, default=None, help="RRDB blocks (default 4, --paper 23)")
    parser.add_argument("--batch", type=int, default=None, help="batch (default 2, --paper 16)")
    parser.add_argument("--hr-size", type=int, default=128, choices=(128, 256), help="HR patch (BasicSR's D: 128/256)")
    parser.add_argument("--features", type=int, default=64, help="RRDB width (64)")
    parser.add_argument("--disc-features", type=int, default=64, help="discriminator nf (64)")
    parser.add_argument("--backend", default=None, help="gramgan op backend (default: the best here)")
    parser.add_argument("--dperc-masked", action="store_true", help="loss.disc_perceptual_masked: 2 D passes in G")
    parser.add_argument("--channels-last", action="store_true", help="both models in channels_last")
    parser.add_argument("--bf16", action="store_true", help="autocast bf16 around both iterations")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--iters", type=int, default=3, help="timed iterations of each, alternating")
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
    size = Size(
        blocks=args.blocks or (23 if args.paper else 4),
        features=args.features,
        batch=args.batch or (16 if args.paper else 2),
        lr_size=args.hr_size // 4,
        disc_features=args.disc_features,
    )
    backend = args.backend or harness.auto_backend(device)
    env = harness.environment(device)
    trainer = Trainer(size, device)
    esrgan = build_esrgan(model_cls, size, device, trainer.hr, trainer.lr)
    if args.channels_last:
        to_channels_last(trainer.generator, trainer.discriminator, trainer.vgg, esrgan.net_g, esrgan.net_d)
    autocast = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if args.bf16 else contextlib.nullcontext
    loss_fn = GramGANLoss(GramGANLossConfig(backend=backend, disc_perceptual_masked=args.dperc_masked), vgg=trainer.vgg)
    counter = iter(range(1, 10**9))

    def gramgan_iteration() -> None:
        with autocast():
            trainer.iteration(loss_fn)

    def esrgan_iteration() -> None:
        with autocast():
            esrgan.optimize_parameters(next(counter))

    fns = {"gramgan": gramgan_iteration, "esrgan": esrgan_iteration}
    try:
        times = alternate(fns, device, args.warmup, args.iters)
    except Exception as error:  # noqa: BLE001 - a report, not a crash
        print(f"the comparison could not run: {harness.failure_reason(error)}")
        return None
    medians = {name: statistics.median(values) * 1e3 for name, values in times.items()}
    target = harness.Target(f"Gram-GAN iteration / ESRGAN (BasicSR) on {env['device']}",
                            medians["gramgan"] / medians["esrgan"], GOAL, lower_is_better=True)  # fmt: skip
    title = (
        f"training iteration on {env['device']}: RRDB {size.blocks}x{size.features}, D nf {size.disc_features}, "
        f"batch {size.batch}, {size.lr_size}->{size.hr_size}, gramgan backend {backend}"
        f"{', disc_perceptual_masked' if args.dperc_masked else ''}"
        f"{', channels_last' if args.channels_last else ''}{', bf16 autocast' if args.bf16 else ''}"
    )
    text = "\n".join([
        title,
        *[f"  {name:<8} median {ms:9.1f} ms  ({len(times[name])} iterations, alternating)"
          for name, ms in medians.items()],
        target.line(),
    ])  # fmt: skip
    print(text)
    out_dir = harness.results_dir(args.out, device)
    result = {"benchmark": "esrgan_compare", "environment": env, "args": vars(args), "size": vars(size),
              "backend": backend, "times_s": times, "median_ms": medians, "targets": [target.as_dict()]}  # fmt: skip
    harness.write_text(out_dir / "esrgan_compare.txt", text + "\n")
    harness.write_json(out_dir / "esrgan_compare.json", result)
    return result


if __name__ == "__main__":
    main()
