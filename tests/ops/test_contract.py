"""The op contract (``gramgan.ops._contract``): one schema table, fakes and autograd for every namespace.

The extension's ops (``torch.ops.gramgan``), the Triton ops (``torch.ops.gramgan_triton``) and the host emulation
of the CUDA kernels (``torch.ops.gramgan_emulated``, cuda_emulated tests) must have the same names and
signatures, those of ``SCHEMAS``; a further namespace defined with ``define_ops`` and
given kernels works as a backend with nothing else (what the host emulation of the CUDA kernels uses).
"""

from __future__ import annotations

import pytest
import torch

import gramgan.ops as ops
from gramgan.ops import _contract, _cpp, _emulated, _triton
from gramgan.ops._backend import LibraryBackend

NAMESPACES = [
    pytest.param(
        "gramgan", marks=pytest.mark.skipif(_cpp.extension_error() is not None, reason=str(_cpp.extension_error()))
    ),
    pytest.param(
        "gramgan_triton", marks=pytest.mark.skipif(_triton._IMPORT_ERROR is not None, reason=str(_triton._IMPORT_ERROR))
    ),
    pytest.param(_emulated.NAMESPACE, marks=pytest.mark.cuda_emulated),
]


@pytest.fixture(params=NAMESPACES)
def namespace(request) -> str:
    """Each namespace of fused ops; the emulated one once its kernels are built and loaded."""
    if request.param == _emulated.NAMESPACE:
        request.getfixturevalue("emulated_kernels")
    return request.param


def _registered_ops(namespace: str) -> set[str]:
    """Names of the ops registered in ``namespace`` (overload names dropped)."""
    names = set()
    for qualified in torch._C._dispatch_get_all_op_names():
        ns, _, name = qualified.partition("::")
        if ns == namespace:
            names.add(name.split(".")[0])
    return names


def _signature(namespace: str, name: str) -> str:
    """The schema of ``torch.ops.<namespace>.<name>`` without its namespace."""
    text = str(getattr(torch.ops, namespace).__getattr__(name).default._schema)
    assert text.startswith(f"{namespace}::")
    return text[len(namespace) + 2 :]


def test_namespace_holds_exactly_the_contract_ops(namespace):
    assert _registered_ops(namespace) == set(_contract.SCHEMAS)


@pytest.mark.parametrize("name", sorted(_contract.SCHEMAS))
def test_schema_is_the_contract(namespace, name):
    """Argument names, types and returns are those of the contract's schema string."""
    expected = str(torch._C.parse_schema(f"{namespace}::{_contract.schema(name)}"))
    assert _signature(namespace, name) == expected[len(namespace) + 2 :]


@pytest.mark.skipif(
    _cpp.extension_error() is not None or _triton._IMPORT_ERROR is not None, reason="needs both namespaces"
)
@pytest.mark.parametrize("name", sorted(_contract.SCHEMAS))
def test_extension_and_triton_schemas_are_equal(name):
    extension = torch.ops.gramgan.__getattr__(name).default._schema
    triton = torch.ops.gramgan_triton.__getattr__(name).default._schema
    assert _signature("gramgan", name) == _signature("gramgan_triton", name)
    assert [a.type for a in extension.arguments] == [a.type for a in triton.arguments]
    assert [r.type for r in extension.returns] == [r.type for r in triton.returns]


def test_accumulation_dtype_and_shapes():
    assert _contract.accumulation_dtype(torch.float64) == torch.float64
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        assert _contract.accumulation_dtype(dtype) == torch.float32
    x = torch.empty(2, 3, 8, 12)
    assert _contract.patch_grid(x, 4) == (2, 2, 3)
    assert _contract.gram_shape(x, 4) == (2, 2, 3, 3, 3)
    assert _contract.mask_shape(x) == (2, 1, 8, 12)


def test_fakes_cover_every_op():
    assert set(_contract.FAKES) == set(_contract.SCHEMAS)


# ------------------------------------------------------------------- a further namespace: only a table entry

THIRD = "gramgan_contract_test"


@pytest.fixture(scope="module")
def third_backend():
    """A namespace defined with define_ops whose CPU kernels are the extension's (as an emulated build's
    would be its own), wrapped as a LibraryBackend."""
    if _cpp.extension_error() is not None:
        pytest.skip(str(_cpp.extension_error()))
    _contract.define_ops(THIRD)
    _contract.define_ops(THIRD)  # a second call changes nothing
    library = torch.library.Library(THIRD, "IMPL")
    for name in _contract.SCHEMAS:
        library.impl(name, getattr(torch.ops.gramgan, name).default, "CPU")
    yield LibraryBackend("third", THIRD, "cpu")
    library._destroy()


def test_third_namespace_opcheck(third_backend):
    gen = torch.Generator().manual_seed(0)
    sr = torch.rand(2, 3, 8, 12, generator=gen, requires_grad=True)
    cand = torch.rand(2, 3, 3, 8, 12, generator=gen)
    hr = 0.5 + 0.01 * torch.randn(2, 3, 8, 12, generator=gen)
    namespace = getattr(torch.ops, THIRD)
    torch.library.opcheck(namespace.texture_loss_local.default, (sr, cand, 4, 0.5, "gram", "mse"))
    torch.library.opcheck(namespace.mask_pair.default, (sr, hr, 4, 0.005, 1, 2, "grid", 11))
    torch.library.opcheck(namespace.patch_gram.default, (sr, 4))


