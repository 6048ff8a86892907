"""Folders of images -> memory-mappable shards of coordinate lists, for ``dctmodel``.

    dctsparse encode-dataset SRC_DIR OUT_DIR --block-size 8 --quality 75 --long-side 384

    ds = dctsparse.Dataset(OUT_DIR)      # a Sequence of SparseDCT
    ds[0]; len(ds); ds.tokens(0)          # tokens(i): int32 (N_i + 1, 3) view, no copy

Layout of OUT_DIR::

    manifest.json            settings, counts, the shard list; "complete": true when done
    shard-00000/tokens.npy   int32 (T, 3): every image's tokens, stop token included,
                             one image after the other
    shard-00000/offsets.npy  int64 (n + 1,): image j is tokens[offsets[j]:offsets[j + 1]]
    shard-00000/sizes.npy    int32 (n, 2): (height, width) of image j after resizing
    shard-00000/meta.json    the source path of each image, images skipped and why,
                             the settings (as in the manifest)

When every image lies in a subfolder of SRC_DIR, the top-level subfolders are
the classes: ``manifest["classes"]`` lists them (sorted) and ``ds.labels[i]``
is image i's class index (as torchvision's ``ImageFolder``); otherwise there
are no classes and every label is 0.

Every ``.npy`` opens with ``np.load(..., mmap_mode="r")``. A shard is written
to a hidden temporary directory, fsynced and renamed into place, so readers
never see half a shard; an interrupted run resumes by skipping the shards
that exist (``encode_dataset`` again with the same arguments).

The per-image work is :func:`encode_image`, a pure function of the file's
bytes and the :class:`Settings` (no file system, no global state, no
randomness), so the same code scales past one machine: map it over
``(bytes, settings)`` with Apache Beam (``beam.Map``), Dask
(``dask.bag.map``) or Ray (``ray.remote``) and write its token arrays with
any sharding you like; :func:`write_shard` writes the format above.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import re
import shutil
import sys
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import inputs
from .sparse import SparseDCT

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".ppm",
                    ".pgm")
MANIFEST = "manifest.json"
FORMAT = "dctsparse-dataset"
# Version 2 records the settings in every shard's meta.json, so the reader can tell a
# manifest edited after the fact; version 1 datasets still open, without that check.
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
# Test hook: hard-exit (as if killed) once this many images are done; see tests.
_ABORT_ENV = "DCTSPARSE_DATASET_ABORT_AFTER"


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything that decides an image's tokens (and nothing else).

    long_side: the longer side is resized to this many pixels (aspect ratio
        kept, Lanczos); None or 0 keeps the size. With ``upscale=False``
        images already smaller are left alone.
    mode: "RGB" (everything converted, alpha dropped) or "L".
    """

    block_size: int = 8
    quality: int = 75
    long_side: int | None = 384
    subsampling: str = "4:2:0"
    order: Any = "frequency"
    clip: int | None = None
    mode: str = "RGB"
    upscale: bool = True

    def __post_init__(self):
        inputs.block_size(self.block_size)
        inputs.quality(self.quality)
        inputs.subsampling(self.subsampling)
        inputs.clip(self.clip)
        inputs.mode(self.mode)
        if self.long_side not in (None, 0):
            inputs.as_int("long_side", self.long_side, 1, 1 << 20)
        planes = inputs.MODES[self.mode]
        order, _ = inputs.order(self.order, planes, self.block_size)
        object.__setattr__(self, "order", order if isinstance(order, str) else list(order))

    def header(self) -> dict:
        """The SparseDCT header fields shared by every image."""
        return dict(block_size=self.block_size, quality=self.quality,
                    subsampling=self.subsampling, order=self.order, clip=self.clip,
                    mode=self.mode)

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


def resized_size(width: int, height: int, settings: Settings) -> tuple[int, int]:
    """(width, height) after resizing the long side to ``settings.long_side``."""
    target = settings.long_side
    long = max(width, height)
    if not target or (long <= target and not settings.upscale):
        return width, height
    return (max(1, round(width * target / long)), max(1, round(height * target / long)))


