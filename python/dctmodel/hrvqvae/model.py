"""The VQ autoencoders: a conv encoder and decoder around one of three bottlenecks.

``VQModel(cfg)`` with ``cfg.model``: ``"hrvqvae"`` (n layers, branching m),
``"vqvae"`` (one codebook of m**n words: the same number of leaves, so the
same bits), ``"vqvae2"`` (a VQ-VAE-2-style top level at half resolution
conditioning a bottom level).  The quantisers are ``quantise.TreeQuantizer``.

Images are float32 ``(B, H, W, 3)`` in ``[0, 1]``; ``H`` and ``W`` must be
multiples of ``2**downsample`` (4x for ``vqvae2``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from .config import VQConfig
from .quantise import TreeQuantizer, code_usage, leaf_index, split_leaf, vq_losses

sg = jax.lax.stop_gradient


# --------------------------------------------------------------------------- encoder / decoder


class ResBlock(nnx.Module):
    def __init__(self, c: int, rngs: nnx.Rngs):
        self.a = nnx.Conv(c, c, (3, 3), rngs=rngs)
        self.b = nnx.Conv(c, c, (1, 1), rngs=rngs)

    def __call__(self, x):
        return x + self.b(jax.nn.relu(self.a(jax.nn.relu(x))))


class Encoder(nnx.Module):
    """float32 (B, H, W, 3) in [0, 1] -> xi^0 float32 (B, H/2**s, W/2**s, D)."""

    def __init__(self, cfg: VQConfig, rngs: nnx.Rngs):
        c = cfg.channels
        self.down = nnx.List(
            [nnx.Conv(3 if i == 0 else c, c, (4, 4), strides=2, rngs=rngs) for i in range(cfg.downsample)]
        )
        self.mid = nnx.Conv(c, c, (3, 3), rngs=rngs)
        self.res = nnx.List([ResBlock(c, rngs) for _ in range(cfg.res_blocks)])
        self.out = nnx.Conv(c, cfg.dim, (1, 1), rngs=rngs)

    def __call__(self, x):
        h = x - 0.5
        for conv in self.down:
            h = jax.nn.relu(conv(h))
        h = self.mid(h)
        for r in self.res:
            h = r(h)
        return self.out(jax.nn.relu(h))


class Decoder(nnx.Module):
    """e_C float32 (B, h, w, D) -> images float32 (B, h*2**s, w*2**s, 3), about [0, 1]."""

    def __init__(self, cfg: VQConfig, rngs: nnx.Rngs):
        c = cfg.channels
        self.inp = nnx.Conv(cfg.dim, c, (3, 3), rngs=rngs)
        self.res = nnx.List([ResBlock(c, rngs) for _ in range(cfg.res_blocks)])
        self.up = nnx.List(
            [
                nnx.ConvTranspose(
                    c, 3 if i == cfg.downsample - 1 else c, (4, 4), strides=(2, 2), padding="SAME", rngs=rngs
                )
                for i in range(cfg.downsample)
            ]
        )

    def __call__(self, e):
        h = self.inp(e)
        for r in self.res:
            h = r(h)
        for conv in self.up:
            h = conv(jax.nn.relu(h))
        return h + 0.5


# --------------------------------------------------------------------------- models


class VQModel(nnx.Module):
    """HR-VQVAE, flat VQ-VAE or VQ-VAE-2-style model; ``cfg.model`` picks which.

    Codes: ``"hrvqvae"`` int32 (B, h, w, n) per-layer indices in [0, m);
    ``"vqvae"`` int32 (B, h, w, 1) in [0, K); ``"vqvae2"`` a tuple
    (top int32 (B, h/2, w/2, 1), bottom int32 (B, h, w, 1)).
    """

    def __init__(self, cfg: VQConfig, *, rngs: nnx.Rngs):
        if cfg.model not in ("hrvqvae", "vqvae", "vqvae2"):
            raise ValueError(f"unknown model {cfg.model!r}")
        self.cfg = cfg
        self.encoder = Encoder(cfg, rngs)
        self.decoder = Decoder(cfg, rngs)
        d = cfg.dim

        def quantizer(layers: int, m: int) -> TreeQuantizer:
            return TreeQuantizer(
                layers,
                m,
                d,
                update=cfg.update,
                decay=cfg.decay,
                eps=cfg.eps,
                restart_after=cfg.restart_after,
                restart=cfg.restart,
                rngs=rngs,
            )

        if cfg.model == "hrvqvae":
            self.quant = nnx.List([quantizer(cfg.layers, cfg.m)])
        elif cfg.model == "vqvae":
            self.quant = nnx.List([quantizer(1, cfg.flat_size)])
        else:
            # VQ-VAE-2: a top code at half resolution, decoded back up, conditions
            # the bottom code; the decoder sees both (Razavi et al. 2019, fig. 2a).
            self.quant = nnx.List([quantizer(1, cfg.flat_size), quantizer(1, cfg.flat_size)])
            self.to_top = nnx.Conv(d, d, (4, 4), strides=2, rngs=rngs)
            self.top_up = nnx.ConvTranspose(d, d, (4, 4), strides=(2, 2), padding="SAME", rngs=rngs)
            self.to_bottom = nnx.Conv(2 * d, d, (1, 1), rngs=rngs)
            self.merge = nnx.Conv(2 * d, d, (1, 1), rngs=rngs)

    # -- pieces

    def _quantize(self, qi: int, z: jnp.ndarray, combined: bool):
        """z (B, h, w, D) -> (straight-through e (B,h,w,D), codes (B,h,w,n), TreeCodes, losses)."""
        b, h, w, d = z.shape
        flat = z.reshape(-1, d)
        codes = self.quant[qi](flat)
        e_c = jnp.sum(codes.words, axis=0)
        losses = vq_losses(
            flat,
            codes.words,
            codes.residuals,
            self.cfg.beta0,
            [self.cfg.beta(i) for i in range(codes.words.shape[0])],
            combined,
        )
        e_st = flat + sg(e_c - flat)  # straight-through: decoder gradients reach the encoder
        return e_st.reshape(b, h, w, d), codes.index.reshape(b, h, w, -1), codes, losses

    def _latent(self, codes):
        """codes -> decoder input float32 (B, h, w, D)."""
        if self.cfg.model == "vqvae2":
            top, bottom = codes
            e_top = self.quant[0].lookup(top)
            e_bot = self.quant[1].lookup(bottom)
            return self.merge(jnp.concatenate([e_bot, self.top_up(e_top)], -1))
        return self.quant[0].lookup(codes)

    # -- public

    def __call__(self, x: jnp.ndarray):
        """x float32 (B, H, W, 3) -> (reconstruction float32 (B, H, W, 3), aux).

        aux: ``loss`` (eq. 5, or eq. 2 summed over levels for the baselines),
        ``recon`` (MSE), ``vq`` (the quantisation terms per quantiser),
        ``tree`` (TreeCodes per quantiser, for ``update_stats``), ``codes``.
        """
        z = self.encoder(x)
        if self.cfg.model == "vqvae2":
            e_top, c_top, t_top, l_top = self._quantize(0, self.to_top(z), combined=False)
            up = self.top_up(e_top)
            e_bot, c_bot, t_bot, l_bot = self._quantize(1, self.to_bottom(jnp.concatenate([z, up], -1)), combined=False)
            dec_in = self.merge(jnp.concatenate([e_bot, up], -1))
            vq, trees, codes = [l_top, l_bot], [t_top, t_bot], (c_top, c_bot)
        else:
            dec_in, codes, tree, losses = self._quantize(0, z, combined=self.cfg.model == "hrvqvae")
            vq, trees = [losses], [tree]
        x_hat = self.decoder(dec_in)
        recon = jnp.mean((x - x_hat) ** 2)
        loss = recon + sum(v["total"] for v in vq)
        return x_hat, dict(loss=loss, recon=recon, vq=vq, tree=trees, codes=codes)

    def encode(self, x: jnp.ndarray):
        """Images float32 (B, H, W, 3) in [0, 1] -> codes (see class docstring)."""
        return self(x)[1]["codes"]

    def decode(self, codes) -> jnp.ndarray:
        """Codes -> images float32 (B, H, W, 3), not clipped."""
        return self.decoder(self._latent(codes))

    def update_stats(self, aux: dict, key) -> jnp.ndarray:
        """EMA / usage / restart for every quantiser; int32 (total restarted,)."""
        keys = jax.random.split(key, len(self.quant))
        return sum(
            (jnp.sum(q.update_stats(t, k)) for q, t, k in zip(self.quant, aux["tree"], keys, strict=True)),
            jnp.zeros((), jnp.int32),
        )

    def leaves(self, codes) -> np.ndarray:
        """Codes of ``hrvqvae``/``vqvae`` -> combined code int32 (B, h, w) in [0, m**n)."""
        q = self.quant[0]
        return np.asarray(leaf_index(jnp.asarray(codes), q.m))

    def from_leaves(self, leaves) -> jnp.ndarray:
        q = self.quant[0]
        return split_leaf(jnp.asarray(leaves), q.m, q.n)

    @property
    def vocab(self) -> int:
        """Number of distinct combined codes per position (hrvqvae/vqvae)."""
        q = self.quant[0]
        return q.m**q.n


# --------------------------------------------------------------------------- evaluation figures


def usage_summary(model: VQModel, codes) -> list[dict]:
    """``code_usage`` for each quantiser of a model, without the count arrays."""
    groups = codes if isinstance(codes, tuple) else (codes,)
    res = []
    for qi, (q, c) in enumerate(zip(model.quant, groups, strict=False)):
        for u in code_usage(np.asarray(c), q.m):
            u = {k: v for k, v in u.items() if k != "counts"}
            u["quantizer"] = qi
            res.append(u)
    return res


def psnr(mse: float) -> float:
    """PSNR in dB for an MSE on [0, 1] images."""
    return float(10.0 * np.log10(1.0 / max(mse, 1e-12)))
