"""Image sources -> token sequences -> batches of chunks.

Every row of every batch is a pure function of ``(seed, step, row)``: row
``r`` of step ``k`` draws from ``np.random.default_rng([seed, k, r, ...])``.
So a resumed run sees exactly the batches an uninterrupted run would without
saving any iterator state, and a host of a multi-process run builds only the
rows its devices hold (:func:`sample_batch`'s ``rows``; the union over hosts
is the one-process batch).  :class:`Prefetcher` prepares batches ahead of the
model with Grain, in threads or in worker processes (``train.workers``).

The encoder's input travels as the chunk's *prefix*, the tokens before it
(``prefix`` int16 ``(B, Lp, 3)``, padded to a power-of-two bucket); the
jitted step scatters it into the dense DCT image on the device
(:func:`dctmodel.tokens.dense_dct_device`), so host memory and host-to-device
bytes grow with the tokens, not with the image's ``grid^2 * P*B*B``.
"""

from __future__ import annotations

import functools
import os
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence

import numpy as np

from .chunks import build_chunk, chunk_probs, length_keep_prob, num_chunks, target_start
from .config import Config, DataConfig
from .scenes import render_scene
from .tokens import grid_of

_IMAGE_EXT = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".gif")


def encode_tokens(image: np.ndarray, data: DataConfig) -> np.ndarray:
    """uint8 image -> int32 ``(N + 1, 3)`` tokens with the config's codec settings."""
    import dctsparse

    s = dctsparse.encode(
        image,
        block_size=data.block_size,
        quality=data.quality,
        subsampling=data.subsampling,
        order=data.order,
        clip=data.clip,
    )
    return np.asarray(s.tokens(), np.int32)


DEFAULT_CACHE_MB = 512


class TokenCache:
    """Least-recently-used cache of ``Source._encode`` results, bounded in bytes.

    Why bytes, not entries: a token list of a 32 px scene is 1.5 KB, one of a
    256 px photo 100 KB or more, so a count bound is either useless or huge.
    ``max_bytes=0`` caches nothing.  Thread-safe (the prefetch threads share it).
    """

    def __init__(self, fn, max_bytes: int):
        self.fn = fn
        self.max_bytes = int(max_bytes)
        self.bytes = 0
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, i: int):
        with self._lock:
            hit = self._items.get(i)
            if hit is not None:
                self._items.move_to_end(i)
                return hit
        value = self.fn(i)
        size = int(value[0].nbytes) + 64  # the tuple and its ints, roughly
        with self._lock:
            if i not in self._items and size <= self.max_bytes:
                self._items[i] = value
                self.bytes += size
                while self.bytes > self.max_bytes:
                    _, old = self._items.popitem(last=False)
                    self.bytes -= int(old[0].nbytes) + 64
        return value

    def __len__(self) -> int:
        return len(self._items)


class Source:
    """Indexable image source with cached tokens.  ``split`` is "train" or "eval".

    ``cache_mb``: bound of the token cache in MiB (default 512; ``train.cache_mb``
    in a training run).  A source is picklable (Grain's worker processes get a
    copy with an empty cache of their own).
    """

    def __init__(self, data: DataConfig, split: str = "train", cache_mb: float = DEFAULT_CACHE_MB):
        self.data = data
        self.split = split
        self.cache_mb = cache_mb
        self._tokens = TokenCache(self._encode, int(cache_mb * 2**20))

    def __getstate__(self):
        state = dict(self.__dict__)
        del state["_tokens"]
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._tokens = TokenCache(self._encode, int(self.cache_mb * 2**20))

    def __len__(self) -> int:
        raise NotImplementedError

    def image(self, i: int) -> np.ndarray:
        raise NotImplementedError

    def label(self, i: int) -> int:
        """Class of image ``i`` (0 for an unlabelled source)."""
        return 0

    @property
    def num_labels(self) -> int:
        """Number of classes the labels range over (1: unlabelled)."""
        return 1

    def _encode(self, i: int):
        img = self.image(i)
        # The codec takes its plane count from the image, the model its vocabulary
        # from the config: a mismatch would give channel ids past the vocabulary.
        want = "(H, W) greyscale" if self.data.grey else "(H, W, 3) RGB"
        if img.ndim != (2 if self.data.grey else 3):
            raise ValueError(
                f"image {i} of the {self.split} source has shape {img.shape}, but "
                f"data.grey={self.data.grey} needs {want} images"
            )
        h, w = img.shape[:2]
        hb, wb = grid_of(h, w, self.data.block_size, self.data.subsampling, self.data.planes)
        return encode_tokens(img, self.data), (hb, wb), h * w * self.data.planes

    def tokens(self, i: int) -> tuple[np.ndarray, tuple[int, int], int]:
        """``(tokens (N+1, 3) int32, (Hb, Wb), number of subpixels H*W*P)``.

        ``P`` is the plane count (1 for ``data.grey``, else 3): bits per image
        subpixel count every stored sample once, as ``SparseDCT.bits_per_subpixel``.
        """
        return self._tokens(int(i))


