import stat

from raymlops import auth


def test_ray_token_is_created_once_with_0600(home):
    first = auth.ensure_ray_token()
    path = auth.ray_token_path()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) == 64
    assert auth.ensure_ray_token() == first
    assert auth.read_ray_token() == first


def test_environment_token_wins(home, monkeypatch):
    monkeypatch.setenv("RAY_AUTH_TOKEN", "from-env")
    assert auth.ensure_ray_token() == "from-env"
    assert not auth.ray_token_path().exists()
    assert auth.auth_headers() == {"Authorization": "Bearer from-env"}


def test_admin_token_file_is_private(home):
    token = auth.ensure_admin_token()
    assert stat.S_IMODE(auth.admin_token_path().stat().st_mode) == 0o600
    assert auth.read_admin_token() == token


def test_admin_token_from_environment(home, monkeypatch):
    monkeypatch.setenv("RAYMLOPS_ADMIN_TOKEN", "s3cret")
    assert auth.ensure_admin_token() == "s3cret"
    assert not auth.admin_token_path().exists()


def test_no_token_no_header(home):
    assert auth.read_ray_token() is None
    assert auth.auth_headers() == {}


def test_client_environment_turns_token_auth_on():
    assert auth.client_environment(loopback=False) == {"RAY_AUTH_MODE": "token"}
    assert auth.client_environment(loopback=True)["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] == "0"
