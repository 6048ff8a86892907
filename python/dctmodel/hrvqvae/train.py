"""Training an HR-VQVAE (or a baseline) in a work directory, then its PixelCNN prior.

A work directory holds what every dctmodel run's does (``dctmodel.checkpoint``):
``config.json``, ``log.jsonl`` (train loss and MSE, eval MSE/PSNR, code usage
per layer) and orbax checkpoints of (model, optimiser) in ``checkpoints/STEP/``;
the prior's fit keeps its own in ``prior/checkpoints/STEP/``.  Pictures: every
run ends by writing ``reconstructions.png`` (held-out images in the top row,
their reconstructions below), and a fitted prior's samples go to
``samples.png``.  Calling :func:`train` again on a work directory with a
checkpoint resumes it, and ends bit for bit where an uninterrupted run would.
"""

from __future__ import annotations

import dataclasses
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from .. import checkpoint as ckpt
from ..loop import JsonLog, check_resume_config, stop_on_sigint
from . import prior as P
from .config import Config, check_config, may_change_on_resume
from .data import load_images
from .model import VQModel, psnr, usage_summary

PRIOR = "prior"  # the prior's own work directory, inside the run's
RECONSTRUCTIONS = "reconstructions.png"
SAMPLES = "samples.png"
GRID_COLUMNS = 8


# --------------------------------------------------------------------------- steps


def make_model(cfg: Config):
    """A freshly initialised ``(VQModel, optimiser)`` (seed ``cfg.train.seed``)."""
    model = VQModel(cfg.model, rngs=nnx.Rngs(cfg.train.seed))
    opt = nnx.Optimizer(model, optax.adam(cfg.train.learning_rate), wrt=nnx.Param)
    return model, opt


@nnx.jit
def train_step(model: VQModel, opt: nnx.Optimizer, x, key):
    """One optimiser step then the EMA / usage / restart update.
    Returns (loss, recon MSE, words restarted)."""

    def loss_fn(model):
        _, aux = model(x)
        return aux["loss"], aux

    (loss, aux), grads = nnx.value_and_grad(loss_fn, argnums=nnx.DiffState(0, nnx.Param), has_aux=True)(model)
    opt.update(model, grads)
    restarted = model.update_stats(aux, key)
    return loss, aux["recon"], restarted


@nnx.jit
def _eval_batch(model: VQModel, x):
    x_hat, aux = model(x)
    return jnp.mean((x - jnp.clip(x_hat, 0.0, 1.0)) ** 2, axis=(1, 2, 3)), aux["codes"]


@nnx.jit
def _reconstruct(model: VQModel, x):
    return jnp.clip(model(x)[0], 0.0, 1.0)