def encode_image(data: bytes, settings: Settings) -> tuple[np.ndarray, int, int]:
    """One image file's bytes -> (tokens int32 (N + 1, 3), height, width).

    Pure: the result depends on ``data`` and ``settings`` only. Decodes any
    format Pillow reads, applies the EXIF orientation, converts to
    ``settings.mode`` and resizes the long side (see :class:`Settings`).
    ``SparseDCT.from_tokens(tokens, height=h, width=w, **settings.header())``
    rebuilds the list. Raises ValueError/OSError for unreadable images.
    """
    from PIL import Image, ImageOps

    from .codec import encode

    with Image.open(io.BytesIO(data)) as f:
        w, h = resized_size(f.width, f.height, settings)
        if f.format == "JPEG" and (w, h) != f.size:
            # libjpeg's DCT-domain downscaling: much faster for large photos,
            # and still a function of the bytes alone.
            f.draft(settings.mode, (w, h))
        im = ImageOps.exif_transpose(f)
        if im.mode != settings.mode:
            im = im.convert(settings.mode)
        # exif_transpose may have swapped the sides
        w, h = resized_size(im.width, im.height, settings)
        if (w, h) != im.size:
            im = im.resize((w, h), Image.Resampling.LANCZOS, reducing_gap=None)
        s = encode(np.asarray(im), block_size=settings.block_size, quality=settings.quality,
                   subsampling=settings.subsampling, order=settings.order, clip=settings.clip)
    return s.tokens(), s.height, s.width


def list_images(src_dir: str | os.PathLike) -> list[str]:
    """Image files under src_dir (recursive), as sorted POSIX paths relative to it."""
    root = Path(src_dir)
    if not root.is_dir():
        raise ValueError(f"source directory {str(root)!r} does not exist or is not a directory")
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                  if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())


