"""The local search for an SLR placement (lowering/slr_search.py): hand-computed answers where the
SLLs decide, no answer where none exists, and every placement it finds within every limit on
random crowded problems whose answer is known by trying all."""

from __future__ import annotations

import itertools
import random
from dataclasses import replace

import pytest

from lowering.resources import RESOURCES, U55C_DEVICE, KernelUsage, Usage
from lowering.slr import SlrError, Wire, _placement, _within, place
from lowering.slr_search import search

BIG = Usage(BRAM36=400)  # of an SLR's 672: two never share one


def test_the_node_wired_to_both_others_goes_in_the_middle() -> None:
    usage = KernelUsage({"a": BIG, "b": BIG, "c": BIG})
    wires = [Wire("a", "b", 20000), Wire("b", "c", 20000), Wire("a", "c", 1000)]
    # b in the middle: 21,000 bits across each boundary (of 23,040); a or c in the middle: 40,000
    found = search(usage, wires, U55C_DEVICE)
    assert found is not None and found["b"] == 1 and {found["a"], found["c"]} == {0, 2}


def test_none_when_every_order_overfills_a_boundary() -> None:
    usage = KernelUsage({"a": BIG, "b": BIG, "c": BIG})
    wires = [Wire("a", "b", 20000), Wire("b", "c", 20000), Wire("a", "c", 20000)]
    assert search(usage, wires, U55C_DEVICE) is None
    with pytest.raises(SlrError, match=r"fits \(none found by the local search in 3 tries\); per SLR: DSP 3008"):
        place(usage, wires, first=True)


def test_one_of_two_dma_heavy_nodes_sits_in_slr0() -> None:
    """Three nodes that cannot share an SLR, two with 20,000 bits of HBM ports: a DMA above SLR0
    sends its ports across boundary 0, so one of the two must sit in SLR0 (both above: 40,000 of
    23,040). With 4,000 bits on the third too, none fits (the one beside SLR0's adds 4,000 or 20,000)."""
    usage = KernelUsage({"x": BIG, "y": BIG, "z": BIG})
    wires = [Wire("x", "HBM", 20000), Wire("y", "HBM", 20000)]
    found = search(usage, wires, U55C_DEVICE)
    assert found is not None and 0 in (found["x"], found["y"]) and sorted(found.values()) == [0, 1, 2]
    assert search(usage, [*wires, Wire("z", "HBM", 4000)], U55C_DEVICE) is None


def _exists(usage: KernelUsage, wires: list[Wire], sll: int) -> bool:
    device = replace(U55C_DEVICE, sll=sll)
    return any(_within(usage, _placement(dict(zip(usage.nodes, at, strict=True)), wires, device, 0.0), device, 1.0)
               for at in itertools.product(range(3), repeat=len(usage.nodes)))


@pytest.mark.parametrize("seed", range(12))
def test_it_finds_a_placement_within_every_limit_when_one_exists(seed: int) -> None:
    """Seven nodes over several resources filling ~80-95% of the device, wires between them and to
    the HBM, SLLs cut to the crowded side: trying all 2,187 placements knows the answer."""
    rng = random.Random(seed)
    names = [f"n{i}" for i in range(7)]
    per = U55C_DEVICE.per_slr
    usage = KernelUsage({n: Usage(**{r: int(getattr(per, r) * rng.uniform(0.2, 0.45)) for r in rng.sample(RESOURCES, 2)})
                        for n in names})
    wires = [Wire(a, b, rng.randrange(500, 6000)) for a, b in itertools.combinations(names, 2) if rng.random() < 0.4]
    wires += [Wire(n, "HBM", 1024 * rng.randrange(1, 6)) for n in names if rng.random() < 0.5]
    sll = rng.choice([8000, 12000, 23040])
    device = replace(U55C_DEVICE, sll=sll)
    found = search(usage, wires, device)
    if found is None:
        assert not _exists(usage, wires, sll)
    else:
        assert _within(usage, _placement(found, wires, device, 0.0), device, 1.0)
        assert search(usage, wires, device) == found  # the same answer every run
        # the least-crossing placement starts from it: never more crossing bits
        assert place(usage, wires, device, small=0).crossing_bits <= _placement(found, wires, device, 0.0).crossing_bits