def image_grid(images: np.ndarray, rows: int) -> np.ndarray:
    """float (rows*cols, S, S, 3) in [0, 1], row-major -> uint8 (rows*S, cols*S, 3)."""
    n, s, w = images.shape[:3]
    if n % rows:
        raise ValueError(f"{n} images do not fill {rows} rows")
    grid = images.reshape(rows, n // rows, s, w, 3).transpose(0, 2, 1, 3, 4).reshape(rows * s, n // rows * w, 3)
    return (np.clip(grid, 0.0, 1.0) * 255).round().astype(np.uint8)


def save_grid(path: str, images: np.ndarray, rows: int) -> None:
    from PIL import Image

    Image.fromarray(image_grid(np.asarray(images), rows)).save(path)


def save_reconstructions(model: VQModel, images: np.ndarray, path: str, columns: int = GRID_COLUMNS) -> None:
    """The first ``columns`` held-out images (float32 (N, S, S, 3)) in the top row, their
    reconstructions (clipped) below: a PNG of (2*S, columns*S) pixels."""
    x = np.asarray(images[:columns], np.float32)
    save_grid(path, np.concatenate([x, np.asarray(_reconstruct(model, jnp.asarray(x)))]), rows=2)


def evaluate(model: VQModel, images: np.ndarray, batch_size: int = 64) -> dict:
    """MSE (on [0, 1], reconstructions clipped), PSNR of the mean MSE, and code usage."""
    errs, codes = [], []
    for i in range(0, len(images), batch_size):
        e, c = _eval_batch(model, jnp.asarray(images[i : i + batch_size]))
        errs.append(np.asarray(e))
        codes.append(jax.tree.map(np.asarray, c))
    mse = float(np.concatenate(errs).mean())
    all_codes: np.ndarray | tuple[np.ndarray, ...]  # vqvae2: (top, bottom)
    if isinstance(codes[0], tuple):
        all_codes = tuple(np.concatenate([c[j] for c in codes]) for j in range(len(codes[0])))
    else:
        all_codes = np.concatenate(codes)
    return dict(mse=mse, psnr=psnr(mse), usage=usage_summary(model, all_codes), codes=all_codes)


# --------------------------------------------------------------------------- checkpoints


def _save(mngr, step: int, *objs) -> None:
    """Every state leaf of the nnx objects (model, optimiser) as checkpoint ``step``."""
    ckpt.save(mngr, step, nnx.to_pure_dict(nnx.state(objs)))


def _restore(mngr, *objs, resuming: bool = True) -> int | None:
    """Restores the nnx objects in place from the newest readable checkpoint; returns its step (None: none).

    Unreadable newer steps are reported in one line each; ``resuming`` (the
    run goes on to save those step numbers again) also moves them aside
    (``dctmodel.checkpoint.restore_newest``)."""
    state = nnx.state(objs)
    found = ckpt.restore_newest(
        mngr, like=nnx.to_pure_dict(state), who="resume" if resuming else "checkpoint", set_aside=resuming
    )
    if found is None:
        return None
    nnx.replace_by_pure_dict(state, found[0])
    nnx.update(objs, state)
    return found[1]


def saved_steps(workdir: str) -> list[int]:
    """The steps checkpointed in ``workdir`` (ascending); nothing is created where there are none."""
    if not os.path.isdir(os.path.join(workdir, ckpt.CHECKPOINTS)):
        return []
    mngr = ckpt.open_manager(workdir, keep=1)  # keep applies to saves only: nothing is deleted here
    try:
        return ckpt.saved_steps(mngr)
    finally:
        mngr.close()


def save_checkpoint(workdir: str, step: int, *objs, keep: int = 2) -> None:
    """Checkpoints the nnx objects (e.g. model, optimiser) as ``workdir/checkpoints/STEP``."""
    mngr = ckpt.open_manager(workdir, keep)
    try:
        _save(mngr, step, *objs)
    finally:
        mngr.close()


def load_checkpoint(workdir: str, *objs) -> int | None:
    """Restores the nnx objects in place from ``workdir``'s newest readable checkpoint; its step, or None."""
    if not saved_steps(workdir):
        return None
    mngr = ckpt.open_manager(workdir, keep=1)
    try:
        return _restore(mngr, *objs, resuming=False)
    finally:
        mngr.close()


# --------------------------------------------------------------------------- loop


def train(
    cfg: Config,
    workdir: str | None = None,
    *,
    verbose: bool = True,
    train_images=None,
    test_images=None,
    stop_after: int | None = None,
):
    """Trains (resuming from ``workdir``'s latest checkpoint if any); returns (model, last eval dict).

    Batches and restart keys are functions of ``(seed, step)``, so a resumed run
    ends bit for bit where an uninterrupted one does.  ``stop_after``: stop with
    a checkpoint once that many steps are done (as Ctrl-C does after the running
    step; a second Ctrl-C aborts without it).  The prior is fitted only once
    all ``cfg.train.steps`` are done, checkpointed in ``workdir/prior``; Ctrl-C
    during its fit raises KeyboardInterrupt after that checkpoint, and a rerun
    continues it.  The returned eval dict also holds ``step``, the steps done.
    ``workdir=None``: nothing is written.
    """
    check_config(cfg)
    resuming = bool(workdir and saved_steps(workdir))
    if workdir:
        os.makedirs(workdir, exist_ok=True)
        if resuming:  # before config.json is rewritten
            check_resume_config(ckpt.config_path(workdir), dataclasses.asdict(cfg), may_change_on_resume)
        ckpt.write_config(workdir, cfg)
    mngr = ckpt.open_manager(workdir, cfg.train.keep_checkpoints) if workdir else None
    try:
        return _run(cfg, workdir, mngr, verbose, train_images, test_images, stop_after)
    finally:
        if mngr is not None:
            mngr.close()


def _run(cfg: Config, workdir, mngr, verbose, train_images, test_images, stop_after):
    t = cfg.train
    train_x = load_images(cfg.data, "train") if train_images is None else train_images
    test_x = load_images(cfg.data, "eval") if test_images is None else test_images
    model, opt = make_model(cfg)
    start = (_restore(mngr, model, opt) if mngr else None) or 0
    log = _logger(workdir, start if start else None, verbose)
    if start:
        log(dict(event="resume", step=start))
    end = t.steps if stop_after is None else min(t.steps, stop_after)
    key = jax.random.key(t.seed)
    t0, res, done = time.time(), None, start
    with stop_on_sigint() as stop:
        for step in range(start, end):
            idx = np.random.default_rng([t.seed, step]).integers(0, len(train_x), t.batch_size)
            loss, recon, restarted = train_step(model, opt, jnp.asarray(train_x[idx]), jax.random.fold_in(key, step))
            done = step + 1
            if done % t.log_every == 0 or done == end or stop.requested:
                log(
                    dict(
                        step=done,
                        loss=float(loss),
                        train_mse=float(recon),
                        restarted=int(restarted),
                        steps_per_s=round((done - start) / (time.time() - t0), 2),
                    )
                )
            if _every(done, t.eval_every) or done == t.steps:
                res = evaluate(model, test_x)
                log(
                    dict(
                        step=done,
                        eval_mse=res["mse"],
                        eval_psnr=res["psnr"],
                        dead=[u["dead"] for u in res["usage"]],
                        perplexity=[round(u["perplexity"], 2) for u in res["usage"]],
                        usage=res["usage"],
                    )
                )
            if mngr and (_every(done, t.checkpoint_every) or done == end or stop.requested):
                _save(mngr, done, model, opt)
            if stop.requested:
                break
    if res is None:
        res = evaluate(model, test_x)
    if workdir:  # also after a stop: the picture shows the model as checkpointed
        save_reconstructions(model, test_x, os.path.join(workdir, RECONSTRUCTIONS))
    if done >= t.steps and t.prior_steps and cfg.model.model != "vqvae2":
        _prior_and_samples(cfg, model, train_x, workdir, log)
    return model, dict(res, step=done)


def _every(step: int, every: int) -> bool:
    return bool(every) and step % every == 0


def _logger(workdir: str | None, resume_step: int | None, verbose: bool):
    """``log(record)``: appended to ``workdir/log.jsonl`` and, if ``verbose``, printed."""
    log_f = JsonLog(os.path.join(workdir, "log.jsonl"), resume_step) if workdir else None

    def log(rec: dict) -> None:
        if log_f:
            log_f.write(rec)
        if verbose:
            print(
                " ".join(
                    f"{k}={v:.5g}" if isinstance(v, float) else f"{k}={v}" for k, v in rec.items() if k != "usage"
                ),
                flush=True,
            )

    return log


def _prior_and_samples(cfg: Config, model: VQModel, train_x, workdir: str | None, log) -> None:
    """Fits the prior (checkpointed in ``workdir/prior``: a rerun continues it) and writes
    ``workdir/samples.png`` (16 samples, 2 rows of 8).  Ctrl-C stops after the running step with a checkpoint."""
    t = cfg.train
    codes = evaluate(model, train_x)["codes"]
    leaves = model.leaves(codes)
    prior = P.PixelCNN(P.PriorConfig(vocab=model.vocab), rngs=nnx.Rngs(t.seed))
    opt = P.prior_optimizer(prior)
    mngr = ckpt.open_manager(os.path.join(workdir, PRIOR), t.keep_checkpoints) if workdir else None
    try:
        start = (_restore(mngr, prior, opt) if mngr else None) or 0
        if start:
            log(dict(event="prior resume", prior_step=start))
        with stop_on_sigint("this prior step with a checkpoint") as stop:

            def on_step(step):
                if mngr and (_every(step, t.checkpoint_every) or step == t.prior_steps or stop.requested):
                    _save(mngr, step, prior, opt)
                return stop.requested

            losses = P.fit_prior(
                prior,
                leaves,
                steps=t.prior_steps,
                batch_size=t.batch_size,
                seed=t.seed,
                log=log,
                opt=opt,
                start=start,
                on_step=on_step,
            )
    finally:
        if mngr is not None:
            mngr.close()
    if start + len(losses) < t.prior_steps:
        raise KeyboardInterrupt  # stopped by Ctrl-C with its checkpoint written: a rerun continues it
    imgs = P.sample_images(model, prior, 2 * GRID_COLUMNS, jax.random.key(t.seed), latent_hw=leaves.shape[1:])
    if workdir:
        save_grid(os.path.join(workdir, SAMPLES), np.asarray(imgs), rows=2)
