"""One place that checks the arguments of every op, for every backend (docs/ops.md, "Bad input").

Each check raises ``TypeError`` (wrong kind of object or dtype) or ``ValueError`` (wrong value or shape)
with a message that names the argument and what was expected, so backends can assume clean input.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)
SCOPES = ("local", "global")
TARGETS = ("gram", "pixel")
CRITERIA = ("mse", "l1")
REDUCTIONS = ("mean", "sum", "none")
MASK_MODES = ("grid", "sliding")


def check_choice(name: str, value: object, choices: Sequence[str]) -> None:
    """``value`` must be one of ``choices``."""
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}: expected one of {', '.join(map(repr, choices))}")


def check_patch_size(k: object) -> int:
    """``k`` must be a positive int."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"patch size k must be a positive int, got {k!r}")
    return k


def check_image(x: object, name: str, k: int | None = None) -> torch.Tensor:
    """A ``(B, C, H, W)`` floating tensor, with H and W multiples of ``k`` when ``k`` is given."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 4:
        raise ValueError(f"{name} must have shape (B, C, H, W), got a {x.dim()}-D tensor of shape {tuple(x.shape)}")
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be float32, float16, bfloat16 or float64, got {x.dtype}")
    if x.shape[1] == 0:
        raise ValueError(f"{name} has C = 0 channels (shape {tuple(x.shape)})")
    if k is not None:
        check_multiple_of_k(x.shape[-2:], k, name, tuple(x.shape))
    return x


def check_multiple_of_k(hw: Sequence[int], k: int, name: str, shape: tuple[int, ...]) -> None:
    """H and W must be positive multiples of the patch size."""
    h, w = int(hw[0]), int(hw[1])
    if h == 0 or w == 0 or h % k or w % k:
        raise ValueError(
            f"{name} has shape {shape}: H={h} and W={w} must be positive multiples of the patch size k={k}"
        )


def check_same(ref: torch.Tensor, other: torch.Tensor, ref_name: str, other_name: str) -> None:
    """``other`` must share ``ref``'s device, dtype and batch size."""
    if other.device != ref.device:
        raise ValueError(f"{other_name} is on {other.device} but {ref_name} is on {ref.device}")
    if other.dtype != ref.dtype:
        raise TypeError(f"{other_name} has dtype {other.dtype} but {ref_name} has dtype {ref.dtype}")
    if other.shape[0] != ref.shape[0]:
        raise ValueError(f"{other_name} has batch size {other.shape[0]} but {ref_name} has {ref.shape[0]}")


def check_local_candidates(sr: torch.Tensor, candidates: object) -> torch.Tensor:
    """A ``(B, K, C, H, W)`` stack aligned with ``sr``, K >= 1."""
    if not isinstance(candidates, torch.Tensor):
        raise TypeError(
            "scope='local' needs candidates as a (B, K, C, H, W) tensor, got "
            f"{type(candidates).__name__} (a list of images is the scope='global' form)"
        )
    if candidates.dim() != 5:
        raise ValueError(
            f"candidates must have shape (B, K, C, H, W) for scope='local', got shape {tuple(candidates.shape)}"
        )
    check_same(sr, candidates, "sr", "candidates")
    if candidates.shape[1] == 0:
        raise ValueError("candidates has K = 0 candidates: at least one (the ground truth) is needed")
    if candidates.shape[2:] != sr.shape[1:]:
        raise ValueError(
            f"candidates images have shape {tuple(candidates.shape[2:])} (C, H, W) but sr has "
            f"{tuple(sr.shape[1:])}: local candidates must be aligned with the SR image"
        )
    return candidates


def check_global_candidates(sr: torch.Tensor, candidates: object, k: int) -> list[torch.Tensor]:
    """A non-empty list of ``(B, C, H_j, W_j)`` images; the first (ground truth) has SR's size."""
    if isinstance(candidates, torch.Tensor) or not isinstance(candidates, Sequence):
        raise TypeError(
            f"scope='global' needs candidates as a list of (B, C, H_j, W_j) tensors, got {type(candidates).__name__}"
        )
    images = list(candidates)
    if not images:
        raise ValueError("candidates is an empty list: at least one image (the ground truth) is needed")
    for j, image in enumerate(images):
        name = f"candidates[{j}]"
        check_image(image, name, k)
        check_same(sr, image, "sr", name)
        if image.shape[1] != sr.shape[1]:
            raise ValueError(f"{name} has {image.shape[1]} channels but sr has {sr.shape[1]}")
    if images[0].shape[-2:] != sr.shape[-2:]:
        raise ValueError(
            f"candidates[0] (the ground truth) has size {tuple(images[0].shape[-2:])} but sr has "
            f"{tuple(sr.shape[-2:])}: they must match"
        )
    return images


