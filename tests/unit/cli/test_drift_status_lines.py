"""What `raymlops drift status` prints of a version: the budget, each detector's latest p-value
against its calibrated threshold with its largest effect, and the accuracy estimate."""

from raymlops.cli.monitoring import budget_lines, report_line, shard_lines


def test_status_lines_name_thresholds_effects_and_the_budget():
    report = {"p_values": {"x": 0.0001, "c": 0.3}, "distances": {}, "threshold": 0.0021, "drift": True,
              "window_rows": 500, "effects": {"x": 0.42, "c": 0.01}, "min_effect": {"x": 0.1, "c": 0.02}}
    line = report_line("feature", report)
    assert line.startswith("feature  drift") and "lowest p 0.0001 (x) vs threshold 0.0021" in line
    assert "largest effect 0.42 (x, min 0.1)" in line and "500 rows" in line
    budget = {"false_alarms": 1.0, "per_rows": 20000, "rows": 4000, "alarms": 1, "budget_so_far": 0.2,
              "detectors": {"feature": {"looks": 8, "alarms": 1, "expected_false_alarms": 0.08,
                                        "allocation": {"alarms": 0.4, "alpha": 0.01, "ert": None}}}}
    lines = budget_lines(budget)
    assert lines[0] == "budget: 1 false alarm(s) per 20000 rows; 1 alarm(s) in 4000 rows (≈0.2 expected with no drift)"
    assert "feature  share 0.4 (α 0.01 per window); 1 alarm(s) in 8 looks, 0.08 expected" in lines[1]
    assert budget_lines(None) == []


def test_a_sharded_monitor_prints_each_shard_and_names_one_that_does_not_answer():
    from raymlops.monitor.shards import shard_summary

    shards = [shard_summary(0, {"counters": {"rows_ingested": 120, "windows_checked": 2}, "last_error": None}),
              shard_summary(1, None, "GetTimeoutError: no answer in 10 s")]
    assert shard_lines(shards) == ["shard 0: 120 rows, 2 windows checked, 0 dropped",
                                   "shard 1: unreachable (GetTimeoutError: no answer in 10 s)"]
