"""The hand-written Adam of the torch models (models.useritem.base.Adam) against torch.optim.Adam: the same
parameters to the bit after many steps with changing rates, sparse-looking gradients and a parameter that gets
no gradient, and the same state names (a checkpoint of one resumes with the other)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from itemvec.models.useritem.base import Adam  # noqa: E402


def _run(make, steps=40):
    torch.manual_seed(0)
    table = torch.nn.Parameter(torch.randn(50, 8))
    layer = torch.nn.Parameter(torch.randn(8, 3))
    idle = torch.nn.Parameter(torch.randn(4))  # never in the loss: no gradient, no state
    optimiser = make([table, layer, idle])
    data = torch.Generator().manual_seed(1)
    for step in range(steps):
        rows = torch.randint(0, 50, (16,), generator=data)  # a few rows of the table per step, as embeddings
        loss = torch.relu(table[rows] @ layer).pow(2).mean()
        optimiser.param_groups[0]["lr"] = 0.01 * (1 + step % 7) / 7  # the trainer sets the rate every step
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
    return [p.detach().clone() for p in (table, layer, idle)], optimiser


def test_the_hand_written_adam_is_torchs_to_the_bit():
    ours, ours_opt = _run(lambda params: Adam(params, lr=0.01))
    theirs, theirs_opt = _run(lambda params: torch.optim.Adam(params, lr=0.01))
    for a, b in zip(ours, theirs):
        assert torch.equal(a, b)
    assert len(ours_opt.state) == len(theirs_opt.state) == 2  # the idle parameter has no state in either
    for mine, torchs in zip(ours_opt.state.values(), theirs_opt.state.values()):
        assert sorted(mine) == sorted(torchs) == ["exp_avg", "exp_avg_sq", "step"]
        for key in mine:
            assert torch.equal(mine[key], torchs[key])
