"""Shared helpers for the benchmark scripts: thread setup, environment record,
MNIST and a cached standard-trained SmallCNN, interleaved timing, the
markdown table and the JSON file.

Benchmarks are scripts, not tests: run them on a quiet machine.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

from lfr_rs._machine import cpu_name
import lfr_rs
import lfr_rs.data
from lfr_rs.models import SmallCNN

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
DEFAULT_DATA = os.environ.get("LFR_MNIST_ROOT", str(ROOT.parent / "shared" / "data" / "mnist"))
ALLOCATOR_ENV = ("GLIBC_TUNABLES", "LD_PRELOAD", "MALLOC_CONF", "MALLOC_ARENA_MAX",
                 "MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_",
                 "OMP_NUM_THREADS", "MKL_NUM_THREADS", "KMP_AFFINITY", "OMP_PROC_BIND")


# ---------------------------------------------------------------- CLI / env


def add_common_args(parser: argparse.ArgumentParser, *, default_json: str, quick_json: str) -> None:
    """Options every benchmark shares (``--json`` defaults to ``quick_json``
    under ``--quick``, so a smoke test never overwrites real figures)."""
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per side (median reported)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads for every side (default: torch's)")
    parser.add_argument("--data", default=DEFAULT_DATA, help="folder with the MNIST test IDX files")
    parser.add_argument("--model-epochs", type=int, default=2, help="epochs for the standard-trained model")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke test only")
    parser.add_argument("--json", default=None, help=f"where to write the results (default {default_json})")
    parser.add_argument("--device", default="cpu", help="device of the model and batch, e.g. cuda (default cpu)")
    parser.set_defaults(_json_defaults=(default_json, quick_json))


def json_path(args: argparse.Namespace) -> str:
    """The ``--json`` path, or the default for a full or a ``--quick`` run."""
    full, quick = args._json_defaults
    return args.json or (quick if args.quick else full)


def set_threads(n: Optional[int]) -> int:
    """Sets torch's intra-op thread count once, for all sides; returns it."""
    if n is not None:
        torch.set_num_threads(n)
    return torch.get_num_threads()


def _git(*args: str) -> Optional[str]:
    try:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def device_info(device: str) -> Dict[str, Any]:
    """The device the figures were measured on, by name."""
    dev = torch.device(device)
    if dev.type != "cuda":
        return {"device": str(dev), "device_name": cpu_name()}
    props = torch.cuda.get_device_properties(dev)
    return {"device": str(dev), "device_name": torch.cuda.get_device_name(dev), "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version(), "gpu_memory_gib": props.total_memory / 2**30,
            "gpu_sm_count": props.multi_processor_count}


def held_out_batch(images: torch.Tensor, labels: torch.Tensor, n_train: int, batch: int,
                   device: str) -> Tuple[torch.Tensor, torch.Tensor]:
    """``batch`` held-out images (index ``n_train`` on) on ``device``; a batch
    larger than the held-out set repeats it (to fill a GPU)."""
    x, y = images[n_train:], labels[n_train:]
    if batch > len(y):
        reps = -(-batch // len(y))
        x, y = x.repeat(reps, 1, 1, 1), y.repeat(reps)
    return x[:batch].contiguous().to(device), y[:batch].contiguous().to(device)


def env_info() -> Dict[str, Any]:
    """What the figures depend on (no host name)."""
    try:
        import torchattacks

        ta_version = torchattacks.__version__
    except ImportError:
        ta_version = None
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": None if status is None else bool(status),
        "lfr_rs": lfr_rs.__version__,
        "torch": torch.__version__,
        "torchattacks": ta_version,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_model": cpu_name(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "load_avg_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "mkldnn": torch.backends.mkldnn.is_available(),
        "allocator_env": {k: os.environ[k] for k in ALLOCATOR_ENV if k in os.environ},
    }


# ---------------------------------------------------------------- data / model


