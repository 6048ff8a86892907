"""The .dcts container: exact round trips, the documented layout, compression,
and hostile files (every failure a ValueError, never a crash)."""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dctsparse
from dctsparse import SparseDCT, _core, container
from helpers import images, natural_image

# The mutation tests run thousands of cases under the "ci" profile and scale
# with the active profile ("asan" is ~4x fewer, "dev" ~8x more).
SCALE = settings().max_examples / 60
N_MUT = max(50, int(700 * SCALE))

HEADER = struct.Struct("<8sHBBBBHIIIQQ")  # the 44 fixed header bytes, cpp/container.hpp


@st.composite
def sparse_lists(draw):
    img = draw(images(max_side=48, scale=8.0))
    b = draw(st.sampled_from([2, 3, 4, 5, 8, 16]))
    planes = 1 if img.ndim == 2 else 3
    order = draw(st.sampled_from(["frequency", "luma_first", "perm"]))
    if order == "perm":
        order = list(np.random.default_rng(draw(st.integers(0, 2**16))).permutation(planes * b * b))
    s = dctsparse.encode(
        img,
        block_size=b,
        quality=draw(st.integers(1, 100)),
        subsampling=draw(st.sampled_from(["4:2:0", "4:4:4"])),
        order=order,
        clip=draw(st.sampled_from([None, 1, 3, 200])),
    )
    cut = draw(st.sampled_from(["all", "prefix", "shuffle"]))
    if cut == "prefix":
        s = s[: draw(st.integers(0, len(s)))]
    elif cut == "shuffle" and len(s):
        idx = np.random.default_rng(draw(st.integers(0, 2**16))).permutation(len(s))
        s = SparseDCT(s.channel[idx], s.position[idx], s.value[idx], **s.header())
    return s


@given(sparse_lists())
def test_round_trip_is_exact(s):
    data = s.to_bytes()
    t = SparseDCT.from_bytes(data)
    assert t == s  # header and all three arrays, in list order
    assert t.to_bytes() == data  # deterministic: a reload writes the same bytes
    assert dctsparse.container.info(data)["count"] == len(s)


@pytest.mark.parametrize("name", ["astronaut", "camera"])
@pytest.mark.parametrize("b,q,sub", [(8, 75, "4:2:0"), (16, 50, "4:4:4"), (32, 95, "4:2:0")])
def test_natural_images_round_trip(name, b, q, sub):
    s = dctsparse.encode(natural_image(name), block_size=b, quality=q, subsampling=sub)
    assert dctsparse.load(io.BytesIO(dctsparse.container.to_bytes(s))) == s


def test_thin_images_with_large_blocks():
    img = np.random.default_rng(1).integers(0, 256, (1, 3000, 3), dtype=np.uint8)
    for b in (2, 64):
        s = dctsparse.encode(img, block_size=b, quality=90)
        assert SparseDCT.from_bytes(s.to_bytes()) == s
    s = dctsparse.encode(img.transpose(1, 0, 2).copy(), block_size=64)
    assert SparseDCT.from_bytes(s.to_bytes()) == s


def test_save_and_load_paths_and_files(tmp_path):
    s = dctsparse.encode(natural_image("chelsea"), quality=60)
    n = dctsparse.save(s, tmp_path / "a.dcts")
    assert n == os.path.getsize(tmp_path / "a.dcts")
    assert dctsparse.load(tmp_path / "a.dcts") == s
    assert dctsparse.load(str(tmp_path / "a.dcts")) == s
    with open(tmp_path / "b.dcts", "wb") as f:
        dctsparse.save(s, f)
    with open(tmp_path / "b.dcts", "rb") as f:
        assert dctsparse.load(f) == s
    assert (tmp_path / "a.dcts").read_bytes() == (tmp_path / "b.dcts").read_bytes()
    # any contiguous bytes-like object
    data = s.to_bytes()
    for buf in (bytearray(data), memoryview(data), np.frombuffer(data, np.uint8)):
        assert SparseDCT.from_bytes(buf) == s
    with pytest.raises(TypeError, match="binary"):
        with open(tmp_path / "a.dcts", encoding="latin-1") as f:
            dctsparse.load(f)
    with pytest.raises(TypeError, match="SparseDCT"):
        dctsparse.save(np.zeros(3), tmp_path / "c.dcts")
    with pytest.raises(TypeError, match="path or a binary file"):
        dctsparse.load(42)


