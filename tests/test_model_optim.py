"""dctmodel.train.optim: the optimiser over one flat vector is the per-parameter optimiser, and
checkpoints keep the per-parameter layout whichever the run uses."""

import pytest

pytest.importorskip("jax")

import jax
import jax.numpy as jnp
import numpy as np
import optax

from dctmodel.config import get_config, override
from dctmodel.train import functions
from dctmodel.train.optim import flat_state, like_state, lr_schedule, make_optimizer, per_parameter


def _cfg(**kw):
    return override(get_config("micro"), **{"train.grad_clip": 0.5, "train.flat_optimizer": True, **kw})


def _per_parameter_tx(cfg):
    """The optimiser written out without optax.flatten: the independent expectation."""
    t = cfg.train
    return optax.chain(optax.clip_by_global_norm(t.grad_clip), optax.adam(lr_schedule(cfg), b1=t.adam_b1, b2=t.adam_b2))


def _grads(params, seed):
    leaves, treedef = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.key(seed), len(leaves))
    drawn = [jax.random.normal(k, x.shape, x.dtype) for k, x in zip(keys, leaves, strict=True)]
    return jax.tree.unflatten(treedef, drawn)


def test_flat_optimiser_makes_the_per_parameter_updates():
    cfg = _cfg()
    assert flat_state(cfg) and cfg.train.weight_decay == 0
    params = functions(cfg).init(0)["params"]
    flat_tx, ref_tx = make_optimizer(cfg), _per_parameter_tx(cfg)
    p_flat, s_flat = params, flat_tx.init(params)
    p_ref, s_ref = params, ref_tx.init(params)
    # Its moments are one vector each, not one array per parameter.
    n = sum(x.size for x in jax.tree.leaves(params))
    assert sorted({x.shape for x in jax.tree.leaves(s_flat)}) == [(), (n,)]
    for step in range(4):
        g = _grads(params, step)  # large enough for the clipping to act
        assert float(optax.tree.norm(g)) > cfg.train.grad_clip
        u, s_flat = flat_tx.update(g, s_flat, p_flat)
        p_flat = optax.apply_updates(p_flat, u)
        u, s_ref = ref_tx.update(g, s_ref, p_ref)
        p_ref = optax.apply_updates(p_ref, u)
    for a, b in zip(jax.tree.leaves(p_flat), jax.tree.leaves(p_ref), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-7)
    # The checkpoint layout of the flat state is the per-parameter state, leaf for leaf ...
    saved = per_parameter(s_flat, p_flat)
    assert jax.tree.structure(saved) == jax.tree.structure(s_ref)
    for a, b in zip(jax.tree.leaves(saved), jax.tree.leaves(s_ref), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-8)
    # ... and back to the flat layout bit for bit.
    back = like_state(saved, s_flat)
    assert jax.tree.structure(back) == jax.tree.structure(s_flat)
    for a, b in zip(jax.tree.leaves(back), jax.tree.leaves(s_flat), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # A per-parameter state (a run written before, or an FSDP run) restores into a flat run.
    restored = like_state(s_ref, s_flat)
    u, _ = flat_tx.update(_grads(params, 9), restored, p_ref)
    u_ref, _ = ref_tx.update(_grads(params, 9), s_ref, p_ref)
    for a, b in zip(jax.tree.leaves(u), jax.tree.leaves(u_ref), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("kw", [{"train.model_axis": 2}, {"train.flat_optimizer": False}])
def test_fsdp_or_the_default_keeps_the_moments_per_parameter(kw):
    cfg = _cfg(**kw)
    assert not flat_state(cfg)
    params = functions(cfg).init(0)["params"]
    state = make_optimizer(cfg).init(params)
    assert jax.tree.structure(state) == jax.tree.structure(_per_parameter_tx(cfg).init(params))
    # per_parameter and like_state leave such a state as it is.
    assert jax.tree.structure(per_parameter(state, params)) == jax.tree.structure(state)
    assert jax.tree.structure(like_state(state, state)) == jax.tree.structure(state)


def test_per_parameter_leaves_a_single_vector_parameter_alone():
    """A model whose only parameter is one vector: its moments already have that shape."""
    params = {"w": jnp.arange(5.0)}
    state = optax.adam(1e-3).init(params)
    assert jax.tree.structure(per_parameter(state, params)) == jax.tree.structure(state)


def test_a_flat_run_resumes_bit_exactly_and_the_setting_may_change_on_resume(tmp_path):
    """The trainer saves the flat moments per parameter and restores them flat: a stopped
    run resumed ends as the uninterrupted one; a per-parameter run's checkpoint resumes
    with the flat optimiser (train.* may change on resume) and ends at the same place to
    float rounding."""
    from dctmodel.data import ArraySource
    from dctmodel.scenes import render_scene
    from dctmodel.train import train

    cfg = _cfg(**{"train.total_tokens": 8 * 32 * 8, "train.checkpoint_every": 4, "train.log_every": 4})
    src = ArraySource(cfg.data, [render_scene(5, i, 16, max_objects=2) for i in range(6)])
    run = dict(source=src, eval_source=src, progress=False, do_eval=False)
    full, _ = train(cfg, str(tmp_path / "a"), **run)
    n = sum(x.size for x in jax.tree.leaves(full["params"]))
    assert (n,) in {x.shape for x in jax.tree.leaves(full["opt"])}  # the run kept its moments flat
    train(cfg, str(tmp_path / "b"), stop_after=4, **run)
    res, _ = train(cfg, str(tmp_path / "b"), resume=True, **run)
    for a, b in zip(jax.tree.leaves(full), jax.tree.leaves(res), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))

    per_leaf = override(cfg, **{"train.flat_optimizer": False})
    train(per_leaf, str(tmp_path / "c"), stop_after=4, **run)
    res, _ = train(cfg, str(tmp_path / "c"), resume=True, **run)
    assert int(res["step"]) == 8
    for a, b in zip(jax.tree.leaves(full["params"]), jax.tree.leaves(res["params"]), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5)
