"""An autoregressive prior over HR-VQVAE / VQ-VAE codes: a small PixelCNN.

The paper fits a PixelCNN over e_C (sec. 3, last paragraph); here it models
the *combined code* of each latent position, the leaf ``k_0*m**(n-1) + ... +
k_{n-1}`` in ``[0, m**n)`` (``VQModel.leaves``), in raster order.  One token
per position keeps the prior the same for HR-VQVAE and the flat VQ-VAE (both
have m**n leaves), so their samples are comparable.

    prior = PixelCNN(PriorConfig(vocab=model.vocab), rngs=nnx.Rngs(0))
    fit_prior(prior, leaves, steps=200)            # leaves: int32 (N, h, w)
    images = sample_images(model, prior, num=8, key=jax.random.key(0))

The masked convolutions are van den Oord et al.'s type A / type B masks; this
small version has the usual blind spot to the upper right, which is fine for a
baseline at 4x4 to 16x16 latents.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx


@dataclass(frozen=True)
class PriorConfig:
    vocab: int  # m**n (or K for the flat VQ-VAE)
    embed: int = 32
    channels: int = 64
    layers: int = 4  # residual type-B blocks
    first_kernel: int = 5  # type-A receptive field


def causal_mask(k: int, include_centre: bool) -> np.ndarray:
    """float32 (k, k): 1 where a k x k kernel may look (rows above, and left in the
    centre row; the centre itself only for a type-B mask)."""
    c = k // 2
    mask = np.zeros((k, k), np.float32)
    mask[:c, :] = 1.0
    mask[c, :c] = 1.0
    if include_centre:
        mask[c, c] = 1.0
    return mask


class MaskedConv(nnx.Module):
    """NHWC conv whose kernel is multiplied by ``causal_mask``."""

    def __init__(self, cin: int, cout: int, k: int, include_centre: bool, rngs: nnx.Rngs):
        init = nnx.initializers.lecun_normal()
        self.kernel = nnx.Param(init(rngs.params(), (k, k, cin, cout)))
        self.bias = nnx.Param(jnp.zeros((cout,)))
        self.mask = jnp.asarray(causal_mask(k, include_centre))[:, :, None, None]

    def __call__(self, x):
        y = jax.lax.conv_general_dilated(
            x, self.kernel[...] * self.mask, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
        )
        return y + self.bias[...]


class PixelCNN(nnx.Module):
    """Codes int32 (B, h, w) -> logits float32 (B, h, w, vocab); logits at a
    position depend only on codes earlier in raster order."""

    def __init__(self, cfg: PriorConfig, *, rngs: nnx.Rngs):
        self.cfg = cfg
        c = cfg.channels
        self.embed = nnx.Embed(cfg.vocab, cfg.embed, rngs=rngs)
        self.first = MaskedConv(cfg.embed, c, cfg.first_kernel, False, rngs)
        self.blocks = nnx.List([MaskedConv(c, c, 3, True, rngs) for _ in range(cfg.layers)])
        self.mix = nnx.List([nnx.Conv(c, c, (1, 1), rngs=rngs) for _ in range(cfg.layers)])
        self.out = nnx.Conv(c, cfg.vocab, (1, 1), rngs=rngs)

    def __call__(self, codes):
        h = self.first(self.embed(codes))
        for conv, mix in zip(self.blocks, self.mix, strict=True):
            h = h + mix(jax.nn.relu(conv(jax.nn.relu(h))))
        return self.out(jax.nn.relu(h))


def nll(prior: PixelCNN, codes) -> jnp.ndarray:
    """Mean negative log-likelihood in nats per position; codes int32 (B, h, w)."""
    logits = prior(codes)
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, codes))


def prior_optimizer(prior: PixelCNN, lr: float = 2e-3) -> nnx.Optimizer:
    """The optimiser :func:`fit_prior` uses (create it to checkpoint or restore a fit)."""
    return nnx.Optimizer(prior, optax.adam(lr), wrt=nnx.Param)


def fit_prior(
    prior: PixelCNN,
    codes: np.ndarray,
    *,
    steps: int = 200,
    batch_size: int = 32,
    lr: float = 2e-3,
    seed: int = 0,
    log=None,
    opt: nnx.Optimizer | None = None,
    start: int = 0,
    on_step=None,
) -> list[float]:
    """Trains ``prior`` in place on codes int (N, h, w); returns the loss per step run (nats).

    Batches are drawn per ``(seed, step)``, so a fit continued from step
    ``start`` with the optimiser ``opt`` of a checkpoint (see
    :func:`prior_optimizer`) ends where an uninterrupted one does.
    ``on_step(done)`` runs after each step (checkpointing); returning True
    stops the fit there.
    """
    codes = np.asarray(codes, np.int32)
    opt = prior_optimizer(prior, lr) if opt is None else opt

    @nnx.jit
    def step(prior, opt, batch):
        loss, grads = nnx.value_and_grad(nll)(prior, batch)
        opt.update(prior, grads)
        return loss

    losses = []
    for i in range(start, steps):
        idx = np.random.default_rng([seed, i]).integers(0, len(codes), min(batch_size, len(codes)))
        losses.append(float(step(prior, opt, jnp.asarray(codes[idx]))))
        if log is not None and (i % 50 == 0 or i == steps - 1):
            log(dict(prior_step=i, prior_nll=losses[-1]))
        if on_step is not None and on_step(i + 1):
            break
    return losses


def sample_codes(prior: PixelCNN, num: int, height: int, width: int, key, temperature: float = 1.0) -> np.ndarray:
    """Ancestral sampling in raster order: int32 (num, height, width) in [0, vocab).

    The whole grid is re-run at each of the h*w positions (simple, and cheap at
    latent sizes of 4x4 to 16x16).
    """
    graphdef, state = nnx.split(prior)

    @jax.jit
    def run(state, key):
        model = nnx.merge(graphdef, state)

        def body(i, carry):
            grid, key = carry
            key, sub = jax.random.split(key)
            y, x = i // width, i % width
            logits = model(grid)[:, y, x, :] / temperature
            tok = jax.random.categorical(sub, logits).astype(jnp.int32)
            return grid.at[:, y, x].set(tok), key

        grid = jnp.zeros((num, height, width), jnp.int32)
        grid, _ = jax.lax.fori_loop(0, height * width, body, (grid, key))
        return grid

    return np.asarray(run(state, key))


def sample_images(
    vq_model, prior: PixelCNN, num: int, key, latent_hw: tuple[int, int] | None = None, temperature: float = 1.0
) -> np.ndarray:
    """Samples codes from the prior and decodes them: float32 (num, H, W, 3) in [0, 1].

    vq_model: a ``hrvqvae`` or ``vqvae`` ``VQModel``; latent_hw defaults to a
    square 8x8 latent.
    """
    h, w = latent_hw or (8, 8)
    leaves = sample_codes(prior, num, h, w, key, temperature)
    images = vq_model.decode(vq_model.from_leaves(leaves))
    return np.clip(np.asarray(images), 0.0, 1.0)


__all__ = ["PriorConfig", "PixelCNN", "MaskedConv", "causal_mask", "nll", "fit_prior", "sample_codes", "sample_images"]
