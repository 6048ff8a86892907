"""encode-dataset and dctsparse.Dataset: contents, resizing, resume after a
kill, atomic shards, and the purity of the per-image function."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import dctsparse
from dctsparse import SparseDCT, cli, dataset
from dctsparse.dataset import Settings, encode_dataset, encode_image
from helpers import natural_image

SETTINGS = Settings(block_size=8, quality=70, long_side=48)
SHARD = 3


@pytest.fixture(scope="module")
def src(tmp_path_factory) -> Path:
    """11 files: several formats, sizes and aspect ratios, greyscale, alpha, one corrupt."""
    d = tmp_path_factory.mktemp("src")
    (d / "nested" / "deeper").mkdir(parents=True)
    cat, astro = natural_image("chelsea"), natural_image("astronaut")
    Image.fromarray(cat).save(d / "cat.png")
    Image.fromarray(cat[:, ::-1]).save(d / "cat_flip.jpg", quality=92)
    Image.fromarray(astro[::4, ::4]).save(d / "astro.webp", lossless=True)
    Image.fromarray(astro[:30, :200]).save(d / "nested" / "wide.png")
    Image.fromarray(astro[:200, :7]).save(d / "nested" / "tall.png")
    Image.fromarray(natural_image("camera")[::8, ::8]).save(d / "nested" / "grey.png")
    Image.fromarray(cat[:20, :20]).convert("RGBA").save(d / "nested" / "alpha.png")
    Image.fromarray(cat[:5, :9]).save(d / "nested" / "deeper" / "small.bmp")
    Image.fromarray(astro[100:164, 100:164]).save(d / "nested" / "deeper" / "square.png")
    (d / "nested" / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    (d / "readme.txt").write_text("ignored")
    Image.fromarray(cat[50:90, 60:150]).save(d / "z_last.png")
    return d


@pytest.fixture(scope="module")
def reference(src, tmp_path_factory) -> Path:
    """An uninterrupted run, in parallel."""
    out = tmp_path_factory.mktemp("ref") / "ds"
    encode_dataset(src, out, SETTINGS, shard_size=SHARD, jobs=2, progress=False)
    return out


def expected(path: Path, settings: Settings = SETTINGS) -> SparseDCT:
    """The list for one file, computed without dataset.py's code path."""
    im = Image.open(path).convert(settings.mode)
    w, h = im.size
    if max(w, h) != settings.long_side:
        k = settings.long_side / max(w, h)
        im = im.resize((max(1, round(w * k)), max(1, round(h * k))), Image.Resampling.LANCZOS, reducing_gap=None)
    return dctsparse.encode(
        np.asarray(im), block_size=settings.block_size, quality=settings.quality, subsampling=settings.subsampling
    )


def test_contents(src, reference):
    ds = dctsparse.Dataset(reference)
    files = dataset.list_images(src)
    assert len(files) == 11 and "readme.txt" not in files
    good = [f for f in files if f != "nested/broken.jpg"]
    assert ds.names == good and len(ds) == 10
    m = json.loads((reference / "manifest.json").read_text())
    assert m["complete"] and m["images"] == 10 and m["num_shards"] == 4
    assert [s["images"] for s in m["shards"]] == [3, 2, 3, 2]  # broken.jpg is file 4: shard 1
    assert m["skipped"] == [
        {"path": "nested/broken.jpg", "error": "UnidentifiedImageError: cannot identify image file"}
    ]
    assert m["tokens"] == sum(len(ds.tokens(i)) for i in range(len(ds)))
    for i, name in enumerate(good):
        s = ds[i]
        assert max(s.height, s.width) == 48
        assert (s.height, s.width) == tuple(ds.sizes[i])
        if not name.endswith(".jpg"):  # libjpeg's draft mode decodes JPEGs differently
            assert s == expected(src / name), name
        else:
            ref = expected(src / name)
            assert (s.height, s.width) == (ref.height, ref.width)
    assert ds[-1] == ds[len(ds) - 1] and ds[1:3] == [ds[1], ds[2]]
    with pytest.raises(IndexError):
        ds[10]
    assert len(list(ds)) == 10


def test_shards_are_memory_mapped(reference):
    ds = dctsparse.Dataset(reference)
    t = ds.tokens(4)
    assert t.dtype == np.int32 and t.ndim == 2 and t.shape[1] == 3
    assert isinstance(t.base, np.memmap) or isinstance(t, np.memmap)
    assert tuple(t[-1]) == (192, 0, 0)  # every image ends with its stop token
    offsets = np.load(reference / "shard-00001" / "offsets.npy", mmap_mode="r")
    tokens = np.load(reference / "shard-00001" / "tokens.npy", mmap_mode="r")
    assert offsets.dtype == np.int64 and offsets[0] == 0 and offsets[-1] == len(tokens)
    np.testing.assert_array_equal(tokens[offsets[1] : offsets[2]], ds.tokens(4))


