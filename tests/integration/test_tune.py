"""A tune run registers its best trial (a killed training worker: tests/chaos)."""





def test_tune_registers_the_best_of_three_trials(shell_env, run_cli, penguins_data, registry):
    result = run_cli(
        "raymlops tune --set base.model_name=penguins-tuned --set base.train.epochs=3 --set tune.num_samples=3 "
        "--set tune.max_concurrent_trials=2 --set tune.grace_period=1",
        shell_env, timeout=900,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    version = registry.get("penguins-tuned")
    lineage = version.lineage
    assert lineage["trigger"]["kind"] == "tune" and lineage["trigger"]["tune_run"] == lineage["extra"]["tune_run"]
    trials = lineage["extra"]["trials"]
    assert len(trials) == 3
    assert all(set(t["params"]) == {"train.lr", "train.batch_size", "model.params.hidden"} for t in trials)
    best = max(t["final"]["val_accuracy"] for t in trials)
    assert lineage["extra"]["best_params"] in [t["params"] for t in trials if t["final"]["val_accuracy"] == best]
    assert registry.aliases("penguins-tuned")["candidate"] == version.version
