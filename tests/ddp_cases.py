"""Models, data and methods shared by the DDP worker (``ddp_worker.py``, run
under torchrun) and the single-process side of ``test_distributed.py``.
Everything is built from fixed seeds, so both sides see the same batches."""

import torch
from torch import nn

from lfr_rs import distributed
from lfr_rs.evaluation import evaluate
from lfr_rs.evaluation import robust_accuracy
from lfr_rs.losses import AT, LFR, GradNorm, Standard
from lfr_rs.training import TensorBatches


def _teacher() -> nn.Module:
    g = torch.Generator().manual_seed(11)
    lin = nn.Linear(64, 10)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(10, 64, generator=g))
        lin.bias.zero_()
    return nn.Sequential(nn.Flatten(), lin).eval()


def data(n: int, seed: int = 5):
    """``n`` 8x8 grey images in [0, 1], labelled by a fixed linear teacher (learnable)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 8, 8, generator=g)
    with torch.no_grad():
        y = _teacher()(x - 0.5).argmax(1)
    return x, y


def prototype_data(n: int, seed: int = 9):
    """``n`` noisy copies of 10 fixed random 8x8 prototypes: a task a small net learns in a few epochs."""
    g = torch.Generator().manual_seed(seed)
    protos = torch.rand(10, 1, 8, 8, generator=g)
    y = torch.randint(0, 10, (n,), generator=g)
    return (0.6 * protos[y] + 0.4 * torch.rand(n, 1, 8, 8, generator=g)), y


def net(drop: float = 0.0) -> nn.Module:
    torch.manual_seed(3)
    layers = [nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten()]
    if drop:
        layers.append(nn.Dropout(drop))
    return nn.Sequential(*layers, nn.Linear(4 * 6 * 6, 10))


def deterministic_case(name: str):
    """69 samples in global batches of 16: the last batch (5) splits 2/3 over two ranks."""
    model = net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x, y = data(69)
    loader = TensorBatches(x, y, 16, generator=torch.Generator().manual_seed(0))
    method = Standard() if name == "standard" else GradNorm(lam=0.5)
    return model, opt, loader, method


class FixedPointLFR(LFR):
    """LFR's outer loss at a given ``x'`` (a fixed function of ``x``), so both sides use the same point."""

    def perturb(self, model, inputs, labels):
        return (inputs + self.eps * torch.sign(torch.sin(997.0 * inputs))).clamp(0, 1)


def lfr_gradient_case():
    """One global batch of 11 (5/6 over two ranks), plain SGD with lr 1: the update is minus the gradient."""
    model = net()
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    x, y = data(11, seed=8)
    return model, opt, [(x, y)], FixedPointLFR(eps=0.2, lam=0.5)


def lfr_case():
    model = net()
    opt = torch.optim.Adam(model.parameters(), lr=0.03)
    x, y = prototype_data(128)
    loader = TensorBatches(x, y, 16, generator=torch.Generator().manual_seed(1))
    return model, opt, loader, LFR(eps=0.1, alpha=0.05, steps=2, lam=0.1)


def resume_case():
    """Dropout and PGD random starts: both draw from each rank's global RNG."""
    model = net(drop=0.3)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    x, y = data(48, seed=10)
    loader = TensorBatches(x, y, 16, generator=torch.Generator().manual_seed(2))
    torch.manual_seed(100 + distributed.rank())
    return model, opt, loader, AT(eps=0.1, alpha=0.05, steps=2), sched


def sharded_eval():
    """evaluate() on 21 images (10/11 over two ranks) with deterministic attacks."""
    x, y = data(21, seed=12)
    return distributed.evaluate_sharded(
        evaluate, _teacher(), x, y, attacks=("fgsm", "mifgsm", "ddn"), eps=0.05, alpha=0.01, steps=5,
        progress=False,
    )



PAPER = dict(attacks=("mifgsm", "ddn"), eps=0.05, alpha=0.01, steps=5, ddn_steps=5, progress=False)


def sharded_paper_eval():
    """evaluate(protocol="paper") on 21 images (10/11 over two ranks) with the protocol's deterministic attacks."""
    x, y = data(21, seed=12)
    return distributed.evaluate_sharded(evaluate, _teacher(), x, y, protocol="paper", **PAPER)


STRONG = dict(eps=0.03, attacks=("apgd-ce", "apgd-dlr", "square"), steps=5, queries=30, batch_size=4,
              detect_masking=False, progress=False)


def sharded_strong_eval():
    """robust_accuracy on 21 images (10/11 over two ranks): the combined per-sample mask and counts."""
    x, y = data(21, seed=12)
    r = robust_accuracy(_teacher(), x, y, **STRONG)
    return {"n": r.n, "clean": r.clean, "worst": r.worst, "robust": r.robust, "adversarial": r.adversarial,
            "attacks": {k: (v.accuracy, v.fooled, v.attacked, v.forward, v.backward) for k, v in r.attacks.items()}}
