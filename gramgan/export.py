"""Export a generator for other tools: ``python -m gramgan.export CHECKPOINT --format basicsr|safetensors|onnx``.

``CHECKPOINT`` is anything :func:`gramgan.models.read_generator_weights` reads (our training checkpoints,
BasicSR / Real-ESRGAN ``.pth`` files, bare or ``.safetensors`` state dicts). The EMA weights are written
(``--raw`` for the trained weights), with BasicSR's parameter names:

- ``basicsr``: ``{"params_ema": state_dict, "params": state_dict}``, a ``.pth`` that BasicSR's test script
  (any ``param_key_g``) and Real-ESRGAN's inference load unchanged into their ``RRDBNet``. Both keys hold
  the same tensors, stored once;
- ``safetensors``: the bare state dict; the architecture is in the file's metadata (``gramgan.arch``);
- ``onnx``: the network traced by ``torch.onnx.export(dynamo=True)``, opset :data:`ONNX_OPSET`, input
  ``input`` ``(N, C, H, W)`` float32 in [0, 1] with N, H and W dynamic (for x2 / x1 models H and W must be
  multiples of 2 / 4), output ``output`` ``(N, C, sH, sW)``. Needs ``pip install onnx onnxscript``; then,
  when ``onnxruntime`` is installed, the file is run on a sample photo and compared with PyTorch
  (:data:`ONNX_TOLERANCE`), else that check is skipped with a note.

The output defaults to ``<checkpoint stem>_basicsr.pth``, ``.safetensors`` or ``.onnx`` beside the checkpoint.
Exit status: 0 done; 2 a usage or input error (one ``error:`` line); 1 a failure while exporting (including
an ONNX file whose output differs from PyTorch's).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

from gramgan.atomic import atomic_path
from gramgan.models import GeneratorWeights, load_generator

__all__ = ["FORMATS", "ONNX_OPSET", "ONNX_TOLERANCE", "ExportError", "Exported", "check_onnx", "export", "main"]

FORMATS = ("basicsr", "safetensors", "onnx")
ONNX_OPSET = 18
ONNX_TOLERANCE = 1e-4  # max |ONNX - PyTorch| on a [0, 1] image, float32
_SUFFIXES = {"basicsr": "_basicsr.pth", "safetensors": ".safetensors", "onnx": ".onnx"}


class ExportError(RuntimeError):
    """The export ran but its result is not usable (e.g. ONNX output differs from PyTorch's)."""


def default_output(checkpoint: Path, fmt: str) -> Path:
    """``<stem><suffix>`` beside the checkpoint (``_basicsr.pth``, ``.safetensors``, ``.onnx``)."""
    return checkpoint.with_name(checkpoint.stem + _SUFFIXES[fmt])


def _contiguous(state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}


def write_basicsr(weights: GeneratorWeights, output: Path) -> None:
    """BasicSR's checkpoint layout; ``params`` and ``params_ema`` share the tensors (one copy on disk)."""
    state_dict = _contiguous(weights.state_dict)
    with atomic_path(output) as tmp:
        torch.save({"params_ema": state_dict, "params": state_dict}, tmp)


def write_safetensors(weights: GeneratorWeights, output: Path) -> None:
    """The bare state dict, with the architecture and provenance as string metadata."""
    from safetensors.torch import save_file

    metadata = {"format": "pt", "gramgan.arch": json.dumps(weights.arch), "gramgan.source": weights.description}
    with atomic_path(output) as tmp:
        save_file(_contiguous(weights.state_dict), str(tmp), metadata=metadata)


def _onnx_dynamic_shapes(model: nn.Module) -> dict[str, dict[int, object]]:
    """Dynamic N, H, W; for x2 / x1 models H and W are multiples of the pixel-unshuffle factor."""
    from gramgan.models.rrdbnet import _UNSHUFFLE

    factor = _UNSHUFFLE[model.scale]
    dim = torch.export.Dim
    height, width = dim("height", min=1), dim("width", min=1)
    if factor > 1:
        return {"x": {0: dim("batch", min=1), 2: factor * height, 3: factor * width}}
    return {"x": {0: dim("batch", min=1), 2: height, 3: width}}


def write_onnx(model: nn.Module, output: Path) -> None:
    """Export ``model`` (an RRDBNet) to ONNX with dynamic batch, height and width (see module docs)."""
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as err:
        raise ValueError(
            f"ONNX export needs the onnx and onnxscript packages ({err}): pip install onnx onnxscript"
        ) from None
    sample = torch.rand(1, model.num_in_ch, 64, 64)
    with atomic_path(output, suffix=".tmp.onnx") as tmp:
        torch.onnx.export(
            model,
            (sample,),
            str(tmp),
            dynamo=True,
            opset_version=ONNX_OPSET,
            input_names=["input"],
            output_names=["output"],
            dynamic_shapes=_onnx_dynamic_shapes(model),
            external_data=False,
        )


def _sample_image(channels: int, size: int = 64) -> Tensor:
    """A centre crop of the held-out sample photo (no download), ``(1, channels, size, size)`` in [0, 1]."""
    from gramgan.data.samples import load_samples

    photo = torch.from_numpy(load_samples(["chelsea"])["chelsea"]).permute(2, 0, 1).float() / 255.0
    h, w = photo.shape[-2:]
    crop = photo[:, (h - size) // 2 : (h + size) // 2, (w - size) // 2 : (w + size) // 2]
    return (crop if channels == 3 else crop.mean(0, keepdim=True).repeat(channels, 1, 1)).unsqueeze(0)


def check_onnx(model: nn.Module, path: Path, image: Tensor | None = None) -> float | None:
    """Run the ONNX file with onnxruntime on ``image`` (default: a sample-photo crop) and return the max
    absolute difference from ``model``'s output; None when onnxruntime is not installed. Raises
    :class:`ExportError` when the difference exceeds :data:`ONNX_TOLERANCE`."""
    try:
        import onnxruntime
    except ImportError:
        return None
    image = _sample_image(model.num_in_ch) if image is None else image
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (ours,) = session.run(["output"], {"input": image.numpy()})
    with torch.no_grad():
        expected = model(image)
    diff = float((torch.from_numpy(ours) - expected).abs().max())
    if not diff <= ONNX_TOLERANCE:
        raise ExportError(f"{path}: ONNX output differs from PyTorch's by {diff:.3g} (> {ONNX_TOLERANCE:g})")
    return diff


@dataclass
class Exported:
    """What :func:`export` wrote: the file, and for ONNX the max |ONNX - PyTorch| (None: not checked)."""

    path: Path
    onnx_diff: float | None = None
    notes: list[str] = field(default_factory=list)


def export(checkpoint: str | Path, fmt: str, output: str | Path | None = None, *, ema: bool = True) -> Exported:
    """Write the generator of ``checkpoint`` in format ``fmt`` (:data:`FORMATS`); ONNX files are checked
    with :func:`check_onnx`.

    Raises ``ValueError`` (incl. :class:`~gramgan.models.CheckpointError`) / ``OSError`` for bad input,
    :class:`ExportError` for an ONNX file that does not reproduce PyTorch's output.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}: expected one of {', '.join(FORMATS)}")
    checkpoint = Path(checkpoint)
    output = Path(output) if output is not None else default_output(checkpoint, fmt)
    if output.exists() and checkpoint.exists() and output.resolve() == checkpoint.resolve():
        raise ValueError(f"the output {output} is the checkpoint itself: choose another --output")
    if not output.parent.is_dir():
        raise FileNotFoundError(f"output folder not found: {output.parent}")
    model, weights = load_generator(checkpoint, prefer_ema=ema)
    result = Exported(output, notes=list(weights.notes))
    if fmt == "basicsr":
        write_basicsr(weights, output)
    elif fmt == "safetensors":
        write_safetensors(weights, output)
    else:
        write_onnx(model, output)
        result.onnx_diff = check_onnx(model, output)
    return result


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m gramgan.export",
        description="Write a generator's EMA weights for BasicSR / Real-ESRGAN (.pth with params_ema), as "
        "safetensors, or as ONNX (opset 18, dynamic N/H/W).",
    )
    parser.add_argument("checkpoint", type=Path, help="a gramgan, BasicSR or Real-ESRGAN checkpoint, or a state dict")
    parser.add_argument("--format", required=True, choices=FORMATS, help="what to write")
    parser.add_argument("-o", "--output", type=Path, help="output file (default: beside the checkpoint)")
    parser.add_argument("--raw", action="store_true", help="export the trained weights, not the EMA weights")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    args = build_parser().parse_args(argv)
    try:
        result = export(args.checkpoint, args.format, args.output, ema=not args.raw)
    except ExportError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except (ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    message = f"wrote {result.path} ({args.format})"
    if args.format == "onnx":
        message += (
            "; not checked (install onnxruntime to compare it with PyTorch)"
            if result.onnx_diff is None
            else f"; onnxruntime matches PyTorch on a sample photo (max |diff| {result.onnx_diff:.2g})"
        )
    print(message)
    return 0


if __name__ == "__main__":
    sys.exit(main())
