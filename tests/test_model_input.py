"""The input pipeline at scale (issue 18): prefixes scattered on the device, per-host rows,
a token cache bounded in bytes, Grain's worker processes."""

import pickle

import jax
import numpy as np
import pytest

from dctmodel.config import get_config, override
from dctmodel.data import ArraySource, Prefetcher, make_source, prefix_bucket, sample_batch
from dctmodel.scenes import render_scene
from dctmodel.tokens import dense_dct
from dctmodel.train import functions, host_rows, make_mesh, put_batch


def _micro(**kw):
    # Uniform chunks: about half the rows of a micro batch then have a non-empty prefix.
    return override(get_config("micro"), **{"model.dropout": 0.0, "train.chunk_policy": "uniform", **kw})


def _dense_batch(cfg, batch):
    """The same batch with the encoder input as the host's dense DCT image (the old path)."""
    out = {k: v for k, v in batch.items() if k != "prefix"}
    n = cfg.data.num_channels
    out["dct"] = np.stack(
        [
            dense_dct(p[p[:, 0] < n], int((p[:, 0] < n).sum()), hb, wb, cfg.data.grid, n)
            for p, (hb, wb) in zip(batch["prefix"], batch["hw"], strict=True)
        ]
    )
    return out


def test_device_scatter_gives_the_dense_path_loss_and_gradients():
    """Same loss and gradients whether the step gets the prefix tokens and scatters them on the
    device or gets the host's dense DCT image (bit for bit: the scatter only moves integers)."""
    cfg = _micro()
    src = make_source(cfg.data)
    fns = functions(cfg)
    params = fns.init(0)["params"]
    batch = sample_batch(cfg, src, 0, 3)
    # The draw must include chunks past the first, or the prefixes would all be empty.
    assert (batch["prefix"][:, :, 0] < cfg.data.num_channels).sum(axis=1).max() > 0
    grads = jax.jit(fns.grads)
    loss_p, nats_p, g_p = grads(params, batch, 0)
    loss_d, nats_d, g_d = grads(params, _dense_batch(cfg, batch), 0)
    assert float(loss_p) == float(loss_d)
    np.testing.assert_array_equal(np.asarray(nats_p), np.asarray(nats_d))
    for a, b in zip(jax.tree.leaves(g_p), jax.tree.leaves(g_d), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_prefix_buckets_are_powers_of_two_from_the_smallest():
    assert [prefix_bucket(n, 256) for n in (0, 1, 256, 257, 600, 1024, 1025)] == [
        256,
        256,
        256,
        512,
        1024,
        1024,
        2048,
    ]
    cfg = _micro(**{"train.prefix_bucket": 8})
    b = sample_batch(cfg, make_source(cfg.data), 0, 3)
    longest = int((b["prefix"][:, :, 0] < cfg.data.num_channels).sum(axis=1).max())
    assert b["prefix"].shape[1] == prefix_bucket(longest, 8) < 2 * max(longest, 8)
    # Padding rows carry the stop channel, which the scatter drops.
    assert (b["prefix"][:, longest:, 0] == cfg.data.num_channels).all()


def test_hosts_rows_together_are_the_one_process_batch():
    """Row r of step k is a function of (seed, k, r) alone: two 'hosts' building rows 0-3 and
    4-7 get exactly the rows of the whole batch, and a resumed run the same again."""
    cfg = _micro()
    src = make_source(cfg.data)
    for step in (0, 5):
        whole = sample_batch(cfg, src, 0, step)
        parts = [sample_batch(cfg, src, 0, step, rows=r) for r in (range(0, 4), range(4, 8))]
        for key in whole:
            if key == "prefix":
                continue
            np.testing.assert_array_equal(np.concatenate([p[key] for p in parts]), whole[key])
        n = cfg.data.num_channels
        got = [row for p in parts for row in p["prefix"]]
        for a, b in zip(got, whole["prefix"], strict=True):
            np.testing.assert_array_equal(a[a[:, 0] < n], b[b[:, 0] < n])
        # Any subset, in any grouping: row 6 alone is row 6 of the whole batch.
        np.testing.assert_array_equal(sample_batch(cfg, src, 0, step, rows=[6])["tgt"][0], whole["tgt"][6])


def test_put_batch_takes_a_hosts_rows():
    cfg = _micro()
    src = make_source(cfg.data)
    mesh = make_mesh(1, jax.devices()[:1])
    rows = host_rows(mesh, 8)
    assert rows == list(range(8))  # one process holds every row
    batch = sample_batch(cfg, src, 0, 0, rows=rows)
    put = put_batch(batch, mesh, rows, 8)
    np.testing.assert_array_equal(np.asarray(put["tgt"]), batch["tgt"])
    # A host batch that lacks rows its devices hold is refused, not silently misplaced.
    with pytest.raises(ValueError, match="not among this host's rows"):
        put_batch(sample_batch(cfg, src, 0, 0, rows=[0, 1]), mesh, [0, 1], 8)
    with pytest.raises(ValueError, match="global batch_size"):
        put_batch(batch, mesh, rows)


def test_token_cache_is_bounded_in_bytes():
    cfg = _micro()
    imgs = [render_scene(1, i, 16) for i in range(40)]
    src = ArraySource(cfg.data, imgs, cache_mb=2000 / 2**20)  # room for ~a few token lists
    ref = ArraySource(cfg.data, imgs, cache_mb=0)
    for i in list(range(40)) + list(range(40)):
        np.testing.assert_array_equal(src.tokens(i)[0], ref.tokens(i)[0])
        assert src._tokens.bytes <= 2000
    assert 1 <= len(src._tokens) < 40
    assert len(ref._tokens) == 0
    # A pickled source (what a Grain worker gets) starts with an empty cache of the same bound.
    copy = pickle.loads(pickle.dumps(src))
    assert len(copy._tokens) == 0 and copy._tokens.max_bytes == src._tokens.max_bytes
    np.testing.assert_array_equal(copy.tokens(3)[0], ref.tokens(3)[0])


def test_worker_processes_give_the_same_batches_in_step_order():
    """train.workers > 0: Grain's worker processes build the batches; same steps, same rows,
    in order, as the in-process thread."""
    cfg = _micro()
    src = make_source(cfg.data)
    out = {}
    for workers in (0, 2):
        feed = Prefetcher(cfg, src, 0, 2, 7, depth=2, rows=[1, 2, 5], workers=workers)
        try:
            out[workers] = list(feed)
        finally:
            feed.close()
    assert [s for s, _ in out[0]] == [s for s, _ in out[2]] == [2, 3, 4, 5, 6]
    for (_, a), (_, b) in zip(out[0], out[2], strict=True):
        assert a.keys() == b.keys()
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])
    np.testing.assert_array_equal(out[0][1][1]["tgt"], sample_batch(cfg, src, 0, 3, rows=[1, 2, 5])["tgt"])