class SceneSource(Source):
    """The built-in CLEVR-like scenes; train and eval splits are disjoint scene indices."""

    def __len__(self) -> int:
        return self.data.num_train if self.split == "train" else self.data.num_eval

    def image(self, i: int) -> np.ndarray:
        # Eval scenes live far above any train index, so the splits never overlap.
        idx = int(i) if self.split == "train" else (1 << 40) + int(i)
        d = self.data
        img = render_scene(d.seed, idx, d.image_size, max_objects=d.max_objects, object_scale=d.object_scale)
        if d.grey:
            img = np.round(img @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)
        return img


class FolderSource(Source):
    """Images of a folder (recursively, sorted), resized to long side ``image_size``.

    The last ``num_eval`` files (in sorted order) are the held-out split.  When
    every image lies in a subfolder, the top-level subfolders are the classes
    (labels in sorted name order, as torchvision's ``ImageFolder``); images
    directly in the folder make it unlabelled.
    """

    def __init__(self, data: DataConfig, split: str = "train", cache_mb: float = DEFAULT_CACHE_MB):
        super().__init__(data, split, cache_mb)
        if not data.folder or not os.path.isdir(data.folder):
            raise ValueError(f"data.folder {data.folder!r} is not a directory")
        files = sorted(
            os.path.join(r, f) for r, _, fs in os.walk(data.folder) for f in fs if f.lower().endswith(_IMAGE_EXT)
        )
        if len(files) <= data.num_eval:
            raise ValueError(f"{data.folder}: {len(files)} images, need more than num_eval={data.num_eval}")
        self.files = files[: -data.num_eval] if split == "train" else files[-data.num_eval :]
        from dctsparse.dataset import class_labels

        self.classes, self.labels = class_labels([os.path.relpath(f, data.folder) for f in files])
        self.labels = self.labels[: -data.num_eval] if split == "train" else self.labels[-data.num_eval :]

    def __len__(self) -> int:
        return len(self.files)

    def label(self, i: int) -> int:
        return int(self.labels[int(i)])

    @property
    def num_labels(self) -> int:
        return max(1, len(self.classes))

    def image(self, i: int) -> np.ndarray:
        from PIL import Image

        path = self.files[int(i)]
        try:
            with Image.open(path) as im:
                im = im.convert("L" if self.data.grey else "RGB")
                w, h = im.size
                s = self.data.image_size / max(w, h)
                size = (max(1, round(w * s)), max(1, round(h * s)))
                if size != (w, h):
                    im = im.resize(size, Image.Resampling.LANCZOS)
                return np.asarray(im)
        except (OSError, ValueError) as e:  # Pillow's truncated-file errors do not name the file
            raise ValueError(f"{path}: cannot read this image ({e})") from e


class ArraySource(Source):
    """In-memory list of uint8 images (tests, notebooks), with optional int class labels."""

    def __init__(self, data: DataConfig, images, labels=None, split: str = "train", cache_mb: float = DEFAULT_CACHE_MB):
        super().__init__(data, split, cache_mb)
        if isinstance(labels, str):  # the old third positional argument was the split
            raise TypeError("ArraySource(data, images, labels=None, split='train'): pass split by keyword")
        self.images = list(images)
        self.labels = np.zeros(len(self.images), np.int64) if labels is None else np.asarray(labels)
        if (
            self.labels.shape != (len(self.images),)
            or not np.issubdtype(self.labels.dtype, np.integer)
            or (self.labels < 0).any()
        ):
            raise ValueError(
                f"labels must be {len(self.images)} non-negative integers, one per image, "
                f"got {self.labels.dtype} {self.labels.shape}"
            )

    def __len__(self) -> int:
        return len(self.images)

    def label(self, i: int) -> int:
        return int(self.labels[int(i)])

    @property
    def num_labels(self) -> int:
        return int(self.labels.max(initial=0)) + 1

    def image(self, i: int) -> np.ndarray:
        return self.images[int(i)]


