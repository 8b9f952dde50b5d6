"""The one batched evaluation loop of every protocol: attacks on batches,
per-sample outcomes and the passes each attack spent.

A protocol is a table ``{name: attack}`` whose attacks take ``(model, x, y)``
and return the adversarial batch, or ``(batch, {key: per-sample tensor})``
with extra per-sample values (DDN's L2 norms); see
:mod:`lfr_rs.evaluation.protocols`. :func:`run_attacks` runs the table in one
of two orders: every attack on every batch (``evaluate``, ``paper_protocol``),
or, with ``cascade=True``, each attack over all the rows that are still
correct (``robust_accuracy``'s AutoAttack-style cascade). Either way it checks
every forward (finite ``(N, C)`` logits, labels in range), counts the model's
forward and backward passes per attack, and under ``torchrun`` shards the
rows itself, gathering the per-sample results in row order, so that the
summaries computed from them are the same code in one process and in many.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, Mapping, Optional, Tuple, Union

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
Table = Union[Mapping[str, AttackFn], Callable[[Optional[int]], Mapping[str, AttackFn]]]
Rows = Union[slice, Tensor]


@dataclass
class HarnessRun:
    """Per-sample outcomes of a table of attacks on the same ``n`` inputs."""

    n: int
    #: ``(N,)`` bool: the clean input is classified correctly
    clean: Tensor
    #: per attack, ``(N,)`` bool: its output is classified correctly; in cascade
    #: mode False where it did not run, so each mask holds the survivors after that attack
    correct: Dict[str, Tensor]
    #: per extra key an attack returned, ``(N,)`` values (zero where the attack did not run)
    values: Dict[str, Tensor] = field(default_factory=dict)
    #: per attack (and ``"clean"``): image-forward and image-backward passes, seconds
    forward: Dict[str, int] = field(default_factory=dict)
    backward: Dict[str, int] = field(default_factory=dict)
    seconds: Dict[str, float] = field(default_factory=dict)
    world_size: int = 1
    #: the model's class count, as the clean forwards saw it (every rank agreeing)
    classes: Optional[int] = None
    cascade: bool = False
    #: cascade mode: per sample the output that fooled the model, or the input itself
    adversarial: Optional[Tensor] = None

    def passes(self) -> Dict[str, Dict[str, int]]:
        """JSON-friendly ``{name: {"forward": .., "backward": ..}}`` (the seconds
        stay out: a result must repeat exactly when the run does)."""
        return {k: {"forward": self.forward[k], "backward": self.backward[k]} for k in self.forward}


def _predict(model: Model, x: Tensor, labels: Optional[Tensor] = None) -> Tensor:
    with torch.no_grad():
        return check_logits(model(x), len(x), labels).argmax(1)


class _Steps:
    """What one step of the loop does, on the rows ``rows`` of this rank's
    share: the clean forward, or one attack and the checked forward of its
    output, each counted and timed under its name."""

    def __init__(self, model: Model, inputs: Tensor, labels: Tensor, cascade: bool) -> None:
        self.model, self.inputs, self.labels = PassCounter(model), inputs, labels
        self.run = HarnessRun(n=len(inputs), clean=torch.zeros(len(labels), dtype=torch.bool, device=labels.device),
                              correct={}, forward={"clean": 0}, backward={"clean": 0}, seconds={"clean": 0.0},
                              cascade=cascade, adversarial=inputs.detach().clone() if cascade else None)

    def clean(self, rows: Rows) -> None:
        x, y = self.inputs[rows], self.labels[rows]
        with self.model.charged(self.run, "clean"), torch.no_grad():
            logits = check_logits(self.model(x), len(x), y)
        self.run.classes = logits.shape[1]
        self.run.clean[rows] = logits.argmax(1) == y

    def attack(self, name: str, attack: AttackFn, rows: Rows) -> None:
        run, x, y = self.run, self.inputs[rows], self.labels[rows]
        if name not in run.correct:
            run.correct[name] = torch.zeros_like(run.clean)
        with self.model.charged(run, name):
            out = attack(self.model, x, y)
            adv, extra = out if isinstance(out, tuple) else (out, {})
            ok = _predict(self.model, adv) == y
        for key, value in extra.items():
            if key not in run.values:
                run.values[key] = value.new_zeros((run.n, *value.shape[1:]))
            run.values[key][rows] = value.detach()
        run.correct[name][rows] = ok
        if run.adversarial is not None:
            run.adversarial[rows[~ok]] = adv[~ok]

    def table(self, attacks: Table) -> Mapping[str, AttackFn]:
        """``attacks``, or what it makes of the class count, every rank taking
        the one the first of them saw (a rank's share may be empty)."""
        if distributed.world_size() > 1:
            self.run.classes = next((c for c in distributed.gather_objects(self.run.classes) if c is not None), None)
        return attacks(self.run.classes) if callable(attacks) else attacks


def run_attacks(
    model: Model,
    inputs: Tensor,
    labels: Tensor,
    attacks: Table,
    *,
    batch_size: int,
    cascade: bool = False,
    seed: Optional[int] = None,
    progress: Optional[bool] = None,
    desc: str = "eval",
) -> HarnessRun:
    """Runs the attacks of ``attacks`` on ``inputs`` with ``model`` in eval mode
    (its modes restored after); ``attacks`` may also be a function of the
    model's class count, called once the first clean forward has seen it.

    By default, per batch: the clean forward, then every attack in table
    order, each followed by a checked forward of its output. With
    ``cascade=True``: the clean forward of every batch, then each attack in
    table order on the rows every earlier attack failed on (and the clean
    input was correct on), packed into batches of ``batch_size``. Random draws
    happen in that order; with ``seed``, ``torch.manual_seed(seed)`` runs
    before the clean forwards and, in cascade mode, before each attack, and
    the caller's generator state is restored afterwards."""
    check_pair(inputs, labels)
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    world = distributed.world_size()
    if world > 1:
        inputs, labels = distributed.shard(inputs, labels)
    steps = _Steps(model, inputs, labels, cascade)
    batches = [slice(i, i + batch_size) for i in range(0, len(inputs), batch_size)] or [slice(0, 0)]
    devices = [inputs.device] if inputs.device.type == "cuda" else []
    modes = enter_eval(model)
    try:
        with torch.random.fork_rng(devices=devices, enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(seed)
            if not cascade:
                table: Optional[Mapping[str, AttackFn]] = None
                with _bar(len(inputs), desc, progress) as bar:
                    for rows in batches:
                        steps.clean(rows)
                        table = steps.table(attacks) if table is None else table
                        for name, attack in table.items():
                            steps.attack(name, attack, rows)
                        bar.update(len(inputs[rows]))
            else:
                for rows in batches:
                    steps.clean(rows)
                survivors = steps.run.clean
                for pos, (name, attack) in enumerate(steps.table(attacks).items()):
                    todo = survivors.nonzero().squeeze(1)
                    if seed is not None:
                        torch.manual_seed(seed)
                    with _bar(len(todo), name, progress, position=pos, leave=progress is True) as bar:
                        for rows in todo.split(batch_size):
                            steps.attack(name, attack, rows)
                            bar.update(len(rows))
                    survivors = steps.run.correct[name]
    finally:
        restore_modes(modes)
    return _gathered(steps.run) if world > 1 else steps.run


def _bar(total: int, desc: str, progress: Optional[bool], position: Optional[int] = None, leave: bool = True) -> tqdm:
    return tqdm(total=total, unit="img", desc=desc, position=position, leave=leave,
                disable=None if progress is None else not progress)


def _gathered(run: HarnessRun) -> HarnessRun:
    """Every rank's run on its share merged into the whole set's: per-sample
    tensors gathered in rank (= row) order, counts summed exactly, times the
    slowest rank's."""
    names = list(run.forward)
    totals = [int(v) for v in distributed.all_sum([run.n, *run.forward.values(), *run.backward.values()])]
    k = len(names)
    slowest = distributed.gather_objects(list(run.seconds.values()))
    return HarnessRun(
        n=totals[0], clean=distributed.gather_cat(run.clean),
        correct={name: distributed.gather_cat(v) for name, v in run.correct.items()},
        values={key: distributed.gather_cat(v) for key, v in run.values.items()},
        forward=dict(zip(names, totals[1:1 + k])), backward=dict(zip(names, totals[1 + k:1 + 2 * k])),
        seconds={name: max(r[i] for r in slowest) for i, name in enumerate(names)},
        world_size=distributed.world_size(), classes=run.classes, cascade=run.cascade,
        adversarial=None if run.adversarial is None else distributed.gather_cat(run.adversarial),
    )


def fraction(mask: Tensor, n: int) -> Optional[float]:
    """``mask.sum() / n`` (None for an empty set)."""
    return int(mask.sum()) / n if n else None
