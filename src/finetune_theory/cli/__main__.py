"""``python -m finetune_theory.cli``: the same as the ``finetune-theory`` command."""

import sys

from . import main

sys.exit(main())
