"""Eight model shapes written outside nnprobe, as users write them (issue 19): the probes must work on each, or
refuse it cleanly. Small sizes: they train in a second on digits.

Imported by ``tests/models/test_model_shapes.py`` and ``bench/model_shapes.py`` as the top-level module
``user_models`` (its folder is put on ``sys.path``), so that models saved whole with ``torch.save`` load again
from the command line. torchvision is not used: :class:`TorchvisionResNet18` is written here in its layout.
"""

from __future__ import annotations

from torch import nn
from torch.nn import functional as F


class SequentialMLP(nn.Sequential):
    """A plain ``nn.Sequential``; its head is the last module, named ``"5"``."""

    def __init__(self, inputs: int = 64, classes: int = 10, width: int = 32):
        super().__init__(
            nn.Flatten(),
            nn.Linear(inputs, width),
            nn.ReLU(),
            nn.Linear(width, width // 2),
            nn.ReLU(),
            nn.Linear(width // 2, classes),
        )


class FunctionalReluCNN(nn.Module):
    """Convolutions with ``F.relu`` in ``forward`` (no ReLU modules) and a head called ``classifier``."""

    def __init__(self, channels: int = 1, classes: int = 10, width: int = 8):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, 2 * width, 3, padding=1)
        self.fc = nn.Linear(2 * width * 4, 32)
        self.classifier = nn.Linear(32, classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.adaptive_avg_pool2d(F.relu(self.conv2(x)), 2).flatten(1)
        return self.classifier(F.relu(self.fc(x)))


class GeluMLP(nn.Module):
    """GELU activations only: no ReLU anywhere (the codes probe has no on/off pattern to record)."""

    def __init__(self, inputs: int = 64, classes: int = 10, width: int = 32):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(inputs, width), nn.GELU(), nn.Linear(width, width), nn.GELU())
        self.head = nn.Linear(width, classes)

    def forward(self, x):
        return self.head(self.body(x))


class BatchNormDropoutNet(nn.Module):
    """BatchNorm and Dropout (their train/eval modes matter), head ``fc``."""

    def __init__(self, channels: int = 1, classes: int = 10, width: int = 8):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(2),
            nn.Flatten(),
            nn.Dropout(0.2),
            nn.Linear(width * 4, 32),
            nn.BatchNorm1d(32),
            nn.ReLU(),
            nn.Dropout(0.2),
        )
        self.fc = nn.Linear(32, classes)

    def forward(self, x):
        return self.fc(self.features(x))


class TupleNet(nn.Module):
    """``forward`` returns ``(logits, features)``, as many research models do."""

    def __init__(self, inputs: int = 64, classes: int = 10, width: int = 32):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(inputs, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU())
        self.out = nn.Linear(width, classes)

    def forward(self, x):
        features = self.body(x)
        return self.out(features), features


class BasicBlock(nn.Module):
    """torchvision's ``BasicBlock``: one ReLU module called twice, an optional downsample branch."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        return self.relu(out + identity)


class TorchvisionResNet18(nn.Module):
    """torchvision's ``resnet18`` layout and names (``conv1`` 7x7/2, ``maxpool``, ``layer1..4``, ``avgpool``,
    ``fc``) for 3-channel images; ``width`` 64 is torchvision's, smaller widths keep tests fast."""

    def __init__(self, num_classes: int = 10, width: int = 64):
        super().__init__()
        self.inplanes = width
        self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._make_layer(width, 2)
        self.layer2 = self._make_layer(2 * width, 2, stride=2)
        self.layer3 = self._make_layer(4 * width, 2, stride=2)
        self.layer4 = self._make_layer(8 * width, 2, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(8 * width, num_classes)

    def _make_layer(self, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))
        layers = [BasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        layers += [BasicBlock(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).flatten(1))


class MixedActivationNet(nn.Module):
    """LeakyReLU, Hardtanh and ReLU6 in one network, head ``head``."""

    def __init__(self, inputs: int = 64, classes: int = 10, width: int = 32):
        super().__init__()
        self.body = nn.Sequential(
            nn.Flatten(),
            nn.Linear(inputs, width),
            nn.LeakyReLU(0.1),
            nn.Linear(width, width),
            nn.Hardtanh(),
            nn.Linear(width, width),
            nn.ReLU6(),
        )
        self.head = nn.Linear(width, classes)

    def forward(self, x):
        return self.head(self.body(x))


class HeadFirstNet(nn.Module):
    """The head is registered before the body (registration order is not the order of the forward pass)."""

    def __init__(self, inputs: int = 64, classes: int = 10, width: int = 32):
        super().__init__()
        self.logits = nn.Linear(width, classes)
        self.embed = nn.Sequential(
            nn.Flatten(), nn.Linear(inputs, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU()
        )

    def forward(self, x):
        return self.logits(self.embed(x))


# name -> (build(classes), dataset it takes, head name, output selector or None)
SHAPES = {
    "Sequential MLP": (lambda k: SequentialMLP(classes=k), "digits", "5", None),
    "F.relu CNN, head 'classifier'": (lambda k: FunctionalReluCNN(classes=k), "digits", "classifier", None),
    "GELU only": (lambda k: GeluMLP(classes=k), "digits", "head", None),
    "BatchNorm + Dropout": (lambda k: BatchNormDropoutNet(classes=k), "digits", "fc", None),
    "tuple output (logits, features)": (lambda k: TupleNet(classes=k), "digits", "out", 0),
    "torchvision-style ResNet-18": (
        lambda k: TorchvisionResNet18(num_classes=k, width=4),
        "digits@3x32x32",
        "fc",
        None,
    ),
    "LeakyReLU/Hardtanh/ReLU6 mix": (lambda k: MixedActivationNet(classes=k), "digits", "head", None),
    "head registered first": (lambda k: HeadFirstNet(classes=k), "digits", "logits", None),
}


def train_plainly(
    model: nn.Module, dataset, output=None, epochs: int = 3, lr: float = 1e-2, seed: int = 0, batch_size: int = 64
) -> float:
    """Train ``model`` as its user would, outside nnprobe (Adam, cross-entropy on ``out[output]`` when the model
    returns a tuple); returns its test accuracy, computed here, independently of the probes."""
    import torch

    torch.manual_seed(seed)
    pick = (lambda out: out) if output is None else (lambda out: out[output])
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(dataset.n_train)
        for i in range(0, dataset.n_train, batch_size):
            idx = order[i : i + batch_size]
            loss = F.cross_entropy(pick(model(dataset.x_train[idx])), dataset.y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        return float((pick(model(dataset.x_test)).argmax(1) == dataset.y_test).float().mean())
