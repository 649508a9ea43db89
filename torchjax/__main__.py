"""``python -m torchjax compare ...``: see ``docs/compare.md``."""

import sys

from ._src.compare.cli import main

if __name__ == "__main__":
    sys.exit(main())