def test_third_namespace_matches_the_cpu_backend(third_backend):
    """Forward and gradient of every differentiable op through the contract's Python autograd (the third
    namespace) equal the extension's, whose autograd is the same formulas in C++ (csrc/autograd.cpp)."""
    assert third_backend.unavailable_reason(torch.device("cpu")) is None
    assert "needs a CPU tensor" in third_backend.unavailable_reason(torch.device("cuda"))
    gen = torch.Generator().manual_seed(1)
    sr = torch.rand(2, 3, 8, 16, generator=gen)
    levels = [torch.rand(2, 3, 8, 16, generator=gen), torch.rand(2, 3, 4, 8, generator=gen)]
    stack = torch.rand(2, 5, 3, 8, 16, generator=gen)
    hr = torch.rand(2, 3, 8, 16, generator=gen)
    hr_flat_left = torch.cat([torch.full_like(hr[..., :8], 0.5), hr[..., 8:]], dim=-1)  # a mask with zeros
    half, thetas = torch.rand(2, 3, 4, 8, generator=gen), 1 + 0.01 * torch.randn(2, 2, 2, 3, generator=gen)
    calls = {
        "patch_gram": lambda backend, x: backend.patch_gram(x, 2),
        "local gram": lambda backend, x: backend.texture_loss_local(x, stack, 4, 0.5, "gram", "mse"),
        "local pixel": lambda backend, x: backend.texture_loss_local(x, stack, 4, 0.0, "pixel", "l1"),
        "sampled": lambda backend, x: backend.texture_loss_sampled(x, hr, half, thetas, 4, 0.5, "gram", "l1"),
        "global": lambda backend, x: backend.texture_loss_global(x, levels, 4, 1.0, "pixel", "l1"),
        "mask_pair": lambda backend, x: backend.mask_pair(x, hr_flat_left, 4, 0.005, 1, 0, "sliding", 3)[0],
    }
    for name, call in calls.items():
        results = []
        for backend in (third_backend, _cpp.CPU_BACKEND):
            x = sr.clone().requires_grad_()
            out = call(backend, x)
            upstream = torch.rand(out.shape, generator=torch.Generator().manual_seed(2), dtype=out.dtype)
            (grad,) = torch.autograd.grad((out * upstream).sum(), x)
            results.append((out.detach(), grad))
        (out, grad), (expected_out, expected_grad) = results
        assert torch.equal(out, expected_out), name
        assert torch.equal(grad, expected_grad), name
        assert grad.abs().sum() > 0, name


def test_mask_pair_backward_is_grad_times_mask(namespace):
    """The masked pair's gradient is grad * M(hr), NaN where the mask is NaN."""
    gen = torch.Generator().manual_seed(2)
    hr = torch.rand(1, 3, 8, 8, generator=gen)
    hr[0, :, 0, 0] = float("nan")
    grad = torch.rand(1, 3, 8, 8, generator=gen)
    expected = grad * ops.texture_mask(hr, 4, backend="reference")
    got = getattr(torch.ops, namespace).mask_pair_backward(grad, hr, 4, 0.005, 0, 0, "grid", 11)
    assert torch.isnan(got[0, :, :4, :4]).all()
    torch.testing.assert_close(got, expected, equal_nan=True)


# ------------------------------------------------------------------------------------------------ layering

# What gramgan.ops may import from gramgan: itself, the kernels it wires, the extension and the resize taps.
OPS_MAY_IMPORT = ("gramgan.ops", "gramgan.kernels", "gramgan._C", "gramgan._resize_taps")


def _gramgan_imports(path) -> set[str]:
    """Every gramgan module a source file imports, at any depth of its code (lazy imports included)."""
    import ast

    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name == "gramgan" or name.startswith("gramgan.")}


def test_ops_imports_nothing_above_it():
    """gramgan.ops is the floor the losses, models and data build on: it imports none of them."""
    from pathlib import Path

    package = Path(ops.__file__).parent
    above = {
        f"{path.name}: {name}"
        for path in sorted(package.glob("*.py"))
        for name in _gramgan_imports(path)
        if not name.startswith(OPS_MAY_IMPORT)
    }
    assert not above, f"gramgan.ops imports from above it: {sorted(above)}"


def test_every_backend_has_every_forward_op():
    """A backend is its availability plus one method per forward op of the contract (gramgan/ops/_backend.py)."""
    from gramgan.ops.reference import REFERENCE_BACKEND

    for backend in (REFERENCE_BACKEND, _cpp.CPU_BACKEND, _cpp.CUDA_BACKEND, _triton.TRITON_BACKEND,
                    _emulated.EMULATED_BACKEND):  # fmt: skip
        missing = [name for name in _contract.FORWARD_OPS if not callable(getattr(backend, name, None))]
        assert not missing, f"backend {backend.name!r} lacks {missing}"
    assert set(_contract.DIFFERENTIABLE_OPS) <= set(_contract.FORWARD_OPS)
    assert _contract.public_outputs("texture_loss_local") == 1 and _contract.public_outputs("mask_pair") == 2
