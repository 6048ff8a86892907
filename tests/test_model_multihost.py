"""dctmodel on several hosts, simulated on one machine: two JAX processes of two CPU devices each
(``jax.distributed`` on 127.0.0.1, gloo collectives) train like one process of four devices, and
checkpoints move between the two layouts.

Each run is a subprocess (the device count is fixed when JAX starts) executing this file as a
script: ``python test_model_multihost.py SPEC.json`` runs the jobs that SPEC lists and, on
process 0, writes each job's final parameters (gathered from every process) to an .npz.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time

import pytest

pytest.importorskip("jax")

import numpy as np

HERE = os.path.abspath(__file__)
STEPS, HALF = 6, 3
# Every run below uses this config (the LR schedule targets STEPS even in runs stopped at HALF):
# 4 devices as data=2 x model=2, so the big matrices are FSDP-sharded across the two processes.
SETS = {
    "train.model_axis": 2,
    "train.total_tokens": 8 * 32 * STEPS,
    "train.checkpoint_every": 2,
    "train.keep_checkpoints": 10,
    "train.log_every": 1,
    "train.prefetch": 1,
}
# Both layouts run the same program on the same data=2 x model=2 mesh; only how the gradient's
# partial sums and the FSDP gathers travel differs (in one process, or between two over gloo), so
# a sum may round differently in its last bit.  Adam turns that into larger differences on
# parameters whose gradients are near zero (relative differences there reach 5e3).  Measured on
# the 58,956 parameters: 4.7e-8 at most after 3 steps, 5.8e-7 after 6 (7% of them differ at all),
# while the steps 4 to 6 moved parameters by up to 4.6e-3.
RTOL, ATOL = 1e-5, 2e-6


# ---------------------------------------------------------------------------
# The subprocess
# ---------------------------------------------------------------------------


def _child(spec_path: str) -> None:
    with open(spec_path) as f:
        spec = json.load(f)
    from dctmodel.train import distributed

    jobs = spec["jobs"]
    # A command-line job joins the run itself (its --coordinator flags); otherwise the library does.
    if spec["num_processes"] > 1 and "argv" not in jobs[0]:
        distributed.initialize(spec["coordinator"], spec["num_processes"], spec["process_id"])

    import jax
    from jax.experimental import multihost_utils

    from dctmodel.config import get_config, override
    from dctmodel.train import main, train

    cfg = override(get_config("micro"), **SETS)
    for job in jobs:
        if "argv" in job:
            main(job["argv"])
            continue
        t0 = time.time()
        built: dict[int, list[int]] = {}  # step -> the batch rows this process built
        with _sigint_in(job.get("sigint"), spec["process_id"]), _rows_built(built):
            state, _ = train(
                cfg, job["workdir"], resume=job["resume"], stop_after=job["stop_after"], progress=False, do_eval=False
            )
        with open(f"{job['out']}.{spec['process_id']}.rows", "w") as f:
            json.dump({str(k): sorted(v) for k, v in built.items()}, f)
        if job.get("sigint"):  # every process says where it stopped
            with open(f"{job['out']}.{spec['process_id']}.step", "w") as f:
                f.write(str(int(jax.device_get(state["step"]))))
            continue
        # Every process takes part in the gather (a collective); process 0 writes.
        params = multihost_utils.process_allgather(state["params"], tiled=True)
        sharded = sum(not x.sharding.is_fully_replicated for x in jax.tree.leaves(state["params"]))
        if distributed.is_main():
            np.savez(job["out"], **_flat(params))
            info = {
                "step": int(jax.device_get(state["step"])),
                "process_count": jax.process_count(),
                "devices": len(jax.devices()),
                "local_devices": len(jax.local_devices()),
                "sharded_params": sharded,
                "seconds": time.time() - t0,
            }
            with open(job["out"] + ".json", "w") as f:
                json.dump(info, f)


@contextlib.contextmanager
def _rows_built(built: dict):
    """Records in ``built`` which rows of which step's batch this process builds."""
    import dctmodel.data as D

    saved = D.sample_row

    def counting(cfg, source, seed, step, row):
        built.setdefault(int(step), []).append(int(row))
        return saved(cfg, source, seed, step, row)

    D.sample_row = counting
    try:
        yield
    finally:
        D.sample_row = saved


