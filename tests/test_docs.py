"""The documentation: every public name has a runnable Examples section, the user-facing pages
carry no dates, private names or file-path references, the getting-started page runs and
prints what it shows, and the generated references (CLI, constants) are complete.

The Sphinx build itself (``make docs``, warnings as errors) checks links, numpydoc's sections
and the gallery; these tests check what a build cannot see, in a second or two.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import inspect
import io
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

#: The modules of the API reference (the same list as docs/conf.py).
PUBLIC_MODULES = [
    f"finetune_theory.{name}"
    for name in (
        "linear deep_linear relu covariance teachers asymptotics exceptions curves "
        "estimator advisor data experiments experiments.base runner"
    ).split()
]

#: Public functions and classes that still lack an Examples section, each under the first
#: public module that exports it. This list only shrinks: a name that gains an Examples
#: section must leave it (the test says so), and no name may join it.
WITHOUT_EXAMPLES: set[str] = set()

#: The user-facing pages whose text this test checks (the others are checked as their
#: authors rewrite them; add each page here when it is clean).
CHECKED_PAGES = [
    "index.md",
    "install.md",
    "getting_started.md",
    "user_guide.md",
    "cli.md",
    "citing.md",
    "development.md",
    "release_notes.md",
    "results.md",
    "realistic.md",
    "benchmarks.md",
    "runner.md",
    "relu.md",
    "linear.md",
    "deep_linear.md",
    "networks.md",
    "pretrained.md",
    "advisor.md",
]

DATE = re.compile(r"\b(19|20)\d\d-[01]\d-[0-3]\d\b")
PRIVATE_NAME = re.compile(
    r"\b(?:finetune_theory\.)?(?:\w+\.)*_[a-z]\w*\.\w+|finetune_theory\._\w+|`_[a-z]\w*`"
)
FILE_REFERENCE = re.compile(
    r"docs/\w+\.md|\b\w+\.md,? section \d|section \d+(\.\d+)* of"
    r"|\b(?:src|tests|benchmarks|finetune_theory)/[\w/]*\w\.py\b"
)
EXAMPLES = re.compile(r"^Examples\n-{8}", re.M)


def _public_objects() -> dict[str, object]:
    """``module.name`` -> object, for every class and function of a public ``__all__``, each
    object once (under the first public module that exports it)."""
    seen: dict[int, str] = {}
    out: dict[str, object] = {}
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name)
            if not (inspect.isclass(obj) or inspect.isfunction(obj)) or id(obj) in seen:
                continue
            seen[id(obj)] = f"{module_name}.{name}"
            out[f"{module_name}.{name}"] = obj
    return out


def _has_examples(obj: object) -> bool:
    return bool(EXAMPLES.search(inspect.getdoc(obj) or ""))


def test_every_public_name_has_an_examples_section():
    objects = _public_objects()
    lacking = {name for name, obj in objects.items() if not _has_examples(obj)}
    new = sorted(lacking - WITHOUT_EXAMPLES)
    assert not new, f"public names without an Examples section (add one): {new}"
    done = sorted(WITHOUT_EXAMPLES - lacking)
    assert not done, f"these now have an Examples section: remove them from WITHOUT_EXAMPLES {done}"


def test_the_examples_check_catches_a_missing_section():
    def documented():
        """Do it.

        Examples
        --------
        >>> 1
        1
        """

    def undocumented():
        """Do it, with an example in the prose: >>> 1."""

    assert _has_examples(documented) and not _has_examples(undocumented)


def test_public_constants_have_their_own_comment():
    conf = _load_conf()
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name)
            if inspect.isclass(obj) or inspect.isfunction(obj) or inspect.ismodule(obj):
                continue
            assert conf.data_comment(module_name, name), f"{module_name}.{name} has no #: comment"


@pytest.mark.parametrize("page", CHECKED_PAGES)
def test_user_facing_pages_have_no_dates_private_names_or_file_references(page):
    text = (DOCS / page).read_text(encoding="utf-8")
    if page == "release_notes.md":  # it includes the changelog, dated by release on purpose
        text = text.split("```{include}")[0]
    prose = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)  # code blocks may name files
    for pattern, what in (
        (DATE, "a date"),
        (PRIVATE_NAME, "a private name"),
        (FILE_REFERENCE, "a file reference (link the page instead)"),
    ):
        match = pattern.search(prose)
        assert match is None, f"{page} has {what}: {match.group(0)!r}"


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("measured on 2026-11-27", DATE),
        ("see `_strategies.loo_ridge_excess`", PRIVATE_NAME),
        ("see finetune_theory._training", PRIVATE_NAME),
        ("the resummation (`_fluctuation_terms`)", PRIVATE_NAME),
        ("(docs/linear.md section 9)", FILE_REFERENCE),
        ("linear.md, section 3.2", FILE_REFERENCE),
        ("checked by tests/test_relu.py", FILE_REFERENCE),
        ("run benchmarks/bench_relu.py", FILE_REFERENCE),
    ],
)
def test_the_page_patterns_catch_what_they_are_for(text, pattern):
    assert pattern.search(text)


def test_the_page_patterns_pass_ordinary_text():
    text = "The risk at n = 20 is 0.0165 (see linear.expected_risk and data.FeatureMap)."
    assert not any(p.search(text) for p in (DATE, PRIVATE_NAME, FILE_REFERENCE))


def _blocks(path: Path) -> list[tuple[str, str, str]]:
    """``(section, code, expected output)`` for each python block of a page, in order."""
    out = []
    section = ""
    pattern = re.compile(r"^## ([^\n]*)$|^```(\w+)\n(.*?)^```", re.M | re.S)
    pending = None
    for match in pattern.finditer(path.read_text(encoding="utf-8")):
        if match.group(1) is not None:
            section = match.group(1)
            continue
        kind, body = match.group(2), match.group(3)
        if kind == "python":
            pending = [section, body, ""]
            out.append(pending)
        elif kind == "text" and pending is not None:
            pending[2] = body
            pending = None
    return [tuple(b) for b in out]


@pytest.mark.slow
def test_getting_started_runs_and_prints_what_it_shows():
    blocks = _blocks(DOCS / "getting_started.md")
    sections = {s for s, _, _ in blocks}
    assert len(sections) == 2 and len(blocks) >= 5, "a researcher's and a practitioner's path"
    namespaces: dict[str, dict] = {}
    for section, code, expected in blocks:
        namespace = namespaces.setdefault(section, {"__name__": "__getting_started__"})
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(code, f"getting_started.md ({section})", "exec"), namespace)
        got = [line.rstrip() for line in out.getvalue().strip().splitlines()]
        want = [line.rstrip() for line in expected.strip().splitlines()]
        assert got == want, f"{section}:\n{code}"


def _load_conf():
    spec = importlib.util.spec_from_file_location("_docs_conf", DOCS / "conf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_reference_covers_every_command_and_option():
    from finetune_theory.cli import build_parser

    sections = dict(_load_conf().cli_sections())
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    assert set(sections) == {"finetune-theory"} | {
        f"finetune-theory {name}" for name in subparsers.choices
    }
    for name, sub in subparsers.choices.items():
        text = sections[f"finetune-theory {name}"]
        for action in sub._actions:
            for flag in action.option_strings:
                assert flag in text, f"{flag} of {name} is missing from the CLI reference"


def test_readme_opens_with_the_two_make_commands_then_pip_and_every_extra():
    import tomllib

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    first = re.search(r"^```bash\n(.*?)^```", text, re.M | re.S)
    commands = [line.split("#")[0].strip() for line in first.group(1).strip().splitlines()]
    assert commands == ["make run", "make test"]
    assert text.index("What it answers") < text.index("## Install") < text.index("## Quick tour")
    install = text[text.index("## Install") : text.index("## Quick tour")]
    assert "pip install finetune-theory" in install
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    page = (DOCS / "install.md").read_text(encoding="utf-8")
    for extra in extras:
        assert f"`{extra}`" in install, f"the README does not explain the extra {extra!r}"
        assert f"| `{extra}` |" in page, f"docs/install.md does not explain the extra {extra!r}"


def test_every_documented_parameter_is_in_its_parameters_section():
    """numpydoc's PR01, as the docs build enforces it, with its shrinking list of exceptions
    (which the build leaves out of every check: the other checks are made here for them)."""
    from numpydoc.validate import validate

    conf = _load_conf()
    skipped = [re.compile(p) for p in conf.numpydoc_validation_exclude]
    pending = conf.PARAMETERS_PENDING
    incomplete, done, other = [], [], []
    for name in conf.documented_callables():
        if name not in pending and any(p.search(name) for p in skipped):
            continue
        errors = dict(validate(name)["errors"])
        if "PR01" in errors and name not in pending:
            incomplete.append(f"{name}: {errors['PR01']}")
        if "PR01" not in errors and name in pending:
            done.append(name)
        if name in pending:
            other += [f"{name}: {code}" for code in ("GL08", "PR02", "SS01") if code in errors]
    assert not incomplete, f"document these parameters: {incomplete}"
    assert not done, f"complete now: remove them from PARAMETERS_PENDING in docs/conf.py {done}"
    assert not other, other
    assert pending <= set(conf.documented_callables()), "PARAMETERS_PENDING names no object"


CODE_SPAN = re.compile(r"`([^`\n]*)`")
BARE_PIPE = re.compile(r"(?<!\\)\|")


def _bare_pipes_in_code(row: str) -> list[str]:
    """The code spans of a table row (paired left to right) that hold an unescaped ``|``."""
    return [span for span in CODE_SPAN.findall(row) if BARE_PIPE.search(span)]


@pytest.mark.parametrize("page", CHECKED_PAGES)
def test_table_rows_have_no_bare_pipe_inside_code(page):
    """A ``|`` inside a code span of a table row splits the cell (write ``\\|``)."""
    prose = re.sub(r"^```.*?^```", "", (DOCS / page).read_text(encoding="utf-8"), flags=re.M | re.S)
    rows = [line for line in prose.splitlines() if line.startswith("|")]
    bad = [span for row in rows for span in _bare_pipes_in_code(row)]
    assert not bad, f"{page}: escape the pipes in {bad}"


def test_the_pipe_check_sees_a_norm_in_a_table_cell():
    assert _bare_pipes_in_code("| `f(x)` | the bound at `D = ||t||` |") == ["D = ||t||"]
    assert _bare_pipes_in_code("| `f(x)` | the bound at `D = \\|\\|t\\|\\|` |") == []
