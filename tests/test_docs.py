"""The repository stands alone: nothing cites a file outside it, and the architecture page names
modules that exist (docs/architecture.md)."""

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# how a citation of the workspace outside the repository looks: the design notes, the reference
# folder, a parent directory, an absolute workspace path
OUTSIDE = re.compile(r"DESIGN\.md|\.\./shared|shared/reference|/work/")
TEXT = (".py", ".md", ".toml", ".cfg", ".mlir", ".dot", ".h", ".cpp", ".txt", "Makefile")


def tracked_text_files() -> list[Path]:
    names = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    return [ROOT / n for n in names if n.endswith(TEXT) and n != "tests/test_docs.py"]


def test_nothing_cites_a_file_outside_the_repository():
    hits = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in tracked_text_files()
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert hits == []


def test_architecture_page_names_existing_files():
    text = (ROOT / "docs" / "architecture.md").read_text()
    cited = set(re.findall(r"`((?:streamdsl|frontends|lowering|hls_backend|toolchain|docs|tests)/[\w/.]*)`", text))
    cited |= set(re.findall(r"\b(docs/\w+\.(?:md|svg|dot))", text))
    assert cited, "the page cites no files"
    assert sorted(c for c in cited if not (ROOT / c).exists()) == []
