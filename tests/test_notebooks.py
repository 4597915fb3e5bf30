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


def _text(cell: dict) -> str:  # type: ignore[type-arg]
    """Everything a code cell's stored outputs show, as one string."""
    parts = []
    for output in cell.get("outputs", []):
        for key in ("text/html", "image/svg+xml", "text/plain"):
            value = output.get("data", {}).get(key, "")
            parts.append("".join(value) if isinstance(value, list) else value)
        parts.append("".join(output.get("text", "")))
    return "\n".join(parts)


def _failed(cell: dict) -> bool:  # type: ignore[type-arg]
    return any(o["output_type"] == "error" for o in cell.get("outputs", []))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_each_mistake_fails_with_its_picture_then_the_fix_succeeds(path: Path) -> None:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    pairs = []
    for index, cell in enumerate(cells):
        if cell["cell_type"] != "code" or not _failed(cell):
            continue
        assert "raises-exception" in cell["metadata"].get("tags", []), "a failing cell untagged"
        following = [c for c in cells[index + 1 :] if c["cell_type"] == "code"]
        if "<svg" in _text(cell) and following:
            pairs.append((index, cell, following[0]))
    assert pairs, "no mistake shown failing with its diagram and then fixed"
    for index, mistake, fix in pairs:
        shown = _text(mistake)
        assert "#cf222e" in shown and "FAILED" in shown, "the failed step is not marked in red"
        assert not _failed(fix), "the cell after a mistake must be its fix, and succeed"
        assert "<svg" in _text(fix) and "FAILED" not in _text(fix), "the fix shows its diagram"
        later = "".join(
            "".join(c["source"]) for c in cells[index + 1 :] if c["cell_type"] == "markdown"
        )
        assert "**Try it:**" in later, "invite the reader to change a line after the fix"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_stored_outputs_need_no_javascript(path: Path) -> None:
    # GitHub's and nbviewer's static renderers run no script: pictures are inline SVG.
    for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
        if cell["cell_type"] == "code":
            assert "<script" not in _text(cell).lower()
            for output in cell.get("outputs", []):
                assert "application/javascript" not in output.get("data", {})


def test_the_form_tutorial_keeps_its_form_after_run_all() -> None:
    # form.close() in a last cell removes the form from the page as soon as "Run All" gets there.
    (path,) = [p for p in NOTEBOOKS if p.name.startswith("06-")]
    sources = ["".join(c["source"]) for c in json.loads(path.read_text(encoding="utf-8"))["cells"]]
    assert not any(".close()" in source for source in sources)
