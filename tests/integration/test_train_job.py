"""Real training jobs on the session cluster: 2 DDP workers, Ray Data, registry, gate."""

import pytest

COMPARED = ("accuracy", "log_loss", "macro_f1", "final_train_loss", "final_val_loss", "final_val_accuracy")


def test_two_worker_job_registers_with_lineage_and_is_deterministic(shell_env, run_cli, penguins_data, registry):
    common = "--set model_name=penguins-it --set train.epochs=8 --set scaling.num_workers=2"
    first = run_cli(f"ray job submit --working-dir . -- python -m raymlops.jobs.train --config configs/train.yaml {common}",
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

    # `raymlops train --reproduce` re-runs v1 from its lineage (same config, seed and checked data):
    # on CPU with the built-in loop the numbers come out the same; the reproduction is a check, so
    # its gate is recorded but moves no alias.
    second = run_cli("raymlops train --reproduce penguins-it:1", shell_env, timeout=600)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert "reproduced penguins-it:1 as v2: metrics match (tolerance 1e-06)" in second.stdout, second.stdout[-3000:]
    assert "\ncode: same\n" in second.stdout and "\npackages: same\n" in second.stdout, second.stdout[-3000:]
    v2 = registry.get("penguins-it:2")
    for key in COMPARED:
        assert v2.metrics[key] == pytest.approx(v1.metrics[key], abs=1e-6), key
    assert v2.lineage["parent_version"] == 1 and v2.lineage["trigger"]["kind"] == "reproduce"
    assert v2.lineage["extra"]["reproduction"]["of"] == "penguins-it:1"
    assert len(v2.lineage["code"]["commit"]) == 40  # `raymlops train` passes the git revision along
    assert v2.lineage["code"]["source_sha256"] == lineage["code"]["source_sha256"]
    reproduced = registry.events("penguins-it", kinds=["reproduced"])[0]
    assert reproduced.version == 2 and reproduced.payload["within_tolerance"] is True
    assert [e.version for e in registry.events("penguins-it", kinds=["offline_gate"])] == [1, 2]
    assert registry.aliases("penguins-it") == {"candidate": 1, "champion": 1}


def test_training_starts_on_a_cluster_with_no_whole_cpu_free(shell_env, run_cli, penguins_data, registry,
                                                              ray_driver):
    """Replicas, monitors and controllers hold fractions of a small cluster's CPUs: a training job
    (its reads and maps included) must fit in what is left, not wait for a whole CPU."""
    from raymlops.testing import RecordCollector

    free = ray_driver.available_resources().get("CPU", 0.0)
    hog = None
    if free > 0.6:
        hog = ray_driver.remote(RecordCollector).options(num_cpus=round(free - 0.6, 2)).remote()
        ray_driver.get(hog.count.remote())  # placed: its CPUs are taken
    try:
        assert ray_driver.available_resources().get("CPU", 0.0) < 1.0
        done = run_cli("raymlops train --set model_name=penguins-busy --set train.epochs=2 "
                       "--set scaling.num_workers=1 --set scaling.cpus_per_worker=0.25", shell_env, timeout=300)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert registry.get("penguins-busy:1").metrics["epochs"] == 2
    finally:
        if hog is not None:
            ray_driver.kill(hog)


def test_bad_config_fails_before_workers_start(shell_env, run_cli, ray_cluster):
    result = run_cli("raymlops train --set data.path=/nonexistent/data", shell_env, timeout=300)
    assert result.returncode == 2
    assert "error: /nonexistent/data/schema.json: no schema.json here" in result.stdout + result.stderr
    assert "RayTrainWorker" not in result.stdout
