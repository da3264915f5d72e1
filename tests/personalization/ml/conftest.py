"""CDNOW sample and synthetic tenants for the pure-computation tests (no database)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

CDNOW = Path(__file__).resolve().parents[4] / "shared" / "benchdata" / "cdnow"
CALIBRATION_END = "1997-09-30"


@pytest.fixture(scope="session")
def cdnow_orders() -> pd.DataFrame:
    """CDNOW 1/10 sample as orders: customer_id, placed_at, total (whole period, Jan 1997 - Jun 1998)."""
    path = CDNOW / "CDNOW_sample.txt"
    if not path.exists():
        pytest.skip(f"CDNOW sample not found at {path}")
    raw = pd.read_csv(
        path, sep=r"\s+", header=None, names=["master_id", "customer_id", "date", "cds", "total"], dtype={"date": str}
    )
    raw["placed_at"] = pd.to_datetime(raw["date"], format="%Y%m%d")
    return raw[["customer_id", "placed_at", "total"]]


@pytest.fixture(scope="session")
def cdnow_reference() -> pd.DataFrame:
    """The lifetimes package's CDNOW summary (x, t_x, T in weeks, zbar), indexed by customer id."""
    return pd.read_csv(CDNOW / "cdnow_customers_summary_with_transactions.csv").set_index("ID")
