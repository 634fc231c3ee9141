"""The ``sklearn`` flavor: any estimator or Pipeline with the scikit-learn API (XGBoost's and
LightGBM's scikit-learn wrappers included, when installed).

Stored with skops, which rebuilds objects without running pickled code and refuses any type
not explicitly trusted: at registration, types from scikit-learn, numpy, scipy, XGBoost and
LightGBM are trusted, any other must be named by the user (``trust``), and the trusted list
is saved in ``model.json`` (covered by the registry's sha256 manifest). A model skops cannot
store may be pickled only when the user opts in for that model (``allow_pickle``); it is then
unpickled only after its file matched the registry's manifest.

Files of a version besides the common ones: ``model.json`` and ``model.skops`` (or ``model.pkl``).
"""

from __future__ import annotations

import hashlib
import json
import pickle  # nosec - only behind allow_pickle and a verified sha256, see load_pickle
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from raymlops.data.schema import DatasetSchema
from raymlops.errors import ArtifactIntegrityError, ConfigError
from raymlops.models.contract import (
    MODEL_FILE,
    SIGNATURE_FILE,
    Columns,
    Model,
    Prediction,
    classes_prediction,
    values_prediction,
)
from raymlops.models.sklearn_arrays import MAX_TWIN_BYTES, array_twin
from raymlops.plugins import load_plugin

SKOPS_FILE = "model.skops"
PICKLE_FILE = "model.pkl"
#: Modules whose types are trusted without asking (the estimators' own libraries).
TRUSTED_MODULES = ("sklearn.", "numpy.", "scipy.", "xgboost.", "lightgbm.", "builtins.", "collections.")


def trusted_types(untrusted: Sequence[str], trust: Sequence[str]) -> list[str]:
    """The types to trust when loading: the known libraries' types plus the ones the user named.

    Raises:
        ConfigError: naming ``trust`` and each type that is neither.
    """
    unknown = [t for t in untrusted if not t.startswith(TRUSTED_MODULES) and t not in trust]
    if unknown:
        raise ConfigError(file="<register>", problems=[("trust", f"the model holds types skops does not trust: "
                                                       f"{', '.join(unknown)}; name each you trust (--trust TYPE)")])
    return sorted(set(untrusted))


class SklearnModel(Model):
    """A fitted scikit-learn estimator over the signature's columns."""

    flavor = "sklearn"
    requirements = ("scikit-learn", "numpy", "skops")

    def __init__(self, estimator: Any, signature: DatasetSchema, trust: Sequence[str] = (),
                 allow_pickle: bool = False) -> None:
        self.estimator = estimator
        self.signature = signature
        self.array_estimator: Any = None  # a twin answering arrays, set at load (see take_arrays)
        self.trust, self.allow_pickle = tuple(trust), allow_pickle
        if signature.is_classification:
            classes = [str(c) for c in getattr(estimator, "classes_", [])]
            if classes and classes != list(signature.classes):
                raise ConfigError(file="<signature>", problems=[("classes", f"the estimator's classes {classes} differ "
                                                                 f"from the signature's {list(signature.classes)}")])

    @classmethod
    def load(cls, directory: Path, spec: dict[str, Any]) -> SklearnModel:
        """Load with skops (trusted types only), or an opted-in pickle after its sha256 check.

        Raises:
            ArtifactIntegrityError: a file is missing, or the pickle differs from the manifest.
        """
        try:
            signature = DatasetSchema.from_json((directory / SIGNATURE_FILE).read_text())
        except FileNotFoundError:
            raise ArtifactIntegrityError(uri=str(directory), file=SIGNATURE_FILE, problem="missing") from None
        if spec.get("format", "skops") == "pickle":
            model = cls(load_pickle(directory, spec), signature)
            model.take_arrays((directory / PICKLE_FILE).stat().st_size)
            return model
        import skops.io

        path = directory / SKOPS_FILE
        if not path.exists():
            raise ArtifactIntegrityError(uri=str(directory), file=SKOPS_FILE, problem="missing")
        model = cls(skops.io.load(path, trusted=list(spec.get("trusted", []))), signature)
        model.take_arrays(path.stat().st_size)
        return model

    def take_arrays(self, stored_bytes: int) -> bool:
        """Answer numeric requests with arrays through a twin of a DataFrame-fitted estimator, where
        the twin gives the same answers (see :mod:`raymlops.models.sklearn_arrays`); returns whether."""
        if stored_bytes > MAX_TWIN_BYTES or self.signature.categorical or \
                not hasattr(self.estimator, "feature_names_in_"):
            return False
        self.array_estimator = array_twin(self.estimator, self.signature.feature_names, self._method)
        return self.array_estimator is not None

    @property
    def _method(self) -> str:
        return "predict_proba" if self.signature.is_classification and hasattr(self.estimator, "predict_proba") \
            else "predict"

    def save(self, directory: Path) -> None:
        """Write the estimator, ``model.json`` and the signature (see :func:`save_sklearn`)."""
        save_sklearn(directory, self.estimator, self.signature, self.trust, self.allow_pickle)

    def _input(self, columns: Columns) -> tuple[Any, Any]:
        """The estimator to call and its input: an array, or a DataFrame when the estimator was
        fitted on one (it checks the names) and has no array twin. Columns of one numeric dtype
        become one block (a frame built column by column costs about 0.3 ms more per call at 30
        features)."""
        names = self.signature.feature_names
        arrays = [np.asarray(columns[name]) for name in names]
        if self.array_estimator is not None and all(array.dtype.kind in "fiub" for array in arrays):
            return self.array_estimator, np.column_stack(arrays)
        if hasattr(self.estimator, "feature_names_in_"):
            import pandas as pd

            if len({array.dtype for array in arrays}) == 1 and arrays[0].dtype.kind in "fiub":
                return self.estimator, pd.DataFrame(np.column_stack(arrays), columns=names)  # one block
            return self.estimator, pd.DataFrame(dict(zip(names, arrays)), columns=names)
        return self.estimator, np.column_stack(arrays)

    def predict(self, columns: Columns) -> Prediction:
        """Class probabilities (``predict_proba``, or one-hot of ``predict``), or values."""
        estimator, x = self._input(columns)
        if not self.signature.is_classification:
            return values_prediction(estimator.predict(x))
        classes = self.signature.classes
        if self._method == "predict_proba":
            return classes_prediction(estimator.predict_proba(x), classes)
        index = {c: i for i, c in enumerate(classes)}
        predicted = [index[str(c)] for c in estimator.predict(x)]
        return classes_prediction(np.eye(len(classes))[predicted], classes)