def test_layout_matches_the_documentation():
    img = natural_image("coffee")[:100, :130]
    s = dctsparse.encode(img, block_size=4, quality=33, subsampling="4:4:4", order=list(range(47, -1, -1)), clip=17)
    data = s.to_bytes()
    (magic, version, flags, b, q, order, reserved, h, w, clip, n, payload) = HEADER.unpack_from(data)
    assert magic == b"\x89DCTS\r\n\x1a" == container.MAGIC
    assert (version, flags, b, q, order, reserved) == (1, 0b001, 4, 33, 2, 0)
    assert (h, w, clip, n) == (100, 130, 17, len(s))
    perm = np.frombuffer(data, "<u2", 48, HEADER.size)
    assert perm.tolist() == list(range(47, -1, -1))
    assert len(data) == HEADER.size + 96 + payload + 4
    assert struct.unpack("<I", data[-4:])[0] == zlib.crc32(data[:-4])
    # greyscale, 4:2:0, luma_first, a shuffled list: flags 0b110
    g = dctsparse.encode(img[..., 0], order="luma_first")
    g = SparseDCT(g.channel[::-1], g.position[::-1], g.value[::-1], **g.header())
    fields = HEADER.unpack_from(g.to_bytes())
    assert (fields[2], fields[5], fields[10]) == (0b110, 1, len(g))
    hdr = container.info(g.to_bytes())
    assert hdr["canonical"] is False and hdr["order"] == "luma_first" and hdr["mode"] == "L"


def test_entropy_coding_beats_generic_compressors_and_jpeg():
    from PIL import Image

    img = natural_image("astronaut")
    s = dctsparse.encode(img, quality=75)
    size = len(s.to_bytes())
    assert size < len(zlib.compress(s.tokens().tobytes(), 9)) / 3
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=75, optimize=True)
    # benchmarks/container_size.py has the full table; this only guards regressions
    assert size < 0.95 * buf.tell()


# ---------------------------------------------------------------- hostile files


def valid_files() -> list[bytes]:
    rng = np.random.default_rng(7)
    img = rng.integers(0, 256, (19, 23, 3), dtype=np.uint8)
    smooth = natural_image("chelsea")[:24:, :40]
    s1 = dctsparse.encode(img, block_size=4, quality=80)
    s2 = dctsparse.encode(smooth[..., 1], block_size=8, quality=90, subsampling="4:4:4")
    s3 = dctsparse.encode(smooth, block_size=3, order=list(rng.permutation(27)), clip=9)
    s4 = SparseDCT(s1.channel[::-1], s1.position[::-1], s1.value[::-1], **s1.header())
    return [s.to_bytes() for s in (s1, s2, s3, s4)]


FILES = valid_files()


def fix_crc(data: bytes) -> bytes:
    if len(data) < 4:
        return data
    return data[:-4] + struct.pack("<I", zlib.crc32(data[:-4]))


def check_hostile(data: bytes) -> str:
    """A ValueError, or (only possible when the checksum was recomputed) a list
    that is valid for its header in every way the constructor checks. Returns
    how far it got: "decoded", "decoder" (refused by the coefficient decoder,
    past every header check) or "header" (refused before the payload)."""
    try:
        s = SparseDCT.from_bytes(data)
    except ValueError as exc:
        assert str(exc)
        return "decoder" if str(exc).startswith("corrupt .dcts") else "header"
    again = SparseDCT(s.channel, s.position, s.value, **s.header())
    assert dctsparse.decode(again).shape[:2] == (s.height, s.width)
    return "decoded"


def payload_start(data: bytes) -> int:
    """Offset of the payload of a file whose first 44 bytes are a header."""
    flags, b, order = data[10], data[11], data[13]
    return HEADER.size + (2 * (3 if flags & 1 else 1) * b * b if order == 2 else 0)


def fix_lengths(data: bytes) -> bytes:
    """The payload length field made to match the file's size (where the fields
    that decide the rest of the layout allow), then the checksum: what a forger
    who knows the format does, so that mutations reach the decoder."""
    if len(data) >= HEADER.size + 4 and data[:8] == container.MAGIC:
        payload = len(data) - payload_start(data) - 4
        if payload >= 0:
            data = data[:36] + struct.pack("<Q", payload) + data[44:]
    return fix_crc(data)


