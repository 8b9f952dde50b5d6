"""Is the LFR model's decision surface flatter than the standard model's?

    python benchmarks/surface_flatness.py                       # trains (or reuses) the two models, then measures
    python benchmarks/surface_flatness.py --runs notebooks/runs # reuse the models notebooks 02/03 trained there
    python benchmarks/surface_flatness.py --reference fashion-mnist --out results/surface_flatness_reference.json
                                                                # the committed reference models (results/reference)

Trains, exactly as notebooks 02 and 03 do (``train(..., resume=True)``, so
finished runs in ``--runs`` are reused), a standard and an LFR SmallCNN on the
first 2048 Fashion-MNIST training images, 3 epochs (LFR: eps 0.1, 3 inner
steps of 0.05, finite-difference HVP, lambda 0.1). Then, on the first ``--n``
Fashion-MNIST test images, computes each model's decision surface
(``lfr_rs.surface``, ``kind="decision"``) over ``[-span, span]^2`` along the
paper's directions (``lfr_rs.surface_directions``: gradient sign and an
orthogonal random sign direction, unit L-inf) and reports the mean absolute
slope ``|dL^/da|`` and ``|dL^/db|`` (finite differences between neighbouring grid
points, per unit of L-inf perturbation), averaged over the grid and the
images; plus the share of grid points still classified correctly and the mean
absolute decision value at the clean input (the slope's scale). Writes JSON.

With ``--reference DATASET`` nothing is trained: the two models are the
committed reference checkpoints ``DATASET/standard`` and ``DATASET/lfr``
(:func:`lfr_rs.models.load_reference`), measured on DATASET's test images
(MNIST: ``--data`` is the folder of its IDX files; the reference models were
trained on test images 2,000-9,999, so the first 2,000 are held out).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any, Dict

import torch

import lfr_rs
from lfr_rs.data import DEBIAN_FASHION_MNIST, load_fashion_mnist, load_mnist
from lfr_rs.models import load_reference, reference_entry
from lfr_rs.training import TrainConfig, train

# the configuration of notebooks 02 and 03
COMMON: Dict[str, Any] = dict(dataset="fashion-mnist", subset=2048, epochs=3, lr=0.05, model={"zero_init_last": False})
LFR_OPTIONS = {"eps": 0.1, "alpha": 0.05, "steps": 3, "lam": 0.1, "hvp": "fd"}


def slopes(values: torch.Tensor, span: float) -> Dict[str, Any]:
    """Mean absolute finite-difference slopes of ``(N, S, S)`` surfaces."""
    h = 2 * span / (values.shape[1] - 1)
    along_u = values.diff(dim=1).abs() / h
    along_v = values.diff(dim=2).abs() / h
    per_image = (along_u.flatten(1).mean(1) + along_v.flatten(1).mean(1)) / 2
    centre = values[:, values.shape[1] // 2, values.shape[2] // 2]
    return {
        "mean_abs_slope": per_image.mean().item(),
        "mean_abs_slope_gradient_dir": along_u.mean().item(),
        "mean_abs_slope_random_dir": along_v.mean().item(),
        "median_image_slope": per_image.median().item(),
        "grid_correct": (values > 0).double().mean().item(),
        "mean_abs_decision_value_at_x": centre.abs().mean().item(),
        "per_image_slope": per_image.tolist(),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=DEBIAN_FASHION_MNIST, help="Fashion-MNIST folder (default: %(default)s)")
    p.add_argument("--reference", choices=("fashion-mnist", "mnist"),
                   help="measure the committed reference models of this dataset instead of training two")
    p.add_argument("--runs", type=Path, default=Path("runs/surface_flatness"), help="run folder (default: %(default)s)")
    p.add_argument("--n", type=int, default=50, help="test images (default: %(default)s)")
    p.add_argument("--span", type=float, default=0.2, help="(default: %(default)s)")
    p.add_argument("--steps", type=int, default=21, help="grid points per axis (default: %(default)s)")
    p.add_argument("--seed", type=int, default=1, help="seed of the random directions (default: %(default)s)")
    p.add_argument("--threads", type=int, default=2, help="(default: %(default)s)")
    p.add_argument("--out", type=Path, default=Path("results/surface_flatness.json"), help="(default: %(default)s)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    common = dict(COMMON, data_root=str(args.data))
    configs = {"standard": TrainConfig(method="standard", **common),
               "lfr": TrainConfig(method="lfr", options=LFR_OPTIONS, **common)}
    if args.reference == "mnist":
        if args.n > 2000:
            p.error("--n: the MNIST reference models trained on test images 2,000-9,999; at most 2,000 are held out")
        x, y = load_mnist(args.data, train=False)
    else:
        x, y = load_fashion_mnist(args.data, train=False)
    x, y = x[: args.n], y[: args.n]
    rows: Dict[str, Any] = {}
    trained: Dict[str, Any] = {}
    for name, config in configs.items():
        if args.reference is not None:
            model = load_reference(f"{args.reference}/{name}")
            entry = reference_entry(f"{args.reference}/{name}")
            trained[name] = {"reference": f"{args.reference}/{name}", "sha256": entry["sha256"], "config": entry["config"]}
        else:
            model = train(config, args.runs / name, resume=True, progress=False).model
            trained[name] = config.to_dict()
        tic = time.perf_counter()
        torch.manual_seed(args.seed)
        u, v = lfr_rs.surface_directions(model, x, y)
        values = lfr_rs.surface(model, x, y, u, v, span=args.span, steps=args.steps, kind="decision")
        with torch.no_grad():
            clean = (model(x).argmax(1) == y).double().mean().item()
        rows[name] = {"clean_accuracy": clean, **slopes(values, args.span), "surface_time_s": time.perf_counter() - tic}
    lfr_flatter = sum(a < b for a, b in zip(rows["lfr"]["per_image_slope"], rows["standard"]["per_image_slope"]))
    record = {
        "command": "python benchmarks/surface_flatness.py " + " ".join(
            f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k not in ("out",)),
        "data": f"{'MNIST' if args.reference == 'mnist' else 'Fashion-MNIST'} test images 0..{args.n - 1}",
        "train": trained,
        "grid": {"span": args.span, "steps": args.steps, "directions": "surface_directions (gradient sign, orthogonal random sign)"},
        "machine": f"{platform.machine()}, {args.threads} torch threads, torch {torch.__version__}",
        "models": rows,
        "slope_ratio_lfr_over_standard": rows["lfr"]["mean_abs_slope"] / rows["standard"]["mean_abs_slope"],
        "images_where_lfr_is_flatter": f"{lfr_flatter}/{args.n}",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    for name, r in rows.items():
        print(f"{name:8s} clean {r['clean_accuracy']:.1%}  mean |slope| {r['mean_abs_slope']:.3f} "
              f"(gradient dir {r['mean_abs_slope_gradient_dir']:.3f}, random dir {r['mean_abs_slope_random_dir']:.3f})  "
              f"grid correct {r['grid_correct']:.1%}  |value at x| {r['mean_abs_decision_value_at_x']:.3f}")
    print(f"LFR / standard slope: {record['slope_ratio_lfr_over_standard']:.3f}; LFR flatter on {lfr_flatter}/{args.n} images")
    print(f"results: {args.out}")


if __name__ == "__main__":
    main()
