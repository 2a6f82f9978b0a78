"""The README's environment tables name every setting the server reads."""

from __future__ import annotations

from pathlib import Path

from comfygraph.server.settings import Settings

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_every_setting_is_in_the_readme() -> None:
    names = {"COMFYGRAPH_DATA_DIR" if n == "data_dir" else n.upper() for n in Settings.model_fields}
    missing = sorted(n for n in names if f"`{n}`" not in README)
    assert not missing, f"README's environment tables miss {missing}"
