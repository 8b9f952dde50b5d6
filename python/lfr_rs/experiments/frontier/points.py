"""What a frontier run trains: :class:`FrontierSettings` (a resolved Table 1
setting plus the inner-step budgets), its :class:`Point` s, each point's
training configuration, and the Pareto frontier of measured points."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple

from lfr_rs.losses import METHODS
from lfr_rs.experiments.table1.presets import TABLE1_METHODS, Preset, Table1Settings, resolve as resolve_table1, travel_alpha
from lfr_rs.training import Dataset, Split, TrainConfig

__all__ = [
    "DEFAULT_INNER_STEPS",
    "FRONTIER_METHODS",
    "NO_INNER_STEPS",
    "FrontierSettings",
    "Point",
    "pareto",
    "resolve",
]

FRONTIER_METHODS: Tuple[str, ...] = TABLE1_METHODS
# includes the quick preset's 3, so `--table1` can supply those points
DEFAULT_INNER_STEPS: Tuple[int, ...] = (1, 3, 10)
#: methods without an inner maximisation: one point each, whatever the budgets
NO_INNER_STEPS: Tuple[str, ...] = ("standard", "gradnorm")


class Point(NamedTuple):
    """One trained model of the frontier: ``inner_steps`` 0 for methods without
    an inner maximisation, ``hvp`` LFR's Hessian-vector product (None for the
    other methods)."""

    method: str
    inner_steps: int
    hvp: Optional[str] = None

    @property
    def name(self) -> str:
        """The point's folder under the run's ``out``: ``<method>-k<K>[-fd]``."""
        return f"{self.method}-k{self.inner_steps}" + ("-fd" if self.hvp == "fd" else "")

    @property
    def label(self) -> str:
        """``AT k5``, ``LFR k5 fd``, ``Standard``."""
        title = METHODS[self.method].title
        if self.method in NO_INNER_STEPS:
            return title
        return f"{title} k{self.inner_steps}" + (" fd" if self.hvp == "fd" else "")


@dataclass(frozen=True)
class FrontierSettings:
    """A frontier run: ``base`` is the Table 1 setting every point shares (its
    ``methods`` are the frontier's), ``inner_steps`` the budgets each method
    with an inner maximisation is trained at, ``fd`` adds LFR with
    ``hvp="fd"`` at the preset's inner steps."""

    base: Table1Settings
    inner_steps: Tuple[int, ...] = DEFAULT_INNER_STEPS
    fd: bool = True

    def points(self) -> Tuple[Point, ...]:
        points: List[Point] = []
        for method in self.base.methods:
            if method in NO_INNER_STEPS:
                points.append(Point(method, 0))
                continue
            hvp = "exact" if method == "lfr" else None
            points += [Point(method, k, hvp) for k in self.inner_steps]
        if self.fd and "lfr" in self.base.methods:
            points.append(Point("lfr", self.base.inner_steps, "fd"))
        return tuple(points)

    def inner_alpha(self, k: int) -> float:
        """The inner step size at ``k`` steps: the preset's rule, 4/3 eps travelled."""
        return travel_alpha(self.base.eps, k)

    def train_config(self, point: Point) -> TrainConfig:
        """``table1``'s configuration of ``point.method`` with the point's inner steps."""
        if point.method in NO_INNER_STEPS:
            return self.base.train_config(point.method)  # type: ignore[arg-type]
        s = dataclasses.replace(self.base, inner_steps=point.inner_steps, inner_alpha=self.inner_alpha(point.inner_steps))
        config = s.train_config(point.method)  # type: ignore[arg-type]
        if point.hvp is not None:
            config = dataclasses.replace(config, options={**config.options, "hvp": point.hvp})
        return config

    def record(self) -> Dict[str, Any]:
        """What ``settings.json`` holds: the shared settings (the frontier's
        methods and inner-step budgets may change between reruns)."""
        return {k: v for k, v in self.base.to_dict().items() if k != "methods"}

    def comparable(self) -> Dict[str, Any]:
        """The settings a rerun into the same folder must repeat."""
        return {k: v for k, v in self.base.comparable().items() if k != "methods"}

    def scaled(self) -> Tuple[str, ...]:
        """The preset's list of what it scaled, its inner-maximisation item
        rewritten for the frontier's own budgets (the preset's single budget
        would misdescribe a point at other steps)."""
        k = self.inner_steps
        alphas = ", ".join(f"{self.inner_alpha(n):g}" for n in k)
        fd = f"; LFR fd at the preset's {self.base.inner_steps}" if self.fd and "lfr" in self.base.methods else ""
        item = (f"inner maximisation: {', '.join(map(str, k))} steps of {alphas}{' respectively' if len(k) > 1 else ''}{fd} (paper: 40 of "
                f"{travel_alpha(self.base.eps, 40):g}; the same 4/3 eps travelled)")
        return tuple(item if s.startswith("inner maximisation:") else s for s in self.base.scaled)

    def to_dict(self) -> Dict[str, Any]:
        return {**self.base.to_dict(), "scaled": list(self.scaled()), "frontier_inner_steps": list(self.inner_steps),
                "fd": self.fd, "points": [p.name for p in self.points()]}


def resolve(
    preset: Preset = "quick",
    dataset: Dataset = "fashion-mnist",
    *,
    inner_steps: Sequence[int] = DEFAULT_INNER_STEPS,
    fd: bool = True,
    methods: Optional[Sequence[str]] = None,
    data_root: Optional[str] = None,
    train_split: Optional[Split] = None,
    holdout: Optional[int] = None,
    seed: Optional[int] = None,
    eps: Optional[float] = None,
    device: str = "cpu",
) -> FrontierSettings:
    """The frontier of ``preset`` on ``dataset``: :func:`lfr_rs.experiments.table1.resolve`'s
    settings (same defaults) trained at each of ``inner_steps``."""
    methods = FRONTIER_METHODS if methods is None else tuple(methods)
    steps = tuple(int(k) for k in inner_steps)
    if not steps or any(k < 1 for k in steps) or len(set(steps)) != len(steps):
        raise ValueError(f"inner_steps must be distinct integers >= 1, got {', '.join(map(str, steps)) or 'none'}")
    base = resolve_table1(preset, dataset, data_root=data_root, train_split=train_split, holdout=holdout,
                          methods=tuple(methods), seed=seed, eps=eps, device=device)
    return FrontierSettings(base=base, inner_steps=tuple(sorted(steps)), fd=bool(fd))


def pareto(points: Sequence[Mapping[str, Any]], *, time_key: str = "train_s", value_key: str = "strong") -> List[bool]:
    """Per point, whether it is on the frontier: no other point is at least as
    fast and at least as robust and strictly better in one of the two. Equal
    points (same time and robustness) are all on it."""
    pairs = [(float(p[time_key]), float(p[value_key])) for p in points]
    return [
        not any(t2 <= t and v2 >= v and (t2 < t or v2 > v) for t2, v2 in pairs)
        for t, v in pairs
    ]