def build_estimator(path: str, params: dict[str, Any], schema: DatasetSchema) -> Any:
    """The configured estimator in a Pipeline that one-hot encodes the categorical features.

    Raises:
        ConfigError: naming ``model.estimator`` (does not import, or is no estimator) or
            ``model.params`` (rejected by the estimator).
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    cls = load_plugin(path, {}, "model.estimator", form="package.module:Class")
    try:
        estimator = cls(**params)
    except TypeError as exc:
        raise ConfigError(file="<config>", problems=[("model.params", f"{path} rejected its parameters: {exc}")]) from None
    if not (hasattr(estimator, "fit") and hasattr(estimator, "predict")):
        raise ConfigError(file="<config>", problems=[("model.estimator", f"{path} has no fit/predict: not an estimator")])
    encode = ColumnTransformer([("categorical", OneHotEncoder(handle_unknown="ignore"), schema.categorical)],
                               remainder="passthrough", verbose_feature_names_out=False)
    return Pipeline([("encode", encode), ("estimator", estimator)])


def save_sklearn(directory: Path, estimator: Any, signature: DatasetSchema, trust: Sequence[str] = (),
                 allow_pickle: bool = False) -> None:
    """Write the estimator (skops, or an opted-in pickle), ``model.json`` and the signature.

    With ``allow_pickle``, a model holding types neither known nor in ``trust`` (or one skops
    cannot store) is pickled instead.

    Raises:
        ConfigError: untrusted types without ``trust``; or skops cannot store the model and
            ``allow_pickle`` is off.
    """
    import skops.io

    directory.mkdir(parents=True, exist_ok=True)
    SklearnModel(estimator, signature)  # the classes must agree before anything is written
    spec: dict[str, Any]
    try:
        data = skops.io.dumps(estimator)
        trusted = trusted_types(skops.io.get_untrusted_types(data=data), trust)
    except Exception as exc:  # noqa: BLE001 - skops raises many types for objects it cannot store
        if not allow_pickle:
            if isinstance(exc, ConfigError):
                raise
            raise ConfigError(file="<register>", problems=[("flavor", f"skops cannot store this model ({exc}); "
                                                           "opt in to pickle for this model (--allow-pickle)")]) from None
        data = b""
    if data:
        (directory / SKOPS_FILE).write_bytes(data)
        spec = {"flavor": "sklearn", "format": "skops", "trusted": trusted}
    else:  # opted in: types skops would not rebuild without trust, or an object it cannot store
        (directory / PICKLE_FILE).write_bytes(pickle.dumps(estimator))
        spec = {"flavor": "sklearn", "format": "pickle", "allow_pickle": True}
    spec["estimator"] = f"{type(estimator).__module__}.{type(estimator).__qualname__}"
    (directory / MODEL_FILE).write_text(json.dumps(spec, indent=2, sort_keys=True))
    (directory / SIGNATURE_FILE).write_text(signature.to_json())


def load_pickle(directory: Path, spec: dict[str, Any]) -> Any:
    """Unpickle an opted-in model, only after its bytes matched the registry's manifest.

    Raises:
        ArtifactIntegrityError: no opt-in, no manifest to check against, or a differing sha256.
    """
    if not spec.get("allow_pickle"):
        raise ArtifactIntegrityError(uri=str(directory), file=PICKLE_FILE, problem="a pickled model was not opted in")
    manifest = spec.get("_manifest") or {}
    if PICKLE_FILE not in manifest:
        raise ArtifactIntegrityError(uri=str(directory), file=PICKLE_FILE,
                                     problem="refusing to unpickle without the registry's manifest to check it against")
    data = (directory / PICKLE_FILE).read_bytes()
    if hashlib.sha256(data).hexdigest() != manifest[PICKLE_FILE]:
        raise ArtifactIntegrityError(uri=str(directory), file=PICKLE_FILE, problem="sha256 differs from the manifest")
    return pickle.loads(data)  # noqa: S301 - opted in and verified above
