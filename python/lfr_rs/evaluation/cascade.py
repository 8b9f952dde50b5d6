"""``robust_accuracy``: an AutoAttack-style cascade of the Rust kernels.

Each attack runs only on the points every earlier attack failed on, packed
into full batches; the result keeps, per attack, the robust accuracy after it,
the points it fooled, its time and the forward/backward passes it spent.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple, Union, get_args

import torch
from torch import Tensor
from tqdm.auto import tqdm

from lfr_rs import distributed
from lfr_rs._modes import enter_eval, restore_modes
from lfr_rs._checks import attack_names, check_logits, check_pair
from lfr_rs._typing import CascadeAttack, Norm
from lfr_rs.attacks import apgd, square
from lfr_rs.evaluation.checks import MaskingReport, run_checks
from lfr_rs.evaluation.counting import PassCounter

__all__ = ["AttackStats", "CASCADE_ATTACKS", "DEFAULT_ATTACKS", "RobustAccuracy", "format_strong_table", "masking_report",
           "robust_accuracy"]

CASCADE_ATTACKS: Tuple[CascadeAttack, ...] = get_args(CascadeAttack)
#: ``attacks=None``: AutoAttack's standard list for each norm (Square is L-inf only)
DEFAULT_ATTACKS: Dict[str, Tuple[CascadeAttack, ...]] = {"linf": ("apgd-ce", "apgd-t", "square"),
                                                         "l2": ("apgd-ce", "apgd-t")}
#: ``n_target_classes=None``: AutoAttack's 9 target classes, fewer when the model has fewer than 10 classes
MAX_TARGET_CLASSES = 9
#: the DLR losses read the 3rd (untargeted) and 4th (targeted) largest logit: models with fewer classes cannot run them
MIN_CLASSES: Dict[str, int] = {"apgd-dlr": 3, "apgd-t": 4}
Model = Callable[[Tensor], Tensor]


@dataclass
class AttackStats:
    """One attack of the cascade."""

    name: str
    #: robust accuracy after this attack and every earlier one
    accuracy: float
    #: points this attack fooled that every earlier attack failed on
    fooled: int
    #: points it was run on
    attacked: int
    seconds: float
    #: image-forward and image-backward passes (one image through the model counts 1)
    forward: int
    backward: int


@dataclass
class RobustAccuracy:
    """What ``robust_accuracy`` returns."""

    n: int
    eps: float
    norm: str
    clean: float
    attacks: Dict[str, AttackStats]
    #: accuracy against all the attacks, per sample (the last attack's ``accuracy``)
    worst: float
    #: ``(N,)`` bool, True where no attack fooled the model (and the clean input is correct)
    robust: Tensor
    #: per sample the adversarial input that fooled the model, or the input itself
    adversarial: Tensor
    clean_seconds: float = 0.0
    settings: Dict[str, Any] = field(default_factory=dict)
    #: the gradient-masking report (None when ``detect_masking=False``)
    masking: Optional[Any] = None

    def summary(self) -> Dict[str, Any]:
        """JSON-friendly numbers (no tensors)."""
        out: Dict[str, Any] = {"protocol": "strong", "n": self.n, "eps": self.eps, "norm": self.norm,
                               "clean": self.clean, "worst": self.worst, **self.settings}
        out["attacks"] = {k: vars(v).copy() for k, v in self.attacks.items()}
        out["seconds"] = self.clean_seconds + sum(s.seconds for s in self.attacks.values())
        if self.masking is not None:
            out["masking"] = self.masking.summary()
        return out


def _runner(name: str, model: Model, eps: float, norm: str, steps: int, n_target_classes: int,
            queries: int, restarts: int) -> Callable[[Tensor, Tensor], Tensor]:
    if name == "apgd-ce":
        return lambda x, y: apgd(model, x, y, eps=eps, steps=steps, norm=norm, loss="ce", restarts=restarts)
    if name == "apgd-dlr":
        return lambda x, y: apgd(model, x, y, eps=eps, steps=steps, norm=norm, loss="dlr", restarts=restarts)
    if name == "apgd-t":
        return lambda x, y: apgd(model, x, y, eps=eps, steps=steps, norm=norm, loss="dlr", targeted=True,
                                 n_target_classes=n_target_classes, restarts=restarts)
    return lambda x, y: square(model, x, y, eps=eps, queries=queries, restarts=restarts)


def _predict(model: Model, x: Tensor, batch_size: int, labels: Optional[Tensor] = None) -> Tuple[Tensor, Optional[int]]:
    """Predicted classes and the model's class count (None for no rows); the
    logits are checked as the kernels check theirs, with ``labels`` in range."""
    preds: List[Tensor] = []
    classes: Optional[int] = None
    with torch.no_grad():
        for i, b in enumerate(x.split(batch_size)):
            yb = None if labels is None else labels[i * batch_size:(i + 1) * batch_size]
            out = check_logits(model(b), len(b), yb)
            classes = out.shape[1]
            preds.append(out.argmax(1))
    return (torch.cat(preds) if preds else x.new_empty(0, dtype=torch.long)), classes


def _fit_to_classes(attacks: Tuple[str, ...], classes: Optional[int], defaults: bool) -> Tuple[str, ...]:
    """``attacks`` without those whose DLR loss needs more classes than the
    model has: dropped from the default list (AutoAttack's standard set cannot
    run APGD-T on such a model either), a ``ValueError`` naming them when they
    were asked for, raised before any attack runs."""
    too_few = [a for a in attacks if classes is not None and classes < MIN_CLASSES.get(a, 0)]
    if not too_few:
        return attacks
    if defaults:
        return tuple(a for a in attacks if a not in too_few)
    needs = ", ".join(f"{a} at least {MIN_CLASSES[a]}" for a in too_few)
    raise ValueError(f"the DLR losses need more classes than this model's {classes} ({needs}): leave "
                     f"{', '.join(too_few)} out of attacks (attacks=None drops them for such models)")


def robust_accuracy(
    model: torch.nn.Module,
    inputs: Tensor,
    labels: Tensor,
    *,
    eps: float,
    attacks: Union[str, Iterable[str], None] = None,
    norm: Norm = "linf",
    batch_size: int = 500,
    steps: int = 100,
    n_target_classes: Optional[int] = None,
    queries: int = 5000,
    restarts: int = 1,
    seed: Optional[int] = 0,
    detect_masking: bool = True,
    progress: Optional[bool] = None,
) -> RobustAccuracy:
    """Robust accuracy under an AutoAttack-style cascade, with ``model`` in eval mode.

    ``attacks`` (a name or a sequence of distinct names) run in order, each
    only on the points all earlier ones failed on: ``"apgd-ce"``,
    ``"apgd-dlr"`` (APGD with the CE / DLR loss), ``"apgd-t"`` (APGD-T,
    targeted DLR over ``n_target_classes`` targets) and ``"square"`` (Square,
    ``queries`` queries; L-inf only). ``attacks=None`` runs AutoAttack's list
    for the norm (``DEFAULT_ATTACKS``: APGD-CE, APGD-T and Square for L-inf,
    APGD-CE and APGD-T for L2; without APGD-T for models with fewer than 4
    classes, whose targeted DLR loss it cannot compute); ``n_target_classes=None``
    takes ``min(9, classes - 1)``. ``inputs`` must be on the model's device; the
    model must return finite ``(N, C)`` logits and ``labels`` lie in ``[0, C)``.

    ``seed`` seeds torch's generator before the clean pass, before each
    attack and before the masking checks (the caller's generator state is
    restored afterwards), as AutoAttack and torchattacks do; ``None`` draws
    from the current state. Two calls with the same seed give the same
    numbers only when they do not overlap: torch's generator is
    process-global, so calls running at the same time in several threads
    draw from one shared state and are not reproducible (serialise them with
    a lock, or use separate processes). Overlapping calls on one model do
    leave its train/eval flags as they were before the first of them.

    With ``detect_masking`` the gradient-masking checks
    (:mod:`lfr_rs.evaluation.checks`) run on the result and raise ``GradientMaskingWarning`` when one fails.

    Under ``torchrun`` (an initialized process group) each rank attacks its
    contiguous share of the rows and every rank returns the whole set's
    result: counts summed exactly, ``robust`` and ``adversarial`` gathered in
    row order; the masking checks likewise run on each rank's share and are
    summed, so their numbers and warnings cover the whole set.
    """
    check_pair(inputs, labels)
    if norm not in get_args(Norm):
        raise ValueError(f"unknown norm {norm!r}; expected one of {get_args(Norm)}")
    defaults = attacks is None
    attacks = attack_names(DEFAULT_ATTACKS[norm] if defaults else attacks, CASCADE_ATTACKS)
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if norm != "linf" and "square" in attacks:
        raise ValueError("square is the L-inf Square Attack; use norm='linf' or leave it out of attacks")
    counter = PassCounter(model)
    all_inputs, all_labels = inputs, labels
    sharded = distributed.world_size() > 1
    if sharded:
        inputs, labels = distributed.shard(inputs, labels)
    n = len(inputs)
    modes = enter_eval(model)
    devices = [inputs.device] if inputs.device.type == "cuda" else []
    stats: Dict[str, AttackStats] = {}
    try:
        with torch.random.fork_rng(devices=devices, enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(seed)
            t0 = time.perf_counter()
            predicted, classes = _predict(counter, inputs, batch_size, labels)
            robust = predicted == labels
            clean_seconds = time.perf_counter() - t0
            clean = float(robust.float().mean()) if n else 0.0
            if sharded:  # a rank without rows saw no logits: every rank takes the class count one of them saw
                classes = next((c for c in distributed.gather_objects(classes) if c is not None), None)
            attacks = _fit_to_classes(attacks, classes, defaults)
            targets = n_target_classes
            if targets is None:
                targets = MAX_TARGET_CLASSES if classes is None else min(MAX_TARGET_CLASSES, classes - 1)
            runs = {a: _runner(a, counter, eps, norm, steps, targets, queries, restarts) for a in attacks}
            adversarial = inputs.detach().clone()
            for pos, name in enumerate(attacks):
                todo = robust.nonzero().squeeze(1)
                before = counter.snapshot()
                t0 = time.perf_counter()
                fooled = 0
                if seed is not None:
                    torch.manual_seed(seed)
                with tqdm(total=len(todo), unit="img", desc=name, position=pos,
                          disable=None if progress is None else not progress, leave=progress is True) as bar:
                    for idx in todo.split(batch_size):
                        x, y = inputs[idx], labels[idx]
                        adv = runs[name](x, y)
                        broken = _predict(counter, adv, batch_size)[0] != y
                        hit = idx[broken]
                        adversarial[hit] = adv[broken]
                        robust[hit] = False
                        fooled += int(broken.sum())
                        bar.update(len(idx))
                after = counter.snapshot()
                stats[name] = AttackStats(
                    name=name, accuracy=float(robust.float().mean()) if n else 0.0, fooled=fooled,
                    attacked=len(todo), seconds=time.perf_counter() - t0,
                    forward=after[0] - before[0], backward=after[1] - before[1],
                )
            result = RobustAccuracy(
                n=n, eps=eps, norm=norm, clean=clean, attacks=stats, worst=float(robust.float().mean()) if n else 0.0,
                robust=robust, adversarial=adversarial, clean_seconds=clean_seconds,
                settings={"steps": steps, "n_target_classes": targets, "queries": queries, "restarts": restarts,
                          "seed": seed, "attack_order": list(attacks)},
            )
            if sharded:
                result = _combine(result)
            if detect_masking:
                # seeded here too, so the checks' random starts repeat and the caller's state is untouched
                if seed is not None:
                    torch.manual_seed(seed)
                result.masking = run_checks(model, all_inputs, all_labels, eps=eps, norm=norm, cascade=result,
                                            batch_size=batch_size, progress=progress)
    finally:
        restore_modes(modes)
    return result


def _combine(local: RobustAccuracy) -> RobustAccuracy:
    """Every rank's result on its shard merged into the whole set's: counts
    summed exactly, per-sample masks and inputs gathered in rank (= row)
    order, times the slowest rank's."""
    n_r = local.n
    own = [n_r, round(local.clean * n_r)]
    for s in local.attacks.values():
        own += [round(s.accuracy * n_r), s.fooled, s.attacked, s.forward, s.backward]
    total = [int(v) for v in distributed.all_sum(own)]
    n, clean = total[0], total[1]
    seconds = distributed.gather_objects([local.clean_seconds, *(s.seconds for s in local.attacks.values())])
    stats = {}
    for i, name in enumerate(local.attacks):
        robust_after, fooled, attacked, forward, backward = total[2 + 5 * i: 7 + 5 * i]
        stats[name] = AttackStats(name=name, accuracy=robust_after / n if n else 0.0, fooled=fooled,
                                  attacked=attacked, seconds=max(r[i + 1] for r in seconds),
                                  forward=forward, backward=backward)
    robust = distributed.gather_cat(local.robust)
    return dataclasses.replace(
        local, n=n, clean=clean / n if n else 0.0, attacks=stats, worst=float(robust.float().mean()) if n else 0.0,
        robust=robust, adversarial=distributed.gather_cat(local.adversarial),
        clean_seconds=max(r[0] for r in seconds), settings={**local.settings, "world_size": distributed.world_size()},
    )


