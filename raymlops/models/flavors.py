"""Flavors by name, and loading a version through its flavor.

A version's ``model.json`` names its flavor: a built-in name (``torch-tabular``,
``sklearn``) or a user's own ``package.module:Class`` (a :class:`~raymlops.models.contract.Model`
subclass, reaching replicas through the runtime_env). Versions written before flavors
existed have no name and are ``torch-tabular``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from raymlops.errors import ArtifactIntegrityError, ConfigError
from raymlops.models.contract import MODEL_FILE, Model
from raymlops.plugins import load_plugin

#: Built-in flavors: name → import path of the Model class (imported only when used).
FLAVORS: dict[str, str] = {
    "torch-tabular": "raymlops.models.torch_tabular:TorchTabularModel",
    "torch-tensor": "raymlops.models.torch_tensor:TorchTensorModel",
    "sklearn": "raymlops.models.sklearn:SklearnModel",
    "mlflow": "raymlops.models.mlflow:MlflowModel",
    "torch-module": "raymlops.models.torch_module:TorchModuleModel",
}
DEFAULT_FLAVOR = "torch-tabular"


def flavor_class(name: str) -> type[Model]:
    """The Model class of a flavor name or import path.

    Raises:
        ConfigError: naming ``flavor`` when it does not import or is not a Model.
    """
    if name not in FLAVORS and ":" not in name:
        raise ConfigError(file="<model.json>", problems=[("flavor", f"unknown {name!r}; use one of: "
                                                           f"{', '.join(sorted(FLAVORS))}, or package.module:Class")])
    found = load_plugin(FLAVORS.get(name, name), {}, "flavor", form="package.module:Class")
    if not (isinstance(found, type) and issubclass(found, Model)):
        raise ConfigError(file="<model.json>", problems=[("flavor", f"{name!r} is not a raymlops.Model subclass")])
    return found


def read_spec(directory: str | Path) -> dict[str, Any]:
    """A version's ``model.json``.

    Raises:
        ArtifactIntegrityError: it is missing or not JSON.
    """
    path = Path(directory) / MODEL_FILE
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ArtifactIntegrityError(uri=str(directory), file=MODEL_FILE, problem="missing") from None
    except ValueError as exc:
        raise ArtifactIntegrityError(uri=str(directory), file=MODEL_FILE, problem=f"not JSON ({exc})") from None


def load_model(directory: str | Path, manifest: dict[str, str] | None = None) -> Model:
    """Load a downloaded version through the flavor its ``model.json`` names.

    Args:
        directory: the version's files.
        manifest: the registry's ``{file: sha256}`` of the version; a flavor that must
            unpickle checks its file against it first (and refuses without it).

    Raises:
        ArtifactIntegrityError: a file is missing, unreadable or differs from the manifest.
        ConfigError: the flavor does not import.
    """
    spec = read_spec(directory)
    cls = flavor_class(spec.get("flavor", DEFAULT_FLAVOR))
    return cls.load(Path(directory), {**spec, "_manifest": manifest})
