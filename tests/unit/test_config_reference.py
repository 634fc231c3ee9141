from pathlib import Path

from raymlops.config import CONFIG_MODELS
from raymlops.config_reference import render_reference


def test_committed_reference_is_current():
    committed = Path("docs/CONFIG.md").read_text()
    assert committed == render_reference() + "\n", "run `raymlops config reference --output docs/CONFIG.md`"


def test_every_config_file_has_a_section_with_its_keys():
    text = render_reference()
    for kind in CONFIG_MODELS:
        assert f"## `configs/{kind}.yaml`" in text
    assert "| `train.epochs` | int | `20` |" in text
    assert "| `search_space.<key>.type` |" in text
