"""dctmodel training: overfitting, evaluation, resume equality, 4-device vs 1-device equality, CLI."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("jax")

import jax
import numpy as np

from dctmodel.config import get_config, override
from dctmodel.data import ArraySource, eval_batches
from dctmodel.scenes import render_scene
from dctmodel.train import evaluate, functions, make_mesh, train

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _images(n, seed=11):
    return [render_scene(seed, i, 16, max_objects=2) for i in range(n)]


@pytest.fixture(scope="module")
def overfit_run(micro_run):
    # 250 steps of micro on _images(4), uniform chunks (tests/conftest.py: shared with the sampling tests)
    return micro_run


def test_tiny_model_overfits_a_handful_of_images(overfit_run):
    cfg, _, state, records, wd = overfit_run
    losses = [r["loss"] for r in records if "loss" in r]
    # Chance level: ln(49) + ln(16) + ln(64) ~= 10.8 nats per token.
    assert losses[0] > 8.0
    assert losses[-1] < losses[0] / 6, losses
    assert int(state["step"]) == cfg.steps
    with open(os.path.join(wd, "log.jsonl")) as f:
        logged = [json.loads(line) for line in f]
    assert [r["step"] for r in logged] == list(range(10, cfg.steps + 1, 10))
    r = logged[-1]
    assert r["tokens_per_s"] > 0 and set(r) >= {"nats_channel", "nats_position", "nats_value", "bpd_per_chunk"}
    assert r["nats_value"] + r["nats_position"] + r["nats_channel"] == pytest.approx(r["loss"], rel=0.05)


def test_heldout_bpd_both_ways(overfit_run):
    cfg, src, state, _, _ = overfit_run
    mesh = make_mesh(1)
    fns = functions(cfg)
    trained = evaluate(cfg, state["params"], src, mesh)
    fresh = evaluate(cfg, fns.init(0)["params"], src, mesh)
    # Training on these images must have lowered their bpd by a lot.
    assert trained["bpd"] < fresh["bpd"] / 4
    for e in (trained, fresh):
        parts = e["bpd_channel"] + e["bpd_position"] + e["bpd_value"]
        assert parts == pytest.approx(e["bpd"], rel=1e-6)
        # Per-chunk contributions add up to the image bpd (every image here has the same chunk count or fewer).
        assert sum(e["bpd_per_chunk"]) >= e["bpd"] * 0.99
        # Masks only renormalise over tokens that include the true one: never more bits.
        assert e["bpd_masked"] <= e["bpd_unmasked"] + 1e-9
        assert e["bpd_value_masked"] == pytest.approx(e["bpd_value_unmasked"])
    # Padding rows (the last batch filled up to a fixed shape) count for nothing: any batch size,
    # padded or not, gives the bpd of one chunk at a time.
    chunks = sum(1 for _ in eval_batches(cfg, src, range(len(src)), 1))
    one = evaluate(cfg, state["params"], src, mesh, batch_size=1)
    padded = evaluate(cfg, state["params"], src, mesh, batch_size=chunks + 3)
    for k in ("bpd", "bpd_unmasked", "bpd_value_masked"):
        assert padded[k] == pytest.approx(one[k], rel=1e-5)
        assert trained[k] == pytest.approx(one[k], rel=1e-5)
    np.testing.assert_allclose(padded["bpd_per_chunk"], one["bpd_per_chunk"], rtol=1e-5)
    # An untrained model wastes many bits on impossible tokens; the masks recover them.
    assert fresh["bpd_masked"] < 0.97 * fresh["bpd_unmasked"]
    # Chance-level check of the fresh model.  With ReZero gates at 0 each head sees a LayerNorm
    # output (unit variance) through a LeCun-normal kernel, so its logits are ~N(0, 1) per class
    # and the expected cross-entropy is log V + 1/2 nats (E[log sum exp z] ~ log(V e^(1/2))):
    # uniform bits plus 1/(2 ln 2) bits per variable (channel always, position and value but
    # for the stop token), summed per image.
    toks = [src.tokens(i) for i in range(len(src))]
    extra = 0.5 / np.log(2)
    chance = np.mean(
        [
            (
                len(t) * (np.log2(cfg.channel_vocab) + extra)
                + (len(t) - 1) * (np.log2(cfg.position_vocab * cfg.value_vocab) + 2 * extra)
            )
            / sp
            for t, _, sp in toks
        ]
    )
    assert fresh["bpd_unmasked"] == pytest.approx(chance, rel=0.06)


def test_micro_batches_give_the_whole_batch_update():
    """train.micro_batch runs the batch in slices and sums their gradients: the same loss,
    per-chunk bits (in batch order) and parameters as the whole batch at once."""
    from dctmodel.data import make_source, sample_batch

    base = override(get_config("micro"), **{"model.dropout": 0.0})
    src = make_source(base.data)
    batches = [sample_batch(base, src, 0, s) for s in range(2)]
    mesh = make_mesh(1, jax.devices()[:1])
    out = {}
    for mb in (0, 2):
        cfg = override(base, **{"train.micro_batch": mb})
        fns = functions(cfg)
        state = fns.shard_state(fns.init(0), mesh)
        for b in batches:
            state, met = fns.train_step(state, b, mesh)
        out[mb] = state, met
    (whole, wm), (sliced, sm) = out[0], out[2]
    assert float(sm["loss"]) == pytest.approx(float(wm["loss"]), rel=1e-6)
    assert float(sm["grad_norm"]) == pytest.approx(float(wm["grad_norm"]), rel=1e-5)
    # Chunks differ in length, so a mix-up of the batch order would show here.
    assert len(set(np.asarray(wm["example_bits"])[:, 0].round(3))) > 1
    np.testing.assert_allclose(np.asarray(sm["example_bits"]), np.asarray(wm["example_bits"]), rtol=1e-5)
    for a, b in zip(jax.tree.leaves(whole["params"]), jax.tree.leaves(sliced["params"]), strict=True):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-4, atol=2e-6)
    with pytest.raises(ValueError, match=r"train\.micro_batch.*divisor of train\.batch_size=8"):
        from dctmodel.config import check_config

        check_config(override(base, **{"train.micro_batch": 3}))


def test_resume_gives_identical_results(tmp_path, capsys):
    cfg = override(
        get_config("micro"),
        **{
            "model.dropout": 0.1,
            "train.total_tokens": 8 * 32 * 12,
            "train.log_every": 2,
            "train.checkpoint_every": 4,
            "train.length_filter_lmax": 60,
            "train.micro_batch": 4,  # two slices, each with its own dropout key
        },
    )
    src = ArraySource(cfg.data, _images(6, seed=5))
    # Resuming where there is nothing to resume starts at step 0, and says so.
    full, rec_full = train(
        cfg, str(tmp_path / "a"), source=src, eval_source=src, progress=False, do_eval=False, resume=True
    )
    assert "resume: no checkpoint in" in capsys.readouterr().err and rec_full[0]["step"] == 2
    part, rec_part = train(
        cfg, str(tmp_path / "b"), source=src, eval_source=src, progress=False, do_eval=False, stop_after=6
    )
    assert int(part["step"]) == 6
    # Resuming with another model is refused before config.json (which sampling reads) changes.
    saved = (tmp_path / "b" / "config.json").read_text()
    with pytest.raises(ValueError, match=r"model\.d_model differ"):
        train(
            override(cfg, **{"model.d_model": 2 * cfg.model.d_model}),
            str(tmp_path / "b"),
            source=src,
            eval_source=src,
            progress=False,
            do_eval=False,
            resume=True,
        )
    assert (tmp_path / "b" / "config.json").read_text() == saved
    res, rec_res = train(
        cfg, str(tmp_path / "b"), source=src, eval_source=src, progress=False, do_eval=False, resume=True
    )
    assert int(res["step"]) == 12
    for a, b in zip(jax.tree.leaves(full), jax.tree.leaves(res), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # And not trivially: training moved the parameters.
    init = functions(cfg).init(cfg.train.seed)
    assert any(
        not np.array_equal(np.asarray(a), np.asarray(b))
        for a, b in zip(jax.tree.leaves(full["params"]), jax.tree.leaves(init["params"]), strict=True)
    )
    # The log of the resumed run continues where the interrupted one stopped.
    losses = {r["step"]: r["loss"] for r in rec_full}
    with open(tmp_path / "b" / "log.jsonl") as f:
        logged = [json.loads(line) for line in f]
    assert [r["step"] for r in logged] == sorted(losses)
    assert [r["loss"] for r in logged] == [losses[s] for s in sorted(losses)]

    # Ctrl-C in a script (progress off): the running step ends, a checkpoint and a log record
    # are written at that step, and resuming from them finishes exactly as the uninterrupted run.
    wd = str(tmp_path / "c")
    with _sigint_after_batch(4) as caller_handler_calls:
        stopped, rec_stop = train(cfg, wd, source=src, eval_source=src, progress=False, do_eval=False)
    assert caller_handler_calls == []  # caught by train(), and the caller's handler is back
    assert int(stopped["step"]) == 5 and rec_stop[-1]["step"] == 5
    assert "5" in os.listdir(os.path.join(wd, "checkpoints"))
    res, _ = train(cfg, wd, source=src, eval_source=src, progress=False, do_eval=False, resume=True)
    for a, b in zip(jax.tree.leaves(full), jax.tree.leaves(res), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))

    # An error mid-run (a source that fails on its 40th read, as an unreadable file would) keeps
    # the finished steps in a checkpoint, and a resume from it still ends as the whole run.
    class Failing(ArraySource):
        reads = 0

        def tokens(self, i):
            Failing.reads += 1
            if Failing.reads == 40:
                raise ValueError("scene_7.png: cannot read this image (truncated)")
            return super().tokens(i)

    wd = str(tmp_path / "e")
    capsys.readouterr()
    with pytest.raises(ValueError, match="cannot read this image"):
        train(cfg, wd, source=Failing(cfg.data, _images(6, seed=5)), eval_source=src, progress=False, do_eval=False)
    saved = sorted(int(x) for x in os.listdir(os.path.join(wd, "checkpoints")) if x.isdigit())
    assert len(saved) == 1 and 1 <= saved[0] < 4  # before the first periodic checkpoint (step 4)
    assert f"stopped by an error at step {saved[0]}" in capsys.readouterr().err
    res, _ = train(cfg, wd, source=src, eval_source=src, progress=False, do_eval=False, resume=True)
    for a, b in zip(jax.tree.leaves(full), jax.tree.leaves(res), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))

    # A second Ctrl-C aborts at once: KeyboardInterrupt, no checkpoint beyond the periodic ones.
    wd = str(tmp_path / "d")
    with _sigint_after_batch(1, times=2) as caller_handler_calls:
        with pytest.raises(KeyboardInterrupt):
            train(cfg, wd, source=src, eval_source=src, progress=False, do_eval=False)
    assert caller_handler_calls == []
    assert not os.listdir(os.path.join(wd, "checkpoints"))


@contextlib.contextmanager
def _sigint_after_batch(step, times=1):
    """Within the block, train() gets SIGINT ``times`` times as batch ``step`` reaches the loop
    (its main thread, so deterministically before that step runs).  Yields the calls that
    reached the handler installed around train(), which must stay empty."""
    import dctmodel.train.loop as T

    class Interrupting(T.Prefetcher):
        def __iter__(self):
            for item in super().__iter__():
                if item[0] == step:
                    for _ in range(times):
                        os.kill(os.getpid(), signal.SIGINT)
                yield item

    calls = []

    def handler(*args):
        calls.append(args)

    old = signal.signal(signal.SIGINT, handler)
    saved, T.Prefetcher = T.Prefetcher, Interrupting
    try:
        yield calls
        assert signal.getsignal(signal.SIGINT) is handler
    finally:
        T.Prefetcher = saved
        signal.signal(signal.SIGINT, old)


MULTI_DEVICE = textwrap.dedent(r"""
    import json, re, sys
    import jax, numpy as np
    from dctmodel.config import get_config, override
    from dctmodel.data import make_source, sample_batch
    from dctmodel.model import count_params
    from dctmodel.train import functions, make_mesh, main, put_batch
    assert len(jax.devices()) == 4, jax.devices()
    # Exactly the config of the CLI run below, so that run reuses the compiled 4-device step.
    cfg = override(get_config("micro"), **{"train.total_tokens": 1024, "train.log_every": 2})
    fns = functions(cfg)
    src = make_source(cfg.data)
    batch = sample_batch(cfg, src, 0, 0)
    out = {}
    sliced = functions(override(cfg, **{"train.micro_batch": 2}))  # 4 slices of 2, each from all 4 devices
    halves = functions(override(cfg, **{"train.micro_batch": 4}))  # 2 slices: each device's 2 rows split alike
    dropout = functions(override(cfg, **{"model.dropout": 0.1}))
    for name, mesh, fns in [("one", make_mesh(1, jax.devices()[:1]), fns), ("data4", make_mesh(1), fns),
                            ("fsdp2x2", make_mesh(2), fns), ("data4_micro", make_mesh(1), sliced),
                            ("data4_halves", make_mesh(1), halves), ("data4_dropout", make_mesh(1), dropout)]:
        state = fns.shard_state(fns.init(0), mesh)
        sharded = sum(1 for x in jax.tree.leaves(state["params"]) if not x.sharding.is_fully_replicated)
        # The result types of the step's all-reduces (the gradients' reduction among them).
        hlo = fns._for_mesh(mesh).train.lower(state, put_batch(batch, mesh)).compile().as_text()
        hlo = re.sub(r"/\*index=\d+\*/", "", hlo)  # long tuples' element markers
        reduced = re.findall(r"= ([^=]*?) all-reduce(?:-start)?\(", hlo)
        for _ in range(2):
            state, met = fns.train_step(state, batch, mesh)
        out[name] = dict(loss=float(met["loss"]), grad_norm=float(met["grad_norm"]), sharded=sharded,
                         shape=dict(mesh.shape), all_reduces=reduced, num_params=count_params(fns.cfg),
                         params=[np.asarray(x).tolist() for x in jax.tree.leaves(state["params"])])
    # The CLI end to end on 4 devices, a few steps.
    main(["--config", "micro", "--workdir", sys.argv[1], "--set", "train.total_tokens=1024", "train.log_every=2"])
    json.dump(out, open(sys.argv[2], "w"))
