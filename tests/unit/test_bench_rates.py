"""The benchmark's reading of a rate search: what counts as sustained."""

from __future__ import annotations

from bench.common import held_up_to, next_rate


def _best(held: dict[int, bool]) -> int | None:
    runs = sorted(held.items())
    best = held_up_to(runs, lambda r: r[1], lambda r: r[0])
    return best[0] if best else None


def test_a_rate_above_a_failed_one_is_not_sustained() -> None:
    # Run 1 of 2026-12-07: 350/s failed its hand-over bound, 375/s then held by luck.
    held = {100: True, 200: True, 300: True, 400: False, 350: False, 375: True, 325: True}
    assert _best(held) == 325


def test_every_rate_held() -> None:
    assert _best({100: True, 200: True}) == 200


def test_nothing_held() -> None:
    assert _best({100: False, 200: True}) is None
    assert held_up_to([], bool, int) is None


def test_the_search_agrees() -> None:
    # The search bisects below the lowest failure; where it stops is what is reported,
    # and a lucky rate the other search (failures alone) tried above does not change it.
    held: dict[int, bool] = {}
    truth = {100: True, 200: True, 300: True, 325: True}  # fails from 350 on
    while (rate := next_rate([100, 200, 300, 400, 500], held)) is not None:
        held[rate] = truth.get(rate, False)
    assert max(held) == 400 and 375 not in held
    assert _best(held) == 325
    assert _best({**held, 375: True}) == 325
