"""Smoke test of an installed lfr-rs: one attack and one LFR training step.

Run from outside the source tree, with the interpreter of the venv under test:
``path/to/venv/bin/python scripts/smoke.py``. Exits non-zero on any failure.
"""

import sys

import torch
import torch.nn.functional as F

import lfr_rs


def main() -> int:
    if "site-packages" not in (lfr_rs.__file__ or ""):
        raise SystemExit(f"lfr_rs imported from {lfr_rs.__file__}, not from an installed package")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                                torch.nn.Linear(4 * 26 * 26, 10))
    x, y = torch.rand(8, 1, 28, 28), torch.randint(0, 10, (8,))

    model.eval()
    adv = lfr_rs.pgd(model, x, y, eps=0.1, alpha=0.02, steps=5)
    linf = float((adv - x).abs().max())
    if not (0 < linf <= 0.1 + 1e-6 and adv.min() >= 0 and adv.max() <= 1):
        raise SystemExit(f"pgd output outside the eps-ball or the box: max |adv - x| = {linf}")

    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    before = [p.detach().clone() for p in model.parameters()]
    x_prime = lfr_rs.lfr_perturb(model, x, y, eps=0.1, alpha=0.02, steps=3)
    model.train()
    loss = F.cross_entropy(model(x), y) + 0.02 * lfr_rs.grad_norm_penalty(model, x_prime, y).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    loss = loss.detach()
    if all(torch.equal(a, b) for a, b in zip(before, model.parameters())):
        raise SystemExit("the LFR step changed no parameter")
    print(f"smoke ok: lfr_rs {lfr_rs.__version__} built against torch {lfr_rs.__torch_version__}, "
          f"running torch {torch.__version__}, from {lfr_rs.__file__}; pgd max|delta| {linf:.3f}, loss {loss.item():.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
