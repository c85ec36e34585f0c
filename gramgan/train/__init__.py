"""Training: ``python -m gramgan.train`` (see ``__main__``), the loop, its config and checkpoints.

>>> from gramgan.train import load_config, train
>>> result = train(load_config(preset="demo", overrides=["train.total_iters=10"]))
"""

from gramgan.train.config import TrainConfig, load_config
from gramgan.train.loop import Trainer, TrainResult, train

__all__ = ["TrainConfig", "TrainResult", "Trainer", "load_config", "train"]
