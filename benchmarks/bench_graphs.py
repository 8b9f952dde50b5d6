"""PGD through a CUDA graph (``lfr_rs.pgd(..., graph=True)``) against the eager
kernel, torchattacks 3.5.1 and the device's limit.

For each model (the committed MNIST-8k reference SmallCNN at batch 128, and a
random-weight ResNet18 at CIFAR shape, ``--resnet-batch`` 256), PGD-40 L-inf
without random start, interleaved, median of ``--repeats``:

* ``torchattacks``: ``torchattacks.PGD`` (if importable);
* ``eager``: ``lfr_rs.pgd``;
* ``graph``: ``lfr_rs.pgd(graph=True)`` (captured on the warm-up call);
* ``graph_keep_best``: the same with ``keep_best=True`` (early stopping as
  masking);
* ``floor``: 40 x (forward + backward to the input) in a plain PyTorch loop;
* ``compute``: that loop captured into one CUDA graph and replayed: what the
  GPU needs for the passes alone, the limit a graph can approach.

APGD-CE (100 steps, eps 0.3) on SmallCNN: eager, ``graph=True``,
torchattacks.APGD (target: torchattacks / graph >= 3). And the LFR inner maximization (``lfr_perturb``, fd, 40 steps) on SmallCNN:
eager, through a graph (``lfr_rs.graphs.lfr_perturb``), and the same loop in
plain PyTorch (target: PyTorch / graph >= 2 at batch 128). And the whole LFR
training step (fd, 40 inner steps, lambda 0.02, SGD): ``fit``'s step eager,
with ``graph=True`` (``lfr_rs.training.graphed``), and in plain PyTorch.

Checks printed beside the times: ``graph`` and ``eager`` give the same batch
(max abs difference) and the same accuracy. Targets (issue: GPU at the
device's limit): torchattacks / graph >= 3 and graph / compute <= 1.5 on
SmallCNN at batch 128.

Needs a CUDA device for the graph rows; on a CPU (``--quick``: a smoke test)
the graph and compute rows are left out.

    python benchmarks/bench_graphs.py --device cuda     # writes benchmarks/results/graphs_cuda.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (RESULTS, device_info, env_info, markdown_table, set_threads, summary,  # noqa: E402
                     time_interleaved, write_json)

import lfr_rs  # noqa: E402
from lfr_rs.models import ResNet18, load_reference  # noqa: E402

try:
    import torchattacks
except ImportError:  # the GPU machine may lack it; the row is then left out
    torchattacks = None


def captured_loop(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int) -> Callable[[], None]:
    """``steps`` forward+backward passes in plain PyTorch, captured into one
    CUDA graph; returns its replay."""
    sx, sy = x.clone(), y.clone()

    def body() -> None:
        for _ in range(steps):
            xi = sx.detach().requires_grad_()
            torch.autograd.grad(F.cross_entropy(model(xi), sy), xi)

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        body()
        body()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        body()
    return graph.replay


def plain_loop(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int) -> Callable[[], None]:
    def run() -> None:
        for _ in range(steps):
            xi = x.detach().requires_grad_()
            torch.autograd.grad(F.cross_entropy(model(xi), y), xi)

    return run


def model_rows(name: str, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, a: argparse.Namespace,
               eps: float) -> Dict[str, Any]:
    model = model.to(a.device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    cuda = x.is_cuda
    kw = dict(eps=eps, alpha=eps / 4, steps=a.steps, random_start=False)
    sides: Dict[str, Callable[[], Any]] = {"eager": lambda: lfr_rs.pgd(model, x, y, **kw)}
    if cuda:
        sides["graph"] = lambda: lfr_rs.pgd(model, x, y, graph=True, **kw)
        sides["graph_keep_best"] = lambda: lfr_rs.pgd(model, x, y, graph=True, keep_best=True, **kw)
        sides["compute"] = captured_loop(model, x, y, a.steps)
    if torchattacks is not None:
        ta = torchattacks.PGD(model, **kw)
        sides["torchattacks"] = lambda: ta(x, y)
    sides["floor"] = plain_loop(model, x, y, a.steps)
    times, outputs = time_interleaved(sides, a.repeats)
    med = {k: summary(v)["median_ms"] for k, v in times.items()}
    row: Dict[str, Any] = {"model": name, "batch": len(x), "steps": a.steps, "median_ms": med, "seconds": times}
    with torch.no_grad():
        row["eager_accuracy"] = float((model(outputs["eager"]).argmax(1) == y).float().mean())
        if cuda:
            row["graph_accuracy"] = float((model(outputs["graph"]).argmax(1) == y).float().mean())
            row["graph_max_abs_diff"] = float((outputs["graph"] - outputs["eager"]).abs().max())
            row["graph_over_compute"] = med["graph"] / med["compute"]
            row["eager_over_graph"] = med["eager"] / med["graph"]
            if "torchattacks" in med:
                row["torchattacks_over_graph"] = med["torchattacks"] / med["graph"]
    return row


def torch_lfr_fd(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, alpha: float, steps: int,
                 h: float) -> torch.Tensor:
    """The LFR inner maximization with the finite-difference HVP in plain
    PyTorch (what a user would write): two input gradients per step."""
    adv = x.clone()
    for _ in range(steps):
        a = adv.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(F.cross_entropy(model(a), y, reduction="sum"), a)
        b = (adv + h * g.sign()).requires_grad_(True)
        (g_h,) = torch.autograd.grad(F.cross_entropy(model(b), y, reduction="sum"), b)
        adv = adv + alpha * ((g_h - g) / h).sign()
        adv = (x + (adv - x).clamp(-eps, eps)).clamp(0, 1)
    return adv


def versus_pytorch(sides: Dict[str, Callable[[], Any]], a: argparse.Namespace,
                   **fields: Any) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """Times ``sides`` interleaved (one of them "pytorch") and returns the row
    (``fields``, the medians, every sample, plain PyTorch's time over eager's
    and over the graph's where timed) and each side's last output."""
    times, outputs = time_interleaved(sides, a.repeats)
    med = {k: summary(v)["median_ms"] for k, v in times.items()}
    row: Dict[str, Any] = {**fields, "median_ms": med, "seconds": times}
    for side in ("eager", "graph"):
        if side in med:
            row[f"pytorch_over_{side}"] = med["pytorch"] / med[side]
    return row, outputs


def lfr_row(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, a: argparse.Namespace) -> Dict[str, Any]:
    """The LFR inner maximization (fd, 40 steps of 0.01 in the 0.3-ball, no
    random start): eager, graph, plain PyTorch."""
    from lfr_rs import graphs

    model = model.to(a.device).eval()
    kw = dict(eps=0.3, alpha=0.01, steps=a.steps, random_start=False, hvp="fd", fd_step=0.01)
    sides: Dict[str, Callable[[], Any]] = {
        "eager": lambda: lfr_rs.lfr_perturb(model, x, y, **kw),
        "pytorch": lambda: torch_lfr_fd(model, x, y, eps=0.3, alpha=0.01, steps=a.steps, h=0.01),
    }
    if x.is_cuda:
        sides["graph"] = lambda: graphs.lfr_perturb(model, x, y, **kw)
    row, outputs = versus_pytorch(sides, a, model="SmallCNN (mnist/standard)", kernel=f"lfr_perturb fd {a.steps} steps",
                                  batch=len(x))
    if x.is_cuda:
        row["graph_max_abs_diff"] = float((outputs["graph"] - outputs["eager"]).abs().max())
    return row


def torch_lfr_step(model: torch.nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, *,
                   steps: int) -> None:
    """One LFR training step in plain PyTorch: uniform random start, the fd
    inner maximization, then CE + 0.02 * ||grad_x CE(x')||_1 by double backprop."""
    model.eval()
    start = (x + torch.empty_like(x).uniform_(-0.3, 0.3)).clamp(0, 1)
    adv = torch_lfr_fd(model, start, y, eps=0.3, alpha=0.01, steps=steps, h=0.01)
    adv = (x + (adv - x).clamp(-0.3, 0.3)).clamp(0, 1).detach().requires_grad_(True)
    model.train()
    opt.zero_grad(set_to_none=True)
    (g,) = torch.autograd.grad(F.cross_entropy(model(adv), y, reduction="sum"), adv, create_graph=True)
    loss = F.cross_entropy(model(x), y) + 0.02 * g.abs().flatten(1).sum(1).mean()
    loss.backward()
    opt.step()


def train_step_row(x: torch.Tensor, y: torch.Tensor, a: argparse.Namespace) -> Dict[str, Any]:
    """The LFR training step on a SmallCNN: fit's step eager and replayed
    from its graph, and plain PyTorch (the model keeps training; only time is
    compared)."""
    from lfr_rs.losses import LFR
    from lfr_rs.models import SmallCNN
    from lfr_rs.training.graphed import StepGraphs
    from lfr_rs.training.loop import _Epoch, _step

    model = SmallCNN().to(a.device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    method = LFR(eps=0.3, alpha=0.01, steps=a.steps, lam=0.02, hvp="fd", fd_step=0.01)
    dev = torch.device(a.device)
    sides: Dict[str, Callable[[], Any]] = {
        "eager": lambda: _step(model, model, method, opt, x, y, _Epoch()),
        "pytorch": lambda: torch_lfr_step(model, opt, x, y, steps=a.steps),
    }
    if x.is_cuda:
        graphs = StepGraphs(model, model, dev, method)
        for _ in range(2):  # the eager step that precedes the capture, then the capture's first replay
            _step(model, model, method, opt, x, y, _Epoch(), graphs)
        sides["graph"] = lambda: _step(model, model, method, opt, x, y, _Epoch(), graphs)
    row, _ = versus_pytorch(sides, a, model="SmallCNN (fresh)", kernel=f"LFR training step, fd {a.steps} inner steps",
                            batch=len(x))
    return row


def apgd_row(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, a: argparse.Namespace) -> Dict[str, Any]:
    """APGD-CE, ``--apgd-steps`` iterations, eps 0.3, one restart: eager,
    through a graph, torchattacks.APGD; robust accuracy of each."""
    model = model.to(a.device).eval()
    kw = dict(eps=0.3, steps=a.apgd_steps, loss="ce")
    sides: Dict[str, Callable[[], Any]] = {"eager": lambda: lfr_rs.apgd(model, x, y, **kw)}
    if x.is_cuda:
        sides["graph"] = lambda: lfr_rs.apgd(model, x, y, graph=True, **kw)
    if torchattacks is not None:
        ta = torchattacks.APGD(model, norm="Linf", eps=0.3, steps=a.apgd_steps, n_restarts=1, loss="ce", seed=0)
        sides["torchattacks"] = lambda: ta(x, y)
    times, outputs = time_interleaved(sides, a.repeats)
    med = {k: summary(v)["median_ms"] for k, v in times.items()}
    with torch.no_grad():
        acc = {k: float((model(v).argmax(1) == y).float().mean()) for k, v in outputs.items()}
    row: Dict[str, Any] = {"kernel": f"APGD-CE {a.apgd_steps}", "batch": len(x), "median_ms": med, "accuracy": acc,
                           "seconds": times}
    if x.is_cuda and "torchattacks" in med:
        row["torchattacks_over_graph"] = med["torchattacks"] / med["graph"]
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--batch", type=int, default=128, help="SmallCNN batch")
    p.add_argument("--resnet-batch", type=int, default=256)
    p.add_argument("--apgd-steps", type=int, default=100)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test only")
    p.add_argument("--json", default=None)
    a = p.parse_args()
    if a.quick:
        a.steps, a.apgd_steps, a.batch, a.resnet_batch, a.repeats = 3, 3, 8, 4, 1
    threads = set_threads(a.threads)
    torch.manual_seed(0)
    rows: List[Dict[str, Any]] = []
    small = load_reference("mnist/standard", device=a.device)
    x = torch.rand(a.batch, 1, 28, 28, device=a.device)
    with torch.no_grad():
        y = small(x).argmax(1)
    rows.append(model_rows("SmallCNN (mnist/standard)", small, x, y, a, eps=0.3))
    lfr = lfr_row(small, x, y, a)
    apgd = apgd_row(small, x, y, a)
    step = train_step_row(x, y, a)
    x = torch.rand(a.resnet_batch, 3, 32, 32, device=a.device)
    y = torch.randint(0, 10, (a.resnet_batch,), device=a.device)
    rows.append(model_rows("ResNet18 (random weights)", ResNet18(), x, y, a, eps=8 / 255))
    sides = ["torchattacks", "eager", "graph", "graph_keep_best", "floor", "compute"]
    print(markdown_table(["model", "batch", *[f"{s} ms" for s in sides], "TA/graph", "graph/compute", "max diff"],
                         [[r["model"], r["batch"], *[r["median_ms"].get(s) for s in sides],
                           r.get("torchattacks_over_graph"), r.get("graph_over_compute"), r.get("graph_max_abs_diff")]
                          for r in rows]))
    print(markdown_table(["kernel", "batch", "eager ms", "graph ms", "PyTorch ms", "PyTorch/graph", "max diff"],
                         [[lfr["kernel"], lfr["batch"], lfr["median_ms"]["eager"], lfr["median_ms"].get("graph"),
                           lfr["median_ms"]["pytorch"], lfr.get("pytorch_over_graph"), lfr.get("graph_max_abs_diff")],
                          [step["kernel"], step["batch"], step["median_ms"]["eager"], step["median_ms"].get("graph"),
                           step["median_ms"]["pytorch"], step.get("pytorch_over_graph"), None]]))
    print(markdown_table(["kernel", "batch", "eager ms", "graph ms", "torchattacks ms", "TA/graph", "robust accuracy"],
                         [[apgd["kernel"], apgd["batch"], apgd["median_ms"]["eager"], apgd["median_ms"].get("graph"),
                           apgd["median_ms"].get("torchattacks"), apgd.get("torchattacks_over_graph"),
                           " ".join(f"{k}={v:.3f}" for k, v in apgd["accuracy"].items())]]))
    tag = a.device.split(":")[0] + ("_quick" if a.quick else "")
    out = write_json(a.json or str(RESULTS / f"graphs_{tag}.json"),
                     {"benchmark": "bench_graphs", "device": device_info(a.device), "env": env_info(),
                      "threads": threads, "steps": a.steps, "rows": rows, "lfr": lfr, "apgd": apgd,
                      "train_step": step})
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
