"""Whole requests from fractional expectations, exactly and without randomness.

Why not a seeded random generator: a test that asserts "about 20% of requests go to the
canary" would still depend on the seed and on how many ticks ran. Instead every split is a
largest-remainder apportionment that carries each share's rounding error into the next tick.
Over any run of ticks each share receives its exact expected count, give or take one request,
and a tick never invents or loses a request: the parts always add up to the whole.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from typing import TypeVar

K = TypeVar("K", bound=Hashable)


class Apportioner:
    """Splits request counts by shares, remembering each share's rounding error per key.

    A *key* names one decision point that repeats every tick, for example "the destinations
    of VirtualService X" or "the latency buckets of series Y". Keys not used during a tick are
    forgotten by :meth:`forget_unused`, so memory follows the live objects.
    """

    def __init__(self) -> None:
        self._carry: dict[Hashable, dict[Hashable, float]] = {}
        self._remainder: dict[Hashable, float] = {}
        self._used: set[Hashable] = set()

    def whole(self, key: Hashable, amount: float) -> int:
        """Turn a fractional amount into a whole count, carrying the remainder.

        Args:
            key: The decision point.
            amount: Expected count for this tick (not negative).

        Returns:
            ``floor(amount + carried remainder)``; over many ticks the sum matches the sum of
            amounts to within one.
        """
        self._used.add(key)
        total = amount + self._remainder.get(key, 0.0)
        count = max(math.floor(total + 1e-9), 0)
        self._remainder[key] = total - count
        return count

    def split(self, key: Hashable, total: int, shares: Sequence[tuple[K, float]]) -> dict[K, int]:
        """Split ``total`` requests in proportion to ``shares``.

        Args:
            key: The decision point.
            total: Whole requests to hand out.
            shares: ``(label, weight)`` pairs; weights need not add up to one, labels must be
                unique. Labels with weight zero get nothing.

        Returns:
            A count for every label with a positive weight; counts add up to ``total`` (or are
            empty when no weight is positive).
        """
        self._used.add(key)
        positive = [(label, weight) for label, weight in shares if weight > 0]
        weight_sum = sum(weight for _, weight in positive)
        if not positive or weight_sum <= 0:
            self._carry.pop(key, None)
            return {}
        previous = self._carry.get(key, {})
        if previous.keys() != {label for label, _ in positive}:
            previous = {}  # other shares than last tick: old remainders no longer apply
        expected = {
            label: total * weight / weight_sum + previous.get(label, 0.0)
            for label, weight in positive
        }
        counts = {label: max(math.floor(value + 1e-9), 0) for label, value in expected.items()}
        missing = total - sum(counts.values())
        # Ties are broken by the caller's order, so results are reproducible.
        by_remainder = sorted(counts, key=lambda lb: counts[lb] - expected[lb])
        index = 0
        while missing > 0:
            counts[by_remainder[index % len(by_remainder)]] += 1
            missing -= 1
            index += 1
        for label in reversed(by_remainder):
            if missing == 0:
                break
            if counts[label] > 0:
                counts[label] -= 1
                missing += 1
        self._carry[key] = {label: expected[label] - counts[label] for label in counts}
        return counts

    def forget_unused(self) -> None:
        """Drop the remainders of keys not used since the previous call."""
        self._carry = {k: v for k, v in self._carry.items() if k in self._used}
        self._remainder = {k: v for k, v in self._remainder.items() if k in self._used}
        self._used = set()

    def __len__(self) -> int:
        """Number of keys with remembered remainders."""
        return len(self._carry) + len(self._remainder)
