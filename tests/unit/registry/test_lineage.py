import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from raymlops.registry import Lineage, Trigger, collect_lineage
from raymlops.registry.lineage import code_revision, config_hash, fingerprint
from raymlops.types import ModelRef


def test_config_hash_ignores_key_order():
    assert config_hash({"a": 1, "b": {"c": 2}}) == config_hash({"b": {"c": 2}, "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})


def test_fingerprint_of_parquet_and_directory(tmp_path):
    pq.write_table(pa.table({"x": [1, 2, 3]}), tmp_path / "train.parquet")
    (tmp_path / "schema.json").write_text("{}")
    single = fingerprint(str(tmp_path / "train.parquet"))
    assert len(single) == 1 and single[0].rows == 3 and len(single[0].sha256) == 64
    both = fingerprint(str(tmp_path))
    assert [fp.uri.rsplit("/", 1)[-1] for fp in both] == ["schema.json", "train.parquet"]
    pq.write_table(pa.table({"x": [1, 2, 4]}), tmp_path / "train.parquet")
    assert fingerprint(str(tmp_path / "train.parquet"))[0].sha256 != single[0].sha256


def test_collect_lineage_records_everything(tmp_path, monkeypatch):
    pq.write_table(pa.table({"x": [1.0]}), tmp_path / "d.parquet")
    monkeypatch.setenv("RAY_JOB_SUBMISSION_ID", "raysubmit_abc")
    lineage = collect_lineage({"train": {"epochs": 3}}, [str(tmp_path / "d.parquet")], seed=7, parent_version=2,
                              trigger=Trigger(kind="drift", drift_event_id=41))
    assert lineage.config_hash == config_hash({"train": {"epochs": 3}})
    assert lineage.seed == 7 and lineage.parent_version == 2
    assert lineage.trigger.kind == "drift" and lineage.trigger.drift_event_id == 41
    assert lineage.ray_job_id == "raysubmit_abc"
    assert {"python", "ray", "torch", "alibi-detect", "raymlops"} <= set(lineage.packages)
    assert lineage.data[0].rows == 1
    assert Lineage.model_validate(lineage.model_dump(mode="json")) == lineage


def test_code_revision_from_git_and_from_environment(tmp_path, monkeypatch):
    here = code_revision(".")
    assert here.commit and len(here.commit) == 40
    monkeypatch.setenv("RAYMLOPS_CODE_REVISION", "abc123+dirty")
    outside = code_revision(tmp_path)
    assert (outside.commit, outside.dirty) == ("abc123", True)


def test_lineage_chain_follows_parents(registry, artifact_dir):
    registry.register("iris", artifact_dir(), lineage=Lineage(trigger=Trigger(kind="manual")))
    registry.register("iris", artifact_dir(), lineage=Lineage(parent_version=1, trigger=Trigger(kind="drift", drift_event_id=5)))
    registry.register("iris", artifact_dir(), lineage=Lineage(parent_version=2))
    assert [v.version for v in registry.lineage_chain("iris:3")] == [3, 2, 1]
    assert registry.get("iris:2").lineage["trigger"]["drift_event_id"] == 5


@pytest.mark.parametrize("text, expected", [
    ("iris", ModelRef("iris")), ("iris:3", ModelRef("iris", version=3)), ("iris@champion", ModelRef("iris", alias="champion")),
])
def test_model_ref_parse(text, expected):
    assert ModelRef.parse(text) == expected
    assert str(ModelRef.parse(text)) == text


@pytest.mark.parametrize("text", ["iris:0", "iris:x", "iris@", "../iris", "iris:-1"])
def test_model_ref_rejects(text):
    from raymlops.errors import InvalidNameError

    with pytest.raises(InvalidNameError):
        ModelRef.parse(text)
