"""Coverage-guided fuzzing of the .dcts reader with atheris (libFuzzer for Python).

    pip install atheris
    python fuzz/atheris_dcts.py -max_total_time=3600 -max_len=4096 fuzz/corpus

Every input goes through ``SparseDCT.from_bytes``; the only acceptable
outcomes are a SparseDCT that is valid for its header or a ValueError. Half
of the inputs get their CRC-32 recomputed first, so that mutations reach the
header checks and the entropy decoder instead of stopping at the checksum.
The corpus directory is seeded with a few valid files on the first run.
To also catch memory errors in the C++ core, run it against the sanitizer
build (see .ci/run): LD_PRELOAD=$(gcc -print-file-name=libasan.so) with
ASAN_OPTIONS=detect_leaks=0.

fuzz/dcts_mutate.cpp is a libFuzzer-free C++ driver for the same job.
"""

from __future__ import annotations

import os
import struct
import sys
import zlib

import atheris

with atheris.instrument_imports():
    import numpy as np

    import dctsparse
    from dctsparse import SparseDCT

dctsparse.MAX_IMAGE_PIXELS = 1 << 22  # keep each input fast; the limit is tested elsewhere


def seeds() -> list[bytes]:
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (19, 23, 3), dtype=np.uint8)
    smooth = np.add.outer(np.arange(40), np.arange(56)).astype(np.uint8)
    lists = [dctsparse.encode(img, block_size=4, quality=80),
             dctsparse.encode(smooth, block_size=8, subsampling="4:4:4"),
             dctsparse.encode(img, block_size=3, order=list(rng.permutation(27)), clip=9)]
    s = lists[0]
    lists.append(SparseDCT(s.channel[::-1], s.position[::-1], s.value[::-1], **s.header()))
    return [t.to_bytes() for t in lists]


def test_one_input(data: bytes) -> None:
    if data and data[0] & 1 and len(data) >= 4:
        data = data[:-4] + struct.pack("<I", zlib.crc32(data[:-4]))
    try:
        s = SparseDCT.from_bytes(data)
    except ValueError:
        return
    # the decoded list must pass the constructor's independent validation
    SparseDCT(s.channel, s.position, s.value, **s.header())
    dctsparse.decode(s)


def main() -> None:
    corpus = [a for a in sys.argv[1:] if not a.startswith("-")]
    if corpus:
        os.makedirs(corpus[0], exist_ok=True)
        if not os.listdir(corpus[0]):
            for i, d in enumerate(seeds()):
                with open(os.path.join(corpus[0], f"seed{i}.dcts"), "wb") as f:
                    f.write(d)
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
