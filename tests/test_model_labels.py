"""Class labels reach training from every source (issue D1): folders of class subfolders,
encoded datasets, in-memory arrays; and they change the loss of a class-conditional model."""

import json
import os

import numpy as np
import pytest
from PIL import Image

jax = pytest.importorskip("jax")

import dctsparse  # noqa: E402
from dctmodel.config import get_config, override  # noqa: E402
from dctmodel.data import ArraySource, DatasetSource, FolderSource, check_labels, sample_batch  # noqa: E402
from dctmodel.scenes import render_scene  # noqa: E402


def _cfg(**kw):
    return override(get_config("micro"), **{"model.num_classes": 3, "data.num_eval": 2, **kw})


def _class_folder(root, counts=(3, 4, 2)):
    """root/cat_k/img_i.png for classes in sorted order; returns {relative path: class}."""
    want = {}
    for k, n in enumerate(counts):
        d = root / f"class_{'abc'[k]}"
        d.mkdir()
        for i in range(n):
            Image.fromarray(render_scene(k, i, 16, max_objects=1)).save(d / f"img_{i}.png")
            want[f"class_{'abc'[k]}/img_{i}.png"] = k
    return want


def test_folder_source_labels_are_the_class_subfolders(tmp_path):
    want = _class_folder(tmp_path)
    cfg = _cfg(**{"data.source": "folder", "data.folder": str(tmp_path)})
    names = sorted(want)
    for split, part in (("train", names[:-2]), ("eval", names[-2:])):
        src = FolderSource(cfg.data, split)
        assert src.classes == ["class_a", "class_b", "class_c"]
        got = [src.label(i) for i in range(len(src))]
        assert got == [want[n] for n in part]
        assert [os.path.relpath(f, tmp_path) for f in src.files] == part


def test_flat_folder_is_unlabelled(tmp_path):
    for i in range(4):
        Image.fromarray(render_scene(0, i, 16)).save(tmp_path / f"{i}.png")
    src = FolderSource(_cfg(**{"data.source": "folder", "data.folder": str(tmp_path)}).data)
    assert src.num_labels == 1 and {src.label(i) for i in range(len(src))} == {0}


def test_batches_carry_each_images_label():
    cfg = _cfg()
    labels = [2, 0, 1, 2, 1]
    # Images of different heights: each example's subpixel count names its image.
    imgs = [render_scene(5, i, 16, height=16 - 2 * i, max_objects=2) for i in range(5)]
    src = ArraySource(cfg.data, imgs, labels)
    b = sample_batch(cfg, src, seed=0, step=0, batch_size=64)
    by_size = {im.shape[0] * im.shape[1] * 3: lab for im, lab in zip(imgs, labels, strict=True)}
    assert b["label"].tolist() == [by_size[int(n)] for n in b["subpixels"]]
    assert len(set(b["label"].tolist())) == 3


def test_array_source_rejects_bad_labels():
    cfg = _cfg()
    imgs = [render_scene(0, i, 16) for i in range(3)]
    with pytest.raises(ValueError, match="one per image"):
        ArraySource(cfg.data, imgs, [0, 1])
    with pytest.raises(ValueError, match="non-negative"):
        ArraySource(cfg.data, imgs, [0, -1, 2])
    with pytest.raises(ValueError, match="model.num_classes=3"):
        check_labels(cfg, ArraySource(cfg.data, imgs, [0, 1, 5]))


def test_encoded_dataset_records_classes(tmp_path):
    (tmp_path / "src").mkdir()
    want = _class_folder(tmp_path / "src")
    out = tmp_path / "ds"
    man = dctsparse.dataset.encode_dataset(
        tmp_path / "src",
        out,
        dctsparse.dataset.Settings(block_size=4, quality=50, long_side=16, clip=32),
        jobs=1,
        progress=False,
    )
    assert man["classes"] == ["class_a", "class_b", "class_c"]
    ds = dctsparse.Dataset(out)
    assert ds.classes == man["classes"]
    assert ds.labels.tolist() == [want[n] for n in ds.names]
    cfg = _cfg(**{"data.source": "dataset", "data.folder": str(out)})
    src = DatasetSource(cfg.data, "train")
    assert [src.label(i) for i in range(len(src))] == [want[n] for n in ds.names[:-2]]


def test_labels_change_the_loss_of_a_class_conditional_model():
    """With every label 0 (what every source gave before), the loss differs from the loss
    with the images' own labels: the labels reach the model."""
    from dctmodel.train import functions, make_mesh

    cfg = _cfg()
    src = ArraySource(cfg.data, [render_scene(5, i, 16, max_objects=2) for i in range(6)], [0, 1, 2, 0, 1, 2])
    b = sample_batch(cfg, src, seed=0, step=0)
    assert b["label"].any()
    fns = functions(cfg)
    mesh = make_mesh(1)
    params = fns.shard_state(fns.init(0), mesh)["params"]
    with_labels = np.asarray(fns.eval_step(params, b, mesh)[0])
    zeroed = np.asarray(fns.eval_step(params, dict(b, label=np.zeros_like(b["label"])), mesh)[0])
    rows = b["label"] != 0
    assert not np.allclose(with_labels[rows], zeroed[rows])
    np.testing.assert_allclose(with_labels[~rows], zeroed[~rows], rtol=1e-6)


def test_dataset_source_without_a_folder_is_a_clear_error():
    cfg = _cfg(**{"data.source": "dataset"})
    with pytest.raises(ValueError, match="needs data.folder"):
        DatasetSource(cfg.data, "train")


def test_dataset_source_surfaces_a_lying_dataset(tmp_path):
    """Issue 19: a moved offset in the shard (opens, since opening reads no token rows) stops
    training at the first read of either image at that boundary, naming the files, instead of
    training on a list with a stray token; edited settings stop it on open."""
    (tmp_path / "src").mkdir()
    _class_folder(tmp_path / "src")
    out = tmp_path / "ds"
    dctsparse.dataset.encode_dataset(
        tmp_path / "src",
        out,
        dctsparse.dataset.Settings(block_size=4, quality=50, long_side=16, clip=32),
        jobs=1,
        progress=False,
    )
    offsets = np.load(out / "shard-00000" / "offsets.npy")
    offsets[2] += 1
    np.save(out / "shard-00000" / "offsets.npy", offsets)
    cfg = _cfg(**{"data.source": "dataset", "data.folder": str(out)})
    src = DatasetSource(cfg.data, "train")
    src.tokens(0)
    for i in (1, 2):
        with pytest.raises(
            ValueError,
            match=f"dataset {out}: shard shard-00000/tokens.npy: item {i} "
            r"\(entry \d of the shard, rows \d+:\d+ per offsets.npy\)",
        ):
            src.tokens(i)
    with pytest.raises(ValueError, match=r"shard-00000/tokens.npy: item [12] .*offsets.npy"):
        sample_batch(cfg, src, seed=0, step=0, batch_size=64)  # 64 draws of 7 images

    manifest = json.loads((out / "manifest.json").read_text())
    manifest["settings"]["clip"] = 16
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(
        ValueError, match="shard shard-00000/meta.json: settings differ from manifest.json's: clip 32 here, 16 there"
    ):
        DatasetSource(cfg.data, "train")
