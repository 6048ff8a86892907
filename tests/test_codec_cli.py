"""The command line (in-process through main(argv), and as a real process) and
the Pillow plugin."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import dctsparse
from dctsparse import cli
from helpers import natural_image

IMG = np.ascontiguousarray(natural_image("chelsea")[:70, :90])


def run_cli(*args, **kw):
    return subprocess.run(
        [sys.executable, "-m", "dctsparse", *map(str, args)], capture_output=True, text=True, timeout=120, **kw
    )


@pytest.fixture
def png(tmp_path) -> Path:
    p = tmp_path / "cat.png"
    Image.fromarray(IMG).save(p)
    return p


# ------------------------------------------------------------------ Pillow plugin


def test_pillow_open_and_save(tmp_path):
    s = dctsparse.encode(IMG, block_size=16, quality=60, subsampling="4:4:4")
    dctsparse.save(s, tmp_path / "a.dcts")
    with Image.open(tmp_path / "a.dcts") as im:
        assert im.format == "DCTS" and im.mode == "RGB" and im.size == (90, 70)
        assert im.info["quality"] == 60 and im.info["block_size"] == 16
        assert im.info["count"] == len(s)
        np.testing.assert_array_equal(np.asarray(im), dctsparse.decode(s))
    Image.fromarray(IMG).save(tmp_path / "b.dcts", quality=60, block_size=16, subsampling=0)
    assert dctsparse.load(tmp_path / "b.dcts") == s
    # by format name into a file object, greyscale
    buf = io.BytesIO()
    Image.fromarray(IMG[..., 0]).save(buf, format="DCTS")
    buf.seek(0)
    with Image.open(buf) as im:
        assert im.mode == "L" and im.info["quality"] == 75 and im.info["subsampling"] == "4:2:0"
        np.testing.assert_array_equal(np.asarray(im), dctsparse.decode(dctsparse.encode(IMG[..., 0])))
    assert Image.registered_extensions()[".dcts"] == "DCTS"
    assert Image.MIME["DCTS"] == "image/x-dcts"


def test_pillow_errors(tmp_path):
    rgba = Image.fromarray(IMG).convert("RGBA")
    with pytest.raises(ValueError, match="alpha"):
        rgba.save(tmp_path / "x.dcts")
    rgba.save(tmp_path / "x.dcts", drop_alpha=True)
    assert Image.open(tmp_path / "x.dcts").mode == "RGB"
    with pytest.raises(ValueError, match="subsampling"):
        Image.fromarray(IMG).save(tmp_path / "y.dcts", subsampling=1)
    data = (tmp_path / "x.dcts").read_bytes()
    with pytest.raises(ValueError, match="truncated"):
        Image.open(io.BytesIO(data[:-10]))
    with pytest.raises(ValueError, match="checksum"):
        Image.open(io.BytesIO(data[:60] + bytes([data[60] ^ 4]) + data[61:]))


# ------------------------------------------------------------------ in-process


def test_encode_decode_info(png, tmp_path, capsys):
    out = tmp_path / "c.dcts"
    assert (
        cli.main(
            [
                "encode",
                str(png),
                "-o",
                str(out),
                "-q",
                "60",
                "-b",
                "4",
                "--subsampling",
                "4:4:4",
                "--order",
                "luma_first",
                "--clip",
                "50",
            ]
        )
        == 0
    )
    expect = dctsparse.encode(IMG, block_size=4, quality=60, subsampling="4:4:4", order="luma_first", clip=50)
    assert dctsparse.load(out) == expect
    assert "90x70 RGB" in capsys.readouterr().out

    assert cli.main(["decode", str(out), "-o", str(tmp_path / "d.png"), "--prefix", "500"]) == 0
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "d.png")), dctsparse.decode(expect[:500]))
    assert cli.main(["decode", str(out), "--fraction", "1/4", "--quiet"]) == 0
    np.testing.assert_array_equal(
        np.asarray(Image.open(tmp_path / "c.png")), dctsparse.decode(expect[: round(len(expect) / 4)])
    )

    capsys.readouterr()
    assert cli.main(["info", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    size = out.stat().st_size
    assert info["count"] == len(expect) == sum(info["coefficients_per_plane"].values())
    planes = np.asarray(expect.channel) // 16
    assert info["coefficients_per_plane"] == {
        "Y": int((planes == 0).sum()),
        "Cb": int((planes == 1).sum()),
        "Cr": int((planes == 2).sum()),
    }
    assert info["bits_per_subpixel"] == pytest.approx(8 * size / (70 * 90 * 3))
    assert info["file_bytes"] == size and info["clip"] == 50 and info["order"] == "luma_first"
    assert cli.main(["info", str(out)]) == 0
    text = capsys.readouterr().out
    assert "bits per subpixel" in text and f"{len(expect)}" in text


def test_encode_many_and_default_names(tmp_path, png):
    other = tmp_path / "grey.png"
    Image.fromarray(IMG[..., 1]).save(other)
    assert cli.main(["encode", str(png), str(other), "--quiet"]) == 0
    assert dctsparse.load(tmp_path / "grey.dcts") == dctsparse.encode(IMG[..., 1])
    assert dctsparse.load(tmp_path / "cat.dcts") == dctsparse.encode(IMG)


def test_preview(tmp_path, png, capsys):
    dctsparse.save(dctsparse.encode(IMG, block_size=8), tmp_path / "p.dcts")
    strip, heat = tmp_path / "s.png", tmp_path / "h.png"
    assert (
        cli.main(
            [
                "preview",
                str(tmp_path / "p.dcts"),
                "-o",
                str(strip),
                "--heatmap",
                str(heat),
                "--fractions",
                "0",
                "1/2",
                "1",
            ]
        )
        == 0
    )
    a = np.asarray(Image.open(strip))
    assert a.shape == (70, 3 * 90 + 2 * 4, 3)
    s = dctsparse.encode(IMG)
    np.testing.assert_array_equal(a[:, -90:], dctsparse.decode(s))
    np.testing.assert_array_equal(a[:, 94:184], dctsparse.decode(s[: round(len(s) / 2)]))
    assert np.all(a[:, :90] == 128)
    h = np.asarray(Image.open(heat))
    assert h.shape[0] >= 70 and h.shape[2] == 3
    # an image input is encoded with the given settings first; default output names
    assert cli.main(["preview", str(png), "-b", "16", "--quiet"]) == 0
    assert (tmp_path / "cat_preview.png").exists() and (tmp_path / "cat_heatmap.png").exists()


def test_convert_folder_both_ways(tmp_path, capsys):
    src = tmp_path / "src"
    (src / "a" / "b").mkdir(parents=True)
    Image.fromarray(IMG).save(src / "one.png")
    Image.fromarray(IMG[:40]).save(src / "a" / "two.jpg", quality=95)
    Image.fromarray(IMG[..., 2]).save(src / "a" / "b" / "three.webp", lossless=True)
    (src / "notes.txt").write_text("not an image")
    dst = tmp_path / "dst"
    assert cli.main(["convert", str(src), str(dst), "-q", "50", "-j", "2"]) == 0
    got = sorted(p.relative_to(dst).as_posix() for p in dst.rglob("*") if p.is_file())
    assert got == ["a/b/three.dcts", "a/two.dcts", "one.dcts"]
    assert dctsparse.load(dst / "one.dcts") == dctsparse.encode(IMG, quality=50)
    webp = Image.open(src / "a" / "b" / "three.webp")  # Pillow reads WebP back as RGB
    assert dctsparse.load(dst / "a/b/three.dcts") == dctsparse.encode(webp, quality=50)
    assert "converted 3" in capsys.readouterr().out
    # a second run skips finished files
    assert cli.main(["convert", str(src), str(dst), "-j", "1"]) == 0
    assert "skipped 3" in capsys.readouterr().out
    back = tmp_path / "back"
    assert cli.main(["convert", str(dst), str(back), "--to", "png", "--quiet"]) == 0
    np.testing.assert_array_equal(
        np.asarray(Image.open(back / "one.png")), dctsparse.decode(dctsparse.encode(IMG, quality=50))
    )


def test_convert_reports_bad_files(tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    Image.fromarray(IMG).save(src / "good.png")
    (src / "bad.png").write_bytes(b"\x89PNG not really")
    assert cli.main(["convert", str(src), str(tmp_path / "dst"), "-j", "1", "--quiet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert any("bad.png" in e for e in err) and err[-1] == "dctsparse: error: 1 of 2 files failed"
    assert (tmp_path / "dst" / "good.dcts").exists()
    assert not list((tmp_path / "dst").glob("*tmp*"))


def test_convert_interrupted_leaves_only_finished_files(tmp_path, monkeypatch, capsys):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("a", "b", "c"):
        Image.fromarray(IMG).save(src / f"{name}.png")
    real_save, calls = dctsparse.container.save, []

    def save_then_ctrl_c(s, path):
        calls.append(path)
        real_save(s, path)
        if len(calls) == 2:  # the second file is written, then Ctrl-C before it is renamed
            raise KeyboardInterrupt

    monkeypatch.setattr(dctsparse.container, "save", save_then_ctrl_c)
    dst = tmp_path / "dst"
    assert cli.main(["convert", str(src), str(dst), "-j", "1", "--quiet"]) == 130
    assert "interrupted" in capsys.readouterr().err
    assert sorted(p.name for p in dst.iterdir()) == ["a.dcts"]  # no b.dcts.tmp-PID
    monkeypatch.setattr(dctsparse.container, "save", real_save)
    assert cli.main(["convert", str(src), str(dst), "-j", "1"]) == 0  # the rerun finishes the rest
    out = capsys.readouterr().out
    assert "converted 2 files" in out and "skipped 1 already there" in out
    assert sorted(p.name for p in dst.iterdir()) == ["a.dcts", "b.dcts", "c.dcts"]


def test_bench(tmp_path, png, capsys):
    assert cli.main(["bench", str(png), "-q", "50", "90", "--repeat", "1", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["quality"] for r in rows] == [50, 90]
    for r in rows:
        assert r["dcts_bytes"] == len(dctsparse.encode(IMG, quality=r["quality"]).to_bytes())
        assert r["ratio"] == pytest.approx(r["dcts_bytes"] / r["jpeg_bytes"])
        assert r["encode_mb_s"] > 0 and r["decode_mb_s"] > 0
    assert rows[0]["dcts_bytes"] < rows[1]["dcts_bytes"]
    assert cli.main(["bench", str(png), "--repeat", "1"]) == 0
    assert "ratio" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv,match",
    [
        (["decode", "missing.dcts"], "No such file"),
        (["info", "CORRUPT"], "checksum"),
        (["info", "PNG"], "not a .dcts file"),
        (["encode", "PNG", "-q", "0"], "quality"),
        (["encode", "PNG", "-b", "99"], "block_size"),
        (["encode", "PNG", "PNG", "-o", "x.dcts"], "single input"),
        (["decode", "GOOD", "--prefix", "3", "--fraction", "0.5"], "not both"),
        (["convert", "missing_dir", "out"], "does not exist"),
        (["bench", "no_such_sample"], "neither a file"),
        (["encode-dataset", "missing_dir", "out"], "does not exist"),
    ],
)
def test_errors_are_one_line(argv, match, tmp_path, png, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    good = tmp_path / "good.dcts"
    dctsparse.save(dctsparse.encode(IMG), good)
    data = bytearray(good.read_bytes())
    data[50] ^= 1
    (tmp_path / "CORRUPT").write_bytes(bytes(data))
    argv = [{"PNG": str(png), "GOOD": str(good)}.get(a, a) for a in argv]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("dctsparse: error: ")
    assert match in err


def test_real_process(tmp_path, png):
    r = run_cli("--help")
    assert r.returncode == 0
    for cmd in ("encode", "decode", "info", "preview", "convert", "bench", "encode-dataset", "verify-dataset", "demo"):
        assert cmd in r.stdout
    r = run_cli("encode", png, "-o", tmp_path / "x.dcts")
    assert r.returncode == 0, r.stderr
    r = run_cli("decode", tmp_path / "x.dcts", "-o", tmp_path / "x.png")
    assert r.returncode == 0, r.stderr
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "x.png")), dctsparse.decode(dctsparse.encode(IMG)))
    r = run_cli("info", tmp_path / "missing.dcts")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.strip().count("\n") == 0
    r = run_cli("encode")  # usage error: argparse's status 2 and its usage line
    assert r.returncode == 2 and "usage:" in r.stderr
    r = run_cli("decode", "--help")
    assert r.returncode == 0 and "--fraction" in r.stdout


def test_console_script(tmp_path, png):
    exe = shutil.which("dctsparse", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("the dctsparse console script is not installed in this environment")
    r = subprocess.run([exe, "info", "--json", str(tmp_path / "nope.dcts")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and r.stderr.startswith("dctsparse: error:")