def load_mnist_test(root: str) -> Tuple[torch.Tensor, torch.Tensor]:
    """MNIST test split, float32 (N, 1, 28, 28) in [0, 1] and int64 labels."""
    load = getattr(lfr_rs.data, "load_mnist", None)
    if load is None:
        raise RuntimeError("lfr_rs.data.load_mnist is missing: rebuild lfr_rs (maturin develop)")
    return load(root, train=False)


def train_standard_model(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    n_train: int,
    epochs: int,
    seed: int,
    batch: int = 128,
    lr: float = 0.01,
    momentum: float = 0.9,
) -> Tuple[SmallCNN, float]:
    """SmallCNN (``zero_init_last=False``) trained with plain SGD on the first
    ``n_train`` images; returns it in eval mode and its clean accuracy on the
    rest. The state dict is cached under ``benchmarks/results/`` keyed by the
    settings, so reruns skip training."""
    key = f"smallcnn_std_n{n_train}_e{epochs}_s{seed}_b{batch}_lr{lr}_m{momentum}.pt"
    path = RESULTS / key
    torch.manual_seed(seed)
    model = SmallCNN(zero_init_last=False)
    if path.is_file():
        model.load_state_dict(torch.load(path, weights_only=True))
    else:
        gen = torch.Generator().manual_seed(seed)
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
        model.train()
        for _ in range(epochs):
            for idx in torch.randperm(n_train, generator=gen).split(batch):
                opt.zero_grad(set_to_none=True)
                F.cross_entropy(model(x[idx]), y[idx]).backward()
                opt.step()
        RESULTS.mkdir(parents=True, exist_ok=True)
        torch.save(model.state_dict(), path)
    model.eval()
    return model, accuracy(model, x[n_train:], y[n_train:])


@torch.no_grad()
def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 1000) -> float:
    correct = sum(int((model(xb).argmax(1) == yb).sum()) for xb, yb in zip(x.split(batch), y.split(batch)))
    return correct / max(len(y), 1)


# ---------------------------------------------------------------- timing


def floor_fn(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int) -> Callable[[], None]:
    """``steps`` x (one forward + one backward to the input) in plain PyTorch:
    the least any gradient attack of that many steps can cost."""

    def run() -> None:
        for _ in range(steps):
            xi = x.detach().requires_grad_()
            torch.autograd.grad(F.cross_entropy(model(xi), y), xi)

    return run


def _sync() -> None:
    """Waits for queued CUDA work, so a timing covers it (no-op on CPU runs)."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def time_interleaved(
    fns: Dict[str, Callable[[], Any]], repeats: int
) -> Tuple[Dict[str, List[float]], Dict[str, Any]]:
    """Runs every side once untimed (warm-up, which also runs a backward), then
    ``repeats`` rounds that time each side in turn, rotating the order each
    round. Returns seconds per side and each side's warm-up output."""
    outputs = {name: fn() for name, fn in fns.items()}
    names = list(fns)
    times: Dict[str, List[float]] = {name: [] for name in names}
    for r in range(repeats):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            _sync()
            t0 = time.perf_counter()
            fns[name]()
            _sync()
            times[name].append(time.perf_counter() - t0)
    return times, outputs


def summary(seconds: Sequence[float], steps: int = 1) -> Dict[str, Any]:
    """Median, min and all runs in ms; ``per_step_ms`` is median / steps."""
    ms = [1e3 * s for s in seconds]
    med = statistics.median(ms)
    return {
        "median_ms": med,
        "min_ms": min(ms),
        "per_step_ms": med / max(steps, 1),
        "runs_ms": ms,
    }


# ---------------------------------------------------------------- output


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.2f}" if abs(v) < 100 else f"{v:.1f}"
        return "-" if v is None else str(v)

    cells = [list(map(str, headers))] + [[fmt(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |" for row in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def write_json(path: str, payload: Dict[str, Any]) -> Path:
    out = Path(path)
    if not out.is_absolute():
        out = ROOT / out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, indent=2) + "\n")
    return out
