"""Frozen VGG19 feature extractor for the perceptual loss (docs/networks.md).

The layer layout is torchvision's ``vgg19().features`` (same indices, so torchvision's state dict
keys ``features.N.weight`` load directly); features are taken after a conv and before its ReLU.

Weights come from torchvision's file ``vgg19-dcbb9e9d.pth``, looked for in this order:

1. the ``weights_path`` argument;
2. the environment variable ``$GRAMGAN_VGG19_WEIGHTS``;
3. torch hub's checkpoint cache, ``torch.hub.get_dir()/checkpoints/vgg19-dcbb9e9d.pth``;
4. a download from ``VGG19_URL`` into that cache, unless disabled (``download=False`` or
   ``GRAMGAN_OFFLINE=1``).

A location that is given explicitly (1 or 2) but does not exist is an error, not skipped: a typo
must not silently select another file. The sha256 prefix ``dcbb9e9d`` is checked for downloads
only (like torch hub, files already on disk are not re-hashed); every file is checked for the
keys and shapes of the layers in use. A file with only the ``features.*`` keys is enough.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from gramgan.atomic import atomic_path

__all__ = [
    "VGG19FeatureExtractor",
    "VGG19_LAYERS",
    "VGG19_URL",
    "VGGWeightsError",
    "VGGWeightsHashError",
    "VGGWeightsMismatchError",
    "VGGWeightsNotFoundError",
    "resolve_vgg19_weights",
]

VGG19_FILENAME = "vgg19-dcbb9e9d.pth"
VGG19_URL = f"https://download.pytorch.org/models/{VGG19_FILENAME}"
VGG19_HASH_PREFIX = "dcbb9e9d"  # leading hex digits of the file's sha256 (torch hub convention)
ENV_WEIGHTS = "GRAMGAN_VGG19_WEIGHTS"
ENV_OFFLINE = "GRAMGAN_OFFLINE"
CONFIG_KEY = "loss.vgg_weights"  # the training config key that sets weights_path

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# torchvision's VGG19 configuration "E": conv widths per block, each block ends with a max pool.
_BLOCKS = ((64, 64), (128, 128), (256, 256, 256, 256), (512, 512, 512, 512), (512, 512, 512, 512))


def _layer_table() -> dict[str, int]:
    """Map ``convB_L`` to its index in torchvision's ``features`` Sequential."""
    table: dict[str, int] = {}
    index = 0
    for b, widths in enumerate(_BLOCKS, start=1):
        for layer in range(1, len(widths) + 1):
            table[f"conv{b}_{layer}"] = index
            index += 2  # conv, relu
        index += 1  # max pool
    return table


VGG19_LAYERS: dict[str, int] = _layer_table()


class VGGWeightsError(RuntimeError):
    """Base class of the VGG19 weight-loading errors."""


class VGGWeightsNotFoundError(VGGWeightsError, FileNotFoundError):
    """No weight file at any of the places searched."""


class VGGWeightsMismatchError(VGGWeightsError, ValueError):
    """The file is not torchvision's VGG19: a key is missing or has the wrong shape."""


class VGGWeightsHashError(VGGWeightsError):
    """A downloaded file's sha256 does not start with the expected prefix."""


def _hub_cache_path() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / VGG19_FILENAME


def _download_file(url: str, dst: str) -> None:
    """Fetch ``url`` to ``dst`` (a seam that tests replace; the hash is checked by the caller)."""
    torch.hub.download_url_to_file(url, dst, hash_prefix=None, progress=True)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _download_with_hash_check(dst: Path) -> Path:
    """Download VGG19 to ``dst`` atomically; a bad hash deletes the file and raises."""
    with atomic_path(dst, suffix=".partial") as tmp:
        _download_file(VGG19_URL, str(tmp))
        digest = _sha256(tmp)
        if not digest.startswith(VGG19_HASH_PREFIX):
            raise VGGWeightsHashError(
                f"downloaded {VGG19_URL} has sha256 {digest}, which does not start with "
                f"{VGG19_HASH_PREFIX!r}; the file was discarded. Download it yourself and put it at {dst}"
            )
    return dst