def test_resize_rules():
    s = Settings(long_side=100)
    assert dataset.resized_size(400, 200, s) == (100, 50)
    assert dataset.resized_size(3, 1000, s) == (1, 100)
    assert dataset.resized_size(50, 20, s) == (100, 40)
    assert dataset.resized_size(50, 20, Settings(long_side=100, upscale=False)) == (50, 20)
    assert dataset.resized_size(50, 20, Settings(long_side=None)) == (50, 20)


def test_settings_are_validated():
    with pytest.raises(ValueError, match="quality"):
        Settings(quality=0)
    with pytest.raises(ValueError, match="long_side"):
        Settings(long_side=-5)
    with pytest.raises(ValueError, match="mode"):
        Settings(mode="CMYK")
    with pytest.raises(ValueError, match="all 192 channels"):
        Settings(order=[0, 1])


def _digest(args):
    data, settings = args
    tokens, h, w = encode_image(data, settings)
    return tokens.tobytes(), h, w


def test_encode_image_is_pure(src):
    """Same (bytes, settings) -> same tokens, in this process, after other work, and
    in a fresh interpreter; no file system access needed; settings matter."""
    data = (src / "cat_flip.jpg").read_bytes()
    first = encode_image(data, SETTINGS)
    encode_image((src / "cat.png").read_bytes(), Settings(block_size=16, long_side=200))
    again = encode_image(bytes(bytearray(data)), SETTINGS)
    np.testing.assert_array_equal(first[0], again[0])
    assert first[1:] == again[1:] == (32, 48)
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        remote = pool.map(_digest, [(data, SETTINGS)])[0]
    assert remote == (first[0].tobytes(), 32, 48)
    other = encode_image(data, Settings(block_size=8, quality=30, long_side=48))
    assert len(other[0]) < len(first[0])
    t, h, w = first
    s = SparseDCT.from_tokens(t, height=h, width=w, **SETTINGS.header())
    assert len(s) == len(t) - 1
    with pytest.raises(OSError):
        encode_image(b"nope", SETTINGS)


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("abort_after,half_written", [(4, False), (6, True)])
def test_kill_and_resume(src, reference, tmp_path, abort_after, half_written):
    """A run hard-killed part-way (os._exit, no cleanup) leaves only whole shards
    visible; the resumed run keeps them and ends byte-identical to an uninterrupted one."""
    out = tmp_path / "ds"
    env = dict(os.environ, **{dataset._ABORT_ENV: str(abort_after)})
    cmd = [
        sys.executable,
        "-m",
        "dctsparse",
        "encode-dataset",
        str(src),
        str(out),
        "-q",
        "70",
        "--long-side",
        "48",
        "--shard-size",
        str(SHARD),
        "-j",
        "2",
    ]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 3, r.stderr
    visible = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    assert visible == ["manifest.json", "shard-00000"]  # shard 1 was in progress
    temps = [p for p in out.iterdir() if p.name.startswith(".shard-")]
    assert bool(temps) == half_written  # killed while writing shard 1 (images 3..5)
    with pytest.raises(ValueError, match="incomplete"):
        dctsparse.Dataset(out)
    kept = (out / "shard-00000" / "tokens.npy").stat()

    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "10 images" in r.stdout
    again = (out / "shard-00000" / "tokens.npy").stat()
    assert (again.st_ino, again.st_mtime_ns) == (kept.st_ino, kept.st_mtime_ns)  # not redone
    assert _files(out) == _files(reference)
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_in_process_interrupt_and_resume(src, reference, tmp_path, monkeypatch):
    out = tmp_path / "ds"
    calls = {"n": 0}
    real = dataset.write_shard

    def flaky(*args, **kw):  # an exception (e.g. KeyboardInterrupt) while writing shard 2
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*args, **kw)

    monkeypatch.setattr(dataset, "write_shard", flaky)
    with pytest.raises(KeyboardInterrupt):
        encode_dataset(src, out, SETTINGS, shard_size=SHARD, jobs=1, progress=False)
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "shard-00000", "shard-00001"]
    monkeypatch.setattr(dataset, "write_shard", real)
    encode_dataset(src, out, SETTINGS, shard_size=SHARD, jobs=1, progress=False)
    assert _files(out) == _files(reference)  # serial == parallel, resumed == uninterrupted


