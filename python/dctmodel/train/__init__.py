"""Training, evaluation and checkpointing of the DCTransformer.

    python -m dctmodel.train --config tiny --workdir runs/tiny            # train
    python -m dctmodel.train --config tiny --workdir runs/tiny --resume   # continue after Ctrl-C
    python -m dctmodel.train --config small --workdir runs/s --set train.bf16=True model.dropout=0.0

    from dctmodel.train import train, evaluate
    state, records = train(cfg, "runs/x")

Design:

* The whole train state is a pytree ``{"params", "opt", "step"}`` of plain
  dicts/optax states (``nnx.to_pure_dict``), so sharding it, checkpointing it
  with orbax and restoring it are all one-liners.  The model is rebuilt from
  the params inside the jitted step (``model.model_from_params``).  With
  ``train.flat_optimizer`` the optimiser runs over one flat vector
  (``optim.flat_state``); checkpoints hold the moments per parameter either way
  (``loop.checkpoint_layout``).
* Batches are a pure function of ``(seed, step)`` (``data.sample_batch``; each
  row of ``(seed, step, row)``, so a host builds only its own rows) and the
  dropout key is ``fold_in(seed, step)``, so ``--resume`` from a checkpoint at
  step ``k`` reproduces an uninterrupted run bit for bit.
* A ``Mesh(("data", "model"))`` shards the batch over every device and, when
  ``train.model_axis > 1``, each large parameter's first axis over "model"
  (FSDP; XLA inserts the all-gathers).  One device, N fake CPU devices
  (``XLA_FLAGS=--xla_force_host_platform_device_count=N``), a GPU or a TPU
  slice run the same code; pass ``--distributed`` for multi-host.
* Loss: mean over target tokens of channel + position + value cross-entropy
  (nats).  The stop token contributes its channel term only.  Bits per image
  subpixel (bpd) = bits / (H*W*P), P = 3 planes (1 for greyscale).

Files: ``sharding`` (mesh, shardings, ``put_batch``), ``optim`` (schedule,
optimiser), ``steps`` (``Functions``: init, loss, train and eval steps),
``evaluation`` (held-out bpd), ``progress`` (progress line, logged metrics),
``loop`` (``train``), ``distributed`` (joining a multi-host run), ``cli``
(``python -m dctmodel.train``); checkpoints and
work directories are ``dctmodel.checkpoint``.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .cli import main
    from .evaluation import evaluate
    from .loop import save_checkpoint, train
    from .optim import lr_schedule, make_optimizer
    from .sharding import batch_sharding, host_rows, make_mesh, param_spec, put_batch, state_shardings
    from .steps import LN2, Functions, functions

# Lazy: ``python -m dctmodel.train`` may start itself again (``hostmem``) before it imports
# jax, and these names pull jax in (~2 s).
_FROM = {
    "main": "cli",
    "evaluate": "evaluation",
    "save_checkpoint": "loop",
    "train": "loop",
    "lr_schedule": "optim",
    "make_optimizer": "optim",
    "batch_sharding": "sharding",
    "host_rows": "sharding",
    "make_mesh": "sharding",
    "param_spec": "sharding",
    "put_batch": "sharding",
    "state_shardings": "sharding",
    "LN2": "steps",
    "Functions": "steps",
    "functions": "steps",
}


def __getattr__(name):
    if name in _FROM:
        import importlib

        return getattr(importlib.import_module(f".{_FROM[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "LN2",
    "Functions",
    "batch_sharding",
    "evaluate",
    "functions",
    "lr_schedule",
    "main",
    "make_mesh",
    "make_optimizer",
    "param_spec",
    "put_batch",
    "host_rows",
    "save_checkpoint",
    "state_shardings",
    "train",
]