def _offline() -> bool:
    return os.environ.get(ENV_OFFLINE, "").strip().lower() not in ("", "0", "false", "no")


def _not_found_message(tried: list[str]) -> str:
    places = "\n".join(f"  {i}. {line}" for i, line in enumerate(tried, start=1))
    return (
        f"VGG19 weights ({VGG19_FILENAME}) not found. Looked in:\n{places}\n"
        f"Get torchvision's file from {VGG19_URL} and either put it at {_hub_cache_path()}, "
        f"point ${ENV_WEIGHTS} at it, or give its path (config key {CONFIG_KEY}=PATH for training, "
        "weights_path= in Python). "
        "Random weights are used only when explicitly allowed (allow_random_weights=True)."
    )


def resolve_vgg19_weights(
    weights_path: str | os.PathLike[str] | None = None, download: bool | None = None
) -> Path:
    """Find (or download) ``vgg19-dcbb9e9d.pth`` in the documented order and return its path.

    ``download=None`` means "download unless ``$GRAMGAN_OFFLINE`` is set to a true value".
    Raises :class:`VGGWeightsNotFoundError` listing every place looked at, or
    :class:`VGGWeightsHashError` when a download has the wrong hash.
    """
    tried: list[str] = []
    if weights_path is not None:
        path = Path(weights_path).expanduser()
        if path.is_file():
            return path
        tried.append(f"weights_path: {path} (does not exist)")
        raise VGGWeightsNotFoundError(_not_found_message(tried))
    tried.append("weights_path: not given")

    env_value = os.environ.get(ENV_WEIGHTS, "")
    if env_value:
        path = Path(env_value).expanduser()
        if path.is_file():
            return path
        tried.append(f"${ENV_WEIGHTS}: {path} (does not exist)")
        raise VGGWeightsNotFoundError(_not_found_message(tried))
    tried.append(f"${ENV_WEIGHTS}: not set")

    cached = _hub_cache_path()
    if cached.is_file():
        return cached
    tried.append(f"torch hub cache: {cached} (not there)")

    if download is None:
        if _offline():
            tried.append(f"download from {VGG19_URL}: disabled (${ENV_OFFLINE} is set)")
            raise VGGWeightsNotFoundError(_not_found_message(tried))
    elif not download:
        tried.append(f"download from {VGG19_URL}: disabled (download=False)")
        raise VGGWeightsNotFoundError(_not_found_message(tried))
    try:
        return _download_with_hash_check(cached)
    except VGGWeightsHashError:
        raise
    except Exception as exc:  # network errors come in many types; report them all the same way
        tried.append(f"download from {VGG19_URL}: failed ({type(exc).__name__}: {exc})")
        raise VGGWeightsNotFoundError(_not_found_message(tried)) from exc


def _build_features(last_index: int) -> nn.Sequential:
    """torchvision's ``vgg19().features`` up to and including module ``last_index`` (a conv)."""
    modules: list[nn.Module] = []
    in_ch = 3
    for widths in _BLOCKS:
        for out_ch in widths:
            modules += [nn.Conv2d(in_ch, out_ch, 3, padding=1), nn.ReLU(inplace=False)]
            in_ch = out_ch
        modules.append(nn.MaxPool2d(2, 2))
    return nn.Sequential(*modules[: last_index + 1])


