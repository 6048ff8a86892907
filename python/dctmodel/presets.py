"""The named configs: every column of Table 3 of Nash et al. (2021) with its exact numbers,
``clevr_scenes``, and the laptop presets ``tiny``, ``small`` and ``micro`` (tests).

``dctmodel.config.get_config(name)`` and ``dctmodel.config.PRESETS`` are the public names.
"""

from __future__ import annotations

import dataclasses

from .config import Config, DataConfig, ModelConfig, TrainConfig, spec

# --------------------------------------------------------------------------
# Table 3 presets.  Columns: LSUN (all), FFHQ, ImageNet, OpenImagesV4,
# Plant leaves, Retinopathy, CLEVR.  Every number below is the table's.
# --------------------------------------------------------------------------

_ENC = spec(*[(1, 2)] * 4)
_DEC_3_4 = spec(*([(1, 2)] * 3 + [(1, 4)]))
_DEC_3_3 = spec(*([(1, 2)] * 3 + [(1, 3)]))
_VAL_5_7 = spec(*([(1, 2)] * 5 + [(1, 7)]))
_VAL_6_7 = spec(*([(1, 2)] * 6 + [(1, 7)]))
_VAL_MIX = spec((1, 2), (1, 2), (1, 3), (1, 3), (1, 7))


def _paper(
    name,
    *,
    res,
    block,
    quality,
    clip,
    hidden,
    heads,
    channel,
    position,
    value,
    kernel,
    stride,
    batch,
    dropout,
    tokens,
    params,
    cores,
    num_classes=0,
    order="frequency",
):
    return Config(
        name=name,
        data=DataConfig(source="folder", image_size=res, block_size=block, quality=quality, clip=clip, order=order),
        model=ModelConfig(
            d_model=hidden,
            num_heads=heads,
            head_dim=64,
            mlp_ratio=4,
            encoder_spec=_ENC,
            channel_spec=channel,
            position_spec=position,
            value_spec=value,
            downsample_kernel=kernel,
            downsample_stride=stride,
            dropout=dropout,
            num_classes=num_classes,
            chunk_size=896,
            overlap=128,
            structure_masks=False,
        ),
        train=TrainConfig(
            batch_size=batch,
            learning_rate=5e-4,
            warmup_steps=1000,
            total_tokens=tokens,
            bf16=True,
            model_axis=8,
            checkpoint_every=5000,
            eval_every=5000,
            log_every=100,
            length_filter_lmax=None,
            # Folder images are decoded, resized and encoded in worker processes, beside the
            # trainer (benchmarks/model_input.py: lsun needs ~0.6 host cores per GPU).
            workers=4,
        ),
        paper_params=params,
        paper_tpu_cores=cores,
    )


# fmt: off
PRESETS = {
    "lsun": _paper("lsun", res=384, block=8, quality=75, clip=1200, hidden=896, heads=14,
                   channel=_DEC_3_4, position=_DEC_3_4, value=_VAL_5_7, kernel=4, stride=2,
                   batch=512, dropout=0.1, tokens=300e9, params=448e6, cores=64),
    "ffhq": _paper("ffhq", res=1024, block=16, quality=35, clip=3200, hidden=896, heads=14,
                   channel=_DEC_3_4, position=_DEC_3_4, value=_VAL_6_7, kernel=6, stride=3,
                   batch=448, dropout=0.1, tokens=250e9, params=473e6, cores=64),
    "imagenet": _paper("imagenet", res=384, block=8, quality=75, clip=1200, hidden=1152, heads=14,
                       channel=_DEC_3_4, position=_DEC_3_4, value=_VAL_6_7, kernel=8, stride=4,
                       batch=512, dropout=0.01, tokens=1000e9, params=738e6, cores=128, num_classes=1000),
    # Colorisation (section 4.3): luminance first, then the colour channels.
    "openimages": _paper("openimages", res=640, block=8, quality=50, clip=1200, hidden=896, heads=18,
                         channel=_DEC_3_4, position=_DEC_3_4, value=_VAL_6_7, kernel=6, stride=3,
                         batch=512, dropout=0.01, tokens=1000e9, params=533e6, cores=64, order="luma_first"),
    "plant_leaves": _paper("plant_leaves", res=2048, block=32, quality=50, clip=4000, hidden=768, heads=12,
                           channel=_DEC_3_3, position=_DEC_3_4, value=_VAL_MIX, kernel=4, stride=2,
                           batch=256, dropout=0.4, tokens=100e9, params=325e6, cores=64),
    "retinopathy": _paper("retinopathy", res=1024, block=16, quality=75, clip=3200, hidden=768, heads=12,
                          channel=_DEC_3_3, position=_DEC_3_4, value=_VAL_MIX, kernel=4, stride=2,
                          batch=512, dropout=0.1, tokens=200e9, params=318e6, cores=64),
    "clevr": _paper("clevr", res=480, block=8, quality=90, clip=1200, hidden=896, heads=14,
                    channel=_DEC_3_4, position=_DEC_3_4, value=_VAL_6_7, kernel=6, stride=3,
                    batch=128, dropout=0.5, tokens=50e9, params=483e6, cores=32),
}

