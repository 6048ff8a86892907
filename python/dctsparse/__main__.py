"""Command line: ``python -m dctsparse`` / ``dctsparse``."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dctsparse", description="Sparse DCT image codec.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="encode a bundled natural image at several settings; "
                                       "print a table and write a progressive-decode strip")
    demo.add_argument("--out", default="dctsparse_demo.png", help="PNG to write (default: %(default)s)")
    demo.add_argument("--image", default="astronaut",
                      help="name of a scikit-image sample image (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        if args.command == "demo":
            from .demo import run

            run(out=args.out, image=args.image)
    except (ValueError, TypeError, OSError, AttributeError) as exc:
        print(f"dctsparse: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
