"""Network builders of the torch flavors, chosen in config by import path: ``"raymlops.models:mlp"`` or your own.

A builder is any callable ``builder(input_dim, output_dim, **params) -> torch.nn.Module``.
"""

from __future__ import annotations

from typing import Any, Callable

from raymlops.errors import ConfigError
from raymlops.plugins import load_plugin


def mlp(input_dim: int, output_dim: int, hidden: list[int] | tuple[int, ...] = (64, 64), dropout: float = 0.0,
        activation: str = "relu"):
    """A multi-layer perceptron for tabular data (logits out: classes, or 1 for regression)."""
    import torch.nn as nn

    activations = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh}
    if activation not in activations:
        raise ValueError(f"activation must be one of {sorted(activations)}, got {activation!r}")
    layers: list[nn.Module] = []
    width = input_dim
    for size in hidden:
        layers += [nn.Linear(width, int(size)), activations[activation]()]
        if dropout:
            layers.append(nn.Dropout(dropout))
        width = int(size)
    layers.append(nn.Linear(width, output_dim))
    return nn.Sequential(*layers)


def resolve_builder(path: str) -> Callable[..., Any]:
    """Import ``"package.module:function"`` (or a built-in builder's short name, e.g. ``mlp``).

    Raises:
        ConfigError: naming ``model.builder`` when it does not import or is not callable.
    """
    builder = load_plugin(path, BUILDERS, "model.builder", form="package.module:function")
    if not callable(builder):
        raise ConfigError(file="<config>", problems=[("model.builder", f"{path!r} is not callable")])
    return builder


def build_model(path: str, params: dict[str, Any], input_dim: int, output_dim: int):
    """Build the configured model.

    Raises:
        ConfigError: the builder does not import, or rejects its parameters.
    """
    builder = resolve_builder(path)
    try:
        return builder(input_dim, output_dim, **params)
    except (TypeError, ValueError) as exc:
        raise ConfigError(file="<config>", problems=[("model.params", f"{path} rejected its parameters: {exc}")]) from None





def small_cnn(input_dim: int, output_dim: int, input_shape: list[int] | tuple[int, ...] = (1, 8, 8),
              channels: int = 16, embedding: int = 32):
    """A small convolutional network for images ``input_shape`` = [channels, height, width]:
    two 3×3 convolutions → an ``embedding``-wide vector (``embed``) → a linear head (``head``).
    The torch-tensor flavor watches the embedding for drift."""
    import torch.nn as nn

    in_channels, height, width = (int(v) for v in input_shape)

    class SmallCNN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(in_channels, channels, 3, padding=1), nn.ReLU(),
                nn.Conv2d(channels, channels * 2, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d((2, 2)),
                nn.Flatten(), nn.Linear(channels * 2 * 4, embedding), nn.ReLU())
            self.classifier = nn.Linear(embedding, output_dim)

        def embed(self, x):
            return self.features(x.reshape(-1, in_channels, height, width))

        def head(self, embedded):
            return self.classifier(embedded)

        def forward(self, x):
            return self.head(self.embed(x))

    return SmallCNN()


#: Built-in model builders by short name (``model.builder: mlp`` = ``raymlops.models:mlp``).
BUILDERS: dict[str, Callable[..., Any]] = {"mlp": mlp, "small_cnn": small_cnn}
