"""``finetune_theory.networks`` imports without torch and names the extra when torch is needed."""

from __future__ import annotations

import subprocess
import sys


def test_networks_imports_without_torch_and_says_how_to_install_it() -> None:
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import finetune_theory.networks as nw\n"
        "try:\n"
        "    nw.empirical_ntk(object(), [[1.0]])\n"
        "except ImportError as exc:\n"
        "    print('IMPORTERROR', exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "IMPORTERROR" in out.stdout
    assert "finetune-theory[torch]" in out.stdout