def test_every_truncation_and_every_bit_flip():
    for data in FILES:
        for n in range(len(data)):
            with pytest.raises(ValueError, match="truncated|not a .dcts"):
                SparseDCT.from_bytes(data[:n])
        for i in range(len(data) * 8):
            bad = bytearray(data)
            bad[i // 8] ^= 1 << (i % 8)
            with pytest.raises(ValueError):
                SparseDCT.from_bytes(bytes(bad))
            check_hostile(fix_crc(bytes(bad)))  # reaches the header checks and the decoder


mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10**6), st.integers(0, 7)),
    st.tuples(st.just("set"), st.integers(0, 10**6), st.integers(0, 255)),
    st.tuples(st.just("insert"), st.integers(0, 10**6), st.binary(min_size=1, max_size=8)),
    st.tuples(st.just("delete"), st.integers(0, 10**6), st.integers(1, 8)),
    st.tuples(st.just("truncate"), st.integers(0, 10**6), st.just(0)),
    st.tuples(st.just("field"), st.sampled_from([10, 11, 12, 13, 14, 16, 20, 24, 28, 36]), st.integers(0, 2**64 - 1)),
)


def mutate(data: bytes, muts) -> bytes:
    b = bytearray(data)
    for kind, pos, arg in muts:
        if not b:
            break
        i = pos % len(b)
        if kind == "flip":
            b[i] ^= 1 << arg
        elif kind == "set":
            b[i] = arg
        elif kind == "insert":
            b[i:i] = arg
        elif kind == "delete":
            del b[i : i + arg]
        elif kind == "truncate":
            del b[i:]
        else:  # a header field with a lying value: 1, 2, 4 or 8 bytes wide
            width = {10: 1, 11: 1, 12: 1, 13: 1, 14: 2, 16: 4, 20: 4, 24: 4, 28: 8, 36: 8}[pos]
            if pos + width <= len(b):
                b[pos : pos + width] = (arg % 2 ** (8 * width)).to_bytes(width, "little")
    return bytes(b)


@settings(max_examples=N_MUT)
@given(st.sampled_from(range(len(FILES))), st.lists(mutation, min_size=1, max_size=4))
def test_mutated_files_raise_value_error(which, muts):
    data = FILES[which]
    bad = mutate(data, muts)
    if bad != data:
        with pytest.raises(ValueError):  # the checksum catches what the header checks miss
            SparseDCT.from_bytes(bad)


payload_edit = st.tuples(
    st.sampled_from(["flip", "set", "insert", "delete"]), st.integers(0, 10**6), st.integers(0, 255)
)


def in_payload(data: bytes, edits) -> bytes:
    """`data` with the edits (payload_edit) made inside its payload."""
    start, end = payload_start(data), len(data) - 4
    muts = [
        (
            kind,
            start + pos % max(1, end - start),
            {"flip": arg % 8, "set": arg, "insert": bytes([arg]), "delete": 1 + arg % 8}[kind],
        )
        for kind, pos, arg in edits
    ]
    return mutate(data, muts)


def test_mutated_files_with_valid_checksum_never_crash():
    """Payload edits, sometimes with any other mutation, then the length field and
    checksum fixed up: most files must get past the header checks into the
    coefficient decoder, and that is counted (without the fix-up and the payload
    edits, 73% stopped at the length or magic checks)."""
    reached = {"decoded": 0, "decoder": 0, "header": 0}

    @settings(max_examples=N_MUT, derandomize=True)  # a fraction is asserted: no flaky draws
    @given(
        st.sampled_from(range(len(FILES))),
        st.lists(payload_edit, min_size=1, max_size=4),
        st.lists(mutation, max_size=1),
    )
    def run(which, edits, muts):
        data = mutate(in_payload(FILES[which], edits), muts)
        reached[check_hostile(fix_lengths(data))] += 1

    run()
    total = sum(reached.values())
    assert reached["decoded"] + reached["decoder"] >= 0.6 * total, reached


@settings(max_examples=N_MUT)
@given(st.binary(max_size=200))
def test_random_payloads_behind_a_valid_header(payload):
    head = bytearray(FILES[0][: HEADER.size])
    head[36:44] = struct.pack("<Q", len(payload))
    check_hostile(fix_crc(bytes(head) + payload + b"\0\0\0\0"))


