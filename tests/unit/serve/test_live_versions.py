from raymlops.serve.versions import concat_columns, split_result


def test_batched_calls_are_split_back_in_order():
    parts = [{"x": [1, 2], "c": ["a", "b"]}, {"x": [3], "c": ["c"]}, {"x": [4, 5, 6], "c": ["d", "e", "f"]}]
    joined = concat_columns(parts)
    assert joined == {"x": [1, 2, 3, 4, 5, 6], "c": ["a", "b", "c", "d", "e", "f"]}
    result = {"class": [f"k{v}" for v in joined["x"]], "probabilities": [[v] for v in joined["x"]]}
    answers = split_result(result, [2, 1, 3])
    assert answers[1] == {"class": ["k3"], "probabilities": [[3]]}
    assert [a["class"] for a in answers] == [["k1", "k2"], ["k3"], ["k4", "k5", "k6"]]
