"""The coordinate list (SPEC section 6) as a Python object: ``SparseDCT``."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _core, inputs

# Every attribute but the three arrays (height and width first).
_HEADER_FIELDS = ("height", "width", "block_size", "quality", "subsampling", "order", "clip", "mode", "_seq")


class SparseDCT:
    """A sparse DCT image: ``N`` triples ``(channel, position, value)`` plus its header.

    Attributes:
        channel, position, value: int32 arrays of shape ``(N,)``, in list
            order (read-only views).
        height, width: image size in pixels.
        block_size, quality, subsampling, clip: the encoding settings.
        order: ``"frequency"``, ``"luma_first"`` or a tuple of channel ids.
        mode: ``"RGB"`` or ``"L"``.

    ``len(s)`` is ``N``; ``s[:n]`` is the prefix of the first ``n`` triples,
    itself a ``SparseDCT`` (decoding it gives the progressive preview).
    Construct one with :func:`dctsparse.encode`, :meth:`from_tokens` or
    :meth:`from_dct_image`; the constructor validates every triple.
    """

    __slots__ = (
        "channel",
        "position",
        "value",
        "height",
        "width",
        "block_size",
        "quality",
        "subsampling",
        "order",
        "clip",
        "mode",
        "_seq",
    )

    def __init__(
        self,
        channel,
        position,
        value,
        *,
        height: int,
        width: int,
        block_size: int = 8,
        quality: int = 75,
        subsampling: str = "4:2:0",
        order: Any = "frequency",
        clip: int | None = None,
        mode: str = "RGB",
    ):
        self._set_header(height, width, block_size, quality, subsampling, order, clip, mode)
        c = inputs.int32_vector("channel", channel)
        p = inputs.int32_vector("position", position)
        v = inputs.int32_vector("value", value)
        if not len(c) == len(p) == len(v):
            raise ValueError(f"channel, position and value must have the same length, got {len(c)}, {len(p)}, {len(v)}")
        # The list is validated once, here, and then frozen: it must not share
        # memory with the caller's arrays, which would stay writable (and
        # freezing them would reach into the caller's data).
        c, p, v = (
            a if a is not src and a.flags.owndata else a.copy() for a, src in ((c, channel), (p, position), (v, value))
        )
        # The core checks ranges, the 4:2:0 grid and repeated pairs.
        _core.validate_list(
            c, p, v, self.height, self.width, self.planes, self.block_size, self.subsampling == "4:2:0", self.clip or 0
        )
        self._set_arrays(c, p, v)

    # -- construction ------------------------------------------------------------------

    def _set_header(self, height, width, block_size, quality, subsampling, order, clip, mode):
        self.height, self.width = inputs.dimensions(height, width)
        self.block_size = inputs.block_size(block_size)
        self.quality = inputs.quality(quality)
        self.subsampling = inputs.subsampling(subsampling)
        self.clip = inputs.clip(clip)
        self.mode = inputs.mode(mode)
        self.order, self._seq = inputs.order(order, self.planes, self.block_size)
        self._check_geometry()

    def _check_geometry(self) -> None:
        """The core's own limits for this header (the padded image it must address),
        checked before anything the size of the image is copied or allocated."""
        _core.check_geometry(self.height, self.width, self.planes, self.block_size, self.subsampling == "4:2:0")

    def _set_arrays(self, c: np.ndarray, p: np.ndarray, v: np.ndarray) -> None:
        for a in (c, p, v):
            a.flags.writeable = False
        self.channel, self.position, self.value = c, p, v

    @classmethod
    def _trusted(cls, c, p, v, like: SparseDCT) -> SparseDCT:
        """A SparseDCT from arrays the core produced or already validated."""
        s = cls.__new__(cls)
        for name in _HEADER_FIELDS:
            setattr(s, name, getattr(like, name))
        s._set_arrays(c, p, v)
        return s

    def _resized(self, height: int, width: int) -> SparseDCT:
        """A header-only copy of this header for an image of another size."""
        s = SparseDCT.__new__(SparseDCT)
        for name in _HEADER_FIELDS[2:]:
            setattr(s, name, getattr(self, name))
        s.height, s.width = inputs.dimensions(height, width)
        s._check_geometry()
        return s

    @classmethod
    def _header_only(cls, **header) -> SparseDCT:
        s = cls.__new__(cls)
        s._set_header(**header)
        return s

    @classmethod
    def from_tokens(
        cls,
        tokens,
        *,
        height: int,
        width: int,
        block_size: int = 8,
        quality: int = 75,
        subsampling: str = "4:2:0",
        order: Any = "frequency",
        mode: str = "RGB",
        clip: int | None = None,
    ) -> SparseDCT:
        """Inverse of :meth:`tokens`: reads an ``(M, 3)`` integer array up to its first
        stop token ``(P*B*B, 0, 0)``; rows after it are ignored.

        Raises ValueError if there is no stop token, if the first row with channel
        ``P*B*B`` is not exactly the stop token, or if any triple before it is
        invalid for the header (see the constructor).
        """
        header = cls._header_only(
            height=height,
            width=width,
            block_size=block_size,
            quality=quality,
            subsampling=subsampling,
            order=order,
            clip=clip,
            mode=mode,
        )
        arr = np.asarray(tokens)
        if arr.ndim != 2 or arr.shape[1] != 3:
            raise ValueError(f"tokens must have shape (M, 3), got {arr.shape}")
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            raise TypeError(f"tokens must be integers, got dtype {arr.dtype}")
        stop = header.num_channels
        hits = np.flatnonzero(arr[:, 0] == stop)
        if hits.size == 0:
            raise ValueError(f"tokens have no stop token (a row with channel {stop})")
        end = int(hits[0])
        if arr[end, 1] != 0 or arr[end, 2] != 0:
            raise ValueError(
                f"token {end} = {tuple(int(x) for x in arr[end])} has the stop channel {stop} "
                f"but is not the stop token ({stop}, 0, 0)"
            )
        body = arr[:end]
        return cls(
            body[:, 0],
            body[:, 1],
            body[:, 2],
            height=height,
            width=width,
            block_size=block_size,
            quality=quality,
            subsampling=subsampling,
            order=header.order,
            clip=clip,
            mode=mode,
        )

    @classmethod
    def from_dct_image(
        cls,
        dct_image,
        *,
        height: int,
        width: int,
        block_size: int = 8,
        quality: int = 75,
        subsampling: str = "4:2:0",
        order: Any = "frequency",
        mode: str = "RGB",
        clip: int | None = None,
    ) -> SparseDCT:
        """Inverse of :meth:`dct_image`: int ``(Hb, Wb, P*B*B)`` -> the list in ``order``."""
        header = cls._header_only(
            height=height,
            width=width,
            block_size=block_size,
            quality=quality,
            subsampling=subsampling,
            order=order,
            clip=clip,
            mode=mode,
        )
        arr = np.asarray(dct_image)
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            raise TypeError(f"DCT image must be integers, got dtype {arr.dtype}")
        if arr.size and (arr.min() < -(2**31) or arr.max() >= 2**31):
            raise ValueError("DCT image has entries outside the int32 range")
        dense = np.ascontiguousarray(arr, dtype=np.int32)
        c, p, v = _core.dense_to_list(
            dense,
            header.height,
            header.width,
            header.planes,
            header.block_size,
            header.subsampling == "4:2:0",
            header.clip or 0,
            header._seq,
        )
        return cls._trusted(c, p, v, header)

    # -- header-derived sizes ----------------------------------------------------------

    @property
    def planes(self) -> int:
        """P: 3 for RGB (Y, Cb, Cr), 1 for L."""
        return inputs.MODES[self.mode]

    @property
    def num_channels(self) -> int:
        """P*B*B: channel ids are 0..P*B*B-1; P*B*B is the stop token's channel."""
        return self.planes * self.block_size**2

    @property
    def grid(self) -> tuple[int, int]:
        """(Hb, Wb): the luma block grid; positions are 0..Hb*Wb-1."""
        m = self.block_size * (2 if self.subsampling == "4:2:0" else 1)
        return (-(-self.height // m) * m // self.block_size, -(-self.width // m) * m // self.block_size)

    @property
    def channel_sequence(self) -> np.ndarray:
        """int32 (P*B*B,): the channel ids in the order the list visits them."""
        return self._seq.copy()

    # -- views -------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.channel)

    def __getitem__(self, key) -> SparseDCT:
        if not isinstance(key, slice) or key.start not in (None, 0) or key.step not in (None, 1):
            raise TypeError("a SparseDCT can only be sliced to a prefix: s[:n]")
        return self._trusted(self.channel[key], self.position[key], self.value[key], self)

    def dct_image(self) -> np.ndarray:
        """int32 (Hb, Wb, P*B*B): the dense DCT image (SPEC section 5)."""
        return _core.list_to_dense(
            self.channel,
            self.position,
            self.value,
            self.height,
            self.width,
            self.planes,
            self.block_size,
            self.subsampling == "4:2:0",
            self.clip or 0,
        )

    def tokens(self) -> np.ndarray:
        """int32 (N + 1, 3): the triples followed by the stop token (P*B*B, 0, 0)."""
        out = np.empty((len(self) + 1, 3), dtype=np.int32)
        out[:-1, 0], out[:-1, 1], out[:-1, 2] = self.channel, self.position, self.value
        out[-1] = (self.num_channels, 0, 0)
        return out

    def header(self) -> dict:
        """The settings needed to rebuild this object from its tokens."""
        return dict(
            height=self.height,
            width=self.width,
            block_size=self.block_size,
            quality=self.quality,
            subsampling=self.subsampling,
            order=self.order,
            clip=self.clip,
            mode=self.mode,
        )

    def canonical(self) -> SparseDCT:
        """The same coefficients with the triples in the order's list order."""
        return self.from_dct_image(self.dct_image(), **self.header())

    def to_bytes(self) -> bytes:
        """The ``.dcts`` file of this list as bytes (format: :mod:`dctsparse.container`)."""
        if isinstance(self.order, str):
            kind, perm = inputs.NAMED_ORDERS[self.order], np.zeros(0, np.int32)
        else:
            kind, perm = 2, np.asarray(self.order, dtype=np.int32)
        return _core.container_encode(
            self.channel,
            self.position,
            self.value,
            self.height,
            self.width,
            self.planes,
            self.block_size,
            self.quality,
            self.subsampling == "4:2:0",
            kind,
            perm,
            self.clip or 0,
        )

    @classmethod
    def from_bytes(cls, data) -> SparseDCT:
        """Parse a ``.dcts`` file held in a bytes-like object.

        Raises ValueError for anything that is not a valid .dcts file of the
        version :mod:`dctsparse.container` reads, or whose image is larger than
        :data:`dctsparse.MAX_IMAGE_PIXELS`.
        """
        header, c, p, v = _core.container_decode(inputs.byte_buffer(data), inputs.pixel_limit())
        shell = cls._header_only(**{k: header[k] for k in _HEADER_FIELDS[:-1]})
        # The decoder only produces triples that are valid for the header (range,
        # 4:2:0 grid, no repeats, by construction), so no second validation pass.
        return cls._trusted(c, p, v, shell)

    def bits_per_subpixel(self, dense: bool = False) -> float:
        """Bits per image subpixel of this list (or, with ``dense=True``, of the DCT image).

        Counting rule (fixed-length codes, no entropy coding): a triple costs
        ceil(log2 P*B*B) + ceil(log2 Hb*Wb) + ceil(log2 2*vmax) bits, where
        vmax is the clip or the largest absolute value present; the dense form
        stores every coefficient of every block (chroma blocks counted once
        under 4:2:0, not the zeros between them) at ceil(log2 2*vmax+1) bits.
        Subpixels are H*W*3 (H*W for L), as in the paper's figure 3.
        """
        vmax = self.clip or int(np.abs(self.value).max(initial=1))
        hb, wb = self.grid
        subpixels = self.height * self.width * self.planes
        if dense:
            chroma_blocks = hb * wb // 4 if self.subsampling == "4:2:0" else hb * wb
            blocks = hb * wb + (self.planes - 1) * chroma_blocks
            return blocks * self.block_size**2 * _bits(2 * vmax + 1) / subpixels
        per = _bits(self.num_channels) + _bits(hb * wb) + _bits(2 * vmax)
        return len(self) * per / subpixels

    def __eq__(self, other) -> bool:
        if not isinstance(other, SparseDCT):
            return NotImplemented
        return self.header() == other.header() and all(
            np.array_equal(a, b)
            for a, b in ((self.channel, other.channel), (self.position, other.position), (self.value, other.value))
        )

    __hash__ = None  # type: ignore[assignment]  # unhashable: a container of arrays, compared by value

    def __repr__(self) -> str:
        return (
            f"SparseDCT(N={len(self)}, {self.mode} {self.height}x{self.width}, "
            f"block_size={self.block_size}, quality={self.quality}, "
            f"subsampling={self.subsampling!r}, order="
            f"{self.order if isinstance(self.order, str) else 'custom'!r}, clip={self.clip})"
        )


def _bits(n: int) -> int:
    return max(1, int(np.ceil(np.log2(max(n, 2)))))
