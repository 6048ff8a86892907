"""dctmodel.train.hostmem: the trainer's command line starts itself again with glibc's malloc
on transparent huge pages, and only where that changes something."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dctmodel.train import hostmem

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def glibc_236(monkeypatch):
    monkeypatch.setattr(hostmem, "glibc_version", lambda: (2, 36))
    monkeypatch.setattr(hostmem.sys, "platform", "linux")


def test_env_adds_the_tunable_and_keeps_the_users(glibc_236):
    assert hostmem.hugepage_env({})["GLIBC_TUNABLES"] == "glibc.malloc.hugetlb=1"
    env = hostmem.hugepage_env({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2", "HOME": "/h"})
    assert env == {"GLIBC_TUNABLES": "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1", "HOME": "/h"}


@pytest.mark.parametrize(
    "environ",
    [
        {"GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"},  # the user's own choice, whatever its value
        {"GLIBC_TUNABLES": "glibc.malloc.hugetlb=1"},  # already started again: no loop
        {"DCTMODEL_HUGEPAGES": "0"},
    ],
)
def test_env_leaves_alone(glibc_236, environ):
    assert hostmem.hugepage_env(environ) is None


@pytest.mark.parametrize("version,platform", [((2, 34), "linux"), (None, "linux"), ((2, 36), "darwin")])
def test_env_only_where_glibc_has_the_tunable(monkeypatch, version, platform):
    monkeypatch.setattr(hostmem, "glibc_version", lambda: version)
    monkeypatch.setattr(hostmem.sys, "platform", platform)
    assert hostmem.hugepage_env({}) is None


def test_glibc_version_reads_confstr(monkeypatch):
    monkeypatch.setattr(hostmem.os, "confstr", lambda name: "glibc 2.41", raising=False)
    assert hostmem.glibc_version() == (2, 41)
    monkeypatch.setattr(hostmem.os, "confstr", lambda name: "musl 1.2", raising=False)
    assert hostmem.glibc_version() is None


def _run(code: str, **env) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k not in ("GLIBC_TUNABLES", "DCTMODEL_HUGEPAGES")}
    return subprocess.run(
        [sys.executable, "-c", code], env={**environ, **env}, capture_output=True, text=True, cwd=ROOT, check=True
    )


SCRIPT = """
import os
print("start", os.getpid(), flush=True)
from dctmodel.train.hostmem import reexec_with_hugepages
reexec_with_hugepages()
print("after", os.getpid(), os.environ.get("GLIBC_TUNABLES"))
"""


@pytest.mark.skipif(
    hostmem.hugepage_env({}) is None, reason="needs glibc >= 2.35 on Linux (the tunable does not exist elsewhere)"
)
def test_reexec_is_the_same_process_with_the_tunable():
    lines = _run(SCRIPT).stdout.split()
    # The script ran twice in one process (exec keeps the pid): once without, once with the tunable.
    pid = lines[1]
    assert lines == ["start", pid, "start", pid, "after", pid, "glibc.malloc.hugetlb=1"]


def test_no_reexec_when_opted_out():
    lines = _run(SCRIPT, DCTMODEL_HUGEPAGES="0").stdout.split()
    assert lines == ["start", lines[1], "after", lines[1], "None"]


def test_benchmark_heap_env():
    from benchmarks.model_train import heap_env

    mine = {"GLIBC_TUNABLES": "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1", "X": "1"}
    assert heap_env("default", mine) == {"GLIBC_TUNABLES": "glibc.malloc.arena_max=2", "X": "1"}
    assert heap_env("keep", {"GLIBC_TUNABLES": "glibc.malloc.hugetlb=1"}) == {}
    want = hostmem.hugepage_env({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"})
    got = heap_env("hugepages", {"GLIBC_TUNABLES": "glibc.malloc.arena_max=2", "DCTMODEL_HUGEPAGES": "0"})
    assert got == (want or {"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"})
