"""Run configuration (:class:`TrainConfig`), the learning-rate schedule and the
MNIST-format data a configured run trains and evaluates on."""

from __future__ import annotations

import dataclasses
import inspect
import json
import os
from dataclasses import dataclass, field
from typing import Any, Dict, Literal, NamedTuple, Optional, Tuple, Union, get_args

from torch import Tensor

from lfr_rs.data import load_fashion_mnist, load_mnist
from lfr_rs.defaults import PAPER_EPS, WARMUP_FRACTION, WARMUP_MAX_EPOCHS, paper_alpha
from lfr_rs.losses import Defense, Method, make_method
from lfr_rs.models import SmallCNN

__all__ = [
    "Dataset",
    "Split",
    "Splits",
    "TrainConfig",
    "default_warmup",
    "eval_split",
    "load_data",
    "lr_at",
    "scaled_milestones",
]

Dataset = Literal["mnist", "fashion-mnist"]
Split = Literal["train", "test"]
PathLike = Union[str, "os.PathLike[str]"]

TRADES_MILESTONES = (55, 75, 90)
TRADES_EPOCHS = 100


@dataclass(frozen=True)
class TrainConfig:
    """One training run. ``options`` are the method's (see
    :func:`lfr_rs.losses.method_options`), ``model`` the ``SmallCNN`` kwargs;
    ``milestones=None`` scales TRADES' 55/75/90-of-100 to ``epochs`` (see
    :func:`scaled_milestones`). ``train_split="test"`` trains on the test split
    minus its first ``holdout`` images, which become the evaluation set.
    ``subset`` keeps the first N training images; ``eval_n > 0`` adds clean and
    PGD accuracy on the first ``eval_n`` evaluation images to every epoch's log,
    at radius ``eval_eps`` (``None``: the method's own ``eps``, or the paper's
    0.3 for a method without one) and step ``eval_alpha`` (``None``: the
    paper's proportion, 0.01 at 0.3).

    ``warmup`` is :func:`~lfr_rs.training.fit`'s, in epochs: ``None`` gives runs
    shorter than ``WARMUP_MAX_EPOCHS`` (50) a ramp over ``WARMUP_FRACTION``
    (0.3) of their epochs and longer ones (the paper's 100) none."""

    method: Method = "standard"
    options: Dict[str, Any] = field(default_factory=dict)
    dataset: Dataset = "fashion-mnist"
    data_root: Optional[str] = None
    train_split: Split = "train"
    holdout: int = 0
    subset: Optional[int] = None
    epochs: int = 100
    batch_size: int = 128
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 0.0
    milestones: Optional[Tuple[int, ...]] = None
    lr_decay: float = 0.1
    seed: int = 0
    model: Dict[str, Any] = field(default_factory=dict)
    eval_n: int = 0
    device: str = "cpu"
    warmup: Optional[float] = None
    eval_eps: Optional[float] = None
    eval_alpha: Optional[float] = None

    def to_dict(self) -> Dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "TrainConfig":
        d = dict(d)
        if d.get("milestones") is not None:
            d["milestones"] = tuple(d["milestones"])
        return cls(**d)

    def resolved(self) -> "TrainConfig":
        """Checks the values and fills in every default (method options, model
        kwargs, milestones), as stored in checkpoints."""
        _check(self)
        options = dataclasses.asdict(make_method(self.method, **self.options))
        bound = inspect.signature(SmallCNN).bind(**self.model)
        bound.apply_defaults()
        model = dict(bound.arguments)
        milestones = scaled_milestones(self.epochs) if self.milestones is None else tuple(self.milestones)
        warmup = default_warmup(self.epochs) if self.warmup is None else float(self.warmup)
        eval_eps = float(options.get("eps", PAPER_EPS)) if self.eval_eps is None else self.eval_eps
        eval_alpha = paper_alpha(eval_eps) if self.eval_alpha is None else self.eval_alpha
        return dataclasses.replace(self, options=options, model=model, milestones=milestones, warmup=warmup,
                                   eval_eps=eval_eps, eval_alpha=eval_alpha)

    def build_method(self) -> Defense:
        return make_method(self.method, **self.options)


class Splits(NamedTuple):
    train_x: Tensor
    train_y: Tensor
    eval_x: Tensor
    eval_y: Tensor


