"""Training: ``python -m gramgan.train`` (see ``__main__``), the loop, its config and checkpoints.

>>> from gramgan.train import load_config, train
>>> result = train(load_config(preset="demo", overrides=["train.total_iters=10"]))

Modules, in the order a run meets them: ``__main__`` (flags, ``--resume``, exit codes) → ``config``
(YAML, presets, overrides) over ``config_schema`` (the sections and their defaults) → ``run``
(:func:`~gramgan.train.run.build_run`: networks, optimisers, schedules, EMA, data, start position,
from ``builders``; images checked by ``data_check``) → ``loop`` (the loop) calling ``steps`` (the psnr
step; the G step then the D step) → ``checkpoint`` (a run's state: save, restore, RNG), ``validation``,
``logs``; with ``ema``, ``schedule`` and ``distributed`` (torchrun).
"""

from gramgan.train.config import TrainConfig, load_config
from gramgan.train.loop import Trainer, TrainResult, train

__all__ = ["TrainConfig", "TrainResult", "Trainer", "load_config", "train"]