@contextlib.contextmanager
def _sigint_in(sigint: dict | None, process_id: int):
    """With ``sigint = {"process": P, "batch": K}``: process P alone gets a Ctrl-C as the batch
    of step K reaches its training loop (the others get none)."""
    if not sigint or sigint["process"] != process_id:
        yield
        return
    import signal

    import dctmodel.train.loop as T

    class Interrupting(T.Prefetcher):
        def __iter__(self):
            for item in super().__iter__():
                if item[0] == sigint["batch"]:
                    os.kill(os.getpid(), signal.SIGINT)
                yield item

    saved, T.Prefetcher = T.Prefetcher, Interrupting
    try:
        yield
    finally:
        T.Prefetcher = saved


# ---------------------------------------------------------------------------
# The test
# ---------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(tmp_path, name: str, num_processes: int, jobs: list[dict], timeout: float = 300) -> tuple[float, list[str]]:
    """Runs ``jobs`` in ``num_processes`` processes of ``4 // num_processes`` CPU devices; returns
    the wall seconds and each process's output.  ``{coordinator}`` and ``{process_id}`` in a job's
    ``argv`` are filled in.  A failing or hung process fails the test with its output (the others
    are killed: they would wait for it until JAX's own timeouts, minutes later)."""
    # Compiling the train step is most of each run; without LLVM's optimisations it takes half
    # as long (16 s instead of 40 s on two busy cores), and every layout compiles alike.
    flags = f"--xla_force_host_platform_device_count={4 // num_processes} --xla_backend_optimization_level=0"
    env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=flags, JAX_COMPILATION_CACHE_DIR=str(tmp_path / "jax-cache"))
    coordinator = f"127.0.0.1:{_free_port()}"
    procs, logs = [], []
    t0 = time.time()
    for i in range(num_processes):
        mine = [
            dict(job, argv=[a.format(coordinator=coordinator, process_id=i) for a in job["argv"]])
            if "argv" in job
            else job
            for job in jobs
        ]
        spec = tmp_path / f"{name}.{i}.json"
        spec.write_text(
            json.dumps({"coordinator": coordinator, "num_processes": num_processes, "process_id": i, "jobs": mine})
        )
        log = open(tmp_path / f"{name}.{i}.log", "w+")
        logs.append(log)
        procs.append(subprocess.Popen([sys.executable, HERE, str(spec)], env=env, stdout=log, stderr=subprocess.STDOUT))
    try:
        for p in procs:
            p.wait(timeout=max(1.0, timeout - (time.time() - t0)))
    except subprocess.TimeoutExpired:
        pass
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    seconds = time.time() - t0
    texts = []
    for i, (p, log) in enumerate(zip(procs, logs, strict=True)):
        log.seek(0)
        texts.append(log.read())
        log.close()
        assert p.returncode == 0, f"{name}: process {i} of {num_processes} exited {p.returncode}:\n{texts[-1][-4000:]}"
    return seconds, texts


def _flat(params) -> dict[str, np.ndarray]:
    import jax

    return {jax.tree_util.keystr(k): np.asarray(v) for k, v in jax.tree_util.tree_flatten_with_path(params)[0]}


def _params(path) -> dict[str, np.ndarray]:
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def _info(path) -> dict:
    with open(str(path) + ".json") as f:
        return json.load(f)


def _assert_close(a: dict, b: dict, what: str) -> float:
    """Same parameter names and shapes, values within TOL; returns the largest difference."""
    assert sorted(a) == sorted(b), what
    worst = 0.0
    for k in a:
        assert a[k].shape == b[k].shape, (what, k)
        np.testing.assert_allclose(a[k], b[k], rtol=RTOL, atol=ATOL, err_msg=f"{what}: {k}")
        worst = max(worst, float(np.max(np.abs(a[k].astype(np.float64) - b[k]))))
    return worst


def _have_cpu_collectives() -> str | None:
    """Why this platform cannot run JAX collectives across CPU processes (None if it can)."""
    try:
        from jax._src.lib import _jax
    except ImportError:  # a jaxlib laid out otherwise: let the run itself tell
        return None
    if not hasattr(_jax, "make_gloo_tcp_collectives"):
        return "this jaxlib has no gloo CPU collectives (jax.distributed on CPU needs them)"
    return None


