"""benchmarks/model_train_peer.py: the harness that times the public PyTorch DCTransformer.

The peer itself is not shipped; a stand-in package with its constructor and
forward signature checks what the harness hands it (shapes, token ranges) and
that the three timed calls train it."""

import sys
import textwrap

import pytest

from benchmarks import model_train_peer as peer

FAKE_PEER = """
import torch
import torch.nn as nn
from matplotlib import pyplot  # noqa: F401  (the real package imports these at import time)
import torchvision  # noqa: F401

SEEN = []

class DCTransformer(nn.Module):
    def __init__(self, resolution, block_size, interleave=True, encoder_downsample=2, nlayer=3,
                 val_nlayer=5, d_model=512, nheads=8, chunk_size=896, max_nchunk=10, dropout=0.1):
        super().__init__()
        h, w = resolution
        self.ncls = (block_size**2 * 3 + 3, (h // block_size) * (w // block_size) + 3, 32 * block_size**2 + 3)
        self.prior_shape = (block_size**2 * 3, h // block_size, w // block_size)
        self.max_nchunk = max_nchunk
        self.args = dict(nlayer=nlayer, val_nlayer=val_nlayer, d_model=d_model, nheads=nheads,
                         chunk_size=chunk_size, dropout=dropout)
        self.heads = nn.ModuleList(nn.Linear(3, n) for n in self.ncls)

    def forward(self, chunks, priors, chunk_ids):
        SEEN.append((tuple(chunks.shape), tuple(priors.shape), tuple(chunk_ids.shape)))
        assert priors.shape[1:] == self.prior_shape
        for i, n in enumerate(self.ncls):  # real tokens only: past the 3 specials, inside the vocabulary
            assert 3 <= int(chunks[:, i].min()) and int(chunks[:, i].max()) < n
        assert 0 <= int(chunk_ids.min()) and int(chunk_ids.max()) < self.max_nchunk
        x = chunks.permute(0, 2, 1).float() / 100
        return tuple(h(x) for h in self.heads)
"""


@pytest.fixture
def fake_peer(tmp_path):
    """A checkout holding the stand-in; the modules the harness adds are removed afterwards."""
    pkg = tmp_path / "dctransformer"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "model.py").write_text(textwrap.dedent(FAKE_PEER))
    modules, path = set(sys.modules), list(sys.path)
    yield tmp_path
    for name in set(sys.modules) - modules:
        del sys.modules[name]
    sys.path[:] = path


def test_refuses_a_folder_without_the_peer(capsys):
    with pytest.raises(SystemExit) as e:
        peer.main(["--peer", "/nonexistent/peer"])
    assert e.value.code == 2
    assert "dctransformer/model.py" in capsys.readouterr().err


def test_hands_the_peer_the_presets_sizes_and_its_steps_train_it(fake_peer):
    torch = pytest.importorskip("torch")
    cfg = peer.preset("tiny", peer.MATCHED)
    calls, model = peer.peer_calls(cfg, fake_peer)
    fake = sys.modules["dctransformer.model"]

    b, c, grid, bs = cfg.train.batch_size, cfg.model.chunk_size, cfg.data.grid, cfg.data.block_size
    calls["forward"]()
    assert fake.SEEN[-1] == ((b, 3, c), (b, 3 * bs * bs, grid, grid), (b,))
    assert model.args == dict(nlayer=1, val_nlayer=2, d_model=64, nheads=4, chunk_size=c, dropout=0.0)
    assert all(p.grad is None for p in model.parameters())  # the forward takes no gradient

    before = [p.detach().clone() for p in model.parameters()]
    calls["fwd+bwd"]()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    assert all(torch.equal(a, p) for a, p in zip(before, model.parameters(), strict=True))  # no update yet
    calls["step"]()
    assert all(not torch.equal(a, p) for a, p in zip(before, model.parameters(), strict=True))