def check_candidates(sr: torch.Tensor, candidates: object, k: int, scope: str) -> torch.Tensor | list:
    """Checks ``candidates`` in the form ``scope`` asks for."""
    check_choice("scope", scope, SCOPES)
    if scope == "local":
        return check_local_candidates(sr, candidates)
    return check_global_candidates(sr, candidates, k)


def check_sampled_sources(sr: torch.Tensor, hr: object, hr_half: object, thetas: object, k: int) -> torch.Tensor:
    """The sources of the sampled local candidates: ``hr`` like ``sr``, ``hr_half`` (B, C, H/2, W/2) and
    ``thetas`` (B, J, 2, 3); H and W multiples of ``2k`` (the half-size image is cut in k x k patches).

    Returns ``thetas`` as a contiguous tensor in the accumulation dtype of ``sr`` on its device.
    """
    check_image(hr, "hr")
    check_same(sr, hr, "sr", "hr")
    if hr.shape != sr.shape:
        raise ValueError(f"hr has shape {tuple(hr.shape)} but sr has {tuple(sr.shape)}: they must match")
    if sr.shape[-2] % (2 * k) or sr.shape[-1] % (2 * k):
        raise ValueError(
            f"sr has shape {tuple(sr.shape)}: H and W must be multiples of 2k = {2 * k} for sampled candidates "
            "(the half-size image is cut in k x k patches)"
        )
    check_image(hr_half, "hr_half")
    check_same(sr, hr_half, "sr", "hr_half")
    b, c, h, w = sr.shape
    if tuple(hr_half.shape) != (b, c, h // 2, w // 2):
        raise ValueError(
            f"hr_half must have shape {(b, c, h // 2, w // 2)} for sr of shape {tuple(sr.shape)}, "
            f"got {tuple(hr_half.shape)}"
        )
    if not isinstance(thetas, torch.Tensor):
        raise TypeError(f"thetas must be a torch.Tensor, got {type(thetas).__name__}")
    if not thetas.is_floating_point():
        raise TypeError(f"thetas must be a floating tensor, got {thetas.dtype}")
    if thetas.dim() != 4 or thetas.shape[0] != b or tuple(thetas.shape[-2:]) != (2, 3):
        raise ValueError(f"thetas must have shape ({b}, J, 2, 3), got {tuple(thetas.shape)}")
    if thetas.device != sr.device:
        raise ValueError(f"thetas is on {thetas.device} but sr is on {sr.device}")
    acc = torch.float64 if sr.dtype == torch.float64 else torch.float32
    return thetas.detach().to(acc).contiguous()


def check_gt_weight(gt_weight: object) -> float:
    """A finite, non-negative number."""
    if isinstance(gt_weight, bool) or not isinstance(gt_weight, (int, float)):
        raise TypeError(f"gt_weight must be a number, got {type(gt_weight).__name__}")
    if not gt_weight >= 0 or gt_weight == float("inf"):
        raise ValueError(f"gt_weight must be finite and >= 0, got {gt_weight}")
    return float(gt_weight)


def check_mask_args(
    x: torch.Tensor, k: int, threshold: object, offset: object, mode: object, window: object
) -> tuple[float, tuple[int, int]]:
    """Checks the texture-mask arguments against the image ``x``; returns ``(threshold, offset)``."""
    check_choice("mode", mode, MASK_MODES)
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
        raise TypeError(f"threshold must be a number, got {type(threshold).__name__}")
    if (
        not isinstance(offset, Sequence)
        or len(offset) != 2
        or not all(isinstance(o, int) and not isinstance(o, bool) for o in offset)
    ):
        raise ValueError(f"offset must be a pair of ints (oy, ox), got {offset!r}")
    oy, ox = int(offset[0]), int(offset[1])
    if not (0 <= oy < k and 0 <= ox < k):
        raise ValueError(f"offset {offset!r} must lie in [0, k)^2 with k={k}")
    if x.shape[-2] == 0 or x.shape[-1] == 0:
        raise ValueError(f"image has an empty spatial size {tuple(x.shape)}")
    if mode == "sliding":
        if isinstance(window, bool) or not isinstance(window, int) or window < 1 or window % 2 == 0:
            raise ValueError(f"window must be an odd positive int, got {window!r}")
        h, w = x.shape[-2:]
        if window // 2 >= min(h, w):
            raise ValueError(
                f"window={window} needs reflect padding of {window // 2}, which must be smaller than the "
                f"image's H={h} and W={w}"
            )
    return float(threshold), (oy, ox)
