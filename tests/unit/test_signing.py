"""Sealed files and issued request ids: a signature under the cluster's secret, checked before
anything is opened."""

import pytest

from raymlops.errors import ArtifactIntegrityError
from raymlops.signing import is_issued, issue_request_id, seal, unseal

KEY, OTHER = b"k" * 32, b"o" * 32


def test_a_sealed_file_opens_with_its_key_only():
    blob = seal(b'{"a": 1}', KEY)
    assert unseal(blob, KEY, "s3://b/x") == b'{"a": 1}'
    with pytest.raises(ArtifactIntegrityError, match="signature does not match"):
        unseal(blob, OTHER, "s3://b/x")


@pytest.mark.parametrize("change", [
    lambda b: b[:-1] + b"2",  # the data
    lambda b: b.replace(b"sealed-v1\n", b"sealed-v1\n0", 1)[:len(b)],  # the signature
    lambda b: b"\x80\x04K\x01.",  # a bare pickle
    lambda b: b"",
])
def test_anything_changed_is_refused_unread(change):
    with pytest.raises(ArtifactIntegrityError, match="refused unread"):
        unseal(change(seal(b'{"a": 1}', KEY)), KEY, "file:///x")


def test_request_ids_are_recognised_only_under_the_key_that_issued_them():
    issued = issue_request_id(KEY)
    assert is_issued(issued, KEY) and not is_issued(issued, OTHER)
    assert issued != issue_request_id(KEY)
    forged = issued[:-1] + ("0" if issued[-1] != "0" else "1")
    assert not is_issued(forged, KEY)
    for foreign in ("nope", "", "x" * len(issued), issued + "0", None):
        assert not is_issued(foreign, KEY)