class DatasetSource(Source):
    """Shards written by ``dctsparse encode-dataset`` (read with ``dctsparse.Dataset``).

    ``data.folder`` is the dataset directory.  Tokens are read as stored (no
    re-encoding), so the dataset's settings must match the config: block
    size, quality, subsampling, order, mode, and ``clip <= data.clip``
    (checked); images must fit the config's grid (checked per image).  The
    last ``num_eval`` images are the held-out split.  Nothing is cached: the
    shards are memory-mapped, so the page cache holds what is read and a
    process's memory does not grow with the dataset.
    """

    def __init__(self, data: DataConfig, split: str = "train", cache_mb: float = DEFAULT_CACHE_MB):
        import dctsparse

        super().__init__(data, split, 0)
        if not data.folder:  # dctsparse.Dataset(None) would be a TypeError the CLIs do not report
            raise ValueError(
                "data.source='dataset' needs data.folder: the output directory of `dctsparse encode-dataset`"
            )
        self.ds = dctsparse.Dataset(data.folder)
        st = self.ds.settings
        order = st.order if isinstance(st.order, str) else tuple(st.order)
        want = dict(
            block_size=data.block_size,
            quality=data.quality,
            subsampling=data.subsampling,
            order=data.order if isinstance(data.order, str) else tuple(data.order),
            mode="L" if data.grey else "RGB",
        )
        got = dict(block_size=st.block_size, quality=st.quality, subsampling=st.subsampling, order=order, mode=st.mode)
        bad = {k: (got[k], v) for k, v in want.items() if got[k] != v}
        if st.clip is None or st.clip > data.clip:
            bad["clip"] = (st.clip, data.clip)
        if bad:
            raise ValueError(f"{data.folder}: dataset settings differ from the config (dataset, config): {bad}")
        n = len(self.ds)
        if n <= data.num_eval:
            raise ValueError(f"{data.folder}: {n} images, need more than num_eval={data.num_eval}")
        self.index = np.arange(n - data.num_eval) if split == "train" else np.arange(n - data.num_eval, n)

    def __getstate__(self):
        # A worker process opens the dataset itself: pickling the memory maps would copy the shards.
        state = super().__getstate__()
        del state["ds"]
        return state

    def __setstate__(self, state):
        import dctsparse

        super().__setstate__(state)
        self.ds = dctsparse.Dataset(str(self.data.folder))

    def __len__(self) -> int:
        return len(self.index)

    def label(self, i: int) -> int:
        return int(self.ds.labels[int(self.index[int(i)])])

    @property
    def num_labels(self) -> int:
        return max(1, len(self.ds.classes))

    def image(self, i: int) -> np.ndarray:
        import dctsparse

        return dctsparse.decode(self.ds[int(self.index[int(i)])])

    def _encode(self, i: int):
        j = int(self.index[int(i)])
        h, w = (int(x) for x in self.ds.sizes[j])
        hb, wb = grid_of(h, w, self.data.block_size, self.data.subsampling, self.data.planes)
        if max(hb, wb) > self.data.grid:
            raise ValueError(
                f"image {j} of {self.data.folder} ({h}x{w}) is larger than image_size={self.data.image_size}"
            )
        return np.array(self.ds.tokens(j), np.int32), (hb, wb), h * w * self.data.planes


def check_labels(cfg: Config, source: Source) -> None:
    """A class-conditional model must cover every class of its source (an embedding lookup
    past the table would be clamped silently under jit)."""
    n, m = source.num_labels, cfg.model.num_classes
    if m and n > m:
        raise ValueError(f"the {source.split} source has {n} classes but model.num_classes={m}")


def make_source(data: DataConfig, split: str = "train", cache_mb: float = DEFAULT_CACHE_MB) -> Source:
    """The configured source; ``cache_mb`` bounds its token cache (MiB)."""
    if data.source == "scenes":
        return SceneSource(data, split, cache_mb)
    if data.source == "folder":
        return FolderSource(data, split, cache_mb)
    if data.source == "dataset":
        return DatasetSource(data, split, cache_mb)
    raise ValueError(f"unknown data source {data.source!r}")


