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


#: Built-in model builders by short name (``model.builder: mlp`` = ``raymlops.models:mlp``).
BUILDERS: dict[str, Callable[..., Any]] = {"mlp": mlp}