def forged(**fields) -> bytes:
    """FILES[0] with header fields replaced and the checksum made valid again."""
    names = [
        "magic",
        "version",
        "flags",
        "block",
        "quality",
        "order",
        "reserved",
        "height",
        "width",
        "clip",
        "count",
        "payload",
    ]
    vals = dict(zip(names, HEADER.unpack_from(FILES[0]), strict=True))
    vals.update(fields)
    return fix_crc(HEADER.pack(*[vals[k] for k in names]) + FILES[0][HEADER.size :])


@pytest.mark.parametrize(
    "data,match",
    [
        (b"", "not a .dcts file"),
        (b"\x89PNG\r\n\x1a\n" + bytes(60), "not a .dcts file"),
        (b"\x89DCTS", "truncated"),
        (FILES[0][:-1], "truncated"),
        (FILES[0] + b"\0", "after the end"),
        (FILES[0][:-1] + bytes([FILES[0][-1] ^ 1]), "checksum"),
        (forged(version=2), "version 2"),
        (forged(block=1), "block size 1"),
        (forged(block=65), "block size 65"),
        (forged(order=3), "order field 3"),
        (forged(flags=0x81), "unknown flags"),
        (forged(reserved=1), "reserved"),
        (forged(quality=0), "quality 0"),
        (forged(quality=101), "quality 101"),
        (forged(height=0), "empty"),
        (forged(clip=2**31), "clip"),
        (forged(height=2**32 - 1, width=2**32 - 1), "MAX_IMAGE_PIXELS"),
        (forged(count=10**12), "do not fit"),
        (forged(count=HEADER.unpack_from(FILES[0])[10] + 1), "declares"),
        (forged(count=HEADER.unpack_from(FILES[0])[10] - 1), "more than"),
        (forged(payload=2**64 - 1), "truncated"),
        (forged(payload=HEADER.unpack_from(FILES[0])[11] - 1), "after the end"),
        (forged(width=64), "corrupt"),  # more blocks than were coded: the bits run out or disagree
    ],
)
def test_named_failures(data, match):
    with pytest.raises(ValueError, match=match):
        SparseDCT.from_bytes(data)


def test_bad_permutation_in_header():
    data = bytearray(FILES[2])
    data[44:46] = data[46:48]  # channel id twice
    with pytest.raises(ValueError, match="permutation"):
        SparseDCT.from_bytes(fix_crc(bytes(data)))


def test_pixel_limit(monkeypatch):
    s = dctsparse.encode(natural_image("chelsea"))
    data = s.to_bytes()
    monkeypatch.setattr(dctsparse, "MAX_IMAGE_PIXELS", s.height * s.width - 1)
    with pytest.raises(ValueError, match="MAX_IMAGE_PIXELS"):
        dctsparse.load(io.BytesIO(data))
    with pytest.raises(ValueError, match="MAX_IMAGE_PIXELS"):
        container.info(data)
    monkeypatch.setattr(dctsparse, "MAX_IMAGE_PIXELS", None)
    assert dctsparse.load(io.BytesIO(data)) == s
    # without a limit the core still refuses what it cannot address
    with pytest.raises(ValueError, match="core's limit"):
        SparseDCT.from_bytes(forged(height=2**31, width=3))


# The documented bound on reading a file (cpp/container.hpp): about 1 MB of
# coder models and ~40 bytes per coefficient decoded, nothing per block the
# header declares; the rest of the 16 MB is room for the allocator.
READ_BOUND_MB = 16
needs_proc = pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads VmHWM")