def _example(cfg: Config, source: Source, i: int, start: int) -> dict:
    toks, (hb, wb), subpixels = source.tokens(i)
    ex = build_chunk(
        toks,
        start,
        cfg.model.chunk_size,
        cfg.model.overlap,
        hb=hb,
        wb=wb,
        grid=cfg.data.grid,
        num_channels=cfg.data.num_channels,
        clip=cfg.data.clip,
        dense=False,
    )
    ex["label"] = np.int32(source.label(i))
    ex["subpixels"] = np.float32(subpixels)
    return ex


def prefix_bucket(n: int, smallest: int) -> int:
    """Padded prefix length for a batch whose longest prefix has ``n`` tokens: the next power
    of two, at least ``smallest``.  Each bucket is one compilation of the step; powers of two
    keep their number logarithmic and the padding under 2x."""
    b = max(int(smallest), 1)
    while b < n:
        b *= 2
    return b


def prefix_dtype(data: DataConfig) -> type:
    """int16 when every channel id, position and value fits (every paper preset: the largest
    position is ``grid^2 - 1`` = 4095 for ``plant_leaves``), else int32: half the bytes."""
    small = max(data.num_channels, data.grid * data.grid, data.clip) < 2**15
    return np.int16 if small else np.int32


def stack_examples(examples: list[dict], data: DataConfig, smallest_bucket: int) -> dict:
    """Examples -> a batch: every key stacked; ``prefix`` (ragged ``(start, 3)``) padded with
    ``(P*B*B, 0, 0)`` rows, a channel the device scatter drops, to :func:`prefix_bucket`,
    as :func:`prefix_dtype`."""
    num_channels = data.num_channels
    out = {k: np.stack([e[k] for e in examples]) for k in examples[0] if k != "prefix"}
    if "prefix" in examples[0]:
        n = max(e["prefix"].shape[0] for e in examples)
        pre: np.ndarray = np.zeros((len(examples), prefix_bucket(n, smallest_bucket), 3), prefix_dtype(data))
        pre[:, :, 0] = num_channels
        for r, e in enumerate(examples):
            pre[r, : e["prefix"].shape[0]] = e["prefix"]
        out["prefix"] = pre
    return out


def sample_row(cfg: Config, source: Source, seed: int, step: int, row: int) -> dict:
    """Row ``row`` of the training batch of ``step``: deterministic in ``(seed, step, row)``.

    An image is drawn uniformly, kept with :func:`length_keep_prob` under the
    configured chunk policy (so each chunk index is drawn at a rate that does
    not depend on the sequence's length up to ``length_filter_lmax``), and one
    chunk of a kept image is drawn with :func:`chunk_probs`; else draw again.
    """
    t = cfg.train
    rng = np.random.default_rng([int(seed), int(step), int(row), 0xDC7])
    policy = (t.length_filter_lmax, cfg.model.chunk_size, t.chunk_policy, t.chunk_power, t.chunk_pmin)
    while True:
        i = int(rng.integers(len(source)))
        toks = source.tokens(i)[0]
        L = toks.shape[0]
        # train.target="chroma": chunks tile the colour part only (the luma is all in the input).
        base = target_start(toks, t.target, cfg.data.block_size)
        keep, cdf = _selection(L - base, *policy)
        if rng.random() >= keep:
            continue
        k = draw_index(rng, cdf)
        return _example(cfg, source, i, base + k * cfg.model.chunk_size)


@functools.lru_cache(maxsize=65536)
def _selection(
    length: int, lmax: int | None, chunk: int, policy: str, power: float, pmin: float
) -> tuple[float, np.ndarray]:
    """``(length_keep_prob, cumulative chunk_probs)`` of a sequence, computed once per length:
    the host builds a batch beside the training step, and these two were a third of a row's
    cost.  The array is read-only (it is shared)."""
    p = chunk_probs(length, chunk, policy, power, pmin)
    cdf = p.cumsum()
    cdf /= cdf[-1]
    cdf.flags.writeable = False
    return length_keep_prob(length, lmax, chunk, policy, power, pmin), cdf


def draw_index(rng: np.random.Generator, cdf: np.ndarray) -> int:
    """``rng.choice(cdf.size, p=p)`` for ``cdf`` = ``p.cumsum() / p.cumsum()[-1]``: the same draw
    from the same stream (numpy's own algorithm: one uniform, searched in the normalised
    cumulative sum), without its checks of ``p`` on every call."""
    return int(cdf.searchsorted(rng.random(), side="right"))


