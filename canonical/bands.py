"""Coarse, non-identifying labels for values that must be searchable in plaintext.

Search attributes are indexed by the server and cannot be encrypted, so they never carry an amount or a
price: a deal is found by its order of magnitude instead (``DealSize``), which says how big a deal is
without disclosing what a customer pays.
"""

from __future__ import annotations

from decimal import Decimal

#: upper bounds (exclusive) in the deal's currency, and the label of the band below each
_BANDS: tuple[tuple[Decimal, str], ...] = (
    (Decimal(10_000), "under-10k"),
    (Decimal(100_000), "10k-100k"),
    (Decimal(1_000_000), "100k-1m"),
)


def deal_size_band(amount: Decimal) -> str:
    """The ``DealSize`` band of a total: ``under-10k``, ``10k-100k``, ``100k-1m`` or ``1m-plus``."""
    for bound, label in _BANDS:
        if amount < bound:
            return label
    return "1m-plus"


DEAL_SIZE_BANDS = tuple(label for _, label in _BANDS) + ("1m-plus",)

__all__ = ["DEAL_SIZE_BANDS", "deal_size_band"]
