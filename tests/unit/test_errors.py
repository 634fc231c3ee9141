import pickle

import pytest

from raymlops import errors

EXAMPLES = {
    errors.RaymlopsError: {"message": "boom"},
    errors.LimitExceededError: {"field": "body", "size": 2000, "limit": 1000, "unit": "bytes"},
    errors.RolloutError: {"model": "penguins", "problem": "a rollout of v3 is already running"},
    errors.ConfigError: {"file": "train.yaml", "problems": [("train.epochs", "must be > 0")]},
    errors.DataError: {"path": "data/x.parquet", "problem": "no such file"},
    errors.StorageError: {"uri": "s3://b/k", "problem": "denied"},
    errors.ClusterError: {"problem": "port busy", "fix": "free it"},
    errors.JobError: {"job_id": "raysubmit_1", "problem": "FAILED"},
    errors.NotAvailableError: {"feature": "postgres", "reason": "install raymlops[postgres]"},
    errors.InvalidNameError: {"what": "model name", "value": "../x"},
    errors.RegistryError: {"message": "registry failed"},
    errors.InvalidRequestError: {"field": "instances[0].x", "problem": "must be a number"},
    errors.AuthenticationError: {"scheme": "Bearer", "problem": "no Authorization header"},
    errors.PermissionDeniedError: {"action": "change traffic", "problem": "wrong admin token"},
    errors.NotFoundError: {"what": "model", "name": "iris"},
    errors.AliasConflictError: {"model": "iris", "alias": "champion", "expected": 1, "actual": 2},
    errors.ArtifactIntegrityError: {"uri": "/r/iris/v1", "file": "model.safetensors", "problem": "sha256 differs"},
    errors.ModelOutputError: {"version": 3, "problem": "output value row 0 is NaN"},
    errors.ConflictError: {"what": "feedback", "problem": "request abc already labelled"},
    errors.EnvironmentMismatchError: {"model": "iris", "version": 3,
                                      "differences": "scikit-learn 1.4.2 (trained) vs 1.5.0 (here)"},
    errors.SchemaVersionError: {"url": "sqlite:///r.db", "found": 9, "supported": 1},
}


def all_error_classes():
    found, todo = set(), [errors.RaymlopsError]
    while todo:
        cls = todo.pop()
        found.add(cls)
        todo.extend(cls.__subclasses__())
    return found


def test_every_error_class_has_an_example():
    assert all_error_classes() <= set(EXAMPLES), "add new error classes to EXAMPLES"


@pytest.mark.parametrize("cls", list(EXAMPLES), ids=lambda c: c.__name__)
def test_errors_round_trip_through_pickle(cls):
    original = cls(**EXAMPLES[cls])
    copy = pickle.loads(pickle.dumps(original))
    assert type(copy) is cls
    assert str(copy) == str(original)
    assert copy.fields == original.fields
    assert isinstance(copy, errors.RaymlopsError)


def test_messages_name_their_fields():
    assert str(errors.DataError(path="p.parquet", problem="not parquet")) == "p.parquet: not parquet"
    text = str(errors.ConfigError(file="a.yaml", problems=[("x.y", "unknown key"), ("z", "bad")]))
    assert text.splitlines() == ["a.yaml: x.y: unknown key", "a.yaml: z: bad"]


def test_missing_fields_are_refused():
    with pytest.raises(TypeError, match="path"):
        errors.DataError(problem="x")
