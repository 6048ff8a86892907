"""Image sources -> token sequences -> batches of chunks.

Every batch is a pure function of ``(seed, step)``: the sampler draws from
``np.random.default_rng([seed, step])``, so a resumed run sees exactly the
batches an uninterrupted run would, without saving any iterator state.  A
background thread (:class:`Prefetcher`) prepares batches ahead of the model.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterator
from functools import lru_cache

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


class Source:
    """Indexable image source with cached tokens.  ``split`` is "train" or "eval"."""

    def __init__(self, data: DataConfig, split: str = "train"):
        self.data = data
        self.split = split
        self._tokens = lru_cache(maxsize=200_000)(self._encode)

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
        img = render_scene(self.data.seed, idx, self.data.image_size, max_objects=self.data.max_objects)
        if self.data.grey:
            img = np.round(img @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)
        return img


class FolderSource(Source):
    """Images of a folder (recursively, sorted), resized to long side ``image_size``.

    The last ``num_eval`` files (in sorted order) are the held-out split.  When
    every image lies in a subfolder, the top-level subfolders are the classes
    (labels in sorted name order, as torchvision's ``ImageFolder``); images
    directly in the folder make it unlabelled.
    """

    def __init__(self, data: DataConfig, split: str = "train"):
        super().__init__(data, split)
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

    def __init__(self, data: DataConfig, images, labels=None, split: str = "train"):
        super().__init__(data, split)
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
    last ``num_eval`` images are the held-out split.
    """

    def __init__(self, data: DataConfig, split: str = "train"):
        import dctsparse

        super().__init__(data, split)
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


def make_source(data: DataConfig, split: str = "train") -> Source:
    if data.source == "scenes":
        return SceneSource(data, split)
    if data.source == "folder":
        return FolderSource(data, split)
    if data.source == "dataset":
        return DatasetSource(data, split)
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
    )
    ex["label"] = np.int32(source.label(i))
    ex["subpixels"] = np.float32(subpixels)
    return ex


def _stack(examples: list[dict]) -> dict:
    return {k: np.stack([e[k] for e in examples]) for k in examples[0]}


def sample_batch(cfg: Config, source: Source, seed: int, step: int, batch_size: int | None = None) -> dict:
    """The training batch of ``step``: deterministic in ``(seed, step)``.

    Images are drawn uniformly, kept with :func:`length_keep_prob` under the
    configured chunk policy (so each chunk index is drawn at a rate that does
    not depend on the sequence's length up to ``length_filter_lmax``), and one
    chunk per kept image is drawn with :func:`chunk_probs`.
    """
    t = cfg.train
    rng = np.random.default_rng([int(seed), int(step), 0xDC7])
    out: list[dict] = []
    while len(out) < (batch_size or t.batch_size):
        i = int(rng.integers(len(source)))
        toks = source.tokens(i)[0]
        L = toks.shape[0]
        # train.target="chroma": chunks tile the colour part only (the luma is all in the input).
        base = target_start(toks, t.target, cfg.data.block_size)
        policy = (cfg.model.chunk_size, t.chunk_policy, t.chunk_power, t.chunk_pmin)
        if rng.random() >= length_keep_prob(L - base, t.length_filter_lmax, *policy):
            continue
        p = chunk_probs(L - base, *policy)
        k = int(rng.choice(p.size, p=p))
        out.append(_example(cfg, source, i, base + k * cfg.model.chunk_size))
    return _stack(out)


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
        yield _stack(exs)


class Prefetcher:
    """Prepares ``sample_batch(step)`` for ``step = start, start+1, ...`` on a thread.

    Iterate to get ``(step, batch)``; ``close()`` stops the thread.
    """

    def __init__(self, cfg: Config, source: Source, seed: int, start: int, stop: int, depth: int = 4):
        self._q: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._args = (cfg, source, seed)
        self._range = range(start, stop)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        cfg, source, seed = self._args
        try:
            for step in self._range:
                item = (step, sample_batch(cfg, source, seed, step))
                while not self._stop.is_set():
                    try:
                        self._q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        pass
                if self._stop.is_set():
                    return
        except BaseException as e:  # surfaced in the consumer
            self._q.put(e)
            return
        self._q.put(None)

    def __iter__(self):
        while True:
            item = self._q.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self):
        self._stop.set()
        self._thread.join(timeout=5)