class VGG19FeatureExtractor(nn.Module):
    """Frozen VGG19 returning pre-ReLU conv features of [0, 1] RGB images.

    Args:
        layers: names ``convB_L`` (torchvision's VGG19, B = block 1..5, L = conv within block).
            The network is truncated after the deepest one.
        weights_path: path to ``vgg19-dcbb9e9d.pth``; see the module docstring for the search order.
        allow_random_weights: if no weights are found, warn and keep the random initialisation
            instead of raising. Off by default: nothing runs on random VGG weights unless asked.
        use_input_norm: normalise inputs with ImageNet's mean and std (torchvision's weights expect
            it); turn off only for inputs that are already normalised.
        download: allow step 4 of the search (None: unless ``$GRAMGAN_OFFLINE`` is set).

    ``forward(x)`` takes ``(B, 3, H, W)`` and returns ``{layer_name: features}``. The parameters
    never require grad and the module stays in eval mode even when ``.train()`` is called; gradients
    still flow to ``x``.
    """

    def __init__(
        self,
        layers: Sequence[str] = ("conv2_2", "conv4_2", "conv4_4"),
        weights_path: str | os.PathLike[str] | None = None,
        allow_random_weights: bool = False,
        use_input_norm: bool = True,
        download: bool | None = None,
    ) -> None:
        super().__init__()
        if isinstance(layers, str):
            layers = (layers,)
        layers = tuple(layers)
        if not layers:
            raise ValueError("VGG19FeatureExtractor needs at least one layer")
        unknown = [name for name in layers if name not in VGG19_LAYERS]
        if unknown:
            raise ValueError(f"unknown VGG19 layer(s) {unknown}; valid names: {list(VGG19_LAYERS)}")
        self.layers = layers
        self.use_input_norm = use_input_norm
        self._taps = {VGG19_LAYERS[name]: name for name in layers}
        self.features = _build_features(max(self._taps))
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

        try:
            path = resolve_vgg19_weights(weights_path, download=download)
        except VGGWeightsNotFoundError as exc:
            if not allow_random_weights:
                raise
            warnings.warn(
                f"VGG19FeatureExtractor is using RANDOM weights (allow_random_weights=True): {exc}",
                stacklevel=2,
            )
            self.weights_path: Path | None = None
        else:
            self.load_weights(path)
            self.weights_path = path

        for p in self.parameters():
            p.requires_grad_(False)
        super().train(False)

    def load_weights(self, path: str | os.PathLike[str]) -> None:
        """Load torchvision VGG19 weights from ``path`` (full state dict or ``features.*`` only)."""
        try:
            state = torch.load(os.fspath(path), map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises several types for unreadable or non-tensor files
            raise VGGWeightsMismatchError(
                f"{path} could not be read as a PyTorch state dict ({type(exc).__name__}: {exc})"
            ) from exc
        if not isinstance(state, Mapping):
            raise VGGWeightsMismatchError(f"{path} holds a {type(state).__name__}, not a VGG19 state dict")
        self.features.load_state_dict(_select_features(state, self.features, path))

    def train(self, mode: bool = True) -> VGG19FeatureExtractor:
        """Stay in eval mode whatever ``mode`` is: the extractor is frozen."""
        return super().train(False)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"VGG19FeatureExtractor expects (B, 3, H, W) input, got {tuple(x.shape)}")
        if self.use_input_norm:
            x = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        out: dict[str, Tensor] = {}
        for index, module in enumerate(self.features):
            x = module(x)
            if index in self._taps:
                out[self._taps[index]] = x
        return {name: out[name] for name in self.layers}


def _select_features(state: Mapping[str, Tensor], features: nn.Sequential, path: object) -> dict[str, Tensor]:
    """Pick the ``features.*`` entries our truncated network needs, checking keys and shapes."""
    expected = features.state_dict()
    picked: dict[str, Tensor] = {}
    for key, ours in expected.items():
        full_key = f"features.{key}"
        if full_key not in state:
            raise VGGWeightsMismatchError(
                f"{path} is not torchvision's VGG19 state dict: key {full_key!r} is missing"
            )
        theirs = state[full_key]
        if not isinstance(theirs, Tensor) or theirs.shape != ours.shape:
            shape = tuple(theirs.shape) if isinstance(theirs, Tensor) else type(theirs).__name__
            raise VGGWeightsMismatchError(
                f"{path} is not torchvision's VGG19 state dict: {full_key!r} has shape {shape}, "
                f"expected {tuple(ours.shape)}"
            )
        picked[key] = theirs
    return picked
