"""The README's quick tour runs and prints what the README says it prints.

The test takes the first ``python`` block under the "Quick tour" heading, runs it, and
compares its standard output line by line with the ``text`` block that follows it.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def quick_tour_blocks(text: str) -> tuple[str, str]:
    """The code of the quick tour and the output the README shows for it."""
    match = re.search(r"^## Quick tour\n(.*?)(?=^## )", text, flags=re.M | re.S)
    if match is None:
        raise ValueError("README.md has no '## Quick tour' section")
    blocks = re.findall(r"^```(\w*)\n(.*?)^```", match.group(1), flags=re.M | re.S)
    kinds = [kind for kind, _ in blocks]
    if "python" not in kinds:
        raise ValueError("the quick tour has no python block")
    i = kinds.index("python")
    if i + 1 >= len(blocks) or kinds[i + 1] != "text":
        raise ValueError("the quick tour's python block is not followed by a text block")
    return blocks[i][1], blocks[i + 1][1]


def test_quick_tour_prints_what_the_readme_says():
    code, expected = quick_tour_blocks(README.read_text(encoding="utf-8"))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(README) + " (quick tour)", "exec"), {"__name__": "__readme__"})
    got = [line.rstrip() for line in out.getvalue().strip().splitlines()]
    want = [line.rstrip() for line in expected.strip().splitlines()]
    assert got == want


@pytest.mark.parametrize(
    "text",
    [
        "# x\n## Commands\n",
        "## Quick tour\nno code\n## Next\n",
        "## Quick tour\n```python\nprint(1)\n```\n## Next\n",
    ],
    ids=["no section", "no code", "no output block"],
)
def test_a_malformed_quick_tour_is_reported(text):
    with pytest.raises(ValueError, match="quick tour|Quick tour"):
        quick_tour_blocks(text)
