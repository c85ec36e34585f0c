"""Helper run in a subprocess by test_basicsr_pipeline.py (not collected by pytest).

    python _run_basicsr_pipeline.py OPTIONS.yml INPUT.pt OUTPUTS.pt

Trains through ``python -m gramgan.integrations.basicsr``'s ``main`` (which hands over to BasicSR's own
``train_pipeline``), keeping the model BasicSR builds, then saves what its in-memory generators (EMA and
trained) compute on the tensor in INPUT.pt, for the test to compare with the checkpoints it saved.
"""

from __future__ import annotations

import sys

import basicsr.train
import torch

from gramgan.integrations.basicsr.__main__ import main

built = []
build_model = basicsr.train.build_model


def _keep(opt):
    model = build_model(opt)
    built.append(model)
    return model


options, inputs, outputs = sys.argv[1:4]  # main() hands sys.argv over to BasicSR's parser
basicsr.train.build_model = _keep
status = main(["-opt", options])
if status != 0:
    sys.exit(status)
(model,) = built
x = torch.load(inputs)
with torch.no_grad():
    torch.save({"params_ema": model.net_g_ema(x), "params": model.net_g(x)}, outputs)
