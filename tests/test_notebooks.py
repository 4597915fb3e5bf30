"""The tutorial notebooks are stored executed, in order, with no widget state and no password."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from smtp_magic.lab.server import DEMO_PASSWORD

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))


def test_there_are_tutorials_in_reading_order() -> None:
    names = [path.name for path in NOTEBOOKS]
    assert len(names) >= 3
    assert [name[:2] for name in names] == [f"{n:02d}" for n in range(1, len(names) + 1)]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_clean_and_executed(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert "widget-state" not in text, "saved widget state: re-save without it"
    assert DEMO_PASSWORD not in text, "the lab's demo password is in the notebook file"
    notebook = json.loads(text)
    assert "widgets" not in notebook.get("metadata", {})
    code = [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]
    assert code, "a tutorial without code"
    counts = [cell["execution_count"] for cell in code]
    assert None not in counts, "every code cell is stored executed (nbval skips unexecuted ones)"
    assert counts == sorted(counts), "cells were executed out of order"
    first = next(c for c in notebook["cells"] if c["cell_type"] == "markdown")
    assert "What you will learn" in "".join(first["source"])
