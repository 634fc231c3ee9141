"""What ``import raymlops`` offers: exactly the names listed here, each importable, and the whole error tree."""

import importlib
import inspect
import subprocess
import sys

import raymlops
from raymlops import errors

PUBLIC = {
    "AliasConflictError", "ArtifactIntegrityError", "AuthenticationError", "ConflictError", "ClusterError", "ConfigError", "DataError",
    "EnvironmentMismatchError",
    "InvalidNameError", "InvalidRequestError", "JobError", "LimitExceededError", "ModelOutputError", "NotAvailableError", "NotFoundError",
    "PermissionDeniedError", "RaymlopsError", "RegistryError", "RolloutError", "SchemaVersionError", "StorageError",
    "__version__", "load_config", "Model", "OutputSpec", "Prediction", "load_model", "register_model",
}


def test_all_lists_exactly_the_public_names_and_each_imports():
    assert set(raymlops.__all__) == PUBLIC
    for name in raymlops.__all__:
        assert getattr(importlib.import_module("raymlops"), name) is not None


def test_every_error_class_is_public():
    tree = {name for name, value in vars(errors).items()
            if inspect.isclass(value) and issubclass(value, errors.RaymlopsError)}
    assert tree <= set(raymlops.__all__)


def test_importing_the_package_starts_no_ray_and_creates_no_console():
    code = ("import sys, raymlops, raymlops.cli, raymlops.cli.demo as demo; "
            "ray = sys.modules.get('ray'); "
            "print(bool(ray and ray.is_initialized()), demo.console.cache_info().currsize)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "0"], out.stdout


def test_the_package_ships_its_type_information():
    from importlib.resources import files

    assert files("raymlops").joinpath("py.typed").is_file()
