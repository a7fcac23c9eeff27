"""The README is the door and docs/ the house: every relative link and picture in them resolves to a file, every
#anchor to a heading of its target (as GitHub makes their ids), and the README stays short enough to read."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
README_MAX_LINES = 220

_FENCE = re.compile(r"^\s*(```|~~~)")
_CODE_SPAN = re.compile(r"`+[^`]*`+")
_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")


def _prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks, with code spans blanked (a `[x](y)` in code is not a link)."""
    lines, fenced = [], False
    for line in text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(_CODE_SPAN.sub(lambda m: "x" if m.group(0).strip("`") else "", line))
    return lines


def slug(heading: str) -> str:
    """GitHub's id for a heading: its text lowercased, punctuation dropped (hyphens and underscores kept),
    spaces made hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading: its text
    text = text.replace("`", "").replace("*", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading's id on a page, with GitHub's -1, -2, ... for repeated ones."""
    ids: set[str] = set()
    seen: dict[str, int] = {}
    text = page.read_text(encoding="utf-8")
    fenced = False
    for line in text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
            continue
        match = None if fenced else _HEADING.match(line)
        if match:
            base = slug(match.group(2))
            n = seen.get(base, 0)
            seen[base] = n + 1
            ids.add(base if n == 0 else f"{base}-{n}")
    return ids


def links(page: Path) -> list[str]:
    return [m.group(1) for line in _prose_lines(page.read_text(encoding="utf-8")) for m in _LINK.finditer(line)]


def test_the_slugs_are_githubs():
    assert slug("Flicker and `--temporal`") == "flicker-and---temporal"
    assert slug("### `--stability-weight`".lstrip("# ")) == "--stability-weight"
    assert slug("The memory estimate's figures") == "the-memory-estimates-figures"
    assert slug("Research: why the statistics are exact") == "research-why-the-statistics-are-exact"
    assert slug("Distil a lite style: `nst-video distill`") == "distil-a-lite-style-nst-video-distill"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_and_picture_resolves(page):
    broken = []
    for target in links(page):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # http:, https:, mailto: ... are not checked here
            continue
        path_part, _, fragment = target.partition("#")
        dest = (page.parent / path_part).resolve() if path_part else page
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif fragment and dest.suffix == ".md" and fragment not in anchors(dest):
            broken.append(f"{target}: no heading #{fragment} in {dest.relative_to(ROOT)}")
    assert not broken, f"{page.relative_to(ROOT)}: " + "; ".join(broken)


def test_pages_link_somewhere():
    # A guard on the parser itself: if it found no links, the test above would pass on anything.
    assert len(links(ROOT / "README.md")) >= 10
    assert any(t.startswith("docs/") for t in links(ROOT / "README.md"))
    assert any(t.endswith(".jpg") for t in links(ROOT / "README.md"))


def test_the_readme_is_short():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines: move detail into docs/"
