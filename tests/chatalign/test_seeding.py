"""drawing_from: code that draws from torch's global generator runs on a given generator's stream instead."""

import torch

from chatalign.seeding import drawing_from


def test_draws_continue_the_generators_stream_and_leave_the_global_one_alone():
    torch.manual_seed(123)
    global_before = torch.get_rng_state()
    g = torch.Generator().manual_seed(7)
    with drawing_from(g):
        a = torch.randn(5)
        b = torch.rand(3)
    reference = torch.Generator().manual_seed(7)
    assert torch.equal(a, torch.randn(5, generator=reference))
    assert torch.equal(b, torch.rand(3, generator=reference))
    assert torch.equal(g.get_state(), reference.get_state())  # g advanced by exactly those draws
    assert torch.equal(torch.get_rng_state(), global_before)
    with drawing_from(g):  # a second block goes on where the first stopped
        c = torch.randn(4)
    assert torch.equal(c, torch.randn(4, generator=reference))


def test_the_draws_equal_those_after_reseeding_the_global_generator():
    """What library code did before (torch.manual_seed, then draw) gives the same numbers."""
    torch.manual_seed(11)
    expected = torch.nn.Linear(6, 2).weight.detach().clone()
    torch.manual_seed(0)
    with drawing_from(torch.Generator().manual_seed(11)):
        got = torch.nn.Linear(6, 2).weight.detach().clone()
    assert torch.equal(got, expected)


def test_the_global_generator_is_restored_when_the_block_raises():
    torch.manual_seed(5)
    before = torch.get_rng_state()
    g = torch.Generator().manual_seed(1)
    try:
        with drawing_from(g):
            torch.randn(3)
            raise ValueError("boom")
    except ValueError:
        pass
    assert torch.equal(torch.get_rng_state(), before)
    assert not torch.equal(g.get_state(), torch.Generator().manual_seed(1).get_state())
