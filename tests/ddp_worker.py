"""Worker for tests/training/test_distributed.py, started by the test under torchrun
(2 processes, gloo, loopback). ``python ddp_worker.py SCENARIO OUT``; rank 0
saves what the test compares under OUT. Scenarios share their data and models
with the single-process side through ``ddp_cases.py``."""

import os
import sys
from pathlib import Path

import torch

import ddp_cases
from lfr_rs import distributed
from lfr_rs.training import fit


def main(scenario: str, out: Path) -> None:
    torch.set_num_threads(1)
    distributed.init_from_env("cpu")
    if scenario == "same-weights":
        results = {}
        for name in ("standard", "gradnorm"):
            model, opt, loader, method = ddp_cases.deterministic_case(name)
            fit(model, loader, method, opt, epochs=1, progress=False, verbose=False)
            results[name] = model.state_dict()
        model, opt, loader, method = ddp_cases.lfr_gradient_case()
        fit(model, loader, method, opt, epochs=1, progress=False, verbose=False)
        results["lfr_step"] = model.state_dict()
        model, opt, loader, method = ddp_cases.lfr_case()
        results["lfr_history"] = fit(model, loader, method, opt, epochs=4, progress=False, verbose=False).history
        results["eval"] = ddp_cases.sharded_eval()
        results["strong_eval"] = ddp_cases.sharded_strong_eval()
        results["paper_eval"] = ddp_cases.sharded_paper_eval()
        if distributed.is_main():
            torch.save(results, out / "same-weights.pt")
    elif scenario in ("full-and-part", "resume"):
        kwargs = dict(epochs=2, progress=False, verbose=False, config={"case": "resume"})
        if scenario == "full-and-part":
            model, opt, loader, method, sched = ddp_cases.resume_case()
            fit(model, loader, method, opt, out=out / "full", scheduler=sched, **kwargs)
            model, opt, loader, method, sched = ddp_cases.resume_case()  # reseeds everything
            fit(model, loader, method, opt, out=out / "part", scheduler=sched, stop_after=1, **kwargs)
        else:
            model, opt, loader, method, sched = ddp_cases.resume_case()
            torch.manual_seed(1234)  # whatever the fresh processes drew before must not matter
            fit(model, loader, method, opt, out=out / "part", scheduler=sched, resume=True, **kwargs)
    else:
        raise SystemExit(f"unknown scenario {scenario}")


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
    # Leave without the interpreter's teardown, where gloo's threads can abort a
    # finished process ("terminate called without an active exception").
    distributed.shutdown()
    sys.stdout.flush()
    os._exit(0)
