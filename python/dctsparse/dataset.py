"""Folders of images -> memory-mappable shards of coordinate lists, for ``dctmodel``.

    dctsparse encode-dataset SRC_DIR OUT_DIR --block-size 8 --quality 75 --long-side 384

    ds = dctsparse.Dataset(OUT_DIR)      # a Sequence of SparseDCT
    ds[0]; len(ds); ds.tokens(0)          # tokens(i): int32 (N_i + 1, 3) view, no copy

    dctsparse verify-dataset OUT_DIR      # every file, every image decoded; exit status 1 if not

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

Every ``.npy`` opens with ``np.load(..., mmap_mode="r")``. The files are checked against
each other, never trusted: :class:`Dataset` checks on open what costs O(images) (shard
names, dtypes and shapes, counts, offsets, sizes, names, settings) and, on each read, the
image's own rows (stop tokens, triples); :func:`verify_dataset` reads every image. A
failed check is a ValueError naming the dataset, the shard, the file and the image. A shard is written
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

import contextlib
import dataclasses
import hashlib
import io
import json
import os
import re
import shutil
import sys
import uuid
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import _core, inputs
from .sparse import SparseDCT

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".ppm", ".pgm")
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
        return dict(
            block_size=self.block_size,
            quality=self.quality,
            subsampling=self.subsampling,
            order=self.order,
            clip=self.clip,
            mode=self.mode,
        )

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
        s = encode(
            np.asarray(im),
            block_size=settings.block_size,
            quality=settings.quality,
            subsampling=settings.subsampling,
            order=settings.order,
            clip=settings.clip,
        )
    return s.tokens(), s.height, s.width


def list_images(src_dir: str | os.PathLike) -> list[str]:
    """Image files under src_dir (recursive), as sorted POSIX paths relative to it."""
    root = Path(src_dir)
    if not root.is_dir():
        raise ValueError(f"source directory {str(root)!r} does not exist or is not a directory")
    return sorted(
        p.relative_to(root).as_posix() for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
    )


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


def write_shard(
    out_dir: str | os.PathLike,
    index: int,
    tokens: Sequence[np.ndarray],
    sizes: Sequence[tuple[int, int]],
    names: Sequence[str],
    skipped: Sequence[dict] = (),
    *,
    settings: Settings,
    _abort=None,
) -> dict:
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
        flat = np.concatenate(tokens).astype(np.int32, copy=False) if tokens else np.zeros((0, 3), np.int32)
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
    return {"name": name, "images": len(tokens), "tokens": int(offsets[-1]), "skipped": len(skipped)}


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


def encode_dataset(
    src_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    settings: Settings | None = None,
    *,
    shard_size: int = 1024,
    jobs: int | None = None,
    progress: bool = True,
) -> dict:
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
    manifest = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "settings": settings.to_json(),
        "shard_size": shard_size,
        "num_files": len(files),
        "files_sha256": listing,
        "num_shards": num_shards,
        "complete": False,
    }
    if manifest_path.exists():
        old = json.loads(manifest_path.read_text())
        keys = ("format", "version", "settings", "shard_size", "num_files", "files_sha256")
        differ = [k for k in keys if old.get(k) != manifest[k]]
        if differ:
            raise ValueError(
                f"{str(out)!r} holds a dataset made with other settings or other "
                f"source files (differs: {', '.join(differ)}); use a new output "
                "directory"
            )
    _write_json(manifest_path, manifest)

    abort_after = os.environ.get(_ABORT_ENV)
    done_images = 0

    def abort_check():
        if abort_after is not None and done_images >= int(abort_after):
            sys.stderr.flush()
            os._exit(3)  # as if killed: no cleanup runs

    todo = [i for i in range(num_shards) if not (out / f"shard-{i:05d}").is_dir()]
    work = [
        (str(src / files[j]), settings)
        for i in todo
        for j in range(i * shard_size, min((i + 1) * shard_size, len(files)))
    ]
    bar = Progress(len(work), desc="encode-dataset", enabled=progress)
    pool = None
    try:
        if jobs > 1 and len(work) > 1:
            import multiprocessing

            pool = multiprocessing.get_context("spawn" if sys.platform == "darwin" else "fork").Pool(
                min(jobs, len(work))
            )
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
            write_shard(
                out,
                i,
                toks,
                sizes,
                names,
                skipped,
                settings=settings,
                _abort=abort_check if abort_after is not None else None,
            )
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
        shards.append(
            {"name": d.name, "images": len(meta["names"]), "tokens": int(offsets[-1]), "skipped": len(meta["skipped"])}
        )
        skipped_all += meta["skipped"]
    manifest.update(
        classes=class_labels(files)[0],
        shards=shards,
        images=sum(s["images"] for s in shards),
        tokens=sum(s["tokens"] for s in shards),
        skipped=skipped_all,
        complete=True,
    )
    _write_json(manifest_path, manifest)
    return manifest


# ------------------------------------------------------------------ reading, with checks
#
# A dataset's files can lie (edited, truncated, mixed from two runs): every check below
# raises a ValueError naming the dataset, the shard, the file and, where there is one, the
# item. Opening checks what costs O(items) at most: the manifest, the shard names, the
# dtypes and shapes, counts, offsets, sizes, names and settings. Reading an item checks its
# own rows; verify_dataset reads them all.

_SHARD_NAME = re.compile(r"shard-[0-9]{5,}")


@dataclasses.dataclass(frozen=True)
class _Shard:
    """One shard, as :func:`_open_shard` checked it.

    tokens: int32 (T, 3) and offsets: int64 (n + 1,), memory-mapped; sizes: int32 (n, 2)
    (height, width); names: n source paths; first: the dataset index of its entry 0.
    """

    name: str
    first: int
    tokens: np.ndarray
    offsets: np.ndarray
    sizes: np.ndarray
    names: list[str]
    skipped: list[dict]


def _problem(root: Path, where: str, msg: str) -> ValueError:
    return ValueError(f"dataset {root}: {where}: {msg}")


def _where(shard: str, file: str) -> str:
    return f"{MANIFEST} entry of shard {shard}" if file == MANIFEST else f"shard {shard}/{file}"


def _is_count(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


def _read_json(root: Path, path: Path, where: str) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise _problem(root, where, "is missing") from None
    except (OSError, ValueError) as exc:  # JSONDecodeError and UnicodeDecodeError included
        raise _problem(root, where, f"is not readable JSON ({exc})") from None


def _read_npy(root: Path, shard: str, file: str, dtype: type, shape: tuple) -> np.ndarray:
    """Memory-maps ``shard/file`` and checks its dtype and shape (None: any length).

    Memory-mapping also bounds what a lying header can cost: numpy refuses a map longer
    than the file instead of allocating what the header claims.
    """
    where = _where(shard, file)
    try:
        arr = np.load(root / shard / file, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        raise _problem(root, where, "is missing") from None
    except (OSError, ValueError, EOFError) as exc:  # an empty file is an EOFError
        raise _problem(root, where, f"cannot be read as a .npy array ({type(exc).__name__}: {exc})") from None
    want = str(tuple("n" if k is None else k for k in shape)).replace("'", "")
    if arr.dtype != np.dtype(dtype):
        raise _problem(root, where, f"has dtype {arr.dtype}, expected {np.dtype(dtype)} {want}")
    if arr.ndim != len(shape) or any(k is not None and k != n for k, n in zip(shape, arr.shape, strict=False)):
        raise _problem(root, where, f"has shape {arr.shape}, expected {want}")
    return arr


def _agree(root: Path, shard: str, what: str, counts: dict[str, int]) -> None:
    """Raises naming the file whose count of ``what`` differs from the others' (all of
    them where no count is shared by a majority)."""
    values = list(counts.values())
    common = max(values, key=values.count)
    if values.count(common) == len(values):
        return
    if values.count(common) * 2 > len(values):
        odd = next(f for f, v in counts.items() if v != common)
        others = ", ".join(f for f, v in counts.items() if v == common)
        raise _problem(root, _where(shard, odd), f"{what}: {counts[odd]}, but {others} say {common}")
    listed = ", ".join(f"{f} {v}" for f, v in counts.items())
    raise _problem(root, f"shard {shard}", f"the counts of {what} disagree: {listed}")


def _open_manifest(root: Path) -> tuple[dict, Settings, list[str]]:
    """The manifest (checked), its settings and its shard names."""
    path = root / MANIFEST
    if not path.is_file():
        raise ValueError(f"{str(root)!r} is not an encoded dataset (no {MANIFEST})")
    m = _read_json(root, path, MANIFEST)
    if not isinstance(m, dict) or m.get("format") != FORMAT or m.get("version") not in READABLE_VERSIONS:
        raise ValueError(
            f"{str(path)!r} is not a {FORMAT} manifest of version {' or '.join(map(str, READABLE_VERSIONS))}"
        )
    if not m.get("complete"):
        raise ValueError(
            f"the dataset in {str(root)!r} is incomplete: run encode-dataset again with the same arguments to finish it"
        )

    def bad(msg: str) -> ValueError:
        return _problem(root, MANIFEST, msg)

    if not isinstance(m.get("settings"), dict):
        raise bad("has no settings")
    try:
        settings = Settings(**m["settings"])
    except (TypeError, ValueError) as exc:
        raise bad(f"settings are not valid ({exc})") from None
    shards = m.get("shards")
    if not isinstance(shards, list):
        raise bad("has no shard list")
    for key in ("images", "tokens"):
        if not _is_count(m.get(key)):
            raise bad(f"{key} must be a count, got {m.get(key)!r}")
    if not isinstance(m.get("skipped"), list):
        raise bad("skipped must be a list")
    classes = m.get("classes", [])
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
        raise bad("classes must be a list of folder names")
    names: dict[str, int] = {}  # name -> entry
    for k, sh in enumerate(shards):
        if not isinstance(sh, dict):
            raise bad(f"shard entry {k} is not an object")
        name = sh.get("name")
        # Only a bare shard-NNNNN: a path ("../x", "/x", "a/b") would read outside the
        # dataset, and a hidden name would read a half-written shard.
        if not isinstance(name, str) or not _SHARD_NAME.fullmatch(name):
            raise bad(f"shard entry {k} is named {name!r}, not a folder shard-NNNNN inside the dataset")
        if name in names:
            raise bad(f"shard {name} is listed twice (entries {names[name]} and {k})")
        for key in ("images", "tokens", "skipped"):
            if not _is_count(sh.get(key)):
                raise bad(f"shard entry {k} ({name}): {key} must be a count, got {sh.get(key)!r}")
        names[name] = k
    if m.get("num_shards", len(shards)) != len(shards):
        raise bad(f"lists {len(shards)} shards, but num_shards is {m['num_shards']}")
    return m, settings, list(names)


def _check_offsets(root: Path, shard: str, offsets: np.ndarray, first: int) -> None:
    where = _where(shard, "offsets.npy")
    if offsets[0] != 0:
        raise _problem(root, where, f"the first offset is {int(offsets[0])}, not 0")
    # Strictly: every item holds at least its stop token.
    steps = np.diff(offsets)
    bad = np.flatnonzero(steps < 1)
    if bad.size:
        j = int(bad[0])
        raise _problem(
            root,
            where,
            f"offsets are not increasing at item {first + j} (entry {j} "
            f"of the shard: {int(offsets[j])} then "
            f"{int(offsets[j + 1])})",
        )


def _check_sizes(root: Path, shard: str, sizes: np.ndarray, first: int, settings: Settings) -> None:
    where = _where(shard, "sizes.npy")
    side = settings.long_side
    bad = np.flatnonzero((sizes < 1).any(axis=1))
    rule = "sizes are at least 1x1"
    if not bad.size and side:
        long = sizes.max(axis=1)
        # What resized_size gives: the long side exactly, or at most, without upscaling.
        bad = np.flatnonzero(long > side if not settings.upscale else long != side)
        rule = f"the settings resize the long side to {'at most ' if not settings.upscale else ''}{side}"
    if bad.size:
        j = int(bad[0])
        h, w = (int(x) for x in sizes[j])
        raise _problem(root, where, f"item {first + j} (entry {j} of the shard) is {h}x{w}, but {rule}")


def _check_meta(root: Path, shard: str, meta: Any, manifest: dict, first: int) -> None:
    where = _where(shard, "meta.json")
    if not isinstance(meta, dict):
        raise _problem(root, where, "is not an object")
    names, skipped = meta.get("names"), meta.get("skipped")
    if not isinstance(names, list):
        raise _problem(root, where, "has no list of names")
    if not isinstance(skipped, list) or not all(
        isinstance(s, dict) and isinstance(s.get("path"), str) for s in skipped
    ):
        raise _problem(root, where, "skipped must be a list of {path, error} objects")
    if manifest["version"] >= 2 and meta.get("settings") != manifest["settings"]:
        got = meta.get("settings")
        if not isinstance(got, dict):
            raise _problem(root, where, "records no settings")
        keys = sorted(k for k in set(got) | set(manifest["settings"]) if got.get(k) != manifest["settings"].get(k))
        raise _problem(
            root,
            where,
            "settings differ from manifest.json's: "
            + ", ".join(f"{k} {got.get(k)!r} here, {manifest['settings'].get(k)!r} there" for k in keys),
        )
    classes = set(manifest.get("classes", []))
    for j, n in enumerate(names):
        if not isinstance(n, str) or not n:
            raise _problem(root, where, f"item {first + j} (entry {j} of the shard) has name {n!r}, not a path")
        # Labels come from the top-level folder: one outside the classes has no label.
        if classes and ("/" not in n or n.split("/")[0] not in classes):
            raise _problem(
                root,
                where,
                f"item {first + j} (entry {j} of the shard) is {n!r}, which is in none of the manifest's classes",
            )


def _open_shard(root: Path, name: str, entry: dict, manifest: dict, settings: Settings, first: int) -> _Shard:
    """Opens and checks one shard (O(its items), its tokens untouched but for the count)."""
    if not (root / name).is_dir():
        raise _problem(root, f"shard {name}", "is missing (listed in manifest.json)")
    meta = _read_json(root, root / name / "meta.json", _where(name, "meta.json"))
    _check_meta(root, name, meta, manifest, first)
    tokens = _read_npy(root, name, "tokens.npy", np.int32, (None, 3))
    offsets = _read_npy(root, name, "offsets.npy", np.int64, (None,))
    sizes = _read_npy(root, name, "sizes.npy", np.int32, (None, 2))
    if len(offsets) == 0:
        raise _problem(root, _where(name, "offsets.npy"), "is empty; it holds 0 and then each item's end")
    _agree(
        root,
        name,
        "items",
        {
            "offsets.npy": len(offsets) - 1,
            "sizes.npy": len(sizes),
            "meta.json": len(meta["names"]),
            MANIFEST: entry["images"],
        },
    )
    _agree(root, name, "skipped images", {"meta.json": len(meta["skipped"]), MANIFEST: entry["skipped"]})
    _check_offsets(root, name, offsets, first)
    _agree(
        root,
        name,
        "token rows",
        {"tokens.npy": len(tokens), "offsets.npy": int(offsets[-1]), MANIFEST: entry["tokens"]},
    )
    sizes = np.array(sizes)
    _check_sizes(root, name, sizes, first, settings)
    return _Shard(name, first, tokens, offsets, sizes, list(meta["names"]), list(meta["skipped"]))


def _check_totals(root: Path, manifest: dict, shards: Sequence[_Shard]) -> None:
    """The manifest's totals and source listing against the shards'."""

    def bad(msg: str) -> ValueError:
        return _problem(root, MANIFEST, msg)

    images = sum(len(sh.sizes) for sh in shards)
    tokens = sum(len(sh.tokens) for sh in shards)
    if manifest["images"] != images:
        raise bad(f"counts {manifest['images']} images, but the shards hold {images}")
    if manifest["tokens"] != tokens:
        raise bad(f"counts {manifest['tokens']} tokens, but the shards hold {tokens}")
    skipped = [s for sh in shards for s in sh.skipped]
    if manifest["skipped"] != skipped:
        raise bad("its skipped list differs from the shards' meta.json skipped lists")
    # Every source file is an image or a skipped one: the shards' names must be the
    # listing encode_dataset recorded (its count and hash), none lost or made up.
    files = sorted([n for sh in shards for n in sh.names] + [s["path"] for s in skipped])
    if "num_files" in manifest and manifest["num_files"] != len(files):
        raise bad(f"counts {manifest['num_files']} source files, but the shards' meta.json files name {len(files)}")
    if "files_sha256" in manifest and hashlib.sha256("\n".join(files).encode()).hexdigest() != manifest["files_sha256"]:
        raise bad(
            "the image names in the shards' meta.json files are not the source listing recorded here (files_sha256)"
        )


def _stop_channel(settings: Settings) -> int:
    """SPEC's stop token is (P*B*B, 0, 0)."""
    return inputs.MODES[settings.mode] * settings.block_size**2


