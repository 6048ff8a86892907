"""dctmodel: the DCTransformer of "Generating images with sparse representations"
(Nash et al., ICML 2021) in JAX / Flax NNX, trained on ``dctsparse`` token sequences.

    from dctmodel import get_config, DCTransformer
    python -m dctmodel.train --config tiny --workdir runs/tiny

Modules: ``config`` (presets), ``scenes`` (generated dataset), ``tokens``,
``chunks``, ``data`` (sources and batches), ``masks``, ``model``,
``checkpoint`` (work directories, orbax), ``loop`` (Ctrl-C and logs), and the
packages ``train`` and ``sample`` (one job a file).
"""

from .config import PRESETS, Config, DataConfig, ModelConfig, TrainConfig, check_config, get_config, override

__all__ = [
    "PRESETS",
    "Config",
    "DataConfig",
    "ModelConfig",
    "TrainConfig",
    "check_config",
    "get_config",
    "override",
    "DCTransformer",
]


def __getattr__(name):
    # Lazy: importing the configs must not pull in jax.
    if name == "DCTransformer":
        from .model import DCTransformer

        return DCTransformer
    raise AttributeError(name)