def _check(c: TrainConfig) -> None:
    positive = {"epochs": c.epochs, "batch_size": c.batch_size, "lr": c.lr}
    for name, value in positive.items():
        if not value > 0:
            raise ValueError(f"{name} must be positive, got {value}")
    if c.subset is not None and c.subset < 1:
        raise ValueError(f"subset must be at least 1, got {c.subset}")
    if c.eval_n < 0 or c.holdout < 0:
        raise ValueError("eval_n and holdout must be non-negative")
    if c.dataset not in get_args(Dataset):
        raise ValueError(f"unknown dataset {c.dataset!r}; expected one of {', '.join(get_args(Dataset))}")
    if c.train_split not in get_args(Split):
        raise ValueError(f"unknown train_split {c.train_split!r}; expected one of {', '.join(get_args(Split))}")
    if c.train_split == "test" and c.holdout == 0:
        raise ValueError("train_split='test' needs holdout > 0: the first holdout test images are kept for evaluation")
    if c.train_split == "train" and c.holdout:
        raise ValueError("holdout only applies with train_split='test'")
    if c.warmup is not None and not (0 <= c.warmup <= c.epochs):
        raise ValueError(f"warmup must lie between 0 and epochs ({c.epochs}), got {c.warmup}")
    if c.eval_eps is not None and not c.eval_eps >= 0:
        raise ValueError(f"eval_eps must be non-negative, got {c.eval_eps}")
    if c.eval_alpha is not None and not c.eval_alpha > 0:
        raise ValueError(f"eval_alpha must be positive, got {c.eval_alpha}")
    if c.milestones is not None:
        ms = tuple(c.milestones)
        if any(m < 1 for m in ms) or list(ms) != sorted(set(ms)):
            raise ValueError(f"milestones must be distinct, increasing 1-based epochs, got {ms}")


def default_warmup(epochs: int) -> float:
    """The warm-up (epochs) of a run of ``epochs`` that does not set one."""
    return 0.0 if epochs >= WARMUP_MAX_EPOCHS else round(WARMUP_FRACTION * epochs, 6)


def scaled_milestones(epochs: int) -> Tuple[int, ...]:
    """1-based epochs from which the lr is decayed once more.

    TRADES trains 100 epochs and decays from epochs 55, 75 and 90, so 54%, 74%
    and 89% of the run is done at the higher rate before each decay. The same
    fractions, rounded up, give the milestones of a shorter or longer run:
    ``ceil(epochs * (m - 1) / 100) + 1``. Milestones past the last epoch are
    dropped and milestones that coincide merge into one decay, so short runs
    keep most epochs at the full rate: 3 epochs -> (3,), 10 -> (7, 9, 10).
    """
    out = []
    for m in TRADES_MILESTONES:
        at = -(-epochs * (m - 1) // TRADES_EPOCHS) + 1
        if at <= epochs and at not in out:
            out.append(at)
    return tuple(out)


def lr_at(epoch: int, lr: float, milestones: Tuple[int, ...], decay: float = 0.1) -> float:
    """Learning rate of 1-based ``epoch``: ``lr * decay ** #{m <= epoch}``."""
    return lr * decay ** sum(epoch >= m for m in milestones)


def _load_split(config: TrainConfig, train: bool) -> Tuple[Tensor, Tensor]:
    if config.dataset == "mnist":
        if config.data_root is None:
            raise ValueError("MNIST has no default location: pass data_root (CLI: --data-root DIR)")
        return load_mnist(config.data_root, train=train)
    return load_fashion_mnist(config.data_root, train=train)


def eval_split(config: TrainConfig) -> Tuple[Tensor, Tensor]:
    """The evaluation images of a run: the test split, or its first ``holdout``
    images when the run trained on the rest."""
    x, y = _load_split(config, train=False)
    if config.train_split == "test":
        return x[: config.holdout], y[: config.holdout]
    return x, y


def load_data(config: TrainConfig) -> Splits:
    """Training and evaluation tensors (CPU) for ``config``."""
    if config.train_split == "test":
        x, y = _load_split(config, train=False)
        if config.holdout >= len(x):
            raise ValueError(f"holdout {config.holdout} leaves no training images (test split has {len(x)})")
        train_x, train_y = x[config.holdout :], y[config.holdout :]
    else:
        try:
            train_x, train_y = _load_split(config, train=True)
        except FileNotFoundError as e:
            raise FileNotFoundError(
                f"{e}. If only the test split exists, train on part of it and evaluate on the rest with "
                "train_split='test', holdout=N (CLI: --train-split test --holdout N)"
            ) from e
    if config.subset is not None:
        train_x, train_y = train_x[: config.subset], train_y[: config.subset]
    eval_x, eval_y = eval_split(config)
    return Splits(train_x, train_y, eval_x, eval_y)
