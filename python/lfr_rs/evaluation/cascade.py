"""``robust_accuracy``: an AutoAttack-style cascade of the Rust kernels.

Each attack runs only on the points every earlier attack failed on, packed
into full batches: the cascade mode of the evaluation harness
(:func:`lfr_rs.evaluation.harness.run_attacks`), which also checks, counts,
times and shards. ``robust_accuracy`` picks the attacks and summarises the
harness's per-sample masks: per attack, the robust accuracy after it, the
points it fooled, its time and the forward/backward passes it spent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, Optional, Tuple, Union, get_args

import torch
from torch import Tensor

from lfr_rs._checks import attack_names, check_pair
from lfr_rs._typing import CascadeAttack, Norm
from lfr_rs.evaluation.checks import MaskingReport, run_checks
from lfr_rs.evaluation.harness import AttackFn, run_attacks
from lfr_rs.evaluation.protocols import strong_attacks
from lfr_rs.precision import autocast_model

__all__ = ["AttackStats", "CASCADE_ATTACKS", "DEFAULT_ATTACKS", "STANDARD_ATTACKS", "RobustAccuracy", "format_strong_table",
           "masking_report", "robust_accuracy"]

CASCADE_ATTACKS: Tuple[CascadeAttack, ...] = get_args(CascadeAttack)
#: ``attacks=None``: AutoAttack's standard list for each norm without FAB-T (Square and FAB are L-inf only here)
DEFAULT_ATTACKS: Dict[str, Tuple[CascadeAttack, ...]] = {"linf": ("apgd-ce", "apgd-t", "square"),
                                                         "l2": ("apgd-ce", "apgd-t")}
#: ``attacks="standard"``: AutoAttack's ``version="standard"`` for L-inf (fra31/auto-attack, ``autoattack.py``:
#: APGD-CE, APGD-T over 9 targets, FAB-T over 9 targets, Square with 5000 queries; 100 iterations, 1 restart)
STANDARD_ATTACKS: Tuple[CascadeAttack, ...] = ("apgd-ce", "apgd-t", "fab-t", "square")
STANDARD_BUDGET: Dict[str, Any] = {"steps": 100, "n_target_classes": None, "queries": 5000, "restarts": 1}
#: what each preset matches, recorded with the result
PRESET_NOTES: Dict[str, str] = {
    "standard": "AutoAttack version='standard' (fra31/auto-attack 0.1): APGD-CE, APGD-T (9 targets), FAB-T (9 targets), "
                "Square (5000 queries), 100 iterations, 1 restart; L-inf",
}
#: ``n_target_classes=None``: AutoAttack's 9 target classes, fewer when the model has fewer than 10 classes
MAX_TARGET_CLASSES = 9
#: the DLR losses read the 3rd (untargeted) and 4th (targeted) largest logit: models with fewer classes cannot run them
MIN_CLASSES: Dict[str, int] = {"apgd-dlr": 3, "apgd-t": 4}


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
    autocast: Optional[str] = None,
) -> RobustAccuracy:
    """Robust accuracy under an AutoAttack-style cascade, with ``model`` in eval mode.

    ``attacks`` (a name or a sequence of distinct names) run in order, each
    only on the points all earlier ones failed on: ``"apgd-ce"``,
    ``"apgd-dlr"`` (APGD with the CE / DLR loss), ``"apgd-t"`` (APGD-T,
    targeted DLR over ``n_target_classes`` targets), ``"fab"`` / ``"fab-t"``
    (FAB, untargeted / over ``n_target_classes`` targets, ``steps``
    iterations; L-inf only) and ``"square"`` (Square, ``queries`` queries;
    L-inf only). ``attacks="standard"`` is AutoAttack's ``version="standard"``
    (``STANDARD_ATTACKS``: APGD-CE, APGD-T, FAB-T, Square) with its budgets,
    which are then the only ones accepted. ``attacks=None`` runs the cheaper
    default for the norm (``DEFAULT_ATTACKS``: APGD-CE, APGD-T and Square for L-inf,
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

    ``autocast="bf16"`` (or ``"fp16"``) runs the model's forwards, in the
    attacks, the clean pass and the checks alike, under ``torch.autocast``
    while the attacks' arithmetic stays float32 (:mod:`lfr_rs.precision`);
    the result's ``settings`` record it. A lower-precision model can only
    make the attacks weaker: compare with ``autocast=None`` before trusting it.

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
    model = autocast_model(model, autocast, inputs)
    preset = attacks if attacks == "standard" else None
    if preset is not None:
        _check_standard(norm, steps=steps, n_target_classes=n_target_classes, queries=queries, restarts=restarts)
        attacks = STANDARD_ATTACKS
    defaults = attacks is None or preset is not None
    attacks = attack_names(DEFAULT_ATTACKS[norm] if attacks is None else attacks, CASCADE_ATTACKS)
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    l_inf_only = [a for a in attacks if a in ("square", "fab", "fab-t")]
    if norm != "linf" and l_inf_only:
        raise ValueError(f"{', '.join(l_inf_only)}: L-inf attacks here; use norm='linf' or leave them out of attacks")

    def table(classes: Optional[int]) -> Dict[str, AttackFn]:
        return strong_attacks(_fit_to_classes(attacks, classes, defaults), eps=eps, norm=norm, steps=steps,
                              n_target_classes=_targets(n_target_classes, classes), queries=queries, restarts=restarts)

    run = run_attacks(model, inputs, labels, table, batch_size=batch_size, cascade=True, seed=seed, progress=progress)
    n, exact = run.n, run.world_size > 1

    def share(mask: Tensor) -> float:
        # one process: the float32 mean (the numbers stored results hold); torchrun: the exact count / n
        if not n:
            return 0.0
        return int(mask.sum()) / n if exact else float(mask.float().mean())

    stats: Dict[str, AttackStats] = {}
    before = run.clean
    for name, after in run.correct.items():
        stats[name] = AttackStats(name=name, accuracy=share(after), fooled=int((before & ~after).sum()),
                                  attacked=int(before.sum()), seconds=run.seconds[name], forward=run.forward[name],
                                  backward=run.backward[name])
        before = after
    settings = {"steps": steps, "n_target_classes": _targets(n_target_classes, run.classes), "queries": queries,
                "restarts": restarts, "seed": seed, "attack_order": list(run.correct), "autocast": autocast}
    if preset is not None:
        settings["preset"] = preset
        settings["matches"] = PRESET_NOTES[preset]
    if exact:
        settings["world_size"] = run.world_size
    result = RobustAccuracy(
        n=n, eps=eps, norm=norm, clean=share(run.clean), attacks=stats,
        worst=float(before.float().mean()) if n else 0.0, robust=before, adversarial=run.adversarial,
        clean_seconds=run.seconds["clean"], settings=settings,
    )
    if detect_masking:
        devices = [inputs.device] if inputs.device.type == "cuda" else []
        # seeded too, so the checks' random starts repeat and the caller's state is untouched
        with torch.random.fork_rng(devices=devices, enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(seed)
            result.masking = run_checks(model, inputs, labels, eps=eps, norm=norm, cascade=result,
                                        batch_size=batch_size, progress=progress)
    return result


def _check_standard(norm: str, **budget: Any) -> None:
    """``attacks="standard"`` is AutoAttack's set with AutoAttack's budgets: other budgets are refused."""
    if norm != "linf":
        raise ValueError("attacks='standard' is AutoAttack's L-inf standard set (FAB and Square are L-inf only here); "
                         "for L2 pass attacks=None (APGD-CE, APGD-T) or a list of names")
    changed = [f"{k}={v!r} (AutoAttack: {STANDARD_BUDGET[k]!r})" for k, v in budget.items() if v != STANDARD_BUDGET[k]]
    if changed:
        raise ValueError(f"attacks='standard' runs AutoAttack's budgets; got {', '.join(changed)}: pass the list "
                         f"{list(STANDARD_ATTACKS)} to change them")


def _targets(n_target_classes: Optional[int], classes: Optional[int]) -> int:
    """``n_target_classes``, or AutoAttack's 9 capped at the model's other classes."""
    if n_target_classes is not None:
        return n_target_classes
    return MAX_TARGET_CLASSES if classes is None else min(MAX_TARGET_CLASSES, classes - 1)


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
