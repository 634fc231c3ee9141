"""Reading YAML, dotted overrides, validation into one ConfigError, and the model of each file."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from raymlops.config.base import StrictModel
from raymlops.config.cluster import LocalClusterConfig
from raymlops.config.data import DataConfig
from raymlops.config.monitor import MonitorConfig
from raymlops.config.pipeline import PipelineConfig
from raymlops.config.registry import RegistryConfig
from raymlops.config.rollout import RolloutConfig
from raymlops.config.serve import ServeConfig
from raymlops.config.train import TrainConfig
from raymlops.config.tune import TuneConfig
from raymlops.errors import ConfigError

ModelT = TypeVar("ModelT", bound=BaseModel)


#: The model for each file name in ``configs/`` (``raymlops config validate`` uses it).
CONFIG_MODELS: dict[str, type[StrictModel]] = {
    "local": LocalClusterConfig,
    "data": DataConfig,
    "registry": RegistryConfig,
    "train": TrainConfig,
    "tune": TuneConfig,
    "serve": ServeConfig,
    "monitor": MonitorConfig,
    "rollout": RolloutConfig,
    "pipeline": PipelineConfig,
}


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``"a.b.c=value"`` into a key path and a YAML-typed value.

    Raises:
        ConfigError: when the text has no ``=`` or an empty key.
    """
    key, sep, raw = text.partition("=")
    parts = key.strip().split(".")
    if not sep or not all(parts):
        raise ConfigError(file="<overrides>", problems=[(text, "expected KEY.PATH=VALUE, e.g. train.epochs=3")])
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return parts, value


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Return a copy of ``data`` with each dotted override set (intermediate tables created)."""
    result = _deep_copy(data)
    for text in overrides:
        path, value = parse_override(text)
        node = result
        for index, part in enumerate(path[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                dotted = ".".join(path[: index + 1])
                raise ConfigError(file="<overrides>", problems=[(dotted, "is a value, not a table; cannot set a key in it")])
            node = child
        node[path[-1]] = value
    return result


def _deep_copy(data: Any) -> Any:
    if isinstance(data, dict):
        return {key: _deep_copy(value) for key, value in data.items()}
    if isinstance(data, list):
        return [_deep_copy(value) for value in data]
    return data


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping; an empty file is an empty mapping.

    Raises:
        ConfigError: missing file, YAML syntax error (with line), or a top level that is not a mapping.
    """
    file = str(path)
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise ConfigError(file=file, problems=[("", "file not found")]) from None
    except OSError as exc:
        raise ConfigError(file=file, problems=[("", f"cannot read: {exc.strerror}")]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(file=file, problems=[("", f"{where}invalid YAML: {problem}")]) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(file=file, problems=[("", f"top level must be a mapping, got {type(data).__name__}")])
    return data


def validate_data(data: dict[str, Any], model: type[ModelT], file: str = "<config>") -> ModelT:
    """Validate a mapping against ``model``, turning pydantic's errors into one ConfigError."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            path = ".".join(str(part) for part in error["loc"])
            message = "unknown key" if error["type"] == "extra_forbidden" else error["msg"]
            problems.append((path, message))
        raise ConfigError(file=file, problems=problems) from None


def load_config(
    path: str | Path | None, model: type[ModelT], overrides: Sequence[str] = ()
) -> ModelT:
    """Load a YAML file into ``model`` after applying dotted ``overrides``.

    Args:
        path: the YAML file; ``None`` starts from the model's defaults.
        model: the pydantic model class of that file.
        overrides: ``"key.path=value"`` strings; values are parsed as YAML scalars.

    Raises:
        ConfigError: naming the file, the field path and the problem for each error.
    """
    data = read_yaml(path) if path is not None else {}
    data = apply_overrides(data, overrides)
    return validate_data(data, model, file=str(path) if path is not None else "<defaults>")


def packaged_default(kind: str) -> Path:
    """The default ``<kind>.yaml`` installed with the package (what ``raymlops init`` copies)."""
    from importlib.resources import files

    return Path(str(files("raymlops") / "defaults" / f"{kind}.yaml"))


def find_config(path: str | Path | None, kind: str) -> Path | None:
    """The file to read for a ``kind`` config: ``path`` when it exists; for the conventional
    ``configs/<kind>.yaml`` that is not there (a command run outside a project), the packaged
    default; ``None`` when no path was given. Any other missing path is returned as it is, so
    reading it names the missing file."""
    if path is None:
        conventional = Path("configs") / f"{kind}.yaml"
        return conventional if conventional.exists() else packaged_default(kind)
    path = Path(path)
    if path.exists() or path.as_posix() != f"configs/{kind}.yaml":
        return path
    return packaged_default(kind)


def model_for_file(path: str | Path, kind: str | None = None) -> type[StrictModel]:
    """Pick the config model for a file by ``kind`` or by its name (``configs/data.yaml`` → data).

    Raises:
        ConfigError: when neither names a known kind.
    """
    name = kind or Path(path).stem
    try:
        return CONFIG_MODELS[name]
    except KeyError:
        known = ", ".join(sorted(CONFIG_MODELS))
        raise ConfigError(
            file=str(path), problems=[("", f"unknown config kind {name!r}; pass --kind with one of: {known}")]
        ) from None
