"""Measure the five generator-loss terms (docs/losses.md) at the start of GAN training.

"Start of GAN training" means: a PSNR-pretrained generator and a freshly initialised discriminator
(train mode, as the training loop runs it). The unweighted terms are averaged over a few batches of
HR crops; the weighted terms use the weights of ``GramGANLossConfig`` (or ``--weights``). From them
the script suggests λ_dp and λ_t that put the weighted disc-perceptual and texture terms at the
magnitude of the weighted perceptual term (docs/losses.md) or, without real VGG weights, at ``--target``
(default 1.0: ESRGAN's VGG term is about 1 at the start of GAN training).

Generator: ``--generator PATH`` (a BasicSR/ESRGAN RRDB file or a gramgan training checkpoint);
``bicubic`` (bicubic upsampling, a weak baseline) or ``bicubic-x2-proxy`` (HR down and up by 2, a
stand-in for a strong PSNR model) to bracket the numbers; by default a tiny RRDB
(``--num-block``/``--num-feat``) L1-pretrained here for ``--pretrain-iters`` iterations.
Data: ``--hr-dir`` (a folder of images) or scikit-image's bundled sample photos (no network).
VGG19: the weights are searched as ``VGG19FeatureExtractor`` does (``--vgg-weights``,
``$GRAMGAN_VGG19_WEIGHTS``, torch hub's cache; no download); when none is found a RANDOMLY
initialised VGG19 is used and every report says so: its perceptual value is a placeholder only.

    python -m benchmarks.loss_magnitudes                      # tiny RRDB on sample photos, CPU
    python -m benchmarks.loss_magnitudes --generator RRDB_PSNR_x4.pth --hr-dir DIV2K_valid_HR --device cuda
"""

from __future__ import annotations

import argparse
import json
import math
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from gramgan.atomic import atomic_path, atomic_write_text
from gramgan.data.lr import synthesize_lr
from gramgan.data.resize import imresize
from gramgan.devices import pick_device
from gramgan.inference import load_generator
from gramgan.losses import TERM_NAMES, GramGANLoss, GramGANLossConfig
from gramgan.losses.perceptual import perceptual_layer_weights
from gramgan.models import RRDBNet, VGG19FeatureExtractor, VGGStyleDiscriminator
from gramgan.models.vgg import VGGWeightsNotFoundError

RANDOM_VGG_CAVEAT = (
    "CAVEAT: NO VGG19 WEIGHTS FOUND - the perceptual term below comes from a RANDOMLY initialised VGG19. "
    "It is a placeholder, NOT the value training with torchvision's vgg19-dcbb9e9d.pth will see."
)


