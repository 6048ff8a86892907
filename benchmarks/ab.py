"""A/B speed of two builds of the C++ core, each against libjpeg-turbo.

    python -m benchmarks.ab --build-rev HEAD~1          # build that commit, compare with the installed one
    python -m benchmarks.ab --build-rev HEAD --build-tree   # HEAD against the working tree, same flags
    python -m benchmarks.ab OLD.so NEW.so --rounds 5    # two builds you already have
    python -m benchmarks.ab --levels avx2,avx512        # one build, two SIMD levels

Two builds of ``dctsparse._core`` cannot be compared in one process: the
second import hands back the first module. So each build is timed in its own
child process, the processes alternate for ``--rounds`` rounds, and each child
also times libjpeg-turbo (simplejpeg, or Pillow without it) so that its figures
are ratios taken under the same machine conditions. The report is the median
ratio per build over the rounds: read the change in ratio, not in MP/s.

``--build-rev`` checks the revision out into a git worktree under
``build/ab/`` and builds it with CMake (Release, same flags as the wheel);
``--build-tree`` builds the working tree the same way, for B.
``--levels A,B`` times one build (the installed one, the one given, or
``--build-tree``'s) at two SIMD levels (``DCTSPARSE_SIMD`` in each child). Compare builds
made the same way: an editable install built with other options (symbols
kept, test levels) can differ by a few per cent on its own.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def load_core(so: str):
    """Imports dctsparse with its _core taken from the shared object `so`."""
    spec = importlib.util.spec_from_file_location("dctsparse._core", so)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["dctsparse._core"] = mod
    spec.loader.exec_module(mod)
    import dctsparse
    import dctsparse.codec

    # The package's own modules bind _core from sys.modules; the package
    # attribute is set only by a real import, so set it too.
    assert dctsparse.codec._core is mod, "dctsparse was imported before its _core could be replaced"
    dctsparse._core = mod
    return dctsparse


def child(so: str, blocks: list[int], quality: int, reps: int, size: int) -> dict:
    dctsparse = load_core(so)
    forced = os.environ.get("DCTSPARSE_SIMD")
    # (_core.simd_level, not simd_info: older builds lack simd_stages)
    if forced and dctsparse._core.simd_level() != forced:
        raise SystemExit(f"DCTSPARSE_SIMD={forced} is not available: {list(dctsparse._core.simd_levels())}")
    from .codec import interleaved, peers
    from .images import tiled

    img = tiled(size)
    fns = {}
    for b in blocks:
        s = dctsparse.encode(img, block_size=b, quality=quality)
        fns[f"B{b} encode"] = lambda b=b: dctsparse.encode(img, block_size=b, quality=quality)
        fns[f"B{b} decode"] = lambda s=s: dctsparse.decode(s)
    peer = {k: v for k, v in peers(img, quality).items() if k.startswith("libjpeg")}
    name = "libjpeg-turbo (simplejpeg)" if "libjpeg-turbo (simplejpeg)" in peer else "libjpeg-turbo (Pillow)"
    fns["turbo encode"], fns["turbo decode"] = peer[name]
    t = interleaved(fns, reps)
    out = {}
    for b in blocks:
        for d in ("encode", "decode"):
            out[f"B{b} {d} / turbo"] = t[f"turbo {d}"] / t[f"B{b} {d}"]
    mp = img.shape[0] * img.shape[1] / 1e6
    out["B8 encode MP/s"] = mp / t["B8 encode"] if 8 in blocks else float("nan")
    out["B8 decode MP/s"] = mp / t["B8 decode"] if 8 in blocks else float("nan")
    out["turbo encode MP/s"] = mp / t["turbo encode"]
    out["turbo decode MP/s"] = mp / t["turbo decode"]
    return out


def build_rev(rev: str) -> str:
    """Builds revision `rev` in a worktree; returns the path of its _core."""
    sha = subprocess.check_output(["git", "rev-parse", "--short", rev], cwd=ROOT, text=True).strip()
    tree, build = ROOT / "build" / "ab" / f"src-{sha}", ROOT / "build" / "ab" / f"build-{sha}"
    if not tree.exists():
        subprocess.check_call(["git", "worktree", "add", "--detach", "-f", str(tree), sha], cwd=ROOT)
    return cmake_build(tree, build)


def cmake_build(tree: Path, build: Path) -> str:
    """Release build of the source tree `tree` in `build`; returns its _core."""
    import pybind11

    subprocess.check_call(
        [
            "cmake",
            "-S",
            str(tree),
            "-B",
            str(build),
            "-G",
            "Ninja",
            "-DCMAKE_BUILD_TYPE=Release",
            f"-DPython_EXECUTABLE={sys.executable}",
            f"-Dpybind11_DIR={pybind11.get_cmake_dir()}",
        ],
        stdout=subprocess.DEVNULL,
    )
    subprocess.check_call(["cmake", "--build", str(build)], stdout=subprocess.DEVNULL)
    (so,) = build.glob("_core*.so")
    return str(so)


def installed_core() -> str:
    """The _core that a plain `import dctsparse` would load (in a child, so
    this process stays free to load others)."""
    return subprocess.check_output(
        [sys.executable, "-c", "import dctsparse._core as c; print(c.__file__)"], text=True
    ).strip()


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("builds", nargs="*", help="paths of _core shared objects (A first)")
    ap.add_argument("--build-rev", help="build this git revision as A; B is the installed build")
    ap.add_argument(
        "--build-tree",
        action="store_true",
        help="the working tree, built as --build-rev builds (B with --build-rev; the build for --levels)",
    )
    ap.add_argument("--levels", help="A,B: one build at two SIMD levels (DCTSPARSE_SIMD per side)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--reps", type=int, default=7, help="repetitions per figure within a child")
    ap.add_argument("--blocks", default="8,16,32")
    ap.add_argument("--quality", type=int, default=75)
    ap.add_argument("--size", type=int, default=2048, help="side of the tiled test image")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    blocks = [int(b) for b in args.blocks.split(",")]
    if args.child:
        json.dump(child(args.child, blocks, args.quality, args.reps, args.size), sys.stdout)
        return {}

    builds = list(args.builds)
    if args.build_tree:
        builds = [cmake_build(ROOT, ROOT / "build" / "ab" / "build-worktree")]
    if args.build_rev:
        builds = [build_rev(args.build_rev)] + (builds or [installed_core()])
    levels = [None, None]
    if args.levels:
        levels = args.levels.split(",")
        if len(levels) != 2 or len(builds) > 1 or args.build_rev:
            ap.error("--levels takes A,B and at most one build")
        builds = (builds or [installed_core()]) * 2
    if len(builds) != 2:
        ap.error("give two builds, or --build-rev REV (and optionally one build), or --levels A,B")
    sides = list(zip("AB", builds, levels, strict=True))
    runs = {side: [] for side, _, _ in sides}
    for r in range(args.rounds):
        for side, so, level in sides:
            env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
            if level:
                env["DCTSPARSE_SIMD"] = level
            out = subprocess.check_output(
                [
                    sys.executable,
                    "-m",
                    "benchmarks.ab",
                    "--child",
                    so,
                    "--blocks",
                    args.blocks,
                    "--quality",
                    str(args.quality),
                    "--reps",
                    str(args.reps),
                    "--size",
                    str(args.size),
                ],
                cwd=ROOT,
                env=env,
                text=True,
            )
            runs[side].append(json.loads(out))
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
    med = {side: {k: statistics.median(run[k] for run in rs) for k in rs[0]} for side, rs in runs.items()}
    for side, so, level in sides:
        print(f"{side}: {so}" + (f" at DCTSPARSE_SIMD={level}" if level else ""))
    print(f"medians of {args.rounds} rounds (ratios against libjpeg-turbo in the same process)")
    print(f"{'':<24}{'A':>9}{'B':>9}{'B/A':>8}")
    a, b = med["A"], med["B"]
    for k in a:
        print(f"{k:<24}{a[k]:9.3f}{b[k]:9.3f}{b[k] / a[k]:8.3f}")
    return med


if __name__ == "__main__":
    main()
