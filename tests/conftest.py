"""Shared fixtures: seeding, the ``--runslow``/``gpu`` switches, MNIST and SmallCNNs.

Everything runs on CPU from local files; nothing is downloaded.
"""

import copy
import os
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from lfr_rs.data import load_mnist
from lfr_rs.models import SmallCNN

MNIST_ROOT = Path(os.environ.get("LFR_MNIST_ROOT") or Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "mnist")


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="run tests marked slow")


def pytest_configure(config):
    # Small CPU batches gain nothing from intra-op threads, and on a shared
    # machine OpenMP's spin-waiting makes them many times slower.
    torch.set_num_threads(1)


def pytest_collection_modifyitems(config, items):
    skip_slow = pytest.mark.skip(reason="slow: pass --runslow to run")
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device")
    run_slow = config.getoption("--runslow")
    has_cuda = torch.cuda.is_available()
    for item in items:
        if "slow" in item.keywords and not run_slow:
            item.add_marker(skip_slow)
        if "gpu" in item.keywords and not has_cuda:
            item.add_marker(skip_gpu)


@pytest.fixture(autouse=True)
def seed():
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def mnist():
    """The MNIST test set: float32 ``(10000, 1, 28, 28)`` in [0, 1] and int64 labels."""
    try:
        return load_mnist(MNIST_ROOT, train=False)
    except FileNotFoundError as e:
        pytest.skip(f"MNIST test set not found under {MNIST_ROOT}: {e}")


@pytest.fixture(scope="session")
def batch(mnist):
    """128 MNIST test images, disjoint from the ones ``trained_cnn`` saw."""
    images, labels = mnist
    return images[-128:].clone(), labels[-128:].clone()


@pytest.fixture(scope="session")
def untrained_cnn():
    """Default-initialised SmallCNN in eval mode (the TRADES zero-init last
    layer would make every input gradient 0)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        return SmallCNN(zero_init_last=False).eval()


@pytest.fixture(scope="session")
def trained_cnn(mnist):
    """SmallCNN after three quick SGD epochs on the first 2000 MNIST test images
    (about 94% accurate on the rest), in eval mode with frozen parameters."""
    images, labels = mnist
    images, labels = images[:2000], labels[:2000]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(2)
        model = SmallCNN(zero_init_last=False)
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        model.train()
        for _ in range(3):
            for idx in torch.randperm(len(images)).split(32):
                opt.zero_grad()
                F.cross_entropy(model(images[idx]), labels[idx]).backward()
                opt.step()
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


@pytest.fixture(scope="session")
def images64(batch):
    """4 float64 MNIST test images with their labels."""
    x, y = batch
    return x[:4].double(), y[:4].clone()


@pytest.fixture(scope="session")
def default_cnn64(untrained_cnn):
    return copy.deepcopy(untrained_cnn).double()


@pytest.fixture(scope="session")
def perturbed_cnn64(default_cnn64):
    """The float64 default-init SmallCNN with Gaussian noise (half each tensor's RMS, plus 0.01) on every parameter."""
    model = copy.deepcopy(default_cnn64)
    gen = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for p in model.parameters():
            scale = 0.5 * p.pow(2).mean().sqrt() + 0.01
            p.add_(scale * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return model


@pytest.fixture(params=["default_cnn64", "perturbed_cnn64"])
def cnn(request):
    """``default_cnn64`` and ``perturbed_cnn64`` in turn: the regularizer kernels' parity models."""
    return request.getfixturevalue(request.param)


@pytest.fixture
def cuda():
    """The CUDA device; tests that use it are marked ``gpu`` and skip without one
    (scripts/gpu_check.sh runs them on the GPU machine)."""
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    return torch.device("cuda")