""")


def test_four_devices_match_one_device(tmp_path):
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
    script = tmp_path / "multi.py"
    script.write_text(MULTI_DEVICE)
    res = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "run"), str(tmp_path / "out.json")],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads((tmp_path / "out.json").read_text())
    assert out["one"]["shape"] == {"data": 1, "model": 1}
    assert out["data4"]["shape"] == {"data": 4, "model": 1}
    assert out["fsdp2x2"]["shape"] == {"data": 2, "model": 2}
    assert out["one"]["sharded"] == 0 and out["data4"]["sharded"] == 0 and out["fsdp2x2"]["sharded"] > 0
    assert out["data4_micro"]["shape"] == {"data": 4, "model": 1}
    # Data parallelism on CPU devices sums the gradients as one flat vector (steps.flat_reduce),
    # not as a tuple of every parameter's gradient (one rendezvous of the devices per element).
    flat = f"f32[{out['one']['num_params']}]"
    for name in ("data4", "data4_halves"):
        reduced = out[name]["all_reduces"]
        assert any(flat in r for r in reduced) and max(r.count("[") for r in reduced) <= 8, reduced
    # Where one buffer would change the program (FSDP shards, dropout drawn per device, slices
    # that split the devices' rows differently) XLA's partitioned gradient stays.
    for name in ("fsdp2x2", "data4_dropout", "data4_micro"):
        assert not any(flat in r for r in out[name]["all_reduces"]), (name, out[name]["all_reduces"])
    for name in ("data4_dropout", "data4_micro"):  # replicated parameters: a tuple of their gradients
        assert max(r.count("[") for r in out[name]["all_reduces"]) > 10, out[name]["all_reduces"]
    for name in ("data4", "fsdp2x2", "data4_micro", "data4_halves"):
        assert out[name]["loss"] == pytest.approx(out["one"]["loss"], rel=1e-5)
        # Adam is blind to the gradient's scale; the norm is not (e.g. a sum instead of a mean over shards).
        assert out[name]["grad_norm"] == pytest.approx(out["one"]["grad_norm"], rel=1e-4)
        # Parameters agree far below the step size (lr 3e-4, 6e-4); the residue is float summation order,
        # amplified by Adam on near-zero gradients.
        for a, b in zip(out["one"]["params"], out[name]["params"], strict=True):
            np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-4, atol=2e-5)
    with open(tmp_path / "run" / "log.jsonl") as f:
        logged = [json.loads(line) for line in f]
    assert logged[-1]["step"] == 4 and "eval" in logged[-1]
    assert os.path.isdir(tmp_path / "run" / "checkpoints" / "4")


def test_sampling_gives_valid_decodable_sequences(overfit_run):
    from dctmodel.sample import decode_tokens, sample_tokens
    from dctmodel.tokens import channel_rank

    cfg, src, state, _, _ = overfit_run
    toks = sample_tokens(cfg, state["params"], num=3, seed=1, max_tokens=80)
    d = cfg.data
    rank = channel_rank(d.order, d.planes, d.block_size)
    for t in toks:
        assert t.dtype == np.int32 and t.ndim == 2 and t.shape[1] == 3
        assert tuple(t[-1]) == (d.num_channels, 0, 0) and (t[:-1, 0] < d.num_channels).all()
        assert 1 <= len(t) <= 81
        body = t[:-1]
        # The list's structure (SPEC section 6): channels in order, positions increasing within one.
        key = rank[body[:, 0]].astype(np.int64) * 10_000 + body[:, 1]
        assert (np.diff(key) > 0).all()
        assert (body[:, 2] != 0).all() and (np.abs(body[:, 2]) <= d.clip).all()
        img = decode_tokens(cfg, t, 16, 16)
        assert img.shape == (16, 16, 3) and img.dtype == np.uint8
    # The model overfit 4 scenes: samples should be about as long as those scenes' sequences.
    lengths = [len(src.tokens(i)[0]) for i in range(len(src))]
    assert min(len(t) for t in toks) >= 0.5 * min(lengths)


def test_progress_eta_after_a_resume_uses_this_runs_rate(monkeypatch):
    """Resumed at step 900 of 1000, one step in 2 s leaves 99 steps: 198 s, not
    the ~0 s that step / total (counting the restored steps) would give."""
    from dctmodel.train import progress as T

    now = [100.0]
    monkeypatch.setattr(T.time, "time", lambda: now[0])
    bar = T.Progress(1000, enabled=False, start=900)
    now[0] += 2.0
    assert bar.eta(901) == pytest.approx(198.0)
    assert T.Progress(1000, enabled=False).eta(0) == 0.0


def test_cpu_device_count_is_the_largest_divisor_of_the_batch_within_the_cores():
    from dctmodel.train.sharding import cpu_device_count

    # (batch, cores) -> devices, worked out by hand
    cases = {(16, 2): 2, (16, 3): 2, (16, 12): 8, (16, 64): 16, (6, 4): 3, (7, 6): 1, (1, 8): 1, (16, 1): 1}
    for (batch, cores), want in cases.items():
        assert cpu_device_count(batch, cores) == want, (batch, cores)
    assert 1 <= cpu_device_count(16) <= 16  # this machine's cores
    with pytest.raises(ValueError, match="batch_size"):
        cpu_device_count(0, 2)


def test_cpu_devices_cannot_change_once_jax_runs():
    from dctmodel.train.sharding import use_cpu_devices

    jax.devices()  # the backends are running in this process now
    n = jax.device_count()
    assert use_cpu_devices(n + 1) is False
    assert jax.device_count() == n
    with pytest.raises(ValueError, match=">= 1"):
        use_cpu_devices(0)


def test_cli_applies_every_set_option(tmp_path, capsys):
    """``--set a --set b`` applies both: argparse's default would keep only the last ``--set``
    and train with the first override silently dropped."""
    from dctmodel.train.cli import main

    argv = ["--config", "micro", "--workdir", str(tmp_path), "--no-eval", "--stop-after", "1"]
    with pytest.raises(SystemExit) as e:
        main([*argv, "--set", "model.d_model=0", "--set", "train.log_every=1"])
    assert e.value.code == 2 and "model.d_model" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main([*argv, "--set", "train.log_every=1", "--set", "model.d_model=0"])
    assert e.value.code == 2 and "model.d_model" in capsys.readouterr().err


def test_cli_trains_on_one_device_per_core(tmp_path):
    """``--cpu-devices 2`` gives a two-device data-parallel run that resumes bit for bit; an
    explicit XLA_FLAGS device count wins; a count that does not divide the batch is refused."""
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env.pop("XLA_FLAGS", None)

    def run(workdir, devices, *extra):
        cmd = [sys.executable, "-m", "dctmodel.train", "--config", "micro", "--no-eval"]
        cmd += ["--set", "train.total_tokens=1536", "train.log_every=1", "train.checkpoint_every=2"]  # 6 steps
        cmd += ["--workdir", str(tmp_path / workdir), "--cpu-devices", devices, *extra]
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)

    def losses(workdir):
        with open(tmp_path / workdir / "log.jsonl") as f:
            return [(r["step"], r["loss"]) for r in map(json.loads, f) if "loss" in r]

    res = run("a", "2")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "2 device(s) (cpu)" in res.stderr
    assert run("d", "2", "--stop-after", "3").returncode == 0
    res = run("d", "2", "--resume")
    assert res.returncode == 0, res.stderr[-3000:]
    assert len(losses("a")) == 6 and losses("d") == losses("a")
    env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=1"
    res = run("b", "2", "--stop-after", "1")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "1 device(s) (cpu)" in res.stderr
    res = run("c", "3")
    assert res.returncode == 2 and "--cpu-devices 3: must divide train.batch_size=8" in res.stderr


def test_cli_takes_the_device_count_from_the_config(tmp_path):
    """Without ``--cpu-devices`` the run uses ``train.cpu_devices`` (the ``tiny`` preset sets 1),
    and ``--cpu-devices`` wins over it; a count that does not divide the batch is refused."""
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env.pop("XLA_FLAGS", None)

    def run(workdir, *extra):
        cmd = [sys.executable, "-m", "dctmodel.train", "--config", "micro", "--no-eval", "--stop-after", "1"]
        cmd += ["--workdir", str(tmp_path / workdir), "--set", "train.total_tokens=1536", *extra]
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)

    res = run("a", "train.cpu_devices=2")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "2 device(s) (cpu)" in res.stderr
    res = run("b", "train.cpu_devices=2", "--cpu-devices", "1")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "1 device(s) (cpu)" in res.stderr
    res = run("c", "train.cpu_devices=3")
    assert res.returncode == 2 and "train.cpu_devices" in res.stderr
    assert get_config("tiny").train.cpu_devices == 1