def _item_rows(root: Path, sh: _Shard, j: int, stop: int) -> tuple[int, int]:
    """Rows [a, b) of entry j, checked to be one list: its last row is the stop token and
    so is the row before it (the previous item's end), which an offset moved by a row breaks."""
    a, b = int(sh.offsets[j]), int(sh.offsets[j + 1])
    want = [stop, 0, 0]
    where = _where(sh.name, "tokens.npy")
    item = f"item {sh.first + j} (entry {j} of the shard, rows {a}:{b} per offsets.npy)"
    last = sh.tokens[b - 1].tolist()
    if last != want:
        raise _problem(
            root, where, f"{item} does not end with the stop token {tuple(want)}: its last row is {tuple(last)}"
        )
    if a > 0 and (before := sh.tokens[a - 1].tolist()) != want:
        raise _problem(root, where, f"{item} does not follow a stop token: row {a - 1} is {tuple(before)}")
    return a, b


@contextlib.contextmanager
def _blame_item(root: Path, sh: _Shard, j: int, a: int, b: int) -> Iterator[None]:
    """The codec's ValueError for entry j's triples, with the dataset, files and item named."""
    try:
        yield
    except ValueError as exc:
        h, w = (int(x) for x in sh.sizes[j])
        raise _problem(
            root,
            _where(sh.name, "tokens.npy"),
            f"item {sh.first + j} (entry {j} of the shard, rows {a}:{b} per offsets.npy, {h}x{w} per sizes.npy): {exc}",
        ) from None