def test_resume_refuses_other_settings(src, reference, tmp_path):
    out = tmp_path / "ds"
    encode_dataset(src, out, SETTINGS, shard_size=SHARD, jobs=1, progress=False)
    with pytest.raises(ValueError, match="other settings"):
        encode_dataset(src, out, Settings(quality=71, long_side=48), shard_size=SHARD, jobs=1, progress=False)
    with pytest.raises(ValueError, match="other settings"):
        encode_dataset(src, out, SETTINGS, shard_size=4, jobs=1, progress=False)


def test_write_shard_directly_and_read_back(tmp_path):
    """write_shard is the sink for distributed runs (Beam/Dask/Ray): one call per shard."""
    img = natural_image("coffee")[:40, :60]
    toks = [dctsparse.encode(img).tokens(), dctsparse.encode(img[:, :30]).tokens()]
    st = Settings(long_side=None)
    entry = dataset.write_shard(tmp_path, 0, toks, [(40, 60), (40, 30)], ["a", "b"], settings=st)
    assert entry == {"name": "shard-00000", "images": 2, "tokens": len(toks[0]) + len(toks[1]), "skipped": 0}
    t = np.load(tmp_path / "shard-00000" / "tokens.npy")
    np.testing.assert_array_equal(t, np.concatenate(toks))
    meta = json.loads((tmp_path / "shard-00000" / "meta.json").read_text())
    assert meta == {"names": ["a", "b"], "skipped": [], "settings": st.to_json()}


