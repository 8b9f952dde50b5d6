"""Reference architectures: TRADES' SmallCNN for MNIST and a CIFAR-style ResNet-18."""

from collections import OrderedDict

import torch
from torch import nn

__all__ = ["ResNet18", "SmallCNN"]


class SmallCNN(nn.Module):
    """TRADES' MNIST network (``small_cnn.py``): four 3x3 convolutions (32, 32,
    64, 64 channels, max-pooling after each pair) and three fully connected
    layers (200, 200, classes) with dropout 0.5 before the second.

    TRADES initialises the last layer to zero (``zero_init_last=True``), which
    makes every input gradient exactly 0 until the model is trained.

    ``smooth=True`` builds the smooth twin used to check finite-difference
    Hessian-vector products: softplus instead of ReLU, average instead of max
    pooling.
    """

    def __init__(
        self,
        num_channels: int = 1,
        num_classes: int = 10,
        drop: float = 0.5,
        *,
        zero_init_last: bool = True,
        smooth: bool = False,
    ) -> None:
        super().__init__()
        act = nn.Softplus if smooth else nn.ReLU
        pool = nn.AvgPool2d if smooth else nn.MaxPool2d
        self.num_channels = num_channels
        self.num_labels = num_classes
        self.feature_extractor = nn.Sequential(
            OrderedDict(
                [
                    ("conv1", nn.Conv2d(num_channels, 32, 3)),
                    ("relu1", act()),
                    ("conv2", nn.Conv2d(32, 32, 3)),
                    ("relu2", act()),
                    ("maxpool1", pool(2, 2)),
                    ("conv3", nn.Conv2d(32, 64, 3)),
                    ("relu3", act()),
                    ("conv4", nn.Conv2d(64, 64, 3)),
                    ("relu4", act()),
                    ("maxpool2", pool(2, 2)),
                ]
            )
        )
        self.classifier = nn.Sequential(
            OrderedDict(
                [
                    ("fc1", nn.Linear(64 * 4 * 4, 200)),
                    ("relu1", act()),
                    ("drop", nn.Dropout(drop)),
                    ("fc2", nn.Linear(200, 200)),
                    ("relu2", act()),
                    ("fc3", nn.Linear(200, num_classes)),
                ]
            )
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
                if m.bias is not None:
                    nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
        if zero_init_last:
            nn.init.constant_(self.classifier.fc3.weight, 0)
            nn.init.constant_(self.classifier.fc3.bias, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.feature_extractor(x)
        # flatten, not view: channels_last features are not contiguous in NCHW order
        return self.classifier(features.flatten(1))


class _BasicBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class ResNet18(nn.Module):
    """ResNet-18 for 32x32 inputs, as in the CIFAR-10 code of TRADES, MART and
    Madry's lab (He et al. 2016, https://arxiv.org/abs/1512.03385): a 3x3 stem
    without max-pooling, four stages of two basic blocks (64, 128, 256, 512
    channels, stride 2 from the second), global average pooling, one linear
    layer. It has BatchNorm layers: see :mod:`lfr_rs.training` for the modes
    the training loop runs them in. ``width`` scales every stage (64 by default).
    """

    def __init__(self, num_channels: int = 3, num_classes: int = 10, *, width: int = 64) -> None:
        super().__init__()
        if width < 1:
            raise ValueError(f"width must be at least 1, got {width}")
        self.conv1 = nn.Conv2d(num_channels, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        stages, in_planes = [], width
        for i, stride in enumerate((1, 2, 2, 2)):
            planes = width * 2**i
            stages.append(nn.Sequential(_BasicBlock(in_planes, planes, stride), _BasicBlock(planes, planes, 1)))
            in_planes = planes
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.linear = nn.Linear(in_planes, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        return self.linear(torch.flatten(nn.functional.adaptive_avg_pool2d(out, 1), 1))
