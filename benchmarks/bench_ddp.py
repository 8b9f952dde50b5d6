"""DDP scaling of an LFR training epoch: 1 process vs 2 processes (torchrun,
gloo on CPU, NCCL with ``--device cuda``), each with one thread, same global
batches. Prints a table and writes ``benchmarks/results/ddp.json``.

    python benchmarks/bench_ddp.py                 # CPU: 1 vs 2 processes of 1 thread
    python benchmarks/bench_ddp.py --device cuda --nprocs 1,2   # one process per GPU

Each configuration runs under ``python -m torch.distributed.run`` on
127.0.0.1: ``fit`` trains SmallCNN with LFR for ``--epochs`` epochs on the
first ``--subset`` MNIST test images; the last epoch's time (rank 0, after a
warm-up epoch) gives samples per second.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402


def _worker(args: argparse.Namespace) -> None:
    from lfr_rs import distributed
    from lfr_rs.losses import LFR
    from lfr_rs.models import SmallCNN
    from lfr_rs.training import TensorBatches, fit

    torch.set_num_threads(args.threads)
    distributed.init_from_env(args.device)
    x, y = _common.load_mnist_test(args.data)
    x, y = x[2000 : 2000 + args.subset], y[2000 : 2000 + args.subset]
    torch.manual_seed(args.seed)
    model = SmallCNN(zero_init_last=False)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loader = TensorBatches(x, y, args.batch, generator=torch.Generator().manual_seed(args.seed))
    method = LFR(eps=0.3, alpha=0.01, steps=args.steps, lam=0.02)
    result = fit(model, loader, method, opt, epochs=args.epochs, device=args.device, progress=False, verbose=False)
    if distributed.is_main():
        times = [e["time_s"] for e in result.history]
        Path(args.worker_out).write_text(json.dumps({"epoch_s": times, "loss": result.history[-1]["loss"]}))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(args: argparse.Namespace, nproc: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "r.json"
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes=1", f"--nproc-per-node={nproc}",
               "--rdzv-backend=c10d", f"--rdzv-endpoint=127.0.0.1:{_free_port()}", "--local-addr=127.0.0.1",
               __file__, "--worker-out", str(out), "--data", args.data, "--subset", str(args.subset),
               "--batch", str(args.batch), "--steps", str(args.steps), "--epochs", str(args.epochs),
               "--threads", str(args.threads), "--device", args.device, "--seed", str(args.seed)]
        env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), GLOO_SOCKET_IFNAME="lo")
        subprocess.run(cmd, check=True, env=env)
        r = json.loads(out.read_text())
    t = r["epoch_s"][-1]
    return {"processes": nproc, "epoch_s": t, "samples_per_s": args.subset / t, "all_epochs_s": r["epoch_s"],
            "final_loss": r["loss"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=_common.DEFAULT_DATA)
    p.add_argument("--subset", type=int, default=1024, help="training images (from the MNIST test split, after the first 2000)")
    p.add_argument("--batch", type=int, default=128, help="global batch")
    p.add_argument("--steps", type=int, default=10, help="LFR inner steps")
    p.add_argument("--epochs", type=int, default=2, help="the last one is timed")
    p.add_argument("--threads", type=int, default=1, help="torch threads per process")
    p.add_argument("--nprocs", default="1,2")
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=str(_common.RESULTS / "ddp.json"))
    p.add_argument("--worker-out", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker_out:
        _worker(args)
        return
    rows = [_run(args, int(n)) for n in args.nprocs.split(",")]
    base = rows[0]["samples_per_s"]
    for r in rows:
        r["speedup"] = r["samples_per_s"] / base
    print(_common.markdown_table(
        ["processes", "threads each", "epoch s", "samples/s", "speed-up"],
        [[r["processes"], args.threads, f"{r['epoch_s']:.1f}", f"{r['samples_per_s']:.1f}", f"{r['speedup']:.2f}"]
         for r in rows]))
    settings = {k: v for k, v in vars(args).items() if k not in ("worker_out", "json")}
    path = _common.write_json(args.json, {"settings": settings, "env": _common.env_info(), "rows": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
