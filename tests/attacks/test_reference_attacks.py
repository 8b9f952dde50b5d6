"""The plain-PyTorch attack references (the GPU tests' fallback when
torchattacks is missing there) equal torchattacks 3.5.1 on the CPU."""

import pytest
import torch
import torchattacks
from reference import attacks as ref

CASES = {
    "fgsm": (lambda m: torchattacks.FGSM(m, eps=0.1), lambda m, x, y: ref.fgsm(m, x, y, eps=0.1)),
    "pgd": (
        lambda m: torchattacks.PGD(m, eps=0.2, alpha=0.02, steps=5, random_start=False),
        lambda m, x, y: ref.pgd(m, x, y, eps=0.2, alpha=0.02, steps=5),
    ),
    "pgdl2": (
        lambda m: torchattacks.PGDL2(m, eps=2.0, alpha=0.25, steps=5, random_start=False),
        lambda m, x, y: ref.pgd_l2(m, x, y, eps=2.0, alpha=0.25, steps=5),
    ),
    "mifgsm": (
        lambda m: torchattacks.MIFGSM(m, eps=0.2, alpha=0.02, steps=5, decay=1.0),
        lambda m, x, y: ref.mifgsm(m, x, y, eps=0.2, alpha=0.02, steps=5, decay=1.0),
    ),
}


@pytest.mark.parametrize("name", CASES)
def test_reference_equals_torchattacks(trained_cnn, batch, name):
    x, y = batch[0][:32], batch[1][:32]
    theirs, ours = CASES[name]
    want = theirs(trained_cnn)(x, y)
    got = ours(trained_cnn, x, y)
    assert not torch.equal(got, x)
    torch.testing.assert_close(got, want, rtol=0, atol=0)
