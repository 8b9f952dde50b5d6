"""Reference architectures."""

from collections import OrderedDict

import torch
from torch import nn

__all__ = ["SmallCNN"]


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
        return self.classifier(features.view(-1, 64 * 4 * 4))
