"""Training loop for every method in :data:`lfr_rs.losses.METHODS`.

TRADES' MNIST recipe: SGD with momentum 0.9, lr 0.01, batch 128, 100 epochs,
lr x0.1 at epochs 55, 75 and 90 (scaled to shorter runs). Each batch runs the
method's inner maximisation with ``model.eval()`` and its outer loss with
``model.train()``, as TRADES' official code does.

``train(config, out_dir)`` writes, after every epoch and atomically,
``checkpoint.pt`` (model, optimizer, epoch, config, RNG state, history) and
``log.json`` (config plus one entry per epoch); ``resume=True`` continues from
the checkpoint at the next epoch and reproduces the uninterrupted run.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import os
import pickle
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Callable, Dict, List, Literal, NamedTuple, Optional, Tuple, Union, get_args

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from lfr_rs import __version__
from lfr_rs._checks import check_pair
from lfr_rs.data import load_fashion_mnist, load_mnist
from lfr_rs.evaluate import evaluate
from lfr_rs.losses import Defense, Method, make_method
from lfr_rs.models import SmallCNN

__all__ = [
    "CHECKPOINT",
    "LOG",
    "Dataset",
    "Split",
    "TrainConfig",
    "TrainResult",
    "eval_split",
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

Dataset = Literal["mnist", "fashion-mnist"]
Split = Literal["train", "test"]
PathLike = Union[str, "os.PathLike[str]"]

CHECKPOINT = "checkpoint.pt"
LOG = "log.json"
TRADES_MILESTONES = (55, 75, 90)
TRADES_EPOCHS = 100
# fields that may differ when a run is resumed elsewhere
_RELOCATABLE = ("data_root", "device")


@dataclass(frozen=True)
class TrainConfig:
    """One training run. ``options`` are the method's (see
    :func:`lfr_rs.losses.method_options`), ``model`` the ``SmallCNN`` kwargs;
    ``milestones=None`` scales TRADES' 55/75/90-of-100 to ``epochs``.
    ``train_split="test"`` trains on the test split minus its first ``holdout``
    images, which become the evaluation set. ``subset`` keeps the first N
    training images; ``eval_n > 0`` adds clean and PGD accuracy on the first
    ``eval_n`` evaluation images to every epoch's log."""

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
        return dataclasses.replace(self, options=options, model=model, milestones=milestones)

    def build_method(self) -> Defense:
        return make_method(self.method, **self.options)


class TrainResult(NamedTuple):
    model: nn.Module
    history: List[Dict[str, Any]]
    checkpoint: Path


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


