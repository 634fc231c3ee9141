import pytest

from raymlops.errors import InvalidRequestError, NotFoundError
from raymlops.monitor.feedback import FeedbackJoin, outcome_of, trainable_rows


def batch(ids, version=1, arm="stable", predictions=None, status=200):
    n = len(ids)
    return {"request_id": ids, "version": [version] * n, "arm": [arm] * n, "status": [status] * n,
            "prediction": predictions or ["a"] * n, "f.x": [float(i) for i in range(n)]}


def test_labels_join_answers_and_give_accuracy_per_version():
    join = FeedbackJoin()
    join.add(batch(["r1", "r2"], predictions=["a", "b"]))
    join.add(batch(["r3"], version=2, arm="canary", predictions=["a"]))
    join.add(batch(["s1"], version=3, arm="shadow"))
    join.add(batch(["bad"], status=422, predictions=[None]))
    assert join.unknown(["r1", "s1", "bad", "zz"]) == ["s1", "bad", "zz"]
    assert join.label([("r1", ["a"]), ("r2", ["a"]), ("r3", ["a"])], now=10, label_column="species") == 3
    accuracy = join.accuracy()
    assert accuracy["1"] == {"labelled": 2, "accuracy": 0.5} and accuracy["2"]["accuracy"] == 1.0
    assert join.accuracy(since=11)["1"]["labelled"] == 0
    rows = join.drain_labelled()
    assert rows[0] == {"x": 0.0, "species": "a", "__version__": 1, "__request_id__": "r1", "__time__": 10}
    assert join.drain_labelled() == []


def test_multi_row_requests_need_one_label_per_row():
    join = FeedbackJoin()
    join.add({"request_id": ["r", "r"], "version": [1, 1], "arm": ["stable"] * 2, "status": [200] * 2,
              "prediction": ["a", "b"], "f.x": [1.0, 2.0]})
    with pytest.raises(InvalidRequestError, match="2 rows"):
        join.label([("r", ["a"])], now=0, label_column="y")
    assert join.label([("r", ["a", "a"])], now=0, label_column="y") == 2


def test_memory_is_bounded():
    join = FeedbackJoin(capacity=3)
    join.add(batch([f"r{i}" for i in range(5)]))
    assert list(join.answers) == ["r2", "r3", "r4"]


def test_unknown_ids_are_refused_and_nothing_is_recorded():
    join = FeedbackJoin()
    join.add(batch(["r1"]))
    with pytest.raises(NotFoundError, match="zz"):
        join.label([("r1", ["a"]), ("zz", ["a"])], now=0, label_column="y")
    assert join.accuracy() == {} and join.drain_labelled() == []


def test_regression_labels_give_errors_and_embeddings_are_not_training_rows():
    assert outcome_of(150.0, 140.5) == 9.5 and outcome_of("Adelie", "Adelie") is True
    join = FeedbackJoin()
    join.outcomes[3] = __import__("collections").deque([(1.0, 2.0), (2.0, 4.0)])
    assert join.accuracy()["3"] == {"labelled": 2, "accuracy": None, "mae": 3.0, "rmse": pytest.approx(10 ** 0.5)}
    rows = [{"__version__": 1, "x": 1.0}, {"__version__": 2, "emb_0": 0.3}]
    assert trainable_rows(rows, {2}) == [rows[0]] and trainable_rows(rows, set()) == rows


def test_a_request_is_labelled_once():
    from raymlops.errors import ConflictError

    join = FeedbackJoin()
    join.add(batch(["r1", "r2"], predictions=["a", "b"]))
    assert join.label([("r1", ["a"])], now=0, label_column="y") == 1
    for _ in range(3):  # repeats never count again
        with pytest.raises(ConflictError, match="r1 already labelled"):
            join.label([("r1", ["a"]), ("r2", ["b"])], now=0, label_column="y")
    with pytest.raises(InvalidRequestError, match="r2 is labelled twice"):
        join.label([("r2", ["a"]), ("r2", ["b"])], now=0, label_column="y")
    assert join.accuracy()["1"]["labelled"] == 1 and len(join.drain_labelled()) == 1


def test_memory_is_bounded_in_rows_not_requests():
    join = FeedbackJoin(capacity=10)
    join.add({"request_id": ["big"] * 8, "version": [1] * 8, "arm": ["stable"] * 8, "status": [200] * 8,
              "prediction": ["a"] * 8, "f.x": [1.0] * 8})
    join.add(batch(["r1", "r2", "r3"]))
    assert list(join.answers) == ["r1", "r2", "r3"] and join.rows == 3


def test_pinned_answers_are_labelled_but_do_not_count_for_rollouts():
    join = FeedbackJoin()
    join.add(batch(["p1"], version=2, arm="pinned", predictions=["a"]))
    join.add(batch(["c1"], version=2, arm="canary", predictions=["a"]))
    assert join.label([("p1", ["b"]), ("c1", ["a"])], now=0, label_column="y") == 2
    assert join.accuracy()["2"] == {"labelled": 1, "accuracy": 1.0} and join.pinned_labels == 1
    assert len(join.drain_labelled()) == 2  # both are real labels for retraining


def test_a_dry_run_checks_everything_and_records_nothing():
    """What a sharded monitor's shard 0 asks every shard before any of them records."""
    join = FeedbackJoin()
    join.add(batch(["r1", "r2"]))
    assert join.label([("r1", ["a"]), ("r2", ["b"])], now=0, label_column="y", dry_run=True) == 2
    assert join.accuracy() == {} and join.labelled_rows == [] and not join.answers["r1"].labelled
    with pytest.raises(InvalidRequestError):
        join.label([("r1", ["a", "b"])], now=0, label_column="y", dry_run=True)
    assert join.label([("r1", ["a"])], now=0, label_column="y") == 1  # the dry run left it unlabelled
