"""Reference architectures: SmallCNN and the CIFAR-style ResNet-18."""

import pytest
import torch

from lfr_rs.models import SmallCNN


def test_smallcnn_accepts_channels_last():
    """``.view`` once failed on channels_last inputs with more than one channel."""
    model = SmallCNN(num_channels=3, zero_init_last=False).eval()
    x = torch.rand(4, 3, 28, 28)
    expected = model(x)
    torch.testing.assert_close(model(x.to(memory_format=torch.channels_last)), expected)
    model = model.to(memory_format=torch.channels_last)
    torch.testing.assert_close(model(x.to(memory_format=torch.channels_last)), expected)


def test_resnet18_shapes_and_bad_width():
    from lfr_rs.models import ResNet18

    assert ResNet18()(torch.rand(2, 3, 32, 32)).shape == (2, 10)
    assert ResNet18(num_channels=1, num_classes=7, width=2)(torch.rand(3, 1, 32, 32)).shape == (3, 7)
    n_params = sum(p.numel() for p in ResNet18().parameters())
    assert 11_100_000 < n_params < 11_200_000  # the CIFAR ResNet-18's 11.17M
    with pytest.raises(ValueError, match="width"):
        ResNet18(width=0)
