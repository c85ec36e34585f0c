"""Bad input gets a clear exception naming the problem; backend choice follows docs/ops.md."""

from __future__ import annotations

import warnings

import pytest
import torch

import gramgan.ops as ops
from gramgan.ops import _dispatch


def sr_and_candidates(b=2, k_cand=3, c=3, h=8, w=8, dtype=torch.float32):
    return torch.rand(b, c, h, w, dtype=dtype), torch.rand(b, k_cand, c, h, w, dtype=dtype)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: ops.patch_gram(torch.rand(3, 8, 8)), ValueError, r"\(B, C, H, W\).*3-D"),
        (lambda: ops.patch_gram(torch.rand(1, 3, 8, 10)), ValueError, r"\(1, 3, 8, 10\).*multiples.*k=4"),
        (lambda: ops.patch_gram(torch.rand(1, 3, 8, 8), k=3), ValueError, r"W=8.*k=3"),
        (lambda: ops.patch_gram(torch.rand(1, 3, 8, 8), k=0), ValueError, "positive int"),
        (lambda: ops.patch_gram(torch.ones(1, 3, 8, 8, dtype=torch.int64)), TypeError, "int64"),
        (lambda: ops.patch_gram(torch.ones(1, 3, 8, 8, dtype=torch.uint8)), TypeError, "uint8"),
        (lambda: ops.patch_gram([[1.0]]), TypeError, "torch.Tensor"),
        (lambda: ops.gram_select(*sr_and_candidates(k_cand=0)), ValueError, "K = 0"),
        (lambda: ops.gram_select(torch.rand(2, 3, 8, 8), torch.rand(3, 2, 3, 8, 8)), ValueError, "batch size 3"),
        (lambda: ops.gram_select(torch.rand(2, 3, 8, 8), torch.rand(2, 2, 3, 8, 12)), ValueError, "aligned"),
        (lambda: ops.gram_select(torch.rand(2, 3, 8, 8), torch.rand(2, 2, 1, 8, 8)), ValueError, "aligned"),
        (lambda: ops.gram_select(torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)), ValueError, r"\(B, K, C, H, W\)"),
        (
            lambda: ops.gram_select(torch.rand(2, 3, 8, 8), torch.rand(2, 2, 3, 8, 8, dtype=torch.float64)),
            TypeError,
            "float64.*float32",
        ),
        (lambda: ops.gram_select(*sr_and_candidates(), scope="nearby"), ValueError, "unknown scope 'nearby'"),
        (lambda: ops.gram_select(*sr_and_candidates(), gt_weight=-1.0), ValueError, "gt_weight"),
        (lambda: ops.gram_select(torch.rand(2, 3, 8, 8), [torch.rand(2, 3, 8, 8)]), TypeError, "scope='global'"),
        (lambda: ops.gram_select(torch.rand(2, 3, 8, 8), [], scope="global"), ValueError, "empty list"),
        (
            lambda: ops.gram_select(torch.rand(2, 3, 8, 8), torch.rand(2, 1, 3, 8, 8), scope="global"),
            TypeError,
            "list of",
        ),
        (
            lambda: ops.gram_select(torch.rand(2, 3, 8, 8), [torch.rand(2, 3, 4, 4)], scope="global"),
            ValueError,
            r"candidates\[0\].*must match",
        ),
        (
            lambda: ops.gram_select(
                torch.rand(2, 3, 8, 8), [torch.rand(2, 3, 8, 8), torch.rand(2, 3, 6, 8)], scope="global"
            ),
            ValueError,
            r"candidates\[1\].*multiples",
        ),
        (lambda: ops.gram_texture_loss(*sr_and_candidates(), target="texture"), ValueError, "unknown target"),
        (lambda: ops.gram_texture_loss(*sr_and_candidates(), criterion="l2"), ValueError, "unknown criterion"),
        (lambda: ops.gram_texture_loss(*sr_and_candidates(), reduction="avg"), ValueError, "unknown reduction"),
        (lambda: ops.gram_texture_loss(*sr_and_candidates(), backend="metal"), ValueError, "unknown backend"),
        (lambda: ops.texture_mask(torch.rand(1, 3, 8, 8), mode="disk"), ValueError, "unknown mode"),
        (lambda: ops.texture_mask(torch.rand(1, 3, 8, 8), offset=(4, 0)), ValueError, r"offset.*\[0, k\)"),
        (lambda: ops.texture_mask(torch.rand(1, 3, 8, 8), offset=(1,)), ValueError, "pair of ints"),
        (lambda: ops.texture_mask(torch.rand(1, 3, 8, 8), mode="sliding", window=4), ValueError, "odd"),
        (lambda: ops.texture_mask(torch.rand(1, 3, 8, 8), mode="sliding", window=17), ValueError, "reflect"),
        (lambda: ops.mask_pair(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 4)), ValueError, "must match"),
        (
            lambda: ops.mask_pair(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8, dtype=torch.float16)),
            TypeError,
            "dtype",
        ),
    ],
)
def test_bad_input_is_named(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_devices_must_match():
    meta = torch.empty(2, 3, 3, 8, 8, device="meta")
    with pytest.raises(ValueError, match="candidates is on meta but sr is on cpu"):
        ops.gram_select(torch.rand(2, 3, 8, 8), meta)


def test_set_backend_and_environment(monkeypatch):
    monkeypatch.setattr(_dispatch, "_process_default", None)
    monkeypatch.setenv("GRAMGAN_BACKEND", "reference")
    assert ops.get_backend() == "reference"
    ops.set_backend("cpu")
    try:
        assert ops.get_backend() == "cpu"
    finally:
        ops.set_backend(None)
    assert ops.get_backend() == "reference"
    monkeypatch.setenv("GRAMGAN_BACKEND", "bogus")
    with pytest.raises(ValueError, match=r"bogus.*GRAMGAN_BACKEND"):
        ops.get_backend()
    with pytest.raises(ValueError, match="unknown backend"):
        ops.set_backend("bogus")


def test_default_backend_is_used(monkeypatch):
    monkeypatch.setattr(_dispatch, "_process_default", None)
    monkeypatch.setenv("GRAMGAN_BACKEND", "reference")
    chosen = _dispatch.resolve(None, torch.device("cpu"), 4, 3)
    assert chosen.name == "reference"


class _Unavailable:
    name = "cpu"

    def unavailable_reason(self, device):
        return "the C++ extension gramgan._C is not built"

    def unsupported_reason(self, k, channels):
        return None


@pytest.fixture
def register():
    """``register(backend)``: registers a backend for one test."""
    unregister = []
    yield lambda backend: unregister.append(_dispatch.register_backend(backend))
    for undo in reversed(unregister):
        undo()


def test_auto_falls_back_with_one_warning(monkeypatch, register):
    monkeypatch.setattr(_dispatch, "_warned", set())
    register(_Unavailable())
    with pytest.warns(RuntimeWarning, match="gramgan._C is not built.*reference"):
        assert _dispatch.resolve("auto", torch.device("cpu"), 4, 3).name == "reference"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _dispatch.resolve("auto", torch.device("cpu"), 4, 3).name == "reference"


def test_named_backend_that_cannot_run_raises(register):
    register(_Unavailable())
    with pytest.raises(RuntimeError, match="backend 'cpu' cannot run here: .*not built"):
        _dispatch.resolve("cpu", torch.device("cpu"), 4, 3)


def test_uncovered_k_or_c_goes_to_reference_with_one_warning(monkeypatch, register):
    monkeypatch.setattr(_dispatch, "_warned", set())

    class Narrow(_Unavailable):
        def unavailable_reason(self, device):
            return None

        def unsupported_reason(self, k, channels):
            return None if k == 4 else f"patch size k={k} is not covered"

    register(Narrow())
    assert _dispatch.resolve("cpu", torch.device("cpu"), 4, 3).name == "cpu"
    with pytest.warns(RuntimeWarning, match="k=5 is not covered"):
        assert _dispatch.resolve("cpu", torch.device("cpu"), 5, 3).name == "reference"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _dispatch.resolve("cpu", torch.device("cpu"), 5, 3)


def test_kernel_coverage_rule():
    from gramgan.ops._backend import kernel_unsupported_reason

    assert kernel_unsupported_reason(4, 3) is None
    assert "k=16" in kernel_unsupported_reason(16, 3)
    assert "C=5" in kernel_unsupported_reason(4, 5)


def test_uncovered_sizes_still_compute_the_right_answer():
    sr, candidates = sr_and_candidates(c=5, h=6, w=6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loss = ops.gram_texture_loss(sr, candidates, k=3, reduction="none")
    assert loss.shape == (2, 2, 2)


def test_fallback_warning_traces_in_one_graph(monkeypatch, register):
    """A call that falls back to the reference warns once while torch.compile(fullgraph=True) traces it,
    without a graph break (warnings.warn itself is one), and computes the eager answer."""
    monkeypatch.setattr(_dispatch, "_warned", set())

    class Narrow(_Unavailable):
        def unavailable_reason(self, device):
            return None

        def unsupported_reason(self, k, channels):
            return f"patch size k={k} is not covered"

    register(Narrow())
    sr, candidates = sr_and_candidates(c=3, h=6, w=6)

    def loss(sr, candidates):
        return ops.gram_texture_loss(sr, candidates, k=3, backend="cpu")

    torch._dynamo.reset()
    with pytest.warns(RuntimeWarning, match="k=3 is not covered"):
        compiled = torch.compile(loss, fullgraph=True, backend="eager")(sr, candidates)
    torch._dynamo.reset()
    torch.testing.assert_close(compiled, ops.gram_texture_loss(sr, candidates, k=3, backend="reference"))


def test_backend_availability_names_every_backend_and_why_not():
    from gramgan.ops import backend_availability

    cpu = backend_availability("cpu")
    assert set(cpu) == {"reference", "cpu", "cuda", "triton"}
    assert cpu["reference"] is None
    assert isinstance(cpu["cuda"], str) and cpu["cuda"]  # a CUDA backend never runs CPU tensors


# ------------------------------------------------------------------ the dispatch under torch.compile

def _every_op_on(sr, hr, candidates, thetas, backend):
    """The public ops the Gram-GAN objective calls, as a compiled training step would call them."""
    texture = ops.gram_texture_loss(sr, candidates, backend=backend)
    sampled = ops.gram_texture_loss_sampled(sr, hr, ops.downsample_half(hr, backend=backend), thetas, backend=backend)
    sr_m, hr_m = ops.mask_pair(sr, hr, offset=(1, 2), backend=backend)
    gram = ops.patch_gram(sr, backend=backend)
    index = ops.gram_select(sr, candidates, backend=backend)
    return texture + sampled + (sr_m - hr_m).abs().mean() + gram.mean() + index.sum()


def _cuda_backends():
    from gramgan.ops import _cpp, _triton

    return [
        pytest.param("cuda", marks=pytest.mark.skipif(_cpp.extension_error() is not None, reason="no gramgan._C")),
        pytest.param("triton", marks=pytest.mark.skipif(_triton._IMPORT_ERROR is not None, reason="no triton")),
        "auto",
        None,  # the process default: set_backend's, else $GRAMGAN_BACKEND's, else auto
    ]


@pytest.mark.parametrize("backend", _cuda_backends())
def test_dispatch_for_cuda_tensors_traces_in_one_graph(backend, monkeypatch):
    """Validation, the backend choice and the backends' availability trace under torch.compile(fullgraph=True)
    for CUDA tensors, without a GPU: the tensors are fake ones on a CUDA device (FakeTensorMode), the ops run
    their fake implementations. A call into the extension (or anything else dynamo cannot trace) while the
    dispatch runs is a graph break, which fullgraph=True turns into an error: as on the first GPU run, where
    resolve() asked gramgan._C.built_with_cuda() on every call."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    from gramgan.ops import _cpp

    # An extension built without CUDA kernels still defines the ops (and their fakes): treat it as built
    # with them, so that the cuda backend's path is traced here whatever this build holds.
    monkeypatch.setattr(_cpp, "_CUDA_MISSING", _cpp.extension_error(), raising=False)
    monkeypatch.setattr(_dispatch, "_process_default", None)
    monkeypatch.delenv("GRAMGAN_BACKEND", raising=False)
    available = ops.backend_availability("cuda")
    if backend in ("auto", None) and available["cuda"] is not None and available["triton"] is not None:
        pytest.skip("no fused backend for CUDA tensors here: auto would trace the reference")
    with FakeTensorMode():
        sr = torch.empty(2, 3, 16, 16, device="cuda", requires_grad=True)
        hr = torch.empty(2, 3, 16, 16, device="cuda")
        candidates = torch.empty(2, 4, 3, 16, 16, device="cuda")
        thetas = torch.empty(2, 2, 2, 3, device="cuda")
    torch._dynamo.reset()
    with warnings.catch_warnings():
        # A fallback to the reference would warn: the fused backend's path is the one traced.
        warnings.filterwarnings("error", message="gramgan.ops", category=RuntimeWarning)
        compiled = torch.compile(_every_op_on, fullgraph=True, backend="eager")
        loss = compiled(sr, hr, candidates, thetas, backend)
    assert loss.device.type == "cuda" and loss.shape == ()