def scaled_milestones(epochs: int) -> Tuple[int, ...]:
    """1-based epochs from which the lr is decayed once more: TRADES' 55, 75, 90
    of 100 scaled to ``epochs`` (milestones before epoch 2 are dropped)."""
    return tuple(m for m in (epochs * r // TRADES_EPOCHS for r in TRADES_MILESTONES) if m >= 2)


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


def _atomic_write(path: Path, write: Callable[[IO[bytes]], object]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "xb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def save_checkpoint(path: PathLike, state: Dict[str, Any]) -> None:
    """``torch.save`` to a temporary file beside ``path``, then ``os.replace``."""
    _atomic_write(Path(path), lambda f: torch.save(state, f))


def write_json(path: PathLike, obj: Any) -> None:
    """Atomic JSON write (strict: no NaN)."""
    _atomic_write(Path(path), lambda f: f.write(json.dumps(obj, indent=2, allow_nan=False).encode() + b"\n"))


def load_checkpoint(path: PathLike, map_location: Union[str, torch.device] = "cpu") -> Dict[str, Any]:
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError) as e:
        raise ValueError(f"{path} is not a readable lfr-rs checkpoint: {e}") from e
    if not isinstance(state, dict) or not {"model", "config", "epoch"} <= state.keys():
        raise ValueError(f"{path} is not an lfr-rs training checkpoint")
    return state


def load_model(path: PathLike, device: Union[str, torch.device] = "cpu") -> Tuple[nn.Module, TrainConfig]:
    """The checkpoint's SmallCNN (eval mode, on ``device``) and its config."""
    state = load_checkpoint(path, map_location=device)
    config = TrainConfig.from_dict(state["config"])
    model = SmallCNN(**config.model).to(device)
    model.load_state_dict(state["model"])
    return model.eval(), config


def train_epoch(
    model: nn.Module,
    method: Defense,
    optimizer: torch.optim.Optimizer,
    inputs: Tensor,
    labels: Tensor,
    *,
    batch_size: int,
    order: Optional[Tensor] = None,
    progress: Optional[bool] = None,
    desc: Optional[str] = None,
) -> Dict[str, float]:
    """One pass over ``inputs[order]`` in batches. Returns the mean loss and the
    clean accuracy on the training batches (eval mode, before each step)."""
    check_pair(inputs, labels)
    order = torch.arange(len(inputs)) if order is None else order
    total, correct, seen = 0.0, 0, 0
    bar = tqdm(order.split(batch_size), desc=desc, disable=None if progress is None else not progress, leave=False)
    for idx in bar:
        idx = idx.to(inputs.device)
        x, y = inputs[idx], labels[idx]
        model.eval()
        with torch.no_grad():
            correct += int((model(x).argmax(1) == y).sum())
        x_adv = method.perturb(model, x, y)
        model.train()
        optimizer.zero_grad(set_to_none=True)
        loss = method.loss(model, x, y, x_adv)
        loss.backward()
        optimizer.step()
        value = float(loss.detach())
        if value != value or value in (float("inf"), float("-inf")):
            raise FloatingPointError(f"{method.name} loss is {value} after {seen} samples; lower the lr")
        total += value * len(y)
        seen += len(y)
        bar.set_postfix(loss=f"{total / seen:.4f}", acc=f"{correct / seen:.3f}")
    model.eval()
    return {"loss": total / max(seen, 1), "train_acc": correct / max(seen, 1)}


def _rng_state(shuffle: torch.Generator) -> Dict[str, Any]:
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []
    return {"torch": torch.get_rng_state(), "cuda": cuda, "shuffle": shuffle.get_state()}


def _set_rng_state(state: Dict[str, Any], shuffle: torch.Generator) -> None:
    torch.set_rng_state(state["torch"].cpu())
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
    shuffle.set_state(state["shuffle"].cpu())


def _check_same_run(saved: Dict[str, Any], config: TrainConfig, path: Path) -> None:
    ours = config.to_dict()
    diff = [f"{k}: checkpoint {saved.get(k)!r}, now {ours[k]!r}" for k in ours if k not in _RELOCATABLE and saved.get(k) != ours[k]]
    if diff:
        raise ValueError(f"cannot resume {path}: the run differs ({'; '.join(diff)})")


def train(
    config: TrainConfig,
    out_dir: PathLike,
    *,
    resume: bool = False,
    stop_after: Optional[int] = None,
    progress: Optional[bool] = None,
    verbose: bool = True,
) -> TrainResult:
    """Trains ``SmallCNN(**config.model)`` with ``config.method``, checkpointing
    every epoch into ``out_dir``.

    ``resume=True`` continues ``out_dir/checkpoint.pt`` when it exists (the
    config must match but for ``data_root`` and ``device``) and starts afresh
    otherwise; without it an existing checkpoint is an error. ``stop_after``
    returns after that many epochs of this call (resume later).
    ``progress=None`` shows a bar on terminals only. Seeds torch's global RNG
    with ``config.seed`` (model initialisation, dropout, random starts).
    """
    config = config.resolved()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = out / CHECKPOINT
    if ckpt.exists() and not resume:
        raise FileExistsError(f"{ckpt} exists: resume it (--resume) or choose another output directory")
    data = load_data(config)
    device = torch.device(config.device)
    train_x, train_y = data.train_x.to(device), data.train_y.to(device)
    eval_x, eval_y = data.eval_x[: config.eval_n].to(device), data.eval_y[: config.eval_n].to(device)
    method = config.build_method()

    torch.manual_seed(config.seed)
    shuffle = torch.Generator().manual_seed(config.seed)
    model = SmallCNN(**config.model).to(device)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
    )
    history: List[Dict[str, Any]] = []
    start = 0
    if ckpt.exists():
        state = load_checkpoint(ckpt, map_location=device)
        _check_same_run(state["config"], config, ckpt)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        _set_rng_state(state["rng"], shuffle)
        start, history = int(state["epoch"]), list(state["history"])
        write_json(out / LOG, {"config": config.to_dict(), "epochs": history})
        if verbose:
            tqdm.write(f"resuming {ckpt} after epoch {start}/{config.epochs}")

    milestones = config.milestones or ()
    last = config.epochs if stop_after is None else min(config.epochs, start + stop_after)
    for epoch in range(start + 1, last + 1):
        lr = lr_at(epoch, config.lr, milestones, config.lr_decay)
        for group in optimizer.param_groups:
            group["lr"] = lr
        tic = time.perf_counter()
        order = torch.randperm(len(train_x), generator=shuffle)
        stats = train_epoch(
            model, method, optimizer, train_x, train_y, batch_size=config.batch_size, order=order,
            progress=progress, desc=f"{config.method} {epoch}/{config.epochs}",
        )
        entry: Dict[str, Any] = {"epoch": epoch, **stats, "lr": lr, "time_s": time.perf_counter() - tic}
        if config.eval_n:
            tic = time.perf_counter()
            entry["eval"] = evaluate(model, eval_x, eval_y, attacks=("pgd",), progress=False)
            entry["eval_time_s"] = time.perf_counter() - tic
        history.append(entry)
        save_checkpoint(ckpt, {
            "format": 1, "lfr_rs_version": __version__, "epoch": epoch, "config": config.to_dict(),
            "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "rng": _rng_state(shuffle), "history": history,
        })
        write_json(out / LOG, {"config": config.to_dict(), "epochs": history})
        if verbose:
            tqdm.write(_summary(entry, config.epochs))
    return TrainResult(model.eval(), history, ckpt)


def _summary(entry: Dict[str, Any], epochs: int) -> str:
    line = (
        f"epoch {entry['epoch']}/{epochs}  loss {entry['loss']:.4f}  train acc {entry['train_acc']:.2%}  "
        f"lr {entry['lr']:.4g}  {entry['time_s']:.1f}s"
    )
    if "eval" in entry:
        ev = entry["eval"]
        line += f"  | eval n={ev['n']} clean {ev['clean']:.2%} pgd{ev['steps']} {ev['pgd']:.2%}"
    return line