def class_labels(names: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """Classes and int64 labels of relative image paths: the sorted top-level folder names,
    or no classes (every label 0) unless every path lies in a folder."""
    parts = [n.replace(os.sep, "/").split("/") for n in names]
    if not parts or any(len(p) < 2 for p in parts):
        return [], np.zeros(len(parts), np.int64)
    classes = sorted({p[0] for p in parts})
    ids = {c: k for k, c in enumerate(classes)}
    return classes, np.array([ids[p[0]] for p in parts], np.int64)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _save_npy(path: Path, arr: np.ndarray) -> None:
    with open(path, "wb") as f:
        np.save(f, arr)
        f.flush()
        os.fsync(f.fileno())


def write_shard(out_dir: str | os.PathLike, index: int, tokens: Sequence[np.ndarray],
                sizes: Sequence[tuple[int, int]], names: Sequence[str],
                skipped: Sequence[dict] = (), *, settings: Settings, _abort=None) -> dict:
    """Write shard ``index`` atomically; returns its manifest entry.

    tokens: one int32 (N_i + 1, 3) array per image; sizes: (height, width) each;
    settings: the ones the tokens were encoded with (recorded in meta.json, where
    :class:`Dataset` checks them against the manifest's).
    """
    out = Path(out_dir)
    name = f"shard-{index:05d}"
    tmp = out / f".{name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        lengths = np.array([len(t) for t in tokens], np.int64)
        offsets = np.zeros(len(tokens) + 1, np.int64)
        np.cumsum(lengths, out=offsets[1:])
        flat = (np.concatenate(tokens).astype(np.int32, copy=False) if tokens
                else np.zeros((0, 3), np.int32))
        _save_npy(tmp / "tokens.npy", flat)
        if _abort is not None:
            _abort()  # test hook: dies with the shard half-written
        _save_npy(tmp / "offsets.npy", offsets)
        _save_npy(tmp / "sizes.npy", np.array(sizes, np.int32).reshape(-1, 2))
        meta = {"names": list(names), "skipped": list(skipped), "settings": settings.to_json()}
        with open(tmp / "meta.json", "w") as f:
            json.dump(meta, f)
            f.flush()
            os.fsync(f.fileno())
        _fsync_dir(tmp)
        os.replace(tmp, out / name)
        _fsync_dir(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {"name": name, "images": len(tokens), "tokens": int(offsets[-1]),
            "skipped": len(skipped)}


def _write_json(path: Path, obj: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _work(args: tuple[str, Settings]):
    """Worker: (path, settings) -> (tokens, h, w) or the error message."""
    path, settings = args
    try:
        with open(path, "rb") as f:
            data = f.read()
        return encode_image(data, settings)
    except Exception as exc:  # one bad file must not stop a dataset
        # Pillow names the BytesIO object, address included: keep manifests reproducible.
        return re.sub(r" <[^>]* at 0x[0-9a-f]+>", "", f"{type(exc).__name__}: {exc}")


def encode_dataset(src_dir: str | os.PathLike, out_dir: str | os.PathLike,
                   settings: Settings | None = None, *, shard_size: int = 1024,
                   jobs: int | None = None, progress: bool = True) -> dict:
    """Encode every image under src_dir into shards in out_dir; returns the manifest.

    Resumable: run it again with the same arguments after an interrupt and
    the finished shards are kept. Unreadable images are skipped and listed
    in the manifest. jobs: worker processes (default: all cores; 1 runs inline).
    """
    from ._progress import Progress

    settings = settings or Settings()
    inputs.as_int("shard_size", shard_size, 1, 1 << 30)
    jobs = (os.cpu_count() or 1) if jobs is None else inputs.as_int("jobs", jobs, 1, 4096)
    src, out = Path(src_dir), Path(out_dir)
    files = list_images(src)
    listing = hashlib.sha256("\n".join(files).encode()).hexdigest()
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob(".shard-*.tmp-*"):  # left by a killed run; never visible to readers
        shutil.rmtree(stale, ignore_errors=True)
    manifest_path = out / MANIFEST
    num_shards = -(-len(files) // shard_size)
    manifest = {"format": FORMAT, "version": FORMAT_VERSION, "settings": settings.to_json(),
                "shard_size": shard_size, "num_files": len(files), "files_sha256": listing,
                "num_shards": num_shards, "complete": False}
    if manifest_path.exists():
        old = json.loads(manifest_path.read_text())
        keys = ("format", "version", "settings", "shard_size", "num_files", "files_sha256")
        differ = [k for k in keys if old.get(k) != manifest[k]]
        if differ:
            raise ValueError(f"{str(out)!r} holds a dataset made with other settings or other "
                             f"source files (differs: {', '.join(differ)}); use a new output "
                             "directory")
    _write_json(manifest_path, manifest)

    abort_after = os.environ.get(_ABORT_ENV)
    done_images = 0

    def abort_check():
        if abort_after is not None and done_images >= int(abort_after):
            sys.stderr.flush()
            os._exit(3)  # as if killed: no cleanup runs

    todo = [i for i in range(num_shards) if not (out / f"shard-{i:05d}").is_dir()]
    work = [(str(src / files[j]), settings) for i in todo
            for j in range(i * shard_size, min((i + 1) * shard_size, len(files)))]
    bar = Progress(len(work), desc="encode-dataset", enabled=progress)
    pool = None
    try:
        if jobs > 1 and len(work) > 1:
            import multiprocessing

            pool = multiprocessing.get_context("spawn" if sys.platform == "darwin" else "fork") \
                .Pool(min(jobs, len(work)))
            results: Iterable = pool.imap(_work, work, chunksize=4)
        else:
            results = map(_work, work)
        results = iter(results)
        for i in todo:
            lo, hi = i * shard_size, min((i + 1) * shard_size, len(files))
            toks, sizes, names, skipped = [], [], [], []
            for j in range(lo, hi):
                r = next(results)
                if isinstance(r, str):
                    skipped.append({"path": files[j], "error": r})
                else:
                    toks.append(r[0])
                    sizes.append((r[1], r[2]))
                    names.append(files[j])
                done_images += 1
                bar.update()
                if j < hi - 1:
                    abort_check()
            write_shard(out, i, toks, sizes, names, skipped, settings=settings,
                        _abort=abort_check if abort_after is not None else None)
            abort_check()
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
    bar.close()

    shards: list[dict[str, Any]] = []
    skipped_all: list[dict] = []
    for i in range(num_shards):
        d = out / f"shard-{i:05d}"
        meta = json.loads((d / "meta.json").read_text())
        offsets = np.load(d / "offsets.npy", mmap_mode="r")
        shards.append({"name": d.name, "images": len(meta["names"]), "tokens": int(offsets[-1]),
                       "skipped": len(meta["skipped"])})
        skipped_all += meta["skipped"]
    manifest.update(classes=class_labels(files)[0], shards=shards, images=sum(s["images"] for s in shards),
                    tokens=sum(s["tokens"] for s in shards), skipped=skipped_all, complete=True)
    _write_json(manifest_path, manifest)
    return manifest


class Dataset(Sequence):
    """An encoded dataset (see :func:`encode_dataset`) as a sequence of SparseDCT.

    ``ds[i]`` builds (and validates) a SparseDCT; ``ds.tokens(i)`` is the
    raw int32 (N_i + 1, 3) view into the memory-mapped shard, for data
    loaders. ``ds.settings`` is the :class:`Settings`, ``ds.names[i]`` the
    source path, ``ds.sizes`` int (len, 2) heights and widths, ``ds.classes``
    the class names and ``ds.labels`` int64 (len,) each image's class index.
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        path = self.root / MANIFEST
        if not path.is_file():
            raise ValueError(f"{str(self.root)!r} is not an encoded dataset (no {MANIFEST})")
        self.manifest = json.loads(path.read_text())
        if self.manifest.get("format") != FORMAT \
                or self.manifest.get("version") not in READABLE_VERSIONS:
            raise ValueError(f"{str(path)!r} is not a {FORMAT} manifest of version "
                             f"{' or '.join(map(str, READABLE_VERSIONS))}")
        if not self.manifest.get("complete"):
            raise ValueError(f"the dataset in {str(self.root)!r} is incomplete: run encode-dataset "
                             "again with the same arguments to finish it")
        self.settings = Settings(**self.manifest["settings"])
        self._header = self.settings.header()
        self._tokens, self._offsets, sizes, self.names = [], [], [], []
        starts = [0]
        for sh in self.manifest["shards"]:
            d = self.root / sh["name"]
            self._tokens.append(np.load(d / "tokens.npy", mmap_mode="r"))
            self._offsets.append(np.load(d / "offsets.npy", mmap_mode="r"))
            sizes.append(np.load(d / "sizes.npy"))
            self.names += json.loads((d / "meta.json").read_text())["names"]
            starts.append(starts[-1] + len(self._offsets[-1]) - 1)
        self._starts = np.array(starts, np.int64)
        self.sizes = np.concatenate(sizes) if sizes else np.zeros((0, 2), np.int32)
        classes, labels = class_labels(self.names)
        # Labels index the classes of the whole source listing (the manifest's), so a class whose
        # images were all skipped keeps its number.
        self.classes: list[str] = list(self.manifest.get("classes", classes))
        ids = {c: k for k, c in enumerate(self.classes)}
        self.labels = (np.array([ids[n.split("/")[0]] for n in self.names], np.int64) if classes
                       else labels)

    def __len__(self) -> int:
        return int(self._starts[-1])

    def _locate(self, i: int) -> tuple[int, int]:
        n = len(self)
        i = inputs.as_int("index", i, -(2**63), 2**63)
        if not -n <= i < n:
            raise IndexError(f"index {i} is out of range for a dataset of {n} images")
        i %= n
        shard = int(np.searchsorted(self._starts, i, side="right")) - 1
        return shard, i - int(self._starts[shard])

    def tokens(self, i: int) -> np.ndarray:
        """int32 (N_i + 1, 3): image i's tokens, a read-only view of the shard."""
        shard, j = self._locate(i)
        o = self._offsets[shard]
        return self._tokens[shard][int(o[j]):int(o[j + 1])]

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        shard, j = self._locate(i)
        o = self._offsets[shard]
        h, w = (int(x) for x in self.sizes[self._starts[shard] + j])
        toks = np.asarray(self._tokens[shard][int(o[j]):int(o[j + 1])])
        return SparseDCT.from_tokens(toks, height=h, width=w, **self._header)

    def __repr__(self) -> str:
        return f"Dataset({str(self.root)!r}, {len(self)} images, {self.settings})"