def _item_tokens(root: Path, sh: _Shard, j: int, settings: Settings) -> np.ndarray:
    """int32 (N + 1, 3) view of entry j, its stop tokens and triples checked (O(N))."""
    a, b = _item_rows(root, sh, j, _stop_channel(settings))
    h, w = (int(x) for x in sh.sizes[j])
    c, p, v = (np.ascontiguousarray(sh.tokens[a : b - 1, k]) for k in range(3))
    # The codec's validator, the one SparseDCT's constructor runs, without building one:
    # ~0.4 ms for a 384x384 RGB list, affordable on every read of a data loader.
    with _blame_item(root, sh, j, a, b):
        _core.validate_list(
            c,
            p,
            v,
            h,
            w,
            inputs.MODES[settings.mode],
            settings.block_size,
            settings.subsampling == "4:2:0",
            settings.clip or 0,
        )
    return sh.tokens[a:b]


def _item_list(root: Path, sh: _Shard, j: int, settings: Settings) -> SparseDCT:
    """Entry j as a SparseDCT, checked as :func:`_item_tokens` checks it (by the
    constructor's own call of the validator: once, not twice)."""
    a, b = _item_rows(root, sh, j, _stop_channel(settings))
    h, w = (int(x) for x in sh.sizes[j])
    body = sh.tokens[a : b - 1]
    with _blame_item(root, sh, j, a, b):
        return SparseDCT(body[:, 0], body[:, 1], body[:, 2], height=h, width=w, **settings.header())


