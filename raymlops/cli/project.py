"""`raymlops init DIR`: a new project — configs, a model module, a .gitignore and a README."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

import typer

from raymlops.cli.options import fail, friendly_errors

#: Config kinds a project gets, copied from the packaged defaults.
PROJECT_CONFIGS = ("data", "registry", "train", "tune", "serve", "monitor", "rollout", "pipeline")

MODEL_MODULE = '''"""The network of {name}: the built-in training loop calls `build` (configs/train.yaml
`model.builder: {module}:build`); it is shipped to the cluster with the jobs and the replicas
(`code: [{module}.py]`)."""

import torch.nn as nn


def build(input_dim: int, output_dim: int, hidden: int = 32, dropout: float = 0.0) -> nn.Module:
    """Features (after raymlops' preprocessing) in; logits for a classification, one value for a regression."""
    return nn.Sequential(nn.Linear(input_dim, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, output_dim))
'''

GITIGNORE = """# raymlops state and data stay out of git (they live under $RAYMLOPS_HOME by default)
__pycache__/
*.pyc
.venv/
data/
runs/
*.parquet
.env
"""

MAKEFILE = """# `make test` is what CI runs first (see examples/ci/ in raymlops: GitHub Actions, GitLab CI).
PYTHON ?= python3

.PHONY: install test pipeline

install:
\t$(PYTHON) -m pip install -r requirements.txt

test:
\tfor f in configs/*.yaml; do raymlops config validate $$f || exit 1; done
\t$(PYTHON) -m pytest -q tests

pipeline:
\traymlops pipeline run configs/pipeline.yaml
"""

REQUIREMENTS = """raymlops=={version}
pytest>=8
"""

MODEL_TEST = '''"""The network builds and answers with the right shape (no cluster needed)."""

import torch

from {module} import build


def test_the_network_answers_one_output_per_class():
    network = build(input_dim=7, output_dim=3)
    assert network(torch.zeros(4, 7)).shape == (4, 3)
'''

README = """# {name}

A raymlops project. From this directory, on the local cluster (`raymlops up`) or a remote one
(`raymlops --profile NAME ...`, see `raymlops --help`):

```bash
raymlops data prepare                  # Palmer Penguins into $RAYMLOPS_HOME/data/penguins (or --source your.csv --label y)
raymlops train                         # a Ray job: trains {module}:build, registers {name}:1 as champion
raymlops deploy                        # serves it at <serve URL>/{name}/v1/models/{name}/predict, with its drift monitor
raymlops drift status {name}
raymlops rollout start {name}          # after the next `raymlops train`: canary, gated promotion or rollback
raymlops undeploy {name}
```

With Ray's own CLI: `ray job submit --working-dir . -- python -m raymlops.jobs.train --config configs/train.yaml`.

CI/CD: `make test` (configs valid, `tests/`), then `raymlops pipeline run configs/pipeline.yaml`
(`--until gate` on a pull request) — copy a workflow from raymlops' `examples/ci/`.

- `configs/*.yaml` — every setting, documented in place (`raymlops config reference` lists them all).
- `{module}.py` — the network; change it, or set `model.builder` / `model.estimator` / `train.loop`.
"""


@friendly_errors
def init(directory: Path = typer.Argument(..., help="Project directory to create (or fill, when empty)."),
         name: Optional[str] = typer.Option(None, "--name", help="Model name; unset = the directory's name.")) -> None:
    """Scaffold a project: configs, a model module, a .gitignore and a short README."""
    from raymlops import __version__
    from raymlops.config import packaged_default

    if directory.exists() and any(directory.iterdir()):
        fail(f"{directory} is not empty: give a new directory (nothing there is overwritten)")
    model = name or re.sub(r"[^a-z0-9-]+", "-", directory.resolve().name.lower()).strip("-") or "model"
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", model):
        fail(f"--name {model!r}: use letters, digits, '.', '_' and '-' (it is part of URLs)")
    module = re.sub(r"\W", "_", model) + "_model"
    (directory / "configs").mkdir(parents=True, exist_ok=True)
    for kind in PROJECT_CONFIGS:
        text = packaged_default(kind).read_text().replace("model_name: penguins", f"model_name: {model}")
        if kind == "train":
            text = text.replace("builder: raymlops.models:mlp            # or your own package.module:function",
                                f"builder: {module}:build                 # your network, in {module}.py")
            text = text.replace("  params: {hidden: [32, 32], dropout: 0.0}", "  params: {hidden: 32}")
        if kind == "pipeline":
            text = re.sub(r"^name: penguins", f"name: {model}", text, flags=re.MULTILINE)
        if kind in ("train", "serve"):
            text += f"code: [{module}.py]          # shipped to the cluster (jobs, replicas)\n"
        (directory / "configs" / f"{kind}.yaml").write_text(text)
    (directory / f"{module}.py").write_text(MODEL_MODULE.format(name=model, module=module))
    (directory / ".gitignore").write_text(GITIGNORE)
    (directory / "README.md").write_text(README.format(name=model, module=module))
    (directory / "Makefile").write_text(MAKEFILE)
    (directory / "requirements.txt").write_text(REQUIREMENTS.format(version=__version__))
    (directory / "tests").mkdir()
    (directory / "tests" / "test_model.py").write_text(MODEL_TEST.format(module=module))
    typer.echo(f"created {directory}/ for model {model}: configs/, {module}.py, tests/, Makefile, requirements.txt, "
               ".gitignore, README.md")
    typer.echo(f"next:  cd {directory} && raymlops data prepare && raymlops train && raymlops deploy")
