"""``python -m finetune_theory``: the same as the ``finetune-theory`` command."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
