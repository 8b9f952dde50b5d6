"""Reference architectures (TRADES' SmallCNN for MNIST, a CIFAR-style
ResNet-18), weight files in the formats research code saves them in, and the
reference checkpoints committed with the repository, loaded by name."""

import hashlib
import io
import json
import os
from collections import OrderedDict
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Union

import torch
from torch import nn

__all__ = ["REFERENCE_DIR_ENV", "ResNet18", "SmallCNN", "WeightsError", "list_references", "load_reference",
           "load_weights", "reference_dir", "reference_entry", "state_dict_of"]

#: environment variable naming the folder of the reference checkpoints (its ``index.json``)
REFERENCE_DIR_ENV = "LFR_RS_REFERENCE_DIR"
INDEX = "index.json"


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


class WeightsError(ValueError):
    """A weights file that is not a state dict this library can load."""


def state_dict_of(obj: Any, source: str = "the object") -> Dict[str, torch.Tensor]:
    """The ``state_dict`` held by ``obj``: a plain state dict, one saved from
    ``nn.DataParallel`` / ``DistributedDataParallel`` (keys prefixed
    ``module.``, as the LFR authors' released checkpoints are), or a dict that
    holds one under ``"state_dict"`` or ``"model"`` (the usual training
    checkpoints). Anything else is a :class:`WeightsError` saying what it is."""
    if isinstance(obj, Mapping) and obj.get("format") == 2 and {"sha256", "payload"} <= set(obj):
        raise WeightsError(f"{source} is an lfr-rs training checkpoint: load it with "
                           "lfr_rs.training.load_checkpoint (or load_model), which checks its digest")
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model"):
            if isinstance(obj.get(key), Mapping):
                return state_dict_of(obj[key], source)
    if not isinstance(obj, Mapping) or not obj:
        kind = type(obj).__name__ if not isinstance(obj, Mapping) else "an empty dict"
        raise WeightsError(f"{source} holds {kind}, not a state dict (a mapping of parameter names to tensors)")
    bad = [k for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise WeightsError(f"{source} is a dict but not a state dict: {len(bad)} entries are not name -> tensor "
                           f"(first: {bad[0]!r}); its keys: {', '.join(map(str, list(obj)[:8]))}")
    keys = list(obj)
    if all(k.startswith("module.") for k in keys):
        return OrderedDict((k[len("module."):], v) for k, v in obj.items())
    return OrderedDict(obj)


def load_weights(model: nn.Module, path: Union[str, "os.PathLike[str]"], *, sha256: Optional[str] = None,
                 map_location: Union[str, torch.device] = "cpu") -> nn.Module:
    """Loads the weights file ``path`` (see :func:`state_dict_of` for the formats)
    into ``model`` strictly and returns it. ``sha256`` (hex) is checked against
    the file's bytes first. Unpickling is ``weights_only``: a file that holds
    code is refused."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no weights file at {path}")
    data = path.read_bytes()
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        raise WeightsError(f"{path} does not match its SHA-256 ({sha256[:12]}...): the file is corrupted or was "
                           "replaced; restore it from the repository")
    try:
        obj = torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
    except Exception as e:  # torch.load fails in many ways on foreign bytes
        raise WeightsError(f"{path} is not a readable torch file: {type(e).__name__}: {e}") from e
    state = state_dict_of(obj, str(path))
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise WeightsError(f"{path} does not fit {type(model).__name__}: {e}") from e
    return model


def reference_dir() -> Path:
    """The folder of the reference checkpoints: ``$LFR_RS_REFERENCE_DIR``, or
    ``results/reference`` of the source checkout this package runs from."""
    env = os.environ.get(REFERENCE_DIR_ENV)
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "results" / "reference"


def _index(root: Path) -> Dict[str, Any]:
    path = root / INDEX
    if not path.is_file():
        raise FileNotFoundError(
            f"no reference checkpoints at {root} (no {INDEX}): they are committed under results/reference of the "
            f"lfr-rs repository; point {REFERENCE_DIR_ENV} at that folder (nothing is downloaded)")
    return dict(json.loads(path.read_text())["checkpoints"])


def list_references() -> List[str]:
    """The names :func:`load_reference` accepts, e.g. ``"fashion-mnist/lfr"``."""
    return sorted(_index(reference_dir()))


def reference_entry(name: str) -> Dict[str, Any]:
    """The index entry of reference checkpoint ``name``: its file, SHA-256,
    architecture, training config, seed, command, machine, log and results."""
    index = _index(reference_dir())
    if name not in index:
        raise ValueError(f"unknown reference checkpoint {name!r}; available: {', '.join(sorted(index)) or 'none'}")
    return dict(index[name])


def load_reference(name: str, device: Union[str, torch.device] = "cpu") -> nn.Module:
    """The committed reference model ``name`` (``"DATASET/METHOD"``, see
    :func:`list_references`), its file's SHA-256 checked, in eval mode on
    ``device``. Reads the repository's files only; never downloads.

    >>> model = load_reference("fashion-mnist/lfr")
    """
    entry = reference_entry(name)
    if entry.get("architecture") != "SmallCNN":
        raise WeightsError(f"reference {name!r} has architecture {entry.get('architecture')!r}; only SmallCNN is known")
    model = SmallCNN(**entry.get("model", {}))
    load_weights(model, reference_dir() / entry["file"], sha256=entry["sha256"])
    return model.to(device).eval()
