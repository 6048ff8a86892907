"""Generation side by side: HR-VQVAE + PixelCNN prior against the DCTransformer ``tiny`` preset.

    python -m benchmarks.hrvqvae_generation          # about 7 CPU minutes of training, then ~2 of FID

Both models see the same data: the 2000 training scenes of ``get_config("tiny")``
(32 px, dctmodel's scene generator), and both are scored by the same code,
``dctmodel.evaluate``'s: Inception-v3 features of 256 samples against the cached
features of the first 500 held-out scenes (``evaluate.cached_features(cfg,
"real", 0, 500)``), FID / sFID / precision / recall / KID from
``dctmodel.metrics.all_metrics``.

The HR-VQVAE side is trained here on the CPU, within a stated budget (fixed
step counts, not a plateau): the autoencoder (n=2, m=16: 256 leaves, 8x8
latent, the ``cpu`` preset's encoder/decoder) for ``--vq-steps`` at 2e-3 then
a tenth of that for the last third, then the PixelCNN prior over its leaves of
the training scenes for ``--prior-steps``.  Beside the samples' FID the script
gives the autoencoder's own ceiling, as ``dctmodel.evaluate`` gives the
codec's: the FID of 256 other held-out scenes (500..755) through the
autoencoder, the best a perfect prior could score.

The DCTransformer side is not retrained: its numbers are read from the
``eval_STEP.json`` that ``python -m dctmodel.evaluate`` wrote in each
``--dct-workdir`` (a run of the ``tiny`` preset's data), and its picture row
is decoded from that evaluation's saved sample tokens.

Writes ``benchmarks/results/hrvqvae_generation.json`` and the picture
``--picture`` (default ``benchmarks/results/hrvqvae_generation.png``: rows of
16 HR-VQVAE samples, 16 DCTransformer samples, 16 held-out scenes).
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from dctmodel import evaluate as E
from dctmodel import hrvqvae as H
from dctmodel import metrics
from dctmodel.config import config_from_dict, get_config
from dctmodel.hrvqvae import train as T

OUT = os.path.join(os.path.dirname(__file__), "results")
NUM_REAL = 500  # as dctmodel.evaluate's default: the held-out scenes every model is compared with
COLUMNS = 16


def param_count(tree) -> int:
    return int(sum(np.prod(x.shape) for x in jax.tree.leaves(tree)))


def train_images(cfg) -> np.ndarray:
    """float32 (num_train, S, S, 3) in [0, 1]: the training split the DCTransformer of ``cfg`` trains on."""
    from dctmodel.data import make_source

    src = make_source(cfg.data, "train")
    return np.stack([np.asarray(src.image(i)) for i in range(len(src))]).astype(np.float32) / 255.0


def train_vq(vq: H.VQConfig, x: np.ndarray, steps: int, batch: int, lr: float, seed: int):
    """The autoencoder, ``steps`` of Adam at ``lr`` (the last third at lr/10); returns the model."""
    cfg = H.Config(data=H.DataConfig(image_size=x.shape[1]), model=vq, train=H.TrainConfig(batch_size=batch, seed=seed))
    H.check_config(cfg)
    model, _ = T.make_model(cfg)
    opt = nnx.Optimizer(model, optax.inject_hyperparams(optax.adam)(learning_rate=lr), wrt=nnx.Param)
    key = jax.random.key(seed)
    for step in range(1, steps + 1):
        if step == 2 * steps // 3 + 1:
            opt.opt_state.hyperparams["learning_rate"][...] = lr / 10
        idx = np.random.default_rng([seed, step]).integers(0, len(x), batch)
        loss, recon, _ = T.train_step(model, opt, jnp.asarray(x[idx]), jax.random.fold_in(key, step))
        if step % 500 == 0 or step == steps:
            print(f"  vq step {step}: loss {float(loss):.5f} train MSE {float(recon):.5f}", flush=True)
    return model


def dct_side(workdir: str, cfg) -> dict:
    """The DCTransformer run in ``workdir``: its default-settings evaluation, parameter count and
    the first ``COLUMNS`` samples of that evaluation decoded to uint8 images."""
    from dctmodel.model import count_params
    from dctmodel.sample import decode_tokens
    from dctmodel.sample.folder import read_batch

    with open(os.path.join(workdir, "config.json")) as f:
        dcfg = config_from_dict(json.load(f))
    if dataclasses.replace(dcfg.data, num_eval=cfg.data.num_eval) != cfg.data:
        raise ValueError(f"{workdir} was trained on other data than get_config('tiny'): {dcfg.data}")
    evals = sorted(glob.glob(os.path.join(workdir, "eval_[0-9]*.json")))
    evals = [p for p in evals if os.path.basename(p)[5:-5].isdigit()]  # default sampling settings only
    if not evals:
        raise ValueError(f"no eval_STEP.json in {workdir}: run python -m dctmodel.evaluate --workdir {workdir}")
    with open(max(evals, key=lambda p: int(os.path.basename(p)[5:-5]))) as f:
        rec = json.load(f)
    if rec["num_real"] != NUM_REAL:
        raise ValueError(f"{workdir}: its evaluation used {rec['num_real']} real scenes, not {NUM_REAL}")
    toks: list[np.ndarray] = []
    folder = rec["samples_folder"]
    for path in sorted(glob.glob(os.path.join(folder, "batch_*.npz"))):
        toks += read_batch(path)
        if len(toks) >= COLUMNS:
            break
    side = dcfg.data.image_size
    images = [np.asarray(decode_tokens(dcfg, t, side, side)) for t in toks[:COLUMNS]]
    return dict(
        workdir=workdir,
        step=rec["step"],
        seed=dcfg.train.seed,
        params=count_params(dcfg),
        samples=rec["samples"],
        codec=rec["codec"],
        bpd=rec["bpd"]["model"],
        pictures=images,
    )


def picture(rows: list[np.ndarray], path: str, scale: int = 3, gap: int = 4) -> None:
    """uint8 rows of (COLUMNS, S, S, 3) images -> one PNG, rows separated by white gaps."""
    from PIL import Image

    strips = [np.concatenate(list(r), axis=1) for r in rows]
    width = max(s.shape[1] for s in strips)
    white = np.full((gap, width, 3), 255, np.uint8)
    grid = np.concatenate(sum(([s, white] for s in strips), [])[:-1])
    img = Image.fromarray(grid)
    img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST).save(path)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--vq-steps", type=int, default=2000)
    p.add_argument("--prior-steps", type=int, default=2500)
    p.add_argument("--num", type=int, default=256, help="samples scored (dctmodel.evaluate's default)")
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--m", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--dct-workdir",
        nargs="*",
        default=["runs/tiny"],
        help="evaluated DCTransformer runs on the tiny preset's data (the first gives the picture row)",
    )
    p.add_argument("--out", default=OUT)
    p.add_argument("--picture", default=None, help="PNG path (default OUT/hrvqvae_generation.png)")
    a = p.parse_args(argv)
    if a.num < 2 or a.vq_steps < 1 or a.prior_steps < 1:
        p.error("--num must be >= 2, --vq-steps and --prior-steps >= 1")
    cfg = get_config("tiny")
    dct_runs = [dct_side(w, cfg) for w in a.dct_workdir if os.path.isdir(w)]
    for w in a.dct_workdir:
        if not os.path.isdir(w):
            print(f"  {w}: not here, its row is left out")

    cpu0, wall0 = time.process_time(), time.perf_counter()
    x = train_images(cfg)
    held = np.stack(E.held_out_images(cfg, NUM_REAL, a.num)).astype(np.float32) / 255.0  # other held-out scenes
    cpu_data = time.process_time() - cpu0
    print(f"data: {len(x)} training scenes of get_config('tiny') at {x.shape[1]} px ({cpu_data:.0f} s CPU)")

    vq = H.VQConfig(model="hrvqvae", layers=a.layers, m=a.m)
    model = train_vq(vq, x, a.vq_steps, batch=32, lr=2e-3, seed=a.seed)
    held_eval = T.evaluate(model, held)
    cpu_vq = time.process_time() - cpu0 - cpu_data
    print(f"HR-VQVAE n={vq.layers} m={vq.m}: held-out MSE {held_eval['mse']:.5f}, PSNR {held_eval['psnr']:.2f} dB")

    leaves = model.leaves(T.evaluate(model, x)["codes"])
    prior = H.PixelCNN(H.PriorConfig(vocab=model.vocab), rngs=nnx.Rngs(a.seed))
    losses = H.fit_prior(prior, leaves, steps=a.prior_steps, batch_size=32, seed=a.seed)
    held_leaves = model.leaves(held_eval["codes"])
    held_nll = float(H.nll(prior, jnp.asarray(held_leaves)))
    cpu_prior = time.process_time() - cpu0 - cpu_data - cpu_vq
    print(
        f"prior: {a.prior_steps} steps, train NLL (last 100 steps) {np.mean(losses[-100:]):.3f} nats/position,"
        f" held-out {held_nll:.3f}"
    )
    samples = H.sample_images(model, prior, a.num, jax.random.key(a.seed), latent_hw=leaves.shape[1:])
    cpu_total = time.process_time() - cpu0
    wall_total = time.perf_counter() - wall0
    cpu_sample = cpu_total - cpu_data - cpu_vq - cpu_prior
    print(
        f"CPU: data {cpu_data:.0f} s, HR-VQVAE {cpu_vq:.0f} s, prior {cpu_prior:.0f} s, {a.num} samples"
        f" {cpu_sample:.0f} s; {cpu_total:.0f} s CPU, {wall_total:.0f} s wall"
    )

    from dctmodel.inception import features

    t_fid = time.process_time()
    real = E.cached_features(cfg, "real", 0, NUM_REAL)
    fake = features(_u8(samples), progress="HR-VQVAE samples")
    recon = np.asarray(jnp.concatenate([T._reconstruct(model, held[i : i + 64]) for i in range(0, len(held), 64)]))
    ceiling = features(_u8(recon), progress="HR-VQVAE reconstructions")
    res_samples = metrics.all_metrics(real, fake)
    res_ceiling = metrics.all_metrics(real, ceiling)
    cpu_fid = time.process_time() - t_fid

    hr = dict(
        model=dataclasses.asdict(vq),
        params_autoencoder=param_count(nnx.state(model, nnx.Param)) + param_count(nnx.state(model, H.Codebook)),
        params_prior=param_count(nnx.state(prior, nnx.Param)),
        vq_steps=a.vq_steps,
        prior_steps=a.prior_steps,
        held_out_mse=held_eval["mse"],
        held_out_psnr=held_eval["psnr"],
        prior_train_nll=float(np.mean(losses[-100:])),
        prior_held_out_nll=held_nll,
        bits_per_image=vq.bits_per_image(x.shape[1], x.shape[2]),
        samples=res_samples,
        ceiling=res_ceiling,
        cpu_s=dict(data=cpu_data, autoencoder=cpu_vq, prior=cpu_prior, sampling=cpu_sample, total=cpu_total),
        wall_s=wall_total,
        fid_cpu_s=cpu_fid,
    )
    params = hr["params_autoencoder"] + hr["params_prior"]
    print(f"\nFID etc. of {a.num} samples against the first {NUM_REAL} held-out tiny scenes (dctmodel.evaluate's code)")
    print("  model                       params  FID    sFID  precision recall  KID     ceiling FID  training")
    s, c = res_samples, res_ceiling
    print(
        f"  HR-VQVAE n={vq.layers} m={vq.m} + PixelCNN {params:8d} {s['fid']:6.1f} {s['sfid']:6.1f}"
        f"  {s['precision']:.3f}     {s['recall']:.3f}  {s['kid']:.4f}  {c['fid']:6.1f} (recon.)"
        f"  {cpu_total - cpu_data:.0f} s CPU here"
    )
    for r in dct_runs:
        s, c = r["samples"], r["codec"]
        print(
            f"  DCTransformer tiny (seed {r['seed']}) {r['params']:8d} {s['fid']:6.1f} {s['sfid']:6.1f}"
            f"  {s['precision']:.3f}     {s['recall']:.3f}  {s['kid']:.4f}  {c['fid']:6.1f} (codec)   step {r['step']},"
            f" read from {r['workdir']}"
        )
    os.makedirs(a.out, exist_ok=True)
    res = dict(
        settings=dict(
            data="get_config('tiny').data",
            image_size=x.shape[1],
            train_images=len(x),
            num_samples=a.num,
            num_real=NUM_REAL,
            ceiling_images=f"held-out {NUM_REAL}..{NUM_REAL + a.num - 1}",
            seed=a.seed,
            device=str(jax.devices()[0]),
            cpus=os.cpu_count(),
        ),
        hrvqvae=hr,
        dctransformer=[{k: v for k, v in r.items() if k != "pictures"} for r in dct_runs],
    )
    with open(os.path.join(a.out, "hrvqvae_generation.json"), "w") as f:
        json.dump(res, f, indent=1)
    rows = [_u8(samples[:COLUMNS])]
    if dct_runs:
        rows.append(np.stack(dct_runs[0]["pictures"]))
    rows.append(np.stack(E.held_out_images(cfg, 0, COLUMNS)))
    path = a.picture or os.path.join(a.out, "hrvqvae_generation.png")
    picture(rows, path)
    print(f"wrote {os.path.join(a.out, 'hrvqvae_generation.json')} and {path}")
    return 0


def _u8(images) -> np.ndarray:
    return (np.clip(np.asarray(images), 0.0, 1.0) * 255).round().astype(np.uint8)


if __name__ == "__main__":
    raise SystemExit(main())