def test_two_processes_train_like_one_and_checkpoints_cross_over(tmp_path):
    why = _have_cpu_collectives()
    if why:
        pytest.skip(why)
    wd = {k: str(tmp_path / k) for k in ("uninterrupted", "one_first", "two_first", "two_sigint")}
    out = {k: str(tmp_path / f"{k}.npz") for k in ("one_full", "one_half", "two_resumed", "one_resumed")}
    # One process, 4 devices: an uninterrupted run, and a run stopped (with its checkpoint) at HALF.
    t1, _ = _run(
        tmp_path,
        "one",
        1,
        [
            {"workdir": wd["uninterrupted"], "resume": False, "stop_after": None, "out": out["one_full"]},
            {"workdir": wd["one_first"], "resume": False, "stop_after": HALF, "out": out["one_half"]},
        ],
    )
    from helpers import damage_manifest_deleted  # here: the subprocesses need not import it

    # The one-process run's last checkpoint damaged: the two processes resume from step 2, after
    # setting step 3 aside together (each would otherwise rename the folder the others just moved).
    damage_manifest_deleted(os.path.join(wd["one_first"], "checkpoints", str(HALF)))
    # Two processes, 2 devices each: the same first half from the command line (which joins the
    # run), then the one-process checkpoint resumed to the end.
    argv = ["--config", "micro", "--workdir", wd["two_first"], "--stop-after", str(HALF), "--no-eval"]
    argv += ["--coordinator", "{coordinator}", "--num-processes", "2", "--process-id", "{process_id}"]
    argv += ["--set"] + [f"{k}={v}" for k, v in SETS.items()]
    t2, texts = _run(
        tmp_path,
        "two",
        2,
        [
            {"argv": argv},
            {"workdir": wd["one_first"], "resume": True, "stop_after": None, "out": out["two_resumed"]},
            # A Ctrl-C in process 1 alone, as the batch of step index 1 arrives: both processes
            # leave the loop after that step and checkpoint it together (one that stopped alone
            # would leave the other waiting in the next step's all-reduce until the timeout).
            {
                "workdir": wd["two_sigint"],
                "resume": False,
                "stop_after": None,
                "sigint": {"process": 1, "batch": 1},
                "out": str(tmp_path / "two_sigint"),
            },
        ],
    )
    # Each process built only its own half of every batch: rows 0-3 and 4-7 of the 8.
    for i, want in enumerate((list(range(4)), list(range(4, 8)))):
        with open(out["two_resumed"] + f".{i}.rows") as f:
            built = json.load(f)
        assert sorted(int(k) for k in built) == list(range(2, STEPS)), built  # steps 3..6 (index 2..5)
        assert all(v == want for v in built.values()), (i, built)
    with open(out["one_half"] + ".0.rows") as f:
        assert all(v == list(range(8)) for v in json.load(f).values())
    stopped = [open(tmp_path / f"two_sigint.{i}.step").read() for i in range(2)]
    assert stopped == ["2", "2"], stopped
    names = os.listdir(os.path.join(wd["two_sigint"], "checkpoints"))
    assert sorted(int(s) for s in names if s.isdigit()) == [2], names
    assert f"resume: checkpoint step {HALF} in " in texts[0] and "trying step 2" in texts[0]
    # Process 0 alone reports (the config line, the progress lines).
    assert "4 device(s) (cpu) in 2 processes" in texts[0] and f"step {HALF}/{STEPS}" in texts[0]
    assert "device(s)" not in texts[1] and f"step {HALF}/" not in texts[1]
    # One process again: the two-process checkpoint resumed to the end.
    t3, _ = _run(
        tmp_path,
        "one_again",
        1,
        [{"workdir": wd["two_first"], "resume": True, "stop_after": None, "out": out["one_resumed"]}],
    )
    print(f"wall seconds: one process {t1:.1f}, two processes {t2:.1f}, one process again {t3:.1f}")

    info = {k: _info(v) for k, v in out.items()}
    assert info["two_resumed"]["process_count"] == 2 and info["two_resumed"]["local_devices"] == 2
    assert info["one_half"]["process_count"] == 1 and info["one_half"]["local_devices"] == 4
    for k, v in info.items():
        assert v["devices"] == 4, k
        assert v["sharded_params"] > 0, k  # FSDP: some parameters are split over "model"
        assert v["step"] == (HALF if k == "one_half" else STEPS), k

    p = {k: _params(v) for k, v in out.items()}
    # The two-process state at HALF, as its checkpoint holds it (read here, in this one process).
    from dctmodel.checkpoint import load_params

    _, params, step = load_params(os.path.join(wd["two_first"], "checkpoints", str(HALF)))
    assert step == HALF
    p["two_half"] = _flat(params)
    worst = {
        "two processes vs one, step 3": _assert_close(p["two_half"], p["one_half"], "two_half vs one_half"),
        "one-process checkpoint resumed by two": _assert_close(p["two_resumed"], p["one_full"], "two_resumed"),
        "two-process checkpoint resumed by one": _assert_close(p["one_resumed"], p["one_full"], "one_resumed"),
    }
    print("largest parameter differences:", worst)
    # Training moved the parameters far beyond the tolerance: the comparisons above are not vacuous.
    moved = max(float(np.max(np.abs(p["one_full"][k] - p["one_half"][k]))) for k in p["one_full"])
    assert moved > 100 * ATOL

    # Every checkpoint (the damaged step set aside once, by one process), and one log line per
    # step (process 0 alone writes them).
    for name, steps in (("two_first", [2, HALF, 4, STEPS]), ("one_first", [2, 4, STEPS])):
        names = os.listdir(os.path.join(wd[name], "checkpoints"))
        assert sorted(int(s) for s in names if s.isdigit()) == steps, (name, names)
        aside = [s for s in names if s.startswith(f"{HALF}.unreadable-")]
        assert len(aside) == (name == "one_first"), (name, names)
        with open(os.path.join(wd[name], "log.jsonl")) as f:
            assert [json.loads(line)["step"] for line in f] == list(range(1, STEPS + 1)), name