def verify_dataset(root: str | os.PathLike, *, progress: bool = True) -> dict:
    """Checks everything :class:`Dataset` checks on open, in every shard, and decodes
    every image (what ``dctsparse verify-dataset`` runs).

    Returns ``{"items": images checked, "shards": shards listed, "problems": [one line
    each]}``; a shard that does not open is one problem and its images are not checked.
    """
    from ._progress import Progress
    from .codec import decode

    root = Path(root)
    try:
        manifest, settings, names = _open_manifest(root)
    except ValueError as exc:
        return {"items": 0, "shards": 0, "problems": [str(exc)]}
    problems: list[str] = []
    shards: list[_Shard] = []
    first = 0
    for name, entry in zip(names, manifest["shards"], strict=True):
        try:
            shards.append(_open_shard(root, name, entry, manifest, settings, first))
            first += len(shards[-1].sizes)
        except ValueError as exc:
            problems.append(str(exc))
            first += entry["images"]  # keeps later shards' item numbers those of a good dataset
    if not problems:  # with a shard missing, the totals differ for a known reason
        try:
            _check_totals(root, manifest, shards)
        except ValueError as exc:
            problems.append(str(exc))
    bar = Progress(sum(len(sh.sizes) for sh in shards), desc="verify-dataset", enabled=progress)
    for sh in shards:
        for j in range(len(sh.sizes)):
            try:
                decode(_item_list(root, sh, j, settings))
            except ValueError as exc:
                problems.append(str(exc))
            bar.update()
    bar.close()
    return {"items": bar.n, "shards": len(names), "problems": problems}


