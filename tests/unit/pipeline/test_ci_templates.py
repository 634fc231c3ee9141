"""examples/ci/: the GitHub Actions workflow and the GitLab CI file are valid against the published
schemas (check-jsonschema's vendored copies, offline) and run only commands that exist — in a
project `raymlops init` made."""

import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main
import yaml
from typer.testing import CliRunner

from raymlops.cli import app

ROOT = Path(__file__).resolve().parents[3]
TEMPLATES = {"vendor.github-workflows": ROOT / "examples/ci/github/raymlops.yml",
             "vendor.gitlab-ci": ROOT / "examples/ci/gitlab/.gitlab-ci.yml"}


@pytest.mark.parametrize("schema, path", TEMPLATES.items())
def test_each_template_validates_against_its_published_schema(schema, path):
    checker = Path(sys.executable).parent / "check-jsonschema"
    done = subprocess.run([str(checker), "--builtin-schema", schema, str(path)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def commands(path: Path) -> list[str]:
    """Every shell line the template runs (GitHub `run:` steps, GitLab `script`/`before_script`)."""
    document = yaml.safe_load(path.read_text())
    lines = []
    for job in document.get("jobs", document).values():
        if not isinstance(job, dict):
            continue
        for step in job.get("steps", []):
            lines += str(step.get("run", "")).splitlines()
        for key in ("script", "before_script"):
            lines += job.get(key, [])
    return [line.strip() for line in lines if line.strip()]


def parses(args: list[str]) -> None:
    """Resolve a raymlops command line down to its command and parse its options (runs nothing)."""
    command = typer.main.get_command(app)
    context = command.make_context("raymlops", list(args))
    while hasattr(command, "resolve_command"):  # a group: on to its subcommand
        name, command, rest = command.resolve_command(context, [*context._protected_args, *context.args])
        context = command.make_context(name, rest, parent=context)


@pytest.mark.parametrize("args", [["pipeline", "run", "p.yaml", "--bogus"], ["pipelin", "run"], ["deploy", "--x"]])
def test_a_command_that_does_not_exist_does_not_parse(args):
    with pytest.raises(Exception, match="No such (option|command)"):
        parses(args)


@pytest.mark.parametrize("path", TEMPLATES.values(), ids=lambda p: p.name)
def test_the_templates_run_what_a_scaffolded_project_has(path, tmp_path):
    assert CliRunner().invoke(app, ["init", str(tmp_path / "project"), "--name", "team"]).exit_code == 0
    project = tmp_path / "project"
    makefile = (project / "Makefile").read_text()
    run = commands(path)
    assert any(line.startswith("raymlops pipeline run") and "--until gate" in line for line in run)
    assert any(line.startswith("raymlops pipeline run") and "--until" not in line for line in run)
    for line in run:
        words = shlex.split(line)
        if words[0] == "raymlops":
            parses(words[1:])
            assert all((project / w).exists() for w in words if w.endswith(".yaml")), line
        elif words[0] == "make":
            assert f"\n{words[1]}:" in makefile, line
        elif words[:3] == ["pip", "install", "-r"]:
            assert (project / words[3]).exists(), line
