"""The import layering of the package, read from the source with ``ast``, and the test files
that mirror its modules.

Three rules:

1. The library (every module outside ``experiments/``, ``runner/`` and ``cli/``, and outside
   ``__main__``, the command line's entry point) never imports the lab wing (``experiments``,
   ``runner``, ``cli``): the lab is built on the library, not the other way round.
2. No module imports a private module (or a private name) of another subpackage: a package's
   private modules are its own; others use what its ``__init__`` re-exports. The private
   modules at the top of the package (``_validation``, ``_training``, ``_random``, ``_risk``,
   ``_numerics``, ``_optional``, ``_userfiles``) are the shared machinery of every subpackage
   and may be imported anywhere.
3. Tests mirror modules: every public module ``finetune_theory.a.b`` (and every shared
   private module ``finetune_theory._x`` at the top) has its own ``tests/test_a_b.py``
   (``tests/test_x.py``); a subpackage's private modules are tested through its own file.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
TESTS = Path(__file__).resolve().parent
PKG = "finetune_theory"
LAB = {"experiments", "runner", "cli"}
#: modules outside those folders that belong to the lab: ``python -m finetune_theory`` is the
#: command line's entry point
LAB_MODULES = {f"{PKG}.__main__"}

#: known imports of another package's private module, kept until their owners move them; each
#: entry is (importing module, private module) -> what is taken from it and why it is still there
ALLOWED_PRIVATE: dict[tuple[str, str], str] = {}
#: known imports of the lab wing by the library, kept until their owners move them
ALLOWED_LAB: dict[tuple[str, str], str] = {}


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted((SRC / PKG).rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> list[tuple[str, int]]:
    """Absolute names imported by module ``name``: modules, and ``module.attr`` for
    ``from module import attr`` (which may itself be a module)."""
    is_pkg = path.name == "__init__.py"
    package = name.split(".") if is_pkg else name.split(".")[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.append((module, node.lineno))
            found += [(f"{module}.{alias.name}", node.lineno) for alias in node.names]
    return [(mod, line) for mod, line in found if mod == PKG or mod.startswith(PKG + ".")]


def _wing(name: str) -> str | None:
    if name in LAB_MODULES:
        return "cli"
    parts = name.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAB else None


def test_the_scan_sees_the_package():
    assert "finetune_theory.relu" in MODULES and "finetune_theory.deep_linear._train" in MODULES
    imports = dict(_imports("finetune_theory.relu", MODULES["finetune_theory.relu"]))
    assert "finetune_theory.relu._train" in imports  # relative imports are resolved


def _lab_imports() -> list[tuple[str, str, str]]:
    out = []
    for name, path in MODULES.items():
        if _wing(name):
            continue
        for target, line in _imports(name, path):
            if _wing(target):
                wing = f"{PKG}.{_wing(target)}"
                out.append((name, wing, f"{path.relative_to(SRC)}:{line} imports {target}"))
    return out


def test_the_library_never_imports_the_lab():
    bad = [where for name, wing, where in _lab_imports() if (name, wing) not in ALLOWED_LAB]
    assert not bad, "the library imports the lab wing:\n" + "\n".join(bad)


def _private_owner(target: str) -> str | None:
    """The subpackage whose private part ``target`` names, or None if it names none.

    A private module belongs to the package that holds it; a private name inside a public
    module belongs to that module's package. Private parts of the top-level package are the
    shared machinery, importable anywhere.
    """
    parts = target.split(".")
    for depth in range(2, len(parts)):
        if parts[depth].startswith("_") and not parts[depth].startswith("__"):
            prefix = parts[:depth]
            while len(prefix) > 1 and not _is_package(".".join(prefix)):
                prefix = prefix[:-1]
            return None if len(prefix) <= 1 else ".".join(prefix)
    return None


def _is_package(name: str) -> bool:
    path = MODULES.get(name)
    return path is not None and path.name == "__init__.py"


def _violations() -> list[tuple[str, str, str]]:
    out = []
    for name, path in MODULES.items():
        for target, line in _imports(name, path):
            owner = _private_owner(target)
            if owner is None or name == owner or name.startswith(owner + "."):
                continue
            private = ".".join(target.split(".")[: owner.count(".") + 2])
            out.append((name, private, f"{path.relative_to(SRC)}:{line} imports {target}"))
    return out


def test_no_module_imports_a_private_module_of_another_package():
    bad = [
        where for name, private, where in _violations() if (name, private) not in ALLOWED_PRIVATE
    ]
    assert not bad, "private modules imported across packages:\n" + "\n".join(bad)


def test_the_allow_lists_hold_only_live_exceptions():
    live = {(name, private) for name, private, _ in _violations()}
    stale = set(ALLOWED_PRIVATE) - live
    assert not stale, f"remove these fixed entries from ALLOWED_PRIVATE: {sorted(stale)}"
    live = {(name, wing) for name, wing, _ in _lab_imports()}
    stale = set(ALLOWED_LAB) - live
    assert not stale, f"remove these fixed entries from ALLOWED_LAB: {sorted(stale)}"


@pytest.mark.parametrize(
    ("target", "owner"),
    [
        ("finetune_theory._validation", None),
        ("finetune_theory.relu", None),
        ("finetune_theory.relu._bound", "finetune_theory.relu"),
        ("finetune_theory.relu._bound._predicted", "finetune_theory.relu"),
        ("finetune_theory.advisor._advise.Advice", "finetune_theory.advisor"),
        ("finetune_theory.relu.__init__", None),
        ("finetune_theory.runner.fingerprint._FINDER", "finetune_theory.runner"),
        ("finetune_theory.covariance._SYM_RTOL", None),
    ],
)
def test_private_parts_are_recognised(target, owner):
    assert _private_owner(target) == owner


def test_the_package_does_not_offer_the_lab_wing():
    import finetune_theory

    assert not ({*finetune_theory.__all__, *dir(finetune_theory)} & LAB)
    assert not (finetune_theory._SUBMODULES & LAB)


@pytest.mark.parametrize(
    ("statement", "warns"),
    [
        ("import finetune_theory as f; f.experiments.get", True),
        ("from finetune_theory import experiments; experiments.get", False),
        ("import finetune_theory.experiments as e; e.get", False),
    ],
)
def test_the_lab_as_a_lazy_attribute_is_deprecated_and_imports_are_not(statement, warns):
    # a fresh interpreter: this one may have imported the lab already
    out = subprocess.run(
        [sys.executable, "-W", "error::DeprecationWarning", "-c", statement],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (out.returncode != 0) is warns, out.stderr
    if warns:
        assert "from finetune_theory import experiments" in out.stderr


# ------------------------------------------------------------------ tests mirror modules
#: modules without their own test file, each with where it is tested meanwhile (a shrinking
#: list: a new module brings its test file)
WITHOUT_MIRROR: dict[str, str] = {
    "finetune_theory._sample_search": "each sample_complexity, tests/test_linear.py",
    "finetune_theory.cli.risk": "tests/test_cli.py",
    "finetune_theory.data.features": "tests/test_data.py",
    "finetune_theory.data.images": "tests/test_data.py",
    "finetune_theory.data.tables": "tests/test_data.py",
    "finetune_theory.experiments.depth": "tests/test_experiments_deep.py",
    "finetune_theory.experiments.freezing": "tests/test_experiments_deep.py",
    "finetune_theory.experiments.scaling": "tests/test_experiments_deep.py",
    "finetune_theory.runner.executors": "tests/test_runner_sweep.py",
    "finetune_theory.runner.fingerprint": "tests/test_runner_faults.py",
    "finetune_theory.runner.reproduction": "tests/test_cli_reproduce.py",
}


def _mirror(name: str) -> str | None:
    """The test file of module ``name``, or None where the module's package's file covers it."""
    parts = name.split(".")[1:]
    if not parts or parts[-1] == "__main__":
        return None
    private = [p.startswith("_") for p in parts]
    if any(private[1:]) or (private[0] and len(parts) > 1):
        return None  # a subpackage's private module
    return "test_" + "_".join(p.lstrip("_") for p in parts) + ".py"


def test_every_module_has_its_test_file():
    tests = {p.name for p in TESTS.glob("test_*.py")}
    missing = {name for name in MODULES if (m := _mirror(name)) and m not in tests}
    new = sorted(missing - set(WITHOUT_MIRROR))
    assert not new, "modules without tests/test_<module>.py (add one): " + ", ".join(
        f"{n} -> {_mirror(n)}" for n in new
    )
    # an entry may name a module that this tree does not hold (yet): only present modules
    # that have their test file are stale
    done = sorted(name for name in set(WITHOUT_MIRROR) - missing if name in MODULES)
    assert not done, f"these now have their test file: remove them from WITHOUT_MIRROR {done}"


@pytest.mark.parametrize(
    ("name", "mirror"),
    [
        ("finetune_theory.linear", "test_linear.py"),
        ("finetune_theory.runner.store", "test_runner_store.py"),
        ("finetune_theory._numerics", "test_numerics.py"),
        ("finetune_theory.relu._bound", None),
        ("finetune_theory.experiments.reduction", "test_experiments_reduction.py"),
        ("finetune_theory.experiments.reduction._setting", None),
        ("finetune_theory.__main__", None),
    ],
)
def test_mirror_names(name, mirror):
    assert _mirror(name) == mirror
