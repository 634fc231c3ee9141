"""The environment a version was made in, and whether a process can serve it faithfully.

Every version records Python and the packages its flavor depends on (``Model.requirements``),
plus the runtime_env (``pip``/``uv``/``conda``/``image_uri``) or container image of the run.
A serving replica compares that record with its own packages: a different major or minor
release of any of them (or of Python) is a mismatch — a model pickled by scikit-learn 1.5 or
saved by torch 2.1 may load and answer differently under another release. Pure (no Ray).
"""

from __future__ import annotations

import os
import platform
import re
from dataclasses import asdict, dataclass
from importlib import metadata as importlib_metadata
from typing import Any

from raymlops.packages import NOT_INSTALLED, installed_versions

#: runtime_env keys that describe software (never env_vars: they may hold secrets).
SOFTWARE_KEYS = ("pip", "uv", "conda", "image_uri", "container")
#: Set in images built from the project's Dockerfile (or by you): the image a run used.
IMAGE_ENV = "RAYMLOPS_IMAGE"


def current_runtime_env() -> dict[str, Any]:
    """The software part of this Ray process's runtime_env (empty outside Ray or without one)."""
    try:
        import ray

        if not ray.is_initialized():
            return {}
        env = dict(ray.get_runtime_context().runtime_env or {})
    except Exception:  # noqa: BLE001 - the record is best effort outside a Ray process
        return {}
    return {key: env[key] for key in SOFTWARE_KEYS if env.get(key)}


def model_requirements(model: Any) -> tuple[str, ...]:
    """The flavor's ``requirements``, plus the distribution of a wrapped estimator's package when it
    is not scikit-learn itself (an XGBoost or LightGBM model depends on that release too)."""
    found = list(getattr(model, "requirements", ("numpy",)))
    estimator = getattr(model, "estimator", None)
    root = type(estimator).__module__.split(".", 1)[0] if estimator is not None else ""
    if root and root not in ("sklearn", "builtins"):
        found += [d for d in importlib_metadata.packages_distributions().get(root, []) if d not in found]
    return tuple(found)


def environment_of(model: Any) -> dict[str, Any]:
    """What a version made here records: Python, the packages ``model`` depends on, runtime_env, image."""
    return {"python": platform.python_version(), "packages": installed_versions(model_requirements(model)),
            "runtime_env": current_runtime_env(), "image": os.environ.get(IMAGE_ENV) or None}


def release_of(version: str) -> tuple[int, ...] | None:
    """``(major, minor)`` of a version string (None when it has none, e.g. ``not installed``)."""
    match = re.match(r"(\d+)(?:\.(\d+))?", version or "")
    if not match:
        return None
    return int(match.group(1)), int(match.group(2) or 0)


@dataclass(frozen=True)
class Mismatch:
    """One package (or ``python``) whose release differs from the recorded one."""

    package: str
    recorded: str
    here: str

    def __str__(self) -> str:
        return f"{self.package} {self.recorded} (trained) vs {self.here} (here)"


def describe_mismatches(found: list[dict[str, str]], separator: str = ", ") -> str:
    """``parity``'s mismatches as text: ``package recorded (trained) vs here (here)``, joined."""
    return separator.join(str(Mismatch(**m)) for m in found)


def mismatches(recorded: dict[str, Any], here: dict[str, str] | None = None) -> list[Mismatch]:
    """Packages (and Python) of a recorded environment whose major.minor release differs here.

    Args:
        recorded: a version's ``environment`` record.
        here: ``{package: version}`` of the serving process, with ``python`` (default: this process).
    """
    packages = dict(recorded.get("packages") or {})
    if recorded.get("python"):
        packages["python"] = recorded["python"]
    if here is None:
        here = {**installed_versions(p for p in packages if p != "python"), "python": platform.python_version()}
    found = []
    for package, version in sorted(packages.items()):
        current = here.get(package, NOT_INSTALLED)
        if version != NOT_INSTALLED and release_of(version) != release_of(current):
            found.append(Mismatch(package, version, current))
    return found


def parity(recorded: dict[str, Any] | None, here: dict[str, str] | None = None) -> dict[str, Any]:
    """The check as JSON: ``status`` (``match``, ``mismatch`` or ``unrecorded`` for versions made
    before environments were recorded), the mismatches, and the record."""
    if not recorded:
        return {"status": "unrecorded", "mismatches": [], "recorded": None}
    found = mismatches(recorded, here)
    return {"status": "mismatch" if found else "match", "mismatches": [asdict(m) for m in found],
            "recorded": recorded}


def recorded_runtime_env(recorded: dict[str, Any]) -> dict[str, Any]:
    """A runtime_env that recreates a recorded environment for one deployment: the recorded
    image (``image_uri``) when there is one, else ``pip`` pins of the flavor's packages at
    their recorded versions (plus any recorded pip/uv/conda settings)."""
    software = dict(recorded.get("runtime_env") or {})
    image = software.pop("image_uri", None) or recorded.get("image")
    if image:
        return {"image_uri": image}
    if "conda" in software or "container" in software:
        return {key: software[key] for key in ("conda", "container") if key in software}
    pins = [f"{name}=={version}" for name, version in sorted((recorded.get("packages") or {}).items())
            if version != NOT_INSTALLED]
    extra = software.get("pip") or software.get("uv") or []
    extra = extra.get("packages", []) if isinstance(extra, dict) else list(extra)
    pinned = {_requirement_name(p) for p in pins}
    return {"pip": pins + [p for p in extra if _requirement_name(p) not in pinned]}


def _requirement_name(requirement: str) -> str:
    """The distribution a pip requirement names (``torch>=2`` → ``torch``)."""
    return re.split(r"[=<>!~\[ ]", requirement, maxsplit=1)[0].lower()
