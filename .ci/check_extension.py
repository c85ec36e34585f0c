"""CI: gramgan._C imports, holds its CUDA part (FORCE_CUDA=1 builds) and the build recorded its architectures
(python -m gramgan.info prints them) and the digest of its csrc/ sources, and gramgan.ops imports."""

import sys

import torch

import gramgan._C as ext

print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda)
print("extension:", ext.__file__)
print("extension holds CUDA code:", bool(ext.built_with_cuda()))
assert ext.built_with_cuda(), "FORCE_CUDA=1 build has no CUDA part"
import gramgan.ops  # noqa: E402, F401
from gramgan.info import build_record  # noqa: E402

record = build_record()
print("build record:", record)
assert record and record["cuda"] and record["torch_cuda_arch_list"], "the build recorded no CUDA architectures"
assert record.get("sources"), "the build recorded no digest of its csrc/ sources"
