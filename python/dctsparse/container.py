"""The ``.dcts`` file format: one :class:`SparseDCT` per file, entropy-coded.

    dctsparse.save(s, "x.dcts")          # or an open binary file
    s = dctsparse.load("x.dcts")         # load(save(s)) == s, list order included
    data = s.to_bytes(); t = dctsparse.SparseDCT.from_bytes(data)
    dctsparse.container.info("x.dcts")   # the header as a dict, without decoding

The layout (magic, version, header, coded payload, CRC-32) is documented in
``cpp/container.hpp``; the coefficient coder in ``cpp/container.cpp``.
Every malformed file (wrong magic, other version, truncation, bit flips,
lying headers, a size over :data:`dctsparse.MAX_IMAGE_PIXELS`) raises
``ValueError`` naming the problem. Reading allocates nothing that scales
with the header's image size: ~1 MB of coder state plus ~40 bytes per
coefficient decoded so far (see ``cpp/container.hpp``); only
:func:`dctsparse.decode` of the list allocates the image, and besides it
~4 MB of buffers however wide the image (``docs/codec.md``, "Memory of
reading a file").
"""

from __future__ import annotations

import os
from typing import BinaryIO

from . import _core, inputs
from .sparse import SparseDCT

#: The first 8 bytes of every .dcts file.
MAGIC = b"\x89DCTS\r\n\x1a"
#: The format version this module writes and reads.
VERSION = 1
#: File extension and MIME type.
EXTENSION = ".dcts"
MIME = "image/x-dcts"

PathOrFile = str | os.PathLike[str] | BinaryIO


def to_bytes(s: SparseDCT) -> bytes:
    """The ``.dcts`` file of ``s`` as bytes (:meth:`SparseDCT.to_bytes`)."""
    if not isinstance(s, SparseDCT):
        raise TypeError(f"expected a SparseDCT, got {type(s).__name__}")
    return s.to_bytes()


def from_bytes(data) -> SparseDCT:
    """Parse a ``.dcts`` file held in a bytes-like object -> :class:`SparseDCT`.

    Raises ValueError for anything that is not a valid .dcts file of version
    :data:`VERSION` within :data:`dctsparse.MAX_IMAGE_PIXELS`.
    """
    return SparseDCT.from_bytes(data)


def _read_all(path_or_file: PathOrFile) -> bytes:
    if isinstance(path_or_file, (str, os.PathLike)):
        with open(path_or_file, "rb") as f:
            return f.read()
    if hasattr(path_or_file, "read"):
        data = path_or_file.read()
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError("the file must be opened in binary mode ('rb')")
        return data
    raise TypeError(f"expected a path or a binary file object, got {type(path_or_file).__name__}")


def save(s: SparseDCT, path_or_file: PathOrFile) -> int:
    """Write ``s`` as a ``.dcts`` file (a path, or a binary file object). Returns the byte count."""
    data = to_bytes(s)
    if isinstance(path_or_file, (str, os.PathLike)):
        with open(path_or_file, "wb") as f:
            f.write(data)
    elif hasattr(path_or_file, "write"):
        path_or_file.write(data)
    else:
        raise TypeError(f"expected a path or a binary file object, got {type(path_or_file).__name__}")
    return len(data)


def load(path_or_file: PathOrFile) -> SparseDCT:
    """Read a ``.dcts`` file (a path, or a binary file object positioned at its start)."""
    return from_bytes(_read_all(path_or_file))


def info(source: PathOrFile | bytes | bytearray | memoryview) -> dict:
    """The header of a ``.dcts`` file, checksum verified, coefficients not decoded.

    Keys: version, height, width, mode, block_size, quality, subsampling,
    order, clip, count (N), canonical (list in its order's sequence),
    payload_bytes, file_bytes.
    """
    data = source if isinstance(source, (bytes, bytearray, memoryview)) else _read_all(source)
    return _core.container_header(inputs.byte_buffer(data), inputs.pixel_limit())
