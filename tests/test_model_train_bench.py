"""benchmarks/model_train.py --ab: the A side really runs the old revision's code.

An editable install maps every module of the package to the working tree
ahead of sys.path, so PYTHONPATH alone left the A side on the working tree's
dctmodel; use_code_from must win over it (and fail loudly where it cannot)."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _child(code_root: Path, snippet: str) -> subprocess.CompletedProcess:
    # ROOT for the benchmarks package only: dctsparse must come from the installed
    # package (a fresh checkout's python/dctsparse has no compiled core).
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(code_root), str(ROOT)]))
    script = "from benchmarks.model_train import use_code_from\n" + snippet
    return subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, cwd=ROOT)


def test_old_code_root_wins_for_the_package_and_its_submodules(tmp_path):
    pkg = tmp_path / "python" / "dctmodel"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("MARK = 'old'\n")
    (pkg / "config.py").write_text("MARK = 'old config'\n")
    r = _child(
        tmp_path / "python",
        textwrap.dedent(f"""
            use_code_from({str(tmp_path / "python")!r})
            import dctmodel, dctmodel.config, dctsparse
            print(dctmodel.MARK, '|', dctmodel.config.MARK, '|', dctsparse.__name__)
        """),
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "old | old config | dctsparse"


def test_a_root_without_the_package_is_an_error(tmp_path):
    r = _child(tmp_path, f"use_code_from({str(tmp_path)!r})")
    assert r.returncode != 0
    assert "dctmodel" in r.stderr