def read_peak_growth_mb(data: bytes) -> tuple[str, float]:
    """(outcome, MB) of SparseDCT.from_bytes(data) in a child process: how much
    the read raised its peak RSS (C++ heap included). The peak is VmHWM, that
    of the child's own address space: ru_maxrss starts at the RSS of the
    parent (exec carries it over), which would hide growth below pytest's."""
    code = """
import sys, dctsparse
def peak_mb():
    with open('/proc/self/status') as f:
        return next(int(x.split()[1]) for x in f if x.startswith('VmHWM')) / 1024
data = sys.stdin.buffer.read()
before = peak_mb()
try:
    s = dctsparse.SparseDCT.from_bytes(data)
    print('decoded', len(s))
except ValueError as e:
    print('ValueError', e)
print(peak_mb() - before)
"""
    r = subprocess.run([sys.executable, "-c", code], input=data, capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    msg, grown_mb = r.stdout.decode().strip().splitlines()
    return msg, float(grown_mb)


@needs_proc
def test_lying_header_does_not_allocate():
    """A 16384 x 16384 header (right at the default limit) in front of a few
    bytes of payload: refused fast, with little memory."""
    head = bytearray(FILES[0][:44])
    head[16:24] = struct.pack("<II", 16384, 16384)
    head[28:36] = struct.pack("<Q", 10**8)
    body = bytes(head) + FILES[0][44:-4]
    msg, grown = read_peak_growth_mb(body + struct.pack("<I", zlib.crc32(body)))
    assert "corrupt" in msg
    assert grown < READ_BOUND_MB  # a 16384^2 image would need >1 GB for its coefficients


@needs_proc
def test_hostile_wide_header_reads_in_bounded_memory():
    """Issue 19: 52 bytes declaring 1 x 2^28 greyscale pixels at B = 2 (2^27
    blocks in one row, within MAX_IMAGE_PIXELS) in front of a 4-byte payload.
    The coder kept 16 bytes of context per block of a row, allocated from the
    header before the first bit was decoded: a 2 GB peak, then a ValueError."""
    head = HEADER.pack(container.MAGIC, 1, 0, 2, 75, 0, 0, 1, 2**28, 0, 1, 4)
    body = head + bytes(4)
    data = body + struct.pack("<I", zlib.crc32(body))
    assert len(data) == 52
    msg, grown = read_peak_growth_mb(data)
    assert msg.startswith("ValueError corrupt .dcts payload"), msg
    assert grown < READ_BOUND_MB, f"reading 52 bytes grew the peak RSS by {grown:.0f} MB"


@needs_proc
def test_valid_wide_empty_image_reads_in_bounded_memory():
    """A valid file of a 1 x 2^24 image with no coefficients (a few KB): the
    blocks are coded (each costs a fraction of a bit), but reading them keeps
    nothing per block (128 MB of row contexts before)."""
    z = np.zeros(0, np.int32)
    s = SparseDCT(z, z, z, height=1, width=2**24, block_size=2, subsampling="4:4:4", mode="L")
    data = s.to_bytes()
    assert len(data) < 8192
    msg, grown = read_peak_growth_mb(data)
    assert msg == "decoded 0"
    assert grown < READ_BOUND_MB, f"reading grew the peak RSS by {grown:.0f} MB"


# Decoding a file to pixels: the output (and, through Pillow, Pillow's own
# image, which keeps RGB at 4 bytes a pixel) is the only thing that grows with
# the declared size; the decoder's buffers are one tile of a stripe (~4 MB,
# StripeScatter::kTileCoeffs), the rest of the constant the list and room for
# the allocator (docs/codec.md, "Memory of reading a file").
DECODE_BOUND_MB = 64


def decode_peak_growth_mb(data: bytes, via: str) -> float:
    """How much decoding `data` to pixels raised the peak RSS of a child
    process, through dctsparse.decode(SparseDCT.from_bytes(data)) or Pillow's
    Image.open(...).load()."""
    code = """
import io, sys, dctsparse
from PIL import Image
def peak_mb():
    with open('/proc/self/status') as f:
        return next(int(x.split()[1]) for x in f if x.startswith('VmHWM')) / 1024
data = sys.stdin.buffer.read()
before = peak_mb()
if sys.argv[1] == 'decode':
    out = dctsparse.decode(dctsparse.SparseDCT.from_bytes(data))
    assert out[0, 0].sum() > 0
else:
    im = Image.open(io.BytesIO(data))
    im.load()
    assert sum(im.getpixel((0, 0)) if im.mode == 'RGB' else [im.getpixel((0, 0))]) > 0
print(peak_mb() - before)
"""
    r = subprocess.run([sys.executable, "-c", code, via], input=data, capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    return float(r.stdout)


def thin_file(width: int, mode: str, subsampling: str) -> bytes:
    """A valid file of a 1 x width image at B = 8: a few coefficients in every
    64th block column of each plane (tens of KB for millions of pixels)."""
    cols = np.arange(0, width // 8, 128)
    chans = [0, 1, 2] + ([64, 128] if mode == "RGB" else [])
    c = np.repeat(chans, len(cols))
    p = np.tile(cols, len(chans))
    v = np.random.default_rng(0).integers(1, 20, len(c))
    s = SparseDCT(c, p, v, height=1, width=width, block_size=8, subsampling=subsampling, mode=mode)
    return s.to_bytes()


@needs_proc
@pytest.mark.parametrize(
    "via,mode,sub,width",
    [
        ("decode", "L", "4:4:4", 2**25),
        ("decode", "RGB", "4:2:0", 2**23),
        ("pillow", "L", "4:2:0", 2**24),
        ("pillow", "RGB", "4:4:4", 2**23),
    ],
)
def test_valid_thin_wide_image_decodes_in_bounded_memory(via, mode, sub, width):
    """Issue 19: a valid file of a 1-pixel-tall, very wide image. The decoder
    kept float and int32 stripe buffers of the full width and B (2B under
    4:2:0) rows, ~65x its output (129x for greyscale 4:2:0): 2 GB for the
    32 MB of a 1 x 2^25 greyscale image, which reads from a 70 KB file."""
    data = thin_file(width, mode, sub)
    assert len(data) < 400_000
    out_mb = width * len(mode) / 2**20
    pillow_mb = width * (4 if mode == "RGB" else 1) / 2**20 if via == "pillow" else 0
    grown = decode_peak_growth_mb(data, via)
    bound = out_mb + pillow_mb + DECODE_BOUND_MB
    assert grown < bound, f"decoding {len(data)} bytes to {out_mb:.0f} MB grew the peak RSS by {grown:.0f} MB"


@needs_proc
def test_valid_tall_narrow_image_decodes_in_bounded_memory():
    """Issue 19: a valid file of a 2^23 x 1 greyscale image at B = 2, a few
    coefficients in every 512th block row (46 KB). Its list has far fewer
    triples than the image has stripes (block rows), so the decoder buckets
    it, and the buckets kept 24 bytes of counts per stripe: +96 MB for the
    8 MB output (3 GB for a 2^28 x 1 header). Now they grow with the list."""
    h, b = 2**23, 2
    rows = np.arange(0, h // b, 512)
    c = np.repeat([0, 1, 2], len(rows))
    p = np.tile(rows, 3)
    v = np.random.default_rng(0).integers(1, 20, len(c))
    data = SparseDCT(c, p, v, height=h, width=1, block_size=b, subsampling="4:4:4", mode="L").to_bytes()
    assert len(data) < 100_000
    out_mb = h / 2**20
    grown = decode_peak_growth_mb(data, "decode")
    msg = f"decoding {len(data)} bytes to {out_mb:.0f} MB grew the peak RSS by {grown:.0f} MB"
    assert grown < out_mb + DECODE_BOUND_MB, msg


@pytest.mark.parametrize(
    "edit,match",
    [
        (lambda c, p, v: c.__setitem__(3, 3 * 64), r"^triple 3: channel 192 is out of range \[0, 192\)$"),
        (lambda c, p, v: c.__setitem__(3, -1), r"^triple 3: channel -1 is out of range"),
        (lambda c, p, v: p.__setitem__(5, 10**6), r"^triple 5: position 1000000 is out of range"),
        (lambda c, p, v: v.__setitem__(7, 0), r"^triple 7: value 0 is not a non-zero integer"),
        (lambda c, p, v: v.__setitem__(7, 4000), r"^triple 7: value 4000 is not a non-zero integer"),
        (
            lambda c, p, v: (c.__setitem__(0, 64), p.__setitem__(0, 1)),
            r"^triple 0: chroma channel 64 at position 1 .* is not on the 4:2:0 chroma grid",
        ),
        (
            lambda c, p, v: (c.__setitem__(1, c[0]), p.__setitem__(1, p[0])),
            r"^triple 1: \(channel \d+, position \d+\) appears twice$",
        ),
    ],
)
def test_the_writer_validates_every_triple(edit, match):
    """container_encode re-checks the list it is handed rather than trusting its
    caller (a bad position would index past its per-block tables), with the
    validator SparseDCT's constructor uses: the same message for the same list."""
    s = dctsparse.encode(natural_image("chelsea")[:64, :96], quality=80)
    args = (s.height, s.width, s.planes, s.block_size, s.quality, True, 0, np.zeros(0, np.int32), 0)
    c, p, v = s.channel.copy(), s.position.copy(), s.value.copy()
    assert SparseDCT.from_bytes(_core.container_encode(c, p, v, *args)) == s
    edit(c, p, v)
    with pytest.raises(ValueError, match=match) as writer:
        _core.container_encode(c, p, v, *args)
    with pytest.raises(ValueError) as constructor:
        SparseDCT(c, p, v, **s.header())
    assert str(writer.value) == str(constructor.value)