# The paper's CLEVR column, but on the built-in generated scenes (no download).
PRESETS["clevr_scenes"] = dataclasses.replace(
    PRESETS["clevr"], name="clevr_scenes",
    data=dataclasses.replace(PRESETS["clevr"].data, source="scenes", num_train=1_000_000),
)

# Laptop presets on generated scenes: tiny trains in ~4 minutes, small in ~35 minutes on 2 CPU cores.
PRESETS["tiny"] = Config(
    name="tiny",
    # num_train=20000 (was 2000): 4800 steps draw 76800 rows, so each of 2000 scenes was seen ~38
    # times; held-out bpd 0.1001 / 0.0997 -> 0.0970 / 0.0969 (seeds 0 / 1), FID 219 / 229 -> 222 / 225.
    data=DataConfig(source="scenes", image_size=32, block_size=4, quality=50, clip=64, num_train=20000),
    model=ModelConfig(
        d_model=64, num_heads=4, encoder_spec=spec((1, 2)), channel_spec=spec((1, 2)),
        position_spec=spec((1, 2)), value_spec=spec((1, 2)),
        downsample_kernel=3, downsample_stride=1, chunk_size=16, overlap=0, dropout=0.0,
        position_pointer=True,  # bpd 0.146 -> 0.139, FID 272 -> 260 at 600 steps
        window_context=True,  # 4800 steps: bpd 0.1029 / 0.1032 -> 0.1001 / 0.0997, FID 226 / 223 -> 219 / 229
    ),
    # chunk_size=16 (was 64): every token before the chunk reaches the decoders through the
    # encoder's dense image, where a block's neighbours and its own earlier coefficients sit in
    # one 3x3 cell window, instead of through attention over up to 80 decoder steps.  A tiny
    # step costs about the same at either chunk size (its fixed costs dominate), so 2400 steps of
    # 16 x 16 tokens take 1.35x the CPU of 1200 of 16 x 64; held-out bpd 0.118 -> 0.111 / 0.111,
    # FID 249 -> 238 / 235 (two seeds; docs/dctmodel.md, "Sample quality").
    # downsample_kernel=3 (a 3x3 embedding of each block with its neighbours, no downsampling):
    # an AC coefficient's sign and presence follow the DC gradient across neighbouring blocks;
    # held-out bpd 0.130 / 0.126 (two seeds) -> 0.118, +10% CPU; FID 257 / 248 -> 249 (noise).
    # micro_batch=0 (was 4): at chunk 16 the whole batch's step takes 51 ms against 88 ms in four
    # slices (one device; 44 ms on two, the trainer's default on 2 cores).  The time saved buys
    # 4800 steps (was 2400): bpd 0.111 -> 0.103, FID 236 -> 225 (two seeds each), 4 min 38 s wall.
    # value_spec one block (was two) and overlap=0 (was 16): every earlier token reaches the
    # decoders through the encoder's image anyway, so the step costs 0.72x and 6000 steps (was
    # 4800) fit the same 5 minutes: held-out bpd 0.0970 / 0.0969 -> 0.0947 / 0.0949, FID 222 / 225
    # -> 221 / 220 (seeds 0 / 1), 4 min 57 s -> 4 min 28 s / 4 min 44 s wall on the same machine.
    # Uniform chunk selection: a tiny scene has 2-4 chunks and the l^-3 policy gave chunk 1 (the
    # chroma DC and first luma AC, most of the bits) 11% of the steps; uniform lowered held-out
    # bpd 0.161 -> 0.146 and FID 287 -> 272 at 600 steps (docs/dctmodel.md, "Sample quality").
    # cpu_devices=1: at 16 decoder steps a step, half the batch per core is too little work and
    # two devices cost more than they gain: the whole run took 3 min 52 s on one device against
    # 5 min 20 s on two (one after the other, same machine; held-out bpd the same).  The minute
    # this freed buys 7500 steps (was 6000): held-out bpd 0.0947 / 0.0949 -> 0.0923 / 0.0924, FID
    # 218 / 220 -> 212 / 211 (seeds 0 / 1), 4 min 31 s / 4 min 39 s wall on the idle machine.
    # checkpoint_every=1500 (was 200): an orbax save of tiny's 453 arrays costs ~0.6 s of CPU
    # (per-array overhead), and every 200 steps that was ~25 s of a 4-minute run.  Ctrl-C still
    # saves the running step; a crash loses at most ~40 s.
    # 9000 steps (was 7500): issue 22's cheaper weight gradients and one-vector Adam made the run
    # 3 min 29 s, so 1.2x the steps fit with the 5-minute margin kept: held-out bpd 0.0923 / 0.0924
    # -> 0.0905 / 0.0906, FID 212 / 211 -> 212 / 209 (seeds 0 / 1), 4 min 5 s wall on the idle machine.
    # flat_optimizer: clipping and Adam over one vector, 2.6 -> 1.0 ms of a ~24 ms step (config.py).
    train=TrainConfig(batch_size=16, micro_batch=0, cpu_devices=1, learning_rate=2e-3, warmup_steps=50,
                      total_tokens=16 * 16 * 9000, flat_optimizer=True,
                      checkpoint_every=1500, log_every=20, eval_images=16, length_filter_lmax=200,
                      chunk_policy="uniform"),
)
# small: tiny's recipe at 64 px (B=8 gives the same 8x8 luma grid): the 3x3 embedding at stride 1,
# chunk 32 (was 128, stride-2 encoder), the position pointer, the window context, uniform chunk
# selection and whole-batch steps on one device per core.  Held-out bpd 0.1735 -> 0.1302, FID 248.1 -> 218.8
# at 6400 steps of 16 x 32 tokens (32 min); 11000 steps fill issue 17's ~1 hour: 54 min 25 s wall on the
# 2 idle cores, bpd 0.1189, FID 206.3 (docs/dctmodel.md, "Sample quality").  A checkpoint every 500 steps
# (was 250: orbax's save costs CPU per array, as measured for tiny's; not timed for small).
PRESETS["small"] = Config(
    name="small",
    data=DataConfig(source="scenes", image_size=64, block_size=8, quality=75, clip=256, num_train=20000),
    model=ModelConfig(
        d_model=128, num_heads=4, encoder_spec=spec((1, 2), (1, 2)), channel_spec=spec((1, 2), (1, 2)),
        position_spec=spec((1, 2), (1, 2)), value_spec=spec((1, 2), (1, 2), (1, 4)),
        downsample_kernel=3, downsample_stride=1, chunk_size=32, overlap=32, dropout=0.1,
        position_pointer=True, window_context=True,
    ),
    train=TrainConfig(batch_size=16, micro_batch=0, learning_rate=1e-3, warmup_steps=200, total_tokens=16 * 32 * 11000,
                      checkpoint_every=500, log_every=25, eval_every=1600, eval_images=32,
                      length_filter_lmax=900, chunk_policy="uniform"),
)
# Test-sized: 16 px scenes, ~50 tokens each, compiles and steps in well under a second.
PRESETS["micro"] = Config(
    name="micro",
    data=DataConfig(source="scenes", image_size=16, block_size=4, quality=50, clip=32, num_train=64,
                    num_eval=8, max_objects=2),
    model=ModelConfig(
        d_model=32, num_heads=2, mlp_ratio=2, encoder_spec=spec((1, 1)), channel_spec=spec((1, 1)),
        position_spec=spec((1, 1)), value_spec=spec((1, 1)), chunk_size=32, overlap=8,
    ),
    train=TrainConfig(batch_size=8, learning_rate=3e-3, warmup_steps=10, total_tokens=8 * 32 * 100,
                      checkpoint_every=0, log_every=10, eval_images=8, prefetch=2),
)
# fmt: on