def load_images(hr_dir: str | None, min_side: int) -> list[np.ndarray]:
    """RGB uint8 (H, W, 3) images at least ``min_side`` on each side."""
    if hr_dir:
        from PIL import Image

        paths = sorted(p for p in Path(hr_dir).iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp"))
        images = [np.asarray(Image.open(p).convert("RGB")) for p in paths]
    else:
        from gramgan.data.samples import SAMPLE_TRAIN, SAMPLE_VAL, load_samples

        images = list(load_samples((*SAMPLE_TRAIN, *SAMPLE_VAL)).values())
    images = [im for im in images if min(im.shape[:2]) >= min_side]
    if not images:
        raise SystemExit(f"no image of at least {min_side} px on each side")
    return images


def random_hr_batch(images: list[np.ndarray], batch: int, crop: int, rng: np.random.Generator) -> torch.Tensor:
    crops = []
    for _ in range(batch):
        im = images[rng.integers(len(images))]
        y = rng.integers(im.shape[0] - crop + 1)
        x = rng.integers(im.shape[1] - crop + 1)
        crops.append(torch.from_numpy(np.ascontiguousarray(im[y : y + crop, x : x + crop])).permute(2, 0, 1))
    return torch.stack(crops).float() / 255.0


def pretrain_tiny(args, images, device, rng) -> RRDBNet:
    """A small RRDB trained with L1 for a few iterations: the 'psnr' stage in miniature."""
    net = RRDBNet(num_feat=args.num_feat, num_block=args.num_block, num_grow_ch=args.num_feat // 2).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=2e-4, betas=(0.9, 0.999))
    start = time.time()
    for it in range(1, args.pretrain_iters + 1):
        hr = random_hr_batch(images, args.batch, args.pretrain_crop, rng).to(device)
        loss = F.l1_loss(net(synthesize_lr(hr, 4)), hr)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if it % max(1, args.pretrain_iters // 5) == 0:
            print(f"  pretrain iter {it}/{args.pretrain_iters}: L1 {loss.item():.4f} ({time.time() - start:.0f} s)")
    return net.eval()


def make_generator(args, images, device, rng):
    """``sr_fn(lr, hr) -> sr`` and a description. The ``bicubic*`` proxies need no network."""
    if args.generator == "bicubic":
        return (lambda lr, hr: imresize(lr, scale=4.0)), "bicubic x4 upsampling of the LR (no network)"
    if args.generator == "bicubic-x2-proxy":
        # HR down and up by 2: a stand-in for a strong PSNR model (detail lost only above 2x).
        return (lambda lr, hr: imresize(imresize(hr, scale=0.5), scale=2.0)), "HR bicubic down/up x2 (proxy)"
    if args.generator:
        net = load_generator(args.generator, device=device)[0].eval()
        return (lambda lr, hr: net(lr)), f"checkpoint {args.generator}"
    print(f"L1-pretraining a tiny RRDB ({args.num_block} blocks, {args.num_feat} features) ...")
    net = pretrain_tiny(args, images, device, rng)
    if args.save_generator:
        with atomic_path(args.save_generator) as tmp:
            torch.save(net.state_dict(), tmp)
    desc = f"tiny RRDB ({args.num_block} blocks, {args.num_feat} feat), L1-pretrained {args.pretrain_iters} iters"
    return (lambda lr, hr: net(lr)), desc


def train_discriminator(disc, generator, images, args, rng, device) -> None:
    """``--d-steps`` RaGAN steps of D on masked pairs against the fixed G (Adam, lr 1e-4)."""
    from gramgan import ops
    from gramgan.losses import discriminator_loss

    for p in disc.parameters():
        p.requires_grad_(True)
    opt = torch.optim.Adam(disc.parameters(), lr=1e-4, betas=(0.9, 0.999))
    for _ in range(args.d_steps):
        hr = random_hr_batch(images, args.batch, args.hr_crop, rng).to(device)
        with torch.no_grad():
            sr = generator(synthesize_lr(hr, 4), hr)
        offset = tuple(torch.randint(0, 4, (2,)).tolist())
        masked_sr, masked_hr = ops.mask_pair(sr, hr, k=4, threshold=0.005, offset=offset, backend=args.backend)
        loss, _ = discriminator_loss(disc, masked_sr, masked_hr)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    for p in disc.parameters():
        p.requires_grad_(False)


def measure_batches(loss_fn, generator, disc, images, args, rng, device, values) -> None:
    for _ in range(args.batches):
        hr = random_hr_batch(images, args.batch, args.hr_crop, rng).to(device)
        with torch.no_grad():
            sr = generator(synthesize_lr(hr, 4), hr)
            out = loss_fn(sr, hr, disc)
        for name in TERM_NAMES:
            values[name].append(float(out.terms[name]))
        mse = float(F.mse_loss(sr.clamp(0, 1), hr))
        values["sr_psnr_db"].append(10 * math.log10(1.0 / max(mse, 1e-12)))


def build_vgg(args, preset: str, device) -> tuple[VGG19FeatureExtractor, bool]:
    layers = tuple(perceptual_layer_weights(preset))
    try:
        return VGG19FeatureExtractor(layers=layers, weights_path=args.vgg_weights, download=False).to(device), True
    except VGGWeightsNotFoundError:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            vgg = VGG19FeatureExtractor(layers=layers, allow_random_weights=True, download=False)
        return vgg.to(device), False


def summarise(values: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    return {k: {"mean": float(np.mean(v)), "std": float(np.std(v)), "n": len(v)} for k, v in values.items()}


def measure(args) -> dict:
    device = pick_device(args.device)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    images = load_images(args.hr_dir, max(args.hr_crop, args.pretrain_crop))

    generator, g_desc = make_generator(args, images, device, rng)

    results: dict = {"generator": g_desc, "hr_crop": args.hr_crop, "batch": args.batch, "presets": {}}
    for preset in args.presets:
        vgg, real_vgg = build_vgg(args, preset, device)
        if not real_vgg:
            print("\n" + "!" * 100 + "\n" + RANDOM_VGG_CAVEAT + "\n" + "!" * 100 + "\n")
        unit = {name: 1.0 for name in TERM_NAMES}  # every term on, unweighted
        cfg = GramGANLossConfig(
            perceptual_preset=preset,
            content_weight=unit["content"],
            perceptual_weight=unit["perceptual"],
            disc_perceptual_weight=unit["disc_perceptual"],
            texture_weight=unit["texture"],
            adversarial_weight=unit["adversarial"],
            backend=args.backend,
        )
        loss_fn = GramGANLoss(cfg, vgg=vgg).to(device)
        values: dict[str, list[float]] = {name: [] for name in (*TERM_NAMES, "sr_psnr_db")}
        trained: dict[str, list[float]] = {name: [] for name in (*TERM_NAMES, "sr_psnr_db")}
        for d_seed in range(args.d_inits):
            torch.manual_seed(args.seed + 1000 + d_seed)
            disc = VGGStyleDiscriminator(num_feat=args.d_feat, input_size=args.hr_crop).to(device).train()
            for p in disc.parameters():
                p.requires_grad_(False)
            measure_batches(loss_fn, generator, disc, images, args, rng, device, values)
            if args.d_steps and preset == args.presets[0]:
                print(f"  training discriminator {d_seed} for {args.d_steps} steps ...")
                train_discriminator(disc, generator, images, args, rng, device)
                measure_batches(loss_fn, generator, disc, images, args, rng, device, trained)
        stats = summarise(values)
        default = GramGANLossConfig().weights()
        weights = {**default, **dict(args.weights or {})}
        weighted = {name: weights[name] * stats[name]["mean"] for name in TERM_NAMES}
        target = weighted["perceptual"] if real_vgg else args.target
        suggest = {
            "disc_perceptual_weight": target / stats["disc_perceptual"]["mean"],
            "texture_weight": target / stats["texture"]["mean"],
            "matched_to": "weighted perceptual term" if real_vgg else f"--target {args.target} (no real VGG)",
        }
        results["presets"][preset] = {
            "real_vgg_weights": real_vgg,
            "vgg_weights_path": str(vgg.weights_path) if real_vgg else None,
            "caveat": None if real_vgg else RANDOM_VGG_CAVEAT,
            "unweighted": stats,
            "weights": weights,
            "weighted": weighted,
            "suggested": suggest,
        }
        if trained["content"]:
            results["presets"][preset]["after_d_steps"] = {"d_steps": args.d_steps, "unweighted": summarise(trained)}
    return results


def print_report(results: dict) -> None:
    print(f"\ngenerator: {results['generator']}; HR crop {results['hr_crop']}, batch {results['batch']}")
    for preset, r in results["presets"].items():
        tag = "real VGG19" if r["real_vgg_weights"] else "RANDOM VGG19 (placeholder!)"
        print(f"\npreset {preset!r} - {tag}")
        print(f"  {'term':<16} {'unweighted':>12} {'± std':>10} {'weight':>9} {'weighted':>11}")
        for name in TERM_NAMES:
            s = r["unweighted"][name]
            w, wv = r["weights"][name], r["weighted"][name]
            print(f"  {name:<16} {s['mean']:>12.4g} {s['std']:>10.2g} {w:>9g} {wv:>11.4g}")
        print(f"  SR PSNR {r['unweighted']['sr_psnr_db']['mean']:.2f} dB")
        sug = r["suggested"]
        print(
            f"  weights putting the term at the {sug['matched_to']}: "
            f"disc_perceptual_weight ≈ {sug['disc_perceptual_weight']:.3g}, "
            f"texture_weight ≈ {sug['texture_weight']:.3g}"
        )
        if "after_d_steps" in r:
            a = r["after_d_steps"]
            terms = ", ".join(f"{n} {a['unweighted'][n]['mean']:.4g}" for n in TERM_NAMES)
            print(f"  after {a['d_steps']} discriminator steps (unweighted): {terms}")
        if r["caveat"]:
            print("  " + r["caveat"])


def write_json(path: str, results: dict) -> None:
    atomic_write_text(path, json.dumps(results, indent=2))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--generator",
        help="RRDB checkpoint (BasicSR/ESRGAN file or gramgan training checkpoint), 'bicubic' or 'bicubic-x2-proxy'",
    )
    p.add_argument("--hr-dir", help="folder of HR images (default: scikit-image's sample photos)")
    p.add_argument("--vgg-weights", help="path to vgg19-dcbb9e9d.pth (else $GRAMGAN_VGG19_WEIGHTS, torch hub cache)")
    p.add_argument("--presets", nargs="+", default=["gramgan"], choices=["gramgan", "bebygan"])
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda, cuda:N")
    p.add_argument("--backend", default=None, help="gramgan.ops backend (default: the process default)")
    p.add_argument("--hr-crop", type=int, default=192)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--batches", type=int, default=3, help="measurement batches per discriminator init")
    p.add_argument("--d-inits", type=int, default=2, help="fresh discriminators (seeds) to average over")
    p.add_argument("--d-feat", type=int, default=64, help="discriminator nf (64, docs/networks.md)")
    p.add_argument("--num-block", type=int, default=2, help="tiny RRDB blocks (no --generator)")
    p.add_argument("--num-feat", type=int, default=32, help="tiny RRDB width (no --generator)")
    p.add_argument("--pretrain-iters", type=int, default=300)
    p.add_argument("--save-generator", help="save the tiny pretrained RRDB here (reuse with --generator)")
    p.add_argument("--d-steps", type=int, default=0, help="also measure after this many D steps (first preset)")
    p.add_argument("--pretrain-crop", type=int, default=96)
    p.add_argument(
        "--target",
        type=float,
        default=1.0,
        help="weighted magnitude to match when no real VGG (1.0: the O(1) VGG term ESRGAN reports at GAN start)",
    )
    p.add_argument(
        "--weights", type=json.loads, default=None, help='override weights, JSON: {"texture": 100, ...}'
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    results = measure(args)
    print_report(results)
    if args.json:
        write_json(args.json, results)
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
