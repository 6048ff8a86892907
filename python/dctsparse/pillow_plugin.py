"""Pillow plugin for ``.dcts`` files, registered by ``import dctsparse``.

    import dctsparse
    from PIL import Image
    img = Image.open("x.dcts")                       # mode "RGB" or "L"
    img.info                                         # block_size, quality, subsampling, ...
    img.save("y.dcts", quality=75, block_size=8)     # or format="DCTS"

Save options (``img.save(..., **options)``): ``quality`` (1-100, default 75),
``block_size`` (2-64, default 8), ``subsampling`` (``"4:2:0"``/``"4:4:4"``,
or Pillow's JPEG integers 2/0; default 4:2:0), ``order``, ``clip``, and
``drop_alpha`` (RGBA/LA images are refused without it, as in
:func:`dctsparse.encode`).
"""

from __future__ import annotations

from typing import Any

from PIL import Image, ImageFile

from . import codec, container

FORMAT = "DCTS"
_SUBSAMPLING = {0: "4:4:4", 2: "4:2:0", -1: "4:2:0", "4:4:4": "4:4:4", "4:2:0": "4:2:0"}


def _accept(prefix: bytes) -> bool:
    return prefix[:8] == container.MAGIC


class DctsImageFile(ImageFile.ImageFile):
    format = FORMAT
    format_description = "dctsparse sparse DCT image"

    def _open(self) -> None:
        assert self.fp is not None
        start = self.fp.tell()
        # The checksum covers the whole file, so opening reads all of it: a
        # damaged file fails here, not halfway through load().
        header = container.info(self.fp.read())
        self._mode = header["mode"]
        self._size = (header["width"], header["height"])
        self.info.update({k: header[k] for k in ("block_size", "quality", "subsampling", "order", "clip", "count")})
        self.tile = [ImageFile._Tile(FORMAT, (0, 0) + self.size, start, None)]


class _DctsDecoder(ImageFile.PyDecoder):
    _pulls_fd = True

    def decode(self, buffer):
        assert self.fd is not None
        pixels = codec.decode(container.from_bytes(self.fd.read()))
        # The array itself, not pixels.tobytes(): Pillow's raw decoder reads
        # any C-contiguous buffer, and a bytes copy was a third full-size
        # image at the peak (the array and Pillow's own image are the other two).
        raw: Any = pixels.data.cast("B")  # Pillow's stub says bytes; its raw decoder takes any buffer
        self.set_as_raw(raw)
        return -1, 0


def _save(im: Image.Image, fp, filename) -> None:
    opts = im.encoderinfo
    sub = opts.get("subsampling", "4:2:0")
    if sub not in _SUBSAMPLING:
        raise ValueError(f"subsampling must be '4:2:0', '4:4:4', 2 or 0, got {sub!r}")
    s = codec.encode(
        im,
        block_size=opts.get("block_size", 8),
        quality=opts.get("quality", 75),
        subsampling=_SUBSAMPLING[sub],
        order=opts.get("order", "frequency"),
        clip=opts.get("clip"),
        drop_alpha=opts.get("drop_alpha", False),
    )
    fp.write(container.to_bytes(s))


def register() -> None:
    Image.register_open(FORMAT, DctsImageFile, _accept)
    Image.register_save(FORMAT, _save)
    Image.register_extension(FORMAT, container.EXTENSION)
    Image.register_mime(FORMAT, container.MIME)
    Image.register_decoder(FORMAT, _DctsDecoder)


register()
