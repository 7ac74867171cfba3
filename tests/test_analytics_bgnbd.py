"""The BG/NBD fit reproduces the published CDNOW estimates (Fader, Hardie & Lee 2005)."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from server.analytics.bgnbd import expected_purchases, fit, probability_alive

CDNOW = Path(__file__).parent / "fixtures" / "CDNOW_sample.txt"
CALIBRATION_END = date(1997, 9, 30)  # 39 weeks from 1 January 1997


def calibration_histories() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x = distinct purchase days after the first; t_x and T in weeks, up to the end."""
    days: dict[str, set[date]] = defaultdict(set)
    for line in CDNOW.read_text().splitlines():
        customer, _, day, _, _ = line.split()
        when = date(int(day[:4]), int(day[4:6]), int(day[6:]))
        if when <= CALIBRATION_END:
            days[customer].add(when)
    x, t_x, big_t = [], [], []
    for purchase_days in days.values():
        first, last = min(purchase_days), max(purchase_days)
        x.append(len(purchase_days) - 1)
        t_x.append((last - first).days / 7)
        big_t.append((CALIBRATION_END - first).days / 7)
    return np.array(x, dtype=float), np.array(t_x), np.array(big_t)


def test_fit_reproduces_published_cdnow_estimates() -> None:
    x, t_x, big_t = calibration_histories()
    assert len(x) == 2357  # the 1/10 sample's customers
    p = fit(x, t_x, big_t)
    assert p.r == pytest.approx(0.243, rel=0.01)
    assert p.alpha == pytest.approx(4.414, rel=0.01)
    assert p.a == pytest.approx(0.793, rel=0.01)
    assert p.b == pytest.approx(2.426, rel=0.01)
    assert p.log_likelihood == pytest.approx(-9582.4, rel=0.01)


def test_grouped_histories_fit_the_same_as_one_row_each() -> None:
    x, t_x, big_t = calibration_histories()
    triples = np.stack([x, t_x, big_t], axis=1)
    unique, counts = np.unique(triples, axis=0, return_counts=True)
    grouped = fit(unique[:, 0], unique[:, 1], unique[:, 2], counts.astype(float))
    assert grouped.customers == 2357
    assert grouped.r == pytest.approx(0.243, rel=0.01)
    assert grouped.log_likelihood == pytest.approx(-9582.4, rel=0.01)


def test_alive_and_expected_purchases_behave() -> None:
    x, t_x, big_t = calibration_histories()
    p = fit(x, t_x, big_t)
    repeats = np.array([0.0, 5.0, 5.0])
    last = np.array([0.0, 38.0, 2.0])  # weeks after the first purchase
    age = np.array([39.0, 39.0, 39.0])
    alive = probability_alive(p, repeats, last, age)
    # Never bought again: no evidence of death. Same x, the recent buyer beats the lapsed.
    assert alive[0] == 1.0
    assert alive[1] > 0.8
    assert alive[2] < 0.2
    expected = expected_purchases(p, 39.0, repeats, last, age)
    assert expected[1] > expected[0] > expected[2]
    # The paper's worked example: x=2, t_x=30.43, T=38.86 expects 1.226 in 39 weeks.
    example = expected_purchases(p, 39.0, np.array([2.0]), np.array([30.43]), np.array([38.86]))
    assert example[0] == pytest.approx(1.226, rel=0.01)