def masking_report(
    model: torch.nn.Module,
    inputs: Tensor,
    labels: Tensor,
    *,
    eps: float,
    norm: Norm = "linf",
    cascade: Optional[RobustAccuracy] = None,
    batch_size: int = 500,
    eps1_n: int = 100,
    warn: bool = True,
    progress: Optional[bool] = None,
) -> MaskingReport:
    """The gradient-masking checks of :func:`lfr_rs.evaluation.checks.run_checks`
    on ``model``: on ``cascade`` (a ``robust_accuracy`` result on the same
    inputs) when given, otherwise on a cascade of ``robust_accuracy``'s
    default attacks for ``norm`` run here first. With ``warn`` each failed
    check raises a ``GradientMaskingWarning``."""
    check_pair(inputs, labels)
    if cascade is None:
        cascade = robust_accuracy(model, inputs, labels, eps=eps, norm=norm, batch_size=batch_size,
                                  detect_masking=False, progress=progress)
    return run_checks(model, inputs, labels, eps=eps, norm=norm, cascade=cascade, batch_size=batch_size,
                      eps1_n=eps1_n, warn=warn, progress=progress)


def format_strong_table(name: str, summary: Dict[str, Any]) -> str:
    """The cascade of one model (``RobustAccuracy.summary()``) as a table."""
    lines = [
        f"{name}: strong evaluation (cascade) at eps={summary['eps']} ({summary['norm']}), n={summary['n']}: "
        f"clean {100 * summary['clean']:.2f}%, worst case {100 * summary['worst']:.2f}%",
        "| attack | robust accuracy after | fooled | attacked | seconds | forward | backward |",
        "|---|---|---|---|---|---|---|",
    ]
    for attack, s in summary["attacks"].items():
        lines.append(f"| {attack} | {100 * s['accuracy']:.2f}% | {s['fooled']} | {s['attacked']} | {s['seconds']:.1f} "
                     f"| {s['forward']} | {s['backward']} |")
    for message in summary.get("masking", {}).get("warnings", []):
        lines.append(f"GradientMaskingWarning: {message}")
    return "\n".join(lines)
