"""Training: :func:`fit` for any model and data, :func:`train` for a configured
SmallCNN run, checkpoints and the run configuration.

``fit`` (``fit.py``, with the step in ``loop.py``) runs each batch's inner maximisation with the model in
``eval()`` mode and the outer loss in ``train()`` mode, checkpoints every epoch
atomically (``checkpoint.py``, with a SHA-256 integrity digest) and runs under
``torchrun`` with ``DistributedDataParallel`` (:mod:`lfr_rs.distributed`).
``train(config, out_dir)`` (``run.py``) builds the data, SmallCNN, SGD and the
TRADES schedule from a :class:`TrainConfig` (``config.py``) and calls ``fit``.
"""

from lfr_rs.training.checkpoint import CHECKPOINT, LOG, CheckpointError, load_checkpoint, load_model, save_checkpoint, write_json
from lfr_rs.training.config import (Dataset, Split, Splits, TrainConfig, default_warmup, eval_split, load_data, lr_at,
                                   scaled_milestones)
from lfr_rs.training.fit import FitResult, fit
from lfr_rs.training.loop import TensorBatches, TrainingDiverged, train_epoch
from lfr_rs.training.run import TrainResult, train

__all__ = [
    "CHECKPOINT",
    "LOG",
    "CheckpointError",
    "Dataset",
    "FitResult",
    "Split",
    "Splits",
    "TensorBatches",
    "TrainConfig",
    "TrainResult",
    "TrainingDiverged",
    "default_warmup",
    "eval_split",
    "fit",
    "load_checkpoint",
    "load_data",
    "load_model",
    "lr_at",
    "save_checkpoint",
    "scaled_milestones",
    "train",
    "train_epoch",
    "write_json",
]
