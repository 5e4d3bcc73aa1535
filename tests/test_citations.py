"""Docs and the HTML report cite sources a reader can reach: nothing outside the repository."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Files of the machine the project was written on, not of the repository.
OUTSIDE = re.compile(r"shared/REFERENCE|REFERENCE\.md|/work/|notes/dataset_schema")


def test_docs_and_report_cite_nothing_outside_the_repository():
    files = [*ROOT.glob("docs/*.md"), ROOT / "README.md", ROOT / "CONTRIBUTING.md",
             *(ROOT / "src/ionfno/evaluation").glob("*.py"), *(ROOT / "src/ionfno/data").glob("*.py")]
    hits = [
        f"{p.relative_to(ROOT)}:{i}: {line.strip()}"
        for p in files
        if p.exists()
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert not hits, "\n".join(hits)


def test_the_dataset_format_the_code_cites_is_in_the_repository():
    storage = (ROOT / "src/ionfno/data/storage.py").read_text()
    cited = re.findall(r"docs/[\w.-]+\.md", storage)
    assert cited and all((ROOT / c).is_file() for c in cited)
