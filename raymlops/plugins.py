"""The one plugin loader: a short name from a table of built-ins, or ``package.module:Object``.

Record sinks, drift detector backends, model builders (and the model flavors) are all chosen
this way, so a typo or a missing module fails the same way everywhere: a ConfigError naming
the setting, what was asked for, and what would have worked.
"""

from __future__ import annotations

import importlib
from typing import Any, Mapping, Sequence

#: Module prefixes plugins may be imported from in this process; None = any (see :func:`trust_only`).
_trusted: tuple[str, ...] | None = None


def trust_only(prefixes: Sequence[str] | None) -> None:
    """Limit the modules :func:`load_plugin` imports in this process to ``prefixes`` (a module
    matches its prefix exactly or as a parent package; ``raymlops`` is always trusted); None lifts
    the limit. A model server sets it from ``access.trusted_modules`` before loading any version."""
    global _trusted
    _trusted = None if prefixes is None else ("raymlops", *prefixes)


def is_trusted(module_name: str) -> bool:
    """Whether ``module_name`` may be imported under the current :func:`trust_only` limit."""
    return _trusted is None or any(module_name == p or module_name.startswith(p + ".") for p in _trusted)


def load_plugin(name: str, builtins: Mapping[str, Any], setting: str, file: str = "<config>",
                form: str = "package.module:Object") -> Any:
    """The object ``name`` stands for: ``builtins[name]``, or ``package.module:Object`` imported.

    Args:
        name: a key of ``builtins`` or an import path with a colon.
        builtins: the short names this setting knows.
        setting: the config field that named it, for the error (e.g. ``records.sink``).
        file: the config file it came from, for the error.
        form: how the import path is spelled in errors (``package.module:function`` for functions).

    Raises:
        ConfigError: an unknown short name, a malformed path, a module outside the trusted
            prefixes, or one that does not import.
    """
    from raymlops.errors import ConfigError

    if name in builtins:
        return builtins[name]
    module_name, colon, attribute = name.partition(":")
    if not colon:
        known = ", ".join(sorted(builtins)) or "none"
        raise ConfigError(file=file, problems=[(setting, f"unknown {name!r}; use one of: {known}, or {form}")])
    if not module_name or not attribute:
        raise ConfigError(file=file, problems=[(setting, f"{name!r} is not of the form {form}")])
    if not is_trusted(module_name):
        raise ConfigError(file=file, problems=[(setting, f"{module_name!r} is not among the trusted module prefixes "
                                                f"({', '.join(_trusted or ())}); add it to access.trusted_modules "
                                                "if you trust what it runs")])
    try:
        return getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(file=file, problems=[(setting, f"cannot import {name!r}: {exc}")]) from None