def test_cli_joins_a_multi_host_run_with_the_flags_given(monkeypatch, tmp_path):
    import jax

    from dctmodel.train import main

    calls = []

    class Joined(Exception):
        pass

    def initialize(**kw):
        calls.append(kw)
        raise Joined  # the run itself is the test above: stop before training

    monkeypatch.setattr(jax.distributed, "initialize", initialize)
    base = ["--config", "micro", "--workdir", str(tmp_path)]
    with pytest.raises(Joined):
        main(base + ["--coordinator", "10.0.0.1:1234", "--num-processes", "2", "--process-id", "1"])
    with pytest.raises(Joined):
        main(base + ["--distributed"])  # a TPU pod slice or SLURM: JAX detects all three
    with pytest.raises(Joined):
        main(base + ["--local-device-ids", "0,1,2,3"])  # SLURM, one task per node of 4 GPUs
    none = {"coordinator_address": None, "num_processes": None, "process_id": None, "local_device_ids": None}
    assert calls == [
        dict(none, coordinator_address="10.0.0.1:1234", num_processes=2, process_id=1),
        none,
        dict(none, local_device_ids=[0, 1, 2, 3]),
    ]


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--coordinator", "10.0.0.1"], "expected HOST:PORT"),
        (["--coordinator", "10.0.0.1:http"], "expected HOST:PORT"),
        (["--num-processes", "0"], "num_processes=0: expected >= 1"),
        (["--num-processes", "2", "--process-id", "2"], "process_id=2: expected < num_processes=2"),
        (["--process-id", "-1"], "process_id=-1: expected >= 0"),
        (["--local-device-ids", "0,x"], "expected comma-separated integers"),
        (["--local-device-ids", "-1"], "expected device numbers >= 0"),
    ],
)
def test_cli_refuses_malformed_multi_host_flags_in_one_line(flags, message, monkeypatch, tmp_path, capsys):
    import jax

    from dctmodel.train import main

    monkeypatch.setattr(jax.distributed, "initialize", lambda **kw: pytest.fail("initialized"))
    with pytest.raises(SystemExit) as e:
        main(["--config", "micro", "--workdir", str(tmp_path)] + flags)
    assert e.value.code == 2
    assert message in capsys.readouterr().err


if __name__ == "__main__":
    _child(sys.argv[1])
