"""dctsparse: images <-> sparse DCT coordinate lists (Nash et al., ICML 2021).

    s = dctsparse.encode(image, block_size=8, quality=75)   # SparseDCT
    s.tokens()                                              # (N + 1, 3) int32
    dctsparse.decode(s[: len(s) // 4])                       # progressive preview

See SPEC.md for the exact definition; ``dctsparse.reference`` is a pure-NumPy
version of every stage.
"""

from . import inputs
from .codec import decode, encode, quant_matrix, zigzag
from .sparse import SparseDCT

#: Images (to encode, or headers to decode) with more pixels than this are
#: refused before anything is allocated, like Pillow's ``Image.MAX_IMAGE_PIXELS``.
#: Set to ``None`` to lift it (the C++ core still refuses more than 2**31 pixels).
MAX_IMAGE_PIXELS: "int | None" = 1 << 28

__all__ = ["SparseDCT", "encode", "decode", "quant_matrix", "zigzag", "MAX_IMAGE_PIXELS"]
__version__ = "0.1.0"
