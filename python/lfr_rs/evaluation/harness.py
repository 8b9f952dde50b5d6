"""The one batched evaluation loop: every attack of a protocol on every batch,
per-sample outcomes and the passes each attack spent.

A protocol is a table ``{name: attack}`` whose attacks take ``(model, x, y)``
and return the adversarial batch, or ``(batch, {key: per-sample tensor})``
with extra per-sample values (DDN's L2 norms); see
:mod:`lfr_rs.evaluation.protocols`. :func:`run_attacks` runs the table,
checks every forward (finite ``(N, C)`` logits, labels in range), counts the
model's forward and backward passes per attack, and under ``torchrun`` shards
the rows itself, gathering the per-sample results in row order, so that the
summaries computed from them (``evaluate``, ``paper_protocol``) are the same
code in one process and in many.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Mapping, Optional, Tuple, Union

import torch
from torch import Tensor
from tqdm.auto import tqdm

from lfr_rs import distributed
from lfr_rs._checks import check_logits, check_pair
from lfr_rs._modes import enter_eval, restore_modes
from lfr_rs.evaluation.counting import PassCounter

__all__ = ["AttackFn", "HarnessRun", "fraction", "run_attacks"]

Model = Callable[[Tensor], Tensor]
AttackFn = Callable[[Model, Tensor, Tensor], Union[Tensor, Tuple[Tensor, Dict[str, Tensor]]]]


@dataclass
class HarnessRun:
    """Per-sample outcomes of a table of attacks on the same ``n`` inputs."""

    n: int
    #: ``(N,)`` bool: the clean input is classified correctly
    clean: Tensor
    #: per attack, ``(N,)`` bool: its output is classified correctly
    correct: Dict[str, Tensor]
    #: per extra key an attack returned, ``(N,)`` values
    values: Dict[str, Tensor] = field(default_factory=dict)
    #: per attack (and ``"clean"``): image-forward and image-backward passes, seconds
    forward: Dict[str, int] = field(default_factory=dict)
    backward: Dict[str, int] = field(default_factory=dict)
    seconds: Dict[str, float] = field(default_factory=dict)
    world_size: int = 1

    def passes(self) -> Dict[str, Dict[str, int]]:
        """JSON-friendly ``{name: {"forward": .., "backward": ..}}`` (the seconds
        stay out: a result must repeat exactly when the run does)."""
        return {k: {"forward": self.forward[k], "backward": self.backward[k]} for k in self.forward}


def _predict(model: Model, x: Tensor, labels: Optional[Tensor] = None) -> Tensor:
    with torch.no_grad():
        return check_logits(model(x), len(x), labels).argmax(1)


def run_attacks(
    model: Model,
    inputs: Tensor,
    labels: Tensor,
    attacks: Mapping[str, AttackFn],
    *,
    batch_size: int,
    progress: Optional[bool] = None,
    desc: str = "eval",
) -> HarnessRun:
    """Runs every attack of ``attacks`` on every batch of ``inputs`` with
    ``model`` in eval mode (its modes restored after). Per batch: the clean
    forward, then the attacks in table order, each followed by a checked
    forward of its output; random draws happen in that order."""
    check_pair(inputs, labels)
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    world = distributed.world_size()
    if world > 1:
        inputs, labels = distributed.shard(inputs, labels)
    counter = PassCounter(model)
    names = ["clean", *attacks]
    forward, backward, seconds = dict.fromkeys(names, 0), dict.fromkeys(names, 0), dict.fromkeys(names, 0.0)
    clean: List[Tensor] = []
    correct: Dict[str, List[Tensor]] = {k: [] for k in attacks}
    values: Dict[str, List[Tensor]] = {}

    def timed(name: str, fn: Callable[[], Tensor]) -> Tensor:
        before, tic = counter.snapshot(), time.perf_counter()
        out = fn()
        after = counter.snapshot()
        forward[name] += after[0] - before[0]
        backward[name] += after[1] - before[1]
        seconds[name] += time.perf_counter() - tic
        return out

    modes = enter_eval(model)
    try:
        with tqdm(total=len(inputs), unit="img", desc=desc, disable=None if progress is None else not progress) as bar:
            for x, y in zip(inputs.split(batch_size), labels.split(batch_size)):
                clean.append(timed("clean", lambda: _predict(counter, x, y) == y))
                for name, attack in attacks.items():
                    def one() -> Tensor:
                        out = attack(counter, x, y)
                        adv, extra = out if isinstance(out, tuple) else (out, {})
                        for key, value in extra.items():
                            values.setdefault(key, []).append(value.detach())
                        return _predict(counter, adv) == y

                    correct[name].append(timed(name, one))
                bar.update(len(x))
    finally:
        restore_modes(modes)

    def cat(parts: List[Tensor], dtype: torch.dtype) -> Tensor:
        local = torch.cat(parts) if parts else torch.empty(0, dtype=dtype, device=inputs.device)
        return distributed.gather_cat(local) if world > 1 else local

    run = HarnessRun(
        n=len(inputs), clean=cat(clean, torch.bool), correct={k: cat(v, torch.bool) for k, v in correct.items()},
        values={k: cat(v, v[0].dtype) for k, v in values.items()}, forward=forward, backward=backward,
        seconds=seconds, world_size=world,
    )
    if world > 1:
        totals = [int(v) for v in distributed.all_sum([run.n, *forward.values(), *backward.values()])]
        k = len(names)
        run.n = totals[0]
        run.forward = dict(zip(names, totals[1:1 + k]))
        run.backward = dict(zip(names, totals[1 + k:1 + 2 * k]))
        slowest = distributed.gather_objects(list(seconds.values()))
        run.seconds = {name: max(r[i] for r in slowest) for i, name in enumerate(names)}
    return run


def fraction(mask: Tensor, n: int) -> Optional[float]:
    """``mask.sum() / n`` (None for an empty set)."""
    return int(mask.sum()) / n if n else None
