"""``DealSize``: the searchable order of magnitude of a deal, never its amount."""

from __future__ import annotations

from decimal import Decimal

import pytest

from canonical.bands import DEAL_SIZE_BANDS, deal_size_band


@pytest.mark.parametrize("amount, band", [
    ("0", "under-10k"), ("9999.99", "under-10k"), ("10000", "10k-100k"), ("99999.99", "10k-100k"),
    ("100000", "100k-1m"), ("999999.99", "100k-1m"), ("1000000", "1m-plus"), ("25000000", "1m-plus"),
])
def test_bands_deal_size_band_is_the_order_of_magnitude(amount: str, band: str) -> None:
    assert deal_size_band(Decimal(amount)) == band
    assert band in DEAL_SIZE_BANDS
