"""dctsparse: images <-> sparse DCT coordinate lists (Nash et al., ICML 2021).

    s = dctsparse.encode(image, block_size=8, quality=75)   # SparseDCT
    s.tokens()                                              # (N + 1, 3) int32
    dctsparse.decode(s[: len(s) // 4])                       # progressive preview

See docs/spec.md for the exact definition; ``dctsparse.reference`` is a pure-NumPy
version of every stage.
"""

from . import inputs as inputs  # a public module: the argument checks every entry point uses
from . import pillow_plugin as _pillow_plugin  # noqa: F401  (importing it registers DCTS with Pillow)
from . import simd as _simd
from .batch import decode_batch, encode_batch
from .codec import decode, encode, quant_matrix, zigzag
from .container import load, save
from .dataset import Dataset
from .simd import set_simd_level, simd_info
from .sparse import SparseDCT

_simd._check_env()

#: Images (to encode, or headers to decode) with more pixels than this are
#: refused before anything is allocated, like Pillow's ``Image.MAX_IMAGE_PIXELS``.
#: Set to ``None`` to lift it (the C++ core still refuses more than 2**31 pixels).
MAX_IMAGE_PIXELS: "int | None" = 1 << 28

__all__ = [
    "SparseDCT",
    "encode",
    "decode",
    "quant_matrix",
    "zigzag",
    "MAX_IMAGE_PIXELS",
    "simd_info",
    "set_simd_level",
    "encode_batch",
    "decode_batch",
    "save",
    "load",
    "Dataset",
]
__version__ = "0.1.0"
