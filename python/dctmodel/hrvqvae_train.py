"""``python -m dctmodel.hrvqvae_train``: the HR-VQVAE training command under its first
name (the README's); the command is ``dctmodel.hrvqvae.cli``."""

import sys

from .hrvqvae.cli import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m dctmodel.hrvqvae_train"))
