import numpy as np

from raymlops.models.contract import classes_prediction
from raymlops.serve.versions import concat_columns


def test_batched_calls_are_split_back_in_order():
    parts = [{"x": [1, 2], "c": ["a", "b"]}, {"x": [3], "c": ["c"]}, {"x": [4, 5, 6], "c": ["d", "e", "f"]}]
    joined = concat_columns(parts)
    assert joined == {"x": [1, 2, 3, 4, 5, 6], "c": ["a", "b", "c", "d", "e", "f"]}
    proba = np.array([[v, 10 - v] for v in joined["x"]], dtype=np.float32) / 10
    answers = classes_prediction(proba, ["hi", "lo"]).split([2, 1, 3])
    assert [len(a) for a in answers] == [2, 1, 3]
    assert answers[1].rows() == [{"class": "lo", "probabilities": {"hi": 0.30000001192092896, "lo": 0.699999988079071}}]
    assert [a.predicted for a in answers] == [["lo", "lo"], ["lo"], ["lo", "hi", "hi"]]
