"""Profiles, the on-cluster command runner's stream protocol, and packaged defaults (no Ray)."""

import io
import os
import stat

import pytest
from typer.testing import CliRunner

from raymlops.cli import app
from raymlops.cli.remote import BEGIN_MARK, EXIT_MARK, STDERR_MARK, Demux, remember_invocation
from raymlops.errors import ConfigError


def write_profiles(home, text, mode=0o600):
    path = home / "home" / "profiles.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


PROFILE = """profiles:
  prod:
    dashboard: http://10.0.0.5:8265
    serve: http://10.0.0.5:8000/
    gcs: 10.0.0.5:6379
    ray_token_env: PROD_RAY
    admin_token_env: PROD_ADMIN
"""


def test_profile_sets_what_every_client_reads(home, monkeypatch):
    from raymlops.cluster import resolve_addresses
    from raymlops.profiles import apply_profile

    write_profiles(home, PROFILE)
    monkeypatch.setenv("PROD_RAY", "ray-secret")
    monkeypatch.setenv("PROD_ADMIN", "admin-secret")
    for name in ("RAY_API_SERVER_ADDRESS", "RAYMLOPS_SERVE_URL"):
        monkeypatch.delenv(name, raising=False)
    apply_profile("prod")
    assert os.environ["RAY_ADDRESS"] == "10.0.0.5:6379" and os.environ["RAY_AUTH_TOKEN"] == "ray-secret"
    assert os.environ["RAYMLOPS_ADMIN_TOKEN"] == "admin-secret"
    addresses = resolve_addresses()
    assert addresses.dashboard == "http://10.0.0.5:8265" and addresses.serve_http == "http://10.0.0.5:8000"
    assert not addresses.managed


def test_profile_errors_name_the_problem(home, monkeypatch):
    from raymlops.profiles import load_profile

    with pytest.raises(ConfigError, match="no profiles file"):
        load_profile("prod")
    write_profiles(home, PROFILE)
    with pytest.raises(ConfigError, match=r"profiles.staging.*no such profile \(known: prod\)"):
        load_profile("staging")
    monkeypatch.delenv("PROD_RAY", raising=False)
    with pytest.raises(ConfigError, match=r"ray_token_env.*\$PROD_RAY is not set"):
        load_profile("prod")
    write_profiles(home, "profiles:\n  open:\n    dashboard: http://h:8265\n    serve: http://h:8000\n"
                         "    ray_token: abc\n", mode=0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_profile("open")
    write_profiles(home, "profiles:\n  bad:\n    dashboard: h:8265\n    serve: http://h:8000\n")
    with pytest.raises(ConfigError, match="profiles.bad.dashboard"):
        load_profile("bad")


def test_cli_profile_option_fails_with_one_line(home):
    result = CliRunner().invoke(app, ["--profile", "nowhere", "status"])
    assert result.exit_code == 2 and "no profiles file" in result.output


def test_remote_admin_token_is_never_invented(home, monkeypatch):
    from raymlops.cluster import client_admin_token
    from raymlops.errors import ClusterError

    monkeypatch.setenv("RAY_ADDRESS", "http://10.0.0.5:8265")
    with pytest.raises(ClusterError, match="RAYMLOPS_ADMIN_TOKEN"):
        client_admin_token()
    assert not (home / "home" / "admin_token").exists()
    monkeypatch.setenv("RAYMLOPS_ADMIN_TOKEN", "given")
    assert client_admin_token() == "given"


def test_invocation_drops_the_profile():
    from raymlops.cli import remote

    remember_invocation(["--profile", "prod", "registry", "list", "--json"])
    assert remote._invocation == ["registry", "list", "--json"]
    remember_invocation(["--profile=prod", "undeploy", "a"])
    assert remote._invocation == ["undeploy", "a"]
    remote._invocation = None


def test_demux_splits_streams_and_reads_the_exit_code(capsys):
    demux = Demux()
    demux.feed("INFO job_manager.py:581 -- Runtime env is setting up.\n" + BEGIN_MARK + "\n")
    demux.feed("first line\n" + STDERR_MARK + "warn")
    demux.feed("ing\nsecond ")
    demux.feed("line\n" + EXIT_MARK + "2\n")
    demux.close()
    out, err = capsys.readouterr()
    assert out == "first line\nsecond line\n" and err == "warning\n" and demux.exit_code == 2
    never = Demux()
    never.feed("runtime env setup failed: no such package\n")
    never.close()
    assert "runtime env setup failed" in capsys.readouterr().err


def test_marked_stream_marks_each_line():
    from raymlops.jobs.command import MarkedStream

    target = io.StringIO()
    stream = MarkedStream(target, "[e] ")
    stream.write("a\nb")
    stream.write(b"c\n\nd\n")  # click writes bytes to a stream it takes for binary
    assert target.getvalue() == "[e] a\n[e] bc\n[e] \n[e] d\n"


def test_conventional_config_falls_back_to_the_packaged_default(tmp_path, monkeypatch):
    from raymlops.config import TrainConfig, find_config, load_config, packaged_default

    monkeypatch.chdir(tmp_path)
    assert find_config(None, "train") == packaged_default("train")
    assert find_config("configs/train.yaml", "train") == packaged_default("train")
    assert load_config(find_config(None, "train"), TrainConfig).model_name == "penguins"
    with pytest.raises(ConfigError, match="mine.yaml.*file not found"):
        load_config(find_config("mine.yaml", "train"), TrainConfig)
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "train.yaml").write_text("model_name: local\n")
    assert load_config(find_config(None, "train"), TrainConfig).model_name == "local"


def test_packaged_defaults_are_the_repository_configs():
    from pathlib import Path

    from raymlops.config import CONFIG_MODELS, packaged_default

    for kind in CONFIG_MODELS:
        assert (Path("configs") / f"{kind}.yaml").read_text() == packaged_default(kind).read_text(), kind


def test_init_scaffolds_a_project_that_validates(tmp_path):
    from raymlops.config import CONFIG_MODELS, load_config

    target = tmp_path / "Fraud Model"
    result = CliRunner().invoke(app, ["init", str(target)])
    assert result.exit_code == 0, result.output
    assert {p.name for p in target.iterdir()} == {"configs", "fraud_model_model.py", ".gitignore", "README.md",
                                                  "Makefile", "requirements.txt", "tests"}
    assert {p.stem for p in (target / "configs").iterdir()} == set(CONFIG_MODELS) - {"local"}
    for config in (target / "configs").iterdir():
        cfg = load_config(config, CONFIG_MODELS[config.stem])
        name = getattr(cfg, "model_name", None) or getattr(getattr(cfg, "base", None), "model_name", None)
        assert name in (None, "fraud-model"), config
    train = load_config(target / "configs" / "train.yaml", CONFIG_MODELS["train"])
    assert train.model.builder == "fraud_model_model:build" and train.code == ["fraud_model_model.py"]
    namespace: dict = {}
    exec((target / "fraud_model_model.py").read_text(), namespace)
    network = namespace["build"](input_dim=5, output_dim=3)
    assert sum(p.numel() for p in network.parameters()) > 0
    again = CliRunner().invoke(app, ["init", str(target)])
    assert again.exit_code == 2 and "is not empty" in again.output
    assert stat.S_ISREG((target / ".gitignore").stat().st_mode)


def test_code_arguments_travel_with_the_command():
    from raymlops.cli.remote import code_args

    argv = ["registry", "register", "m", "--code", "team.py", "--path", "x", "--code=pkg"]
    assert code_args(argv) == ["team.py", "pkg"]
    assert code_args(["registry", "list"]) == []
