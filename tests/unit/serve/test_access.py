import pytest

from raymlops.errors import AuthenticationError, PermissionDeniedError
from raymlops.serve.access import AccessPolicy, api_key_digests_from_env, digest, new_api_key

ADMIN = "s3cret-admin"


@pytest.mark.parametrize("header, error", [
    (None, AuthenticationError),
    ("", AuthenticationError),
    ("Basic abc", AuthenticationError),
    ("Bearer ", AuthenticationError),
    ("Bearer wrong", PermissionDeniedError),
    (f"bearer {ADMIN}x", PermissionDeniedError),
])
def test_admin_calls_without_the_token_are_refused(header, error):
    with pytest.raises(error):
        AccessPolicy(admin_token_sha256=digest(ADMIN)).check_admin(header)


def test_the_admin_token_is_accepted_in_any_scheme_case():
    policy = AccessPolicy(admin_token_sha256=digest(ADMIN))
    policy.check_admin(f"Bearer {ADMIN}")
    policy.check_admin(f"bearer {ADMIN}")


def test_admin_endpoints_are_closed_when_no_token_was_configured():
    with pytest.raises(PermissionDeniedError, match="no admin token"):
        AccessPolicy().check_admin(f"Bearer {ADMIN}")


def test_api_keys_are_checked_only_when_required():
    AccessPolicy().check_inference(None, None)
    key = new_api_key()
    policy = AccessPolicy(api_key_sha256=frozenset({digest(key)}), require_api_key=True)
    policy.check_inference(key, None)
    policy.check_inference(None, f"Bearer {key}")
    with pytest.raises(AuthenticationError):
        policy.check_inference(None, None)
    with pytest.raises(PermissionDeniedError):
        policy.check_inference("rmo_other", None)


def test_keys_from_the_environment_become_digests(monkeypatch):
    monkeypatch.setenv("RAYMLOPS_API_KEYS", " k1, ,k2 ")
    assert api_key_digests_from_env() == [digest("k1"), digest("k2")]
    assert len(digest("k1")) == 64 and new_api_key() != new_api_key()


def test_feedback_needs_a_feedback_key_or_the_admin_token_even_when_inference_is_open():
    feedback_key, inference_key = new_api_key(), new_api_key()
    policy = AccessPolicy(digest(ADMIN), frozenset({digest(inference_key)}), False, frozenset({digest(feedback_key)}))
    policy.check_feedback(feedback_key, None)
    policy.check_feedback(None, f"Bearer {feedback_key}")
    policy.check_feedback(None, f"Bearer {ADMIN}")
    with pytest.raises(AuthenticationError, match="feedback key"):
        policy.check_feedback(None, None)
    with pytest.raises(PermissionDeniedError, match="no feedback scope"):
        policy.check_feedback(inference_key, None)


def test_pinned_calls_need_a_key_or_the_admin_token():
    key = new_api_key()
    policy = AccessPolicy(digest(ADMIN), frozenset({digest(key)}), False)
    policy.check_pinned(key, None)
    policy.check_pinned(None, f"Bearer {ADMIN}")
    with pytest.raises(AuthenticationError, match="pinned"):
        policy.check_pinned(None, None)
    with pytest.raises(PermissionDeniedError):
        policy.check_pinned("rmo_guess", None)
    policy.check_inference(None, None)  # the split itself stays open without require_api_key
