"""``python -m dctsparse``: the command line lives in :mod:`dctsparse.cli`."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