def sample_batch(
    cfg: Config,
    source: Source,
    seed: int,
    step: int,
    batch_size: int | None = None,
    rows: Sequence[int] | None = None,
) -> dict:
    """The training batch of ``step`` (:func:`sample_row` for each row), or only its ``rows``
    (the rows a host's devices hold); ``batch_size`` defaults to ``train.batch_size``.

    Returns numpy arrays with a leading axis over the rows: ``prefix`` int16 ``(R, Lp, 3)``
    (see :func:`stack_examples`), ``inp``/``tgt`` int32 ``(R, O+C, 3)``, ``weight`` float32
    ``(R, O+C)``, ``hw`` int32 ``(R, 2)``, ``chunk_index``/``label`` int32 ``(R,)``,
    ``subpixels`` float32 ``(R,)``.
    """
    rows = range(batch_size or cfg.train.batch_size) if rows is None else rows
    exs = [sample_row(cfg, source, seed, step, r) for r in rows]
    return stack_examples(exs, cfg.data, cfg.train.prefix_bucket)


def eval_batches(cfg: Config, source: Source, indices, batch_size: int) -> Iterator[dict]:
    """Every chunk of every image in ``indices``, batched; padding rows have zero weight.

    Also yields ``image`` (int32, position in ``indices``; -1 for padding) so
    the per-image bits can be summed over chunks.
    """
    todo = []
    for n, i in enumerate(indices):
        toks = source.tokens(i)[0]
        base = target_start(toks, cfg.train.target, cfg.data.block_size)
        C = cfg.model.chunk_size
        todo += [(n, i, base + k * C) for k in range(num_chunks(toks.shape[0] - base, C))]
    for b in range(0, len(todo), batch_size):
        part = todo[b : b + batch_size]
        exs = [dict(_example(cfg, source, i, s), image=np.int32(n)) for n, i, s in part]
        while len(exs) < batch_size:  # fixed shapes: one compilation for the whole eval
            pad = dict(exs[0])
            pad["weight"] = np.zeros_like(pad["weight"])
            pad["image"] = np.int32(-1)
            exs.append(pad)
        yield stack_examples(exs, cfg.data, cfg.train.prefix_bucket)


class _StepBatch:
    """``step -> (step, its batch rows)``: what Grain maps over the steps (picklable, so that
    worker processes can run it)."""

    def __init__(self, cfg: Config, source: Source, seed: int, rows: Sequence[int] | None):
        self.cfg, self.source, self.seed = cfg, source, seed
        self.rows = None if rows is None else [int(r) for r in rows]

    def __call__(self, step: int) -> tuple[int, dict]:
        return int(step), sample_batch(self.cfg, self.source, self.seed, int(step), rows=self.rows)


class Prefetcher:
    """Prepares ``sample_batch(step, rows=rows)`` for ``step = start, ..., stop - 1`` ahead of
    the model: a Grain ``MapDataset`` over the steps, read by one thread (``workers=0``) or by
    ``workers`` worker processes (image decoding and encoding then run beside the trainer, not
    under its GIL).

    Why Grain: the batches are a pure function of the step, so its deterministic, sharded
    ``MapDataset`` fits as is, and its worker processes are the ecosystem's (no pool of our
    own to start, feed, order and shut down).  Iterate to get ``(step, batch)`` in step order;
    ``close()`` stops the readers.
    """

    def __init__(
        self,
        cfg: Config,
        source: Source,
        seed: int,
        start: int,
        stop: int,
        depth: int = 4,
        rows: Sequence[int] | None = None,
        workers: int = 0,
    ):
        import grain

        ds = grain.MapDataset.range(start, stop).map(_StepBatch(cfg, source, seed, rows))
        it = ds.to_iter_dataset(grain.ReadOptions(num_threads=1, prefetch_buffer_size=max(1, depth)))
        if workers > 0:
            from absl import flags

            # Grain's workers read absl flags, which only an absl app parses: outside one they
            # take their defaults (an absl app has parsed them before it gets here).
            if not flags.FLAGS.is_parsed():
                flags.FLAGS.mark_as_parsed()
            it = it.mp_prefetch(
                grain.MultiprocessingOptions(num_workers=workers, per_worker_buffer_size=max(1, depth // workers))
            )
        self._it = iter(it)

    def __iter__(self):
        yield from self._it

    def close(self):
        close = getattr(self._it, "close", None)
        if close is not None:
            close()
