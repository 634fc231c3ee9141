"""Real training jobs on the session cluster: 2 DDP workers, Ray Data, registry, gate."""

import pytest

COMPARED = ("accuracy", "log_loss", "macro_f1", "final_train_loss", "final_val_loss", "final_val_accuracy")


def test_two_worker_job_registers_with_lineage_and_is_deterministic(shell_env, run_cli, penguins_data, registry):
    common = "--set model_name=penguins-it --set train.epochs=8 --set scaling.num_workers=2"
    first = run_cli(f"ray job submit --working-dir . -- python jobs/train.py --config configs/train.yaml {common}",
                    shell_env, timeout=600)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "[raymlops] epoch 8/8" in first.stdout and "registered penguins-it:1" in first.stdout

    v1 = registry.get("penguins-it:1")
    assert v1.metrics["accuracy"] > v1.metrics["majority_baseline"] + 0.25
    lineage = v1.lineage
    assert lineage["config"]["train"]["epochs"] == 8 and len(lineage["config_hash"]) == 64
    # `ray job submit` uploads no .git: the code is identified by the digest of its sources.
    assert len(lineage["code"]["source_sha256"]) == 64 and lineage["seed"] == 0
    assert lineage["ray_job_id"].startswith("raysubmit_")
    assert {d["uri"].rsplit("/", 1)[-1] for d in lineage["data"]} == {"train.parquet", "valid.parquet", "test.parquet"}
    assert {"python", "ray", "torch", "alibi-detect", "raymlops"} <= set(lineage["packages"])
    assert lineage["trigger"]["kind"] == "manual" and lineage["parent_version"] is None
    assert [h["epoch"] for h in lineage["extra"]["history"]] == list(range(1, 9))
    assert set(v1.manifest) >= {"model.safetensors", "reference.parquet", "detector.json", "signature.json"}
    assert registry.aliases("penguins-it") == {"candidate": 1, "champion": 1}

    # The same config and data again (through `raymlops train` this time) gives the same
    # numbers; a margin the tie cannot meet fails the gate, and that is recorded too.
    second = run_cli(f"raymlops train {common} --set gate.margin=0.05", shell_env, timeout=600)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    v2 = registry.get("penguins-it:2")
    for key in COMPARED:
        assert v2.metrics[key] == pytest.approx(v1.metrics[key], abs=1e-6), key
    assert v2.lineage["parent_version"] == 1
    assert len(v2.lineage["code"]["commit"]) == 40  # `raymlops train` passes the git revision along
    assert v2.lineage["code"]["source_sha256"] == lineage["code"]["source_sha256"]
    gates = registry.events("penguins-it", kinds=["offline_gate"])
    assert [(e.version, e.payload["passed"]) for e in gates] == [(1, True), (2, False)]
    assert registry.aliases("penguins-it") == {"candidate": 1, "champion": 1}


def test_bad_config_fails_before_workers_start(shell_env, run_cli, ray_cluster):
    result = run_cli("raymlops train --set data.path=/nonexistent/data", shell_env, timeout=300)
    assert result.returncode == 2
    assert "error: /nonexistent/data/schema.json: no schema.json here" in result.stdout + result.stderr
    assert "RayTrainWorker" not in result.stdout
