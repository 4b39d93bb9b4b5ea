"""The import layering of the package, read from the source with ``ast``.

Two rules:

1. The library (every module outside ``experiments/``, ``runner/`` and ``cli/``, and outside
   ``__main__``, the command line's entry point) never imports the lab wing (``experiments``,
   ``runner``, ``cli``): the lab is built on the library, not the other way round.
2. No module imports a private module (or a private name) of another subpackage: a package's
   private modules are its own; others use what its ``__init__`` re-exports. The private
   modules at the top of the package (``_validation``, ``_training``, ``_random``, ``_risk``,
   ``_numerics``, ``_optional``, ``_userfiles``) are the shared machinery of every subpackage
   and may be imported anywhere.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PKG = "finetune_theory"
LAB = {"experiments", "runner", "cli"}
#: modules outside those folders that belong to the lab: ``python -m finetune_theory`` is the
#: command line's entry point
LAB_MODULES = {f"{PKG}.__main__"}

#: known imports of another package's private module, kept until their owners move them; each
#: entry is (importing module, private module) -> what is taken from it and why it is still there
ALLOWED_PRIVATE: dict[tuple[str, str], str] = {
    ("finetune_theory.networks._curve", "finetune_theory.advisor._fit"): (
        "fit_profiles: the networks' learning curve fits the advisor's residual profile, which "
        "advisor/ does not re-export"
    ),
}
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
