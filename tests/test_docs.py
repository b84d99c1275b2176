"""The README's and the docs' examples run as shown, and their pointers lead
somewhere.

Every fenced block is labelled: `python` blocks are whole programs, and each
runs here in a fresh interpreter; `sh` blocks are commands, `text` blocks are
output (neither runs here)."""

import glob
import os
import re
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGES = [os.path.join(REPO, "README.md")] + sorted(glob.glob(os.path.join(REPO, "docs", "*.md")))
LABELS = {"python", "sh", "text"}
FENCE = re.compile(r"^```(.*)$")


def blocks(path):
    """(line number, label, code) of every fenced block in a Markdown file."""
    found = []
    with open(path, encoding="utf-8") as page:
        lines = page.read().splitlines()
    start = None
    for number, line in enumerate(lines, 1):
        fence = FENCE.match(line)
        if not fence:
            continue
        if start is None:
            start, label = number, fence.group(1).strip()
        else:
            found.append((start, label, "\n".join(lines[start:number - 1]) + "\n"))
            start = None
    assert start is None, f"{path}:{start}: a block is not closed"
    return found


def where(path, number):
    return f"{os.path.relpath(path, REPO)}:{number}"


ALL_BLOCKS = [(where(path, number), label, code) for path in PAGES for number, label, code in blocks(path)]
PROGRAMS = [pytest.param(code, id=place) for place, label, code in ALL_BLOCKS if label == "python"]


def test_every_block_is_labelled():
    # MyST directives ({toctree}, {include}) are markup, not examples.
    unlabelled = [place for place, label, _ in ALL_BLOCKS
                  if label not in LABELS and not label.startswith("{")]
    assert unlabelled == [], f"label these python, sh or text: {unlabelled}"


def test_the_readme_has_programs():
    assert any(param.id.startswith("README.md:") for param in PROGRAMS)


@pytest.mark.timeout(90)
@pytest.mark.parametrize("code", PROGRAMS)
def test_example_runs(code, tmp_path):
    program = tmp_path / "example.py"
    program.write_text(code, encoding="utf-8")
    result = subprocess.run([sys.executable, str(program)], cwd=tmp_path, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr


def make_targets():
    with open(os.path.join(REPO, "Makefile")) as makefile:
        return set(re.findall(r"^([A-Za-z][\w-]*(?: [A-Za-z][\w-]*)*):", makefile.read(), re.MULTILINE))


def test_make_commands_name_real_targets():
    targets = {name for line in make_targets() for name in line.split()}
    commands = [(place, command) for place, label, code in ALL_BLOCKS if label == "sh"
                for command in re.findall(r"^make ([a-z][\w-]*)", code, re.MULTILINE)]
    assert commands
    assert [(place, target) for place, target in commands if target not in targets] == []


def anchors(path):
    """The heading anchors of a Markdown file, spelled as GitHub and MyST do."""
    with open(path, encoding="utf-8") as page:
        headings = re.findall(r"^#+ (.*)$", page.read(), re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-") for heading in headings}


def test_links_lead_somewhere():
    broken, followed = [], 0
    for page in PAGES:
        with open(page, encoding="utf-8") as file:
            links = re.findall(r"\]\(([^)\s]+)\)", file.read())
        for link in links:
            if re.match(r"[a-z]+:", link):
                continue   # a URL
            followed += 1
            target, _, anchor = link.partition("#")
            path = os.path.normpath(os.path.join(os.path.dirname(page), target)) if target else page
            if not os.path.exists(path) or (anchor and anchor not in anchors(path)):
                broken.append(f"{os.path.relpath(page, REPO)}: {link}")
    assert followed and broken == []
