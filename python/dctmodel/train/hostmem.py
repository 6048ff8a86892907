"""Host memory for CPU training: glibc's malloc on transparent huge pages.

Why: XLA:CPU allocates each step's temporaries afresh, one block per device
and call (``small`` on two devices: ~130 MB each).  glibc serves a block that
large from a thread's arena by ``mmap`` and gives it back with ``munmap`` when
the step ends, whatever ``mallopt`` says (an arena other than the main one
cannot hold a block over 64 MB), so every step touches ~270 MB of new 4 KB
pages: 67 000 page faults, ~16% of ``small``'s step.  With the tunable
``glibc.malloc.hugetlb=1`` (glibc >= 2.35) malloc asks the kernel for 2 MB
pages on those blocks (``madvise(MADV_HUGEPAGE)``), and the faults fall to
~1 000 (docs/dctmodel.md, "Measured figures").

A glibc tunable is read once, when the process starts, so the trainer's
command line starts itself again with it set (:func:`reexec_with_hugepages`),
before anything is imported that allocates.  ``mallopt``'s alternatives are
worse: one arena for every thread (``M_ARENA_MAX=1``) removes the faults too
but serialises XLA's small allocations, and ``tiny``'s step then takes 1.4x
(one device) to 2.4x (two devices) as long.
"""

from __future__ import annotations

import os
import sys

TUNABLE = "glibc.malloc.hugetlb"
OPT_OUT = "DCTMODEL_HUGEPAGES"  # "0": leave malloc as it is


def glibc_version() -> tuple[int, int] | None:
    """``(major, minor)`` of the C library when it is glibc, else None."""
    try:
        text = os.confstr("CS_GNU_LIBC_VERSION")  # "glibc 2.36"
    except (AttributeError, ValueError, OSError):  # not POSIX, or no such name here
        return None
    name, _, version = (text or "").partition(" ")
    if name != "glibc":
        return None
    try:
        major, minor = version.split(".")[:2]
        return int(major), int(minor)
    except ValueError:
        return None


def hugepage_env(environ) -> dict | None:
    """The environment to start again with, or None where it would change nothing: not glibc
    >= 2.35 on Linux, the user set ``glibc.malloc.hugetlb`` already (any value is theirs to
    choose), or ``DCTMODEL_HUGEPAGES=0``."""
    if not sys.platform.startswith("linux") or environ.get(OPT_OUT, "1") == "0":
        return None
    version = glibc_version()
    if version is None or version < (2, 35):
        return None
    tunables = environ.get("GLIBC_TUNABLES", "")
    if TUNABLE in tunables:
        return None
    return dict(environ, GLIBC_TUNABLES=":".join(filter(None, (tunables, f"{TUNABLE}=1"))))


def reexec_with_hugepages() -> None:
    """Replaces this process with the same command line under :func:`hugepage_env` (same pid,
    arguments, interpreter options and working directory); returns where that changes
    nothing.  Call it first thing in a ``__main__``, never from library code: everything the
    process did before is lost."""
    env = hugepage_env(os.environ)
    if env is not None:
        restart(env)


def restart(env: dict) -> None:
    """Replaces this process with its own command line under ``env`` (same pid, arguments,
    interpreter options and working directory); returns where the command line is unknown
    (an embedded interpreter)."""
    if not sys.executable or not getattr(sys, "orig_argv", None):
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)