class Dataset(Sequence):
    """An encoded dataset (see :func:`encode_dataset`) as a sequence of SparseDCT.

    ``ds[i]`` builds (and validates) a SparseDCT; ``ds.tokens(i)`` is the
    raw int32 (N_i + 1, 3) view into the memory-mapped shard, for data
    loaders. ``ds.settings`` is the :class:`Settings`, ``ds.names[i]`` the
    source path, ``ds.sizes`` int32 (len, 2) heights and widths, ``ds.classes``
    the class names and ``ds.labels`` int64 (len,) each image's class index.

    Opening checks every file but the token rows themselves (cost O(images));
    ``ds[i]`` and ``ds.tokens(i)`` check image i's rows. Anything inconsistent is a
    ValueError naming the dataset, the shard, the file and the image. See
    :func:`verify_dataset` to check every image.
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.manifest, self.settings, names = _open_manifest(self.root)
        self._shards: list[_Shard] = []
        first = 0
        for name, entry in zip(names, self.manifest["shards"], strict=True):
            self._shards.append(_open_shard(self.root, name, entry, self.manifest, self.settings, first))
            first += len(self._shards[-1].sizes)
        _check_totals(self.root, self.manifest, self._shards)
        self._starts = np.array([sh.first for sh in self._shards] + [first], np.int64)
        self.names = [n for sh in self._shards for n in sh.names]
        self.sizes = np.concatenate([sh.sizes for sh in self._shards]) if self._shards else np.zeros((0, 2), np.int32)
        if "classes" in self.manifest:
            # Labels index the classes of the whole source listing (the manifest's), so a class
            # whose images were all skipped keeps its number; _check_meta saw every name in one.
            self.classes: list[str] = list(self.manifest["classes"])
            ids = {c: k for k, c in enumerate(self.classes)}
            self.labels = np.array([ids[n.split("/")[0]] if ids else 0 for n in self.names], np.int64)
        else:  # written before classes were recorded
            self.classes, self.labels = class_labels(self.names)

    def __len__(self) -> int:
        return int(self._starts[-1])

    def _locate(self, i: int) -> tuple[_Shard, int]:
        n = len(self)
        i = inputs.as_int("index", i, -(2**63), 2**63)
        if not -n <= i < n:
            raise IndexError(f"index {i} is out of range for a dataset of {n} images")
        i %= n
        k = int(np.searchsorted(self._starts, i, side="right")) - 1
        return self._shards[k], i - self._shards[k].first

    def tokens(self, i: int) -> np.ndarray:
        """int32 (N_i + 1, 3): image i's tokens, a read-only view of the shard.

        Checked first (O(N_i)): the list ends with its stop token, the previous one
        with its own, and every triple is valid for the image's size and the settings.
        """
        sh, j = self._locate(i)
        return _item_tokens(self.root, sh, j, self.settings)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        sh, j = self._locate(i)
        return _item_list(self.root, sh, j, self.settings)

    def __repr__(self) -> str:
        return f"Dataset({str(self.root)!r}, {len(self)} images, {self.settings})"