def test_dataset_errors(tmp_path):
    with pytest.raises(ValueError, match="not an encoded dataset"):
        dctsparse.Dataset(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(ValueError, match="manifest"):
        dctsparse.Dataset(tmp_path)
    with pytest.raises(ValueError, match="does not exist"):
        encode_dataset(tmp_path / "missing", tmp_path / "out")


# ---------------------------------------------------------------- lying datasets (issue 19)
#
# Each case edits a copy of the reference dataset (4 shards of 3, 2, 3, 2 images; shard 1
# holds items 3 and 4 and lists nested/broken.jpg as skipped) the way a bug, a bad copy or
# a hand edit would. Before issue 19 every case but the empty tokens.npy opened, and most
# read wrong images or tokens without an error.


def _edit_npy(path: Path, fn) -> None:
    np.save(path, fn(np.load(path)))


def _edit_json(path: Path, fn) -> None:
    obj = json.loads(path.read_text())
    fn(obj)
    path.write_text(json.dumps(obj))


def _shift_inside(o):
    o = o.copy()
    o[1] += 1  # item 3 ends a row late, item 4 starts a row late
    return o


def _outside(d: Path) -> None:
    (d.parent / "other").mkdir()
    shutil.copytree(d / "shard-00001", d.parent / "other" / "shard-00001")
    _edit_json(d / "manifest.json", lambda m: m["shards"][1].update(name="../other/shard-00001"))


def _listed_twice(m):
    m["shards"].append(dict(m["shards"][0]))
    m["num_shards"] += 1  # a consistent lie: only the repeat gives it away


S1 = "shard shard-00001"
LIES_ON_OPEN = {
    "offsets shifted by one": (
        lambda d: _edit_npy(d / "shard-00001/offsets.npy", lambda o: o + 1),
        f"{S1}/offsets.npy: the first offset is 1, not 0",
    ),
    "offsets out of order": (
        lambda d: _edit_npy(d / "shard-00001/offsets.npy", lambda o: o[[0, 2, 1]]),
        f"{S1}/offsets.npy: offsets are not increasing at item 4 \\(entry 1 of the shard: ",
    ),
    "offsets entry added": (
        lambda d: _edit_npy(d / "shard-00001/offsets.npy", lambda o: np.insert(o, 1, o[1] // 2)),
        f"{S1}/offsets.npy: items: 3, but sizes.npy, meta.json, manifest.json say 2",
    ),
    "offsets entry dropped": (
        lambda d: _edit_npy(d / "shard-00001/offsets.npy", lambda o: np.delete(o, 1)),
        f"{S1}/offsets.npy: items: 1, but sizes.npy, meta.json, manifest.json say 2",
    ),
    "sizes entry added": (
        lambda d: _edit_npy(d / "shard-00001/sizes.npy", lambda s: np.concatenate([s, s[:1]])),
        f"{S1}/sizes.npy: items: 3, but offsets.npy, meta.json, manifest.json say 2",
    ),
    "sizes entry dropped": (
        lambda d: _edit_npy(d / "shard-00001/sizes.npy", lambda s: s[1:]),
        f"{S1}/sizes.npy: items: 1, but",
    ),
    "sizes doubled": (
        lambda d: _edit_npy(d / "shard-00001/sizes.npy", lambda s: s * 2),
        f"{S1}/sizes.npy: item 3 \\(entry 0 of the shard\\) is 96x96, but the settings resize the long side to 48",
    ),
    "shard listed twice": (
        lambda d: _edit_json(d / "manifest.json", _listed_twice),
        "manifest.json: shard shard-00000 is listed twice \\(entries 0 and 4\\)",
    ),
    "settings edited in manifest.json": (
        lambda d: _edit_json(d / "manifest.json", lambda m: m["settings"].update(quality=90)),
        "shard shard-00000/meta.json: settings differ from manifest.json's: quality 70 here, 90 there",
    ),
    "shard outside the folder": (_outside, "manifest.json: shard entry 1 is named '../other/shard-00001'"),
    "meta.json missing a name": (
        lambda d: _edit_json(d / "shard-00001/meta.json", lambda m: m["names"].pop(1)),
        f"{S1}/meta.json: items: 1, but offsets.npy, sizes.npy, manifest.json say 2",
    ),
    "meta.json with another name": (
        lambda d: _edit_json(d / "shard-00001/meta.json", lambda m: m["names"].__setitem__(1, "nested/other.png")),
        "manifest.json: the image names in the shards' meta.json files are not the source listing",
    ),
    "name in none of the classes": (
        lambda d: _edit_json(d / "manifest.json", lambda m: m.update(classes=["nested"])),
        "shard shard-00000/meta.json: item 0 \\(entry 0 of the shard\\) is 'astro.webp', which "
        "is in none of the manifest's classes",
    ),
    "empty tokens.npy": (
        lambda d: (d / "shard-00001/tokens.npy").write_bytes(b""),
        f"{S1}/tokens.npy: cannot be read as a .npy array \\(EOFError",
    ),
    "offsets of another dtype": (
        lambda d: _edit_npy(d / "shard-00001/offsets.npy", lambda o: o.astype(np.int32)),
        f"{S1}/offsets.npy: has dtype int32, expected int64 \\(n,\\)",
    ),
    "tokens of another shape": (
        lambda d: _edit_npy(d / "shard-00001/tokens.npy", lambda t: t[:, :2]),
        f"{S1}/tokens.npy: has shape \\(\\d+, 2\\), expected \\(n, 3\\)",
    ),
    "rows appended to tokens.npy": (
        lambda d: _edit_npy(d / "shard-00001/tokens.npy", lambda t: np.concatenate([t, t[:1]])),
        f"{S1}/tokens.npy: token rows: \\d+, but offsets.npy, manifest.json say",
    ),
    "sizes.npy missing": (lambda d: (d / "shard-00001/sizes.npy").unlink(), f"{S1}/sizes.npy: is missing"),
}


@pytest.fixture
def lying(reference, tmp_path):
    """lying(edit) -> a copy of the reference dataset with edit(path) applied."""

    def make(edit):
        d = tmp_path / "ds"
        shutil.copytree(reference, d)
        edit(d)
        return d

    return make


@pytest.mark.parametrize("case", LIES_ON_OPEN)
def test_lying_dataset_is_refused_on_open(lying, case):
    edit, match = LIES_ON_OPEN[case]
    d = lying(edit)
    with pytest.raises(ValueError, match=match) as err:
        dctsparse.Dataset(d)
    assert str(err.value).startswith(f"dataset {d}: ")


def test_offset_moved_inside_a_shard_is_refused_per_item(lying, reference):
    """Still increasing and ending at len(tokens): opening cannot tell (it reads no token
    rows); both items at the moved boundary can, through ds[i] and ds.tokens(i)."""
    d = lying(lambda d: _edit_npy(d / "shard-00001/offsets.npy", _shift_inside))
    ds, ref = dctsparse.Dataset(d), dctsparse.Dataset(reference)
    ends = (
        f"dataset {d}: {S1}/tokens.npy: item 3 \\(entry 0 of the shard, rows 0:\\d+ per "
        "offsets.npy\\) does not end with the stop token \\(192, 0, 0\\)"
    )
    follows = f"{S1}/tokens.npy: item 4 .* does not follow a stop token"
    for read in (ds.__getitem__, ds.tokens):
        with pytest.raises(ValueError, match=ends):
            read(3)
        with pytest.raises(ValueError, match=follows):
            read(4)
    for i in (0, 2, 5, 9):  # the other items read as before
        assert ds[i] == ref[i]
        np.testing.assert_array_equal(ds.tokens(i), ref.tokens(i))


def _set_token(d: Path, shard: str, entry: int, row: int, column: int, value: int) -> None:
    """Sets one number of a token of one image, rows counted from the image's first."""
    o = np.load(d / shard / "offsets.npy")
    t = np.load(d / shard / "tokens.npy")
    t[o[entry] + row, column] = value
    np.save(d / shard / "tokens.npy", t)


def test_invalid_triple_is_refused_per_item(lying):
    """A position past the blocks of item 4 (small.bmp, 5x9 -> 27x48): the codec's
    validator, named by the dataset's file and item, through ds[i] and ds.tokens(i)."""
    d = lying(lambda d: _set_token(d, "shard-00001", 1, 2, 1, 10_000))
    ds = dctsparse.Dataset(d)
    match = (
        f"{S1}/tokens.npy: item 4 \\(entry 1 of the shard, rows \\d+:\\d+ per offsets.npy, "
        "27x48 per sizes.npy\\): triple 2: position 10000 is out of range"
    )
    for read in (ds.__getitem__, ds.tokens):
        with pytest.raises(ValueError, match=match):
            read(4)
    ds.tokens(3)


def test_good_dataset_records_its_settings_in_every_shard(reference):
    m = json.loads((reference / "manifest.json").read_text())
    assert m["version"] == 2
    for sh in m["shards"]:
        meta = json.loads((reference / sh["name"] / "meta.json").read_text())
        assert meta["settings"] == m["settings"] == SETTINGS.to_json()


def test_version_1_dataset_still_opens(reference, lying):
    """Datasets written before issue 19 have no settings in meta.json: they open and read
    the same (every other check still applies)."""

    def to_v1(d):
        _edit_json(d / "manifest.json", lambda m: m.update(version=1))
        for meta in d.glob("shard-*/meta.json"):
            _edit_json(meta, lambda m: m.pop("settings"))

    ds, ref = dctsparse.Dataset(lying(to_v1)), dctsparse.Dataset(reference)
    assert len(ds) == len(ref) and ds.names == ref.names
    assert list(ds) == list(ref)
    assert (ds.labels == ref.labels).all() and ds.classes == ref.classes == []


def test_verify_dataset_good(reference, capsys):
    assert cli.main(["verify-dataset", str(reference)]) == 0
    out, err = capsys.readouterr()
    assert out == f"{reference}: 10 images in 4 shards checked, 0 problems\n"
    assert "verify-dataset [" in err and "10/10 img" in err  # progress, as encode-dataset's


def test_verify_dataset_damaged(lying, capsys):
    """Every problem is one line; a shard that does not open is one problem and its images
    go unchecked; the summary counts what was checked; exit status 1, no traceback."""

    def edit(d):
        _edit_npy(d / "shard-00001/offsets.npy", _shift_inside)
        _edit_json(d / "shard-00003/meta.json", lambda m: m["settings"].update(quality=71))

    d = lying(edit)
    assert cli.main(["verify-dataset", str(d), "--quiet"]) == 1
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert out == "" and "Traceback" not in err and len(lines) == 4
    assert lines[0].startswith(f"dctsparse: error: dataset {d}: shard shard-00003/meta.json: settings differ")
    assert f"{S1}/tokens.npy: item 3 " in lines[1] and f"{S1}/tokens.npy: item 4 " in lines[2]
    assert lines[3] == f"dctsparse: error: {d}: 8 images in 4 shards checked, 3 problems"
    r = dataset.verify_dataset(d, progress=False)
    assert (r["items"], r["shards"], len(r["problems"])) == (8, 4, 3)


def test_verify_dataset_reaches_what_opening_cannot(reference, lying):
    """A token deep inside an image (its value set to 0, which no list holds): opening and
    the other images are fine, verify names the image."""
    d = lying(lambda d: _set_token(d, "shard-00002", 2, 7, 2, 0))
    dctsparse.Dataset(d)
    r = dataset.verify_dataset(d, progress=False)
    assert r["items"] == 10 and len(r["problems"]) == 1
    assert "shard shard-00002/tokens.npy: item 7 (entry 2 of the shard" in r["problems"][0]
    assert "value 0 is not a non-zero integer" in r["problems"][0]
