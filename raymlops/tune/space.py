"""Search spaces from YAML, and applying a trial's values to a training config. Pure
except :func:`to_ray_space`, which imports ray.tune when called."""

from __future__ import annotations

from typing import Any

from raymlops.config import SearchDimension, TrainConfig, apply_overrides, validate_data
from raymlops.errors import ConfigError


def check_space(space: dict[str, SearchDimension], base: TrainConfig) -> None:
    """Every key must name an existing training-config field.

    Raises:
        ConfigError: naming ``search_space.<key>`` for a key the training config does not have.
    """
    problems = []
    for key, dimension in space.items():
        sample = (dimension.values or [None])[0] if dimension.type == "choice" else dimension.low
        try:
            apply_params(base, {key: sample})
        except ConfigError as exc:
            problems.append((f"search_space.{key}", exc.fields["problems"][0][1] if exc.fields["problems"] else "invalid"))
    if problems:
        raise ConfigError(file="<tune config>", problems=problems)


def apply_params(base: TrainConfig, params: dict[str, Any]) -> TrainConfig:
    """The training config with each dotted ``key: value`` of a trial set.

    Raises:
        ConfigError: a key or value the training config rejects.
    """
    data = base.model_dump(mode="json")
    for key, value in params.items():
        data = apply_overrides(data, [f"{key}=__placeholder__"])
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            node = node[part]
        node[parts[-1]] = value
    return validate_data(data, TrainConfig, file="<trial>")


def to_ray_space(space: dict[str, SearchDimension]) -> dict[str, Any]:
    """The Ray Tune sampling objects for a search space."""
    from ray import tune

    samplers = {
        "uniform": lambda d: tune.uniform(d.low, d.high),
        "loguniform": lambda d: tune.loguniform(d.low, d.high),
        "randint": lambda d: tune.randint(int(d.low), int(d.high)),
        "choice": lambda d: tune.choice(d.values),
    }
    return {key: samplers[dimension.type](dimension) for key, dimension in space.items()}
