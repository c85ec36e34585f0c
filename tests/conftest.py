"""Test-session set-up shared by every test folder.

Tests run offline (``GRAMGAN_OFFLINE=1``). Without a GPU the Triton kernels run under Triton's CPU
interpreter, so the one test command also exercises them (the variable must be set before any kernel
is defined, hence here).
"""

from __future__ import annotations

import os

import torch

# Tests never touch the network: no VGG19 download, whatever a test builds.
os.environ.setdefault("GRAMGAN_OFFLINE", "1")

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
