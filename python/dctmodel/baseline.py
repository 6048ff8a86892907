"""The count baseline: a static model of token lists that a DCTransformer has to beat.

``p(c | previous c) p(p | c) p(v | c)`` fitted by counting on training lists,
with add-1/2 (Krichevsky-Trofimov) smoothing so every class of the
vocabularies keeps a finite cost.  The stop token costs its channel only, as
in the model's loss.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from .config import Config
from .tokens import value_to_class


@dataclass
class CountModel:
    channel: np.ndarray  # (C + 2, C + 1) log2 p(c | previous c); row C + 1 is the start (BOS)
    position: np.ndarray  # (C, G*G) log2 p(p | c)
    value: np.ndarray  # (C, 2*clip) log2 p(v | c)
    num_channels: int
    clip: int

    @classmethod
    def fit(cls, cfg: Config, lists: Iterable[np.ndarray], alpha: float = 0.5) -> CountModel:
        """Fit on token lists int32 ``(N + 1, 3)`` (ending with the stop token)."""
        C, G2, V = cfg.data.num_channels, cfg.data.grid**2, 2 * cfg.data.clip
        nc = np.zeros((C + 2, C + 1))
        npos = np.zeros((C, G2))
        nv = np.zeros((C, V))
        for t in lists:
            t = np.asarray(t, np.int64)
            ch = t[:, 0]
            prev = np.concatenate([[C + 1], ch[:-1]])
            np.add.at(nc, (prev, ch), 1)
            body = t[ch < C]
            np.add.at(npos, (body[:, 0], body[:, 1]), 1)
            np.add.at(nv, (body[:, 0], value_to_class(body[:, 2], cfg.data.clip)), 1)

        def logp(n):
            n = n + alpha
            return np.log2(n / n.sum(axis=1, keepdims=True))

        return cls(logp(nc), logp(npos), logp(nv), C, cfg.data.clip)

    def bits(self, tokens: np.ndarray) -> float:
        """Code length in bits of one list ``(N + 1, 3)`` (stop included)."""
        t = np.asarray(tokens, np.int64)
        C = self.num_channels
        ch = t[:, 0]
        prev = np.concatenate([[C + 1], ch[:-1]])
        body = t[ch < C]
        return float(
            -(
                self.channel[prev, ch].sum()
                + self.position[body[:, 0], body[:, 1]].sum()
                + self.value[body[:, 0], value_to_class(body[:, 2], self.clip)].sum()
            )
        )
