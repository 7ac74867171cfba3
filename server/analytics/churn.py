"""Churn risk: the BG/NBD model's P(alive) combined with the warning signals of practice.

The model is fit once per (as-of day, data version) and kept in a small process cache:
fits are not per request, and a new or cancelled order changes the data version so the
model is refitted. Each process fits on its own first use; nothing shared lives only here.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import numpy as np

from server.analytics.bgnbd import BgNbdParameters, expected_purchases, fit, probability_alive

# Time unit of the fitted model: purchase histories are measured in weeks, as in the paper.
TIME_UNIT = "week"
DAYS_PER_UNIT = 7.0
# "Next period" for expected purchases: 13 weeks (a quarter).
HORIZON_UNITS = 13.0
CACHE_SIZE = 32

# Weights of the warning signals; the model's own risk (1 - P(alive)) is combined with them
# as independent chances: score = 1 - (1 - model risk) x product(1 - weight).
WEIGHTS = {
    "frequency_falling": 0.25,
    "spend_falling": 0.20,
    "complaints_rising": 0.15,
    "unhappy_outcome": 0.20,
    "contact_fading": 0.10,
}
# A customer who never bought: the model knows nothing, so the risk is an even chance.
NO_HISTORY_RISK = 0.5


@dataclass(frozen=True, slots=True)
class ChurnModel:
    as_of: date
    parameters: BgNbdParameters
    time_unit: str = TIME_UNIT


@dataclass(frozen=True, slots=True)
class ChurnSignal:
    code: str
    weight: float
    description: str


@dataclass(frozen=True, slots=True)
class ChurnRisk:
    customer_id: Any
    score: float
    probability_alive: float | None
    expected_purchases: float | None
    signals: list[ChurnSignal]


# (as-of day, (row scope, whose: team or subject), data version of that population)
ModelKey = tuple[date, tuple[str, str | None], tuple[int, str]]


class ModelCache:
    """Fitted models by (as-of day, population, data version), least recently used
    evicted."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self.size = size
        self._models: OrderedDict[ModelKey, ChurnModel] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: ModelKey) -> ChurnModel | None:
        with self._lock:
            model = self._models.get(key)
            if model is not None:
                self._models.move_to_end(key)
            return model

    def put(self, key: ModelKey, model: ChurnModel) -> None:
        with self._lock:
            self._models[key] = model
            self._models.move_to_end(key)
            while len(self._models) > self.size:
                self._models.popitem(last=False)


def fit_histories(as_of: date, rows: Sequence[Any]) -> ChurnModel:
    """Fit on (x, t_x days, T days, how many customers) rows."""
    x = np.array([float(r.x) for r in rows])
    t_x = np.array([float(r.t_x) for r in rows]) / DAYS_PER_UNIT
    big_t = np.array([float(r.age) for r in rows]) / DAYS_PER_UNIT
    weights = np.array([float(r.n) for r in rows])
    return ChurnModel(as_of, fit(x, t_x, big_t, weights))


def _falling(recent: float, before_per_period: float) -> bool:
    return before_per_period > 0 and recent < 0.5 * before_per_period


def assess(model: ChurnModel | None, rows: Sequence[Any]) -> list[ChurnRisk]:
    """Score each customer row from `ChurnRepository.signals`."""
    buyers = [r for r in rows if r.x is not None]
    alive: dict[Any, tuple[float, float]] = {}
    if model is not None and buyers:
        x = np.array([float(r.x) for r in buyers])
        t_x = np.array([float(r.t_x) for r in buyers]) / DAYS_PER_UNIT
        big_t = np.array([float(r.age) for r in buyers]) / DAYS_PER_UNIT
        # A model fitted on a small or one-sided population can sit at the edge of its
        # parameter space; a value it cannot give is left out, not an error.
        with np.errstate(all="ignore"):
            p_alive = probability_alive(model.parameters, x, t_x, big_t)
            expected = expected_purchases(model.parameters, HORIZON_UNITS, x, t_x, big_t)
        for r, alive_p, expected_n in zip(buyers, p_alive, expected, strict=True):
            if np.isfinite(alive_p) and np.isfinite(expected_n):
                alive[r.id] = (float(alive_p), float(expected_n))
    out: list[ChurnRisk] = []
    for r in rows:
        signals: list[ChurnSignal] = []
        p: float | None
        e: float | None
        if r.x is not None and r.id not in alive:
            # A buyer without a usable model (too few histories in the caller's scope).
            p, e, model_risk = None, None, NO_HISTORY_RISK
            signals.append(
                ChurnSignal("no_model", NO_HISTORY_RISK, "too few purchase histories for a model")
            )
        elif r.id in alive:
            p, e = alive[r.id]
            model_risk = 1.0 - p
            signals.append(
                ChurnSignal(
                    "model",
                    round(model_risk, 4),
                    f"purchase model: P(alive) {p:.2f} after {int(r.x) + 1} purchase days, "
                    f"the last {int(r.days_since_last)} days ago",
                )
            )
        else:
            p, e, model_risk = None, None, NO_HISTORY_RISK
            signals.append(ChurnSignal("no_purchase", NO_HISTORY_RISK, "no purchase yet"))
        orders_before = float(r.orders_before) / 3.0
        if _falling(float(r.orders_recent), orders_before):
            signals.append(
                ChurnSignal(
                    "frequency_falling",
                    WEIGHTS["frequency_falling"],
                    f"purchase frequency fell: {r.orders_recent} orders in the last 180 days "
                    f"against {orders_before:.1f} per 180 days before",
                )
            )
        spend_before = Decimal(r.spend_before or 0) / 3
        if _falling(float(r.spend_recent or 0), float(spend_before)):
            signals.append(
                ChurnSignal(
                    "spend_falling",
                    WEIGHTS["spend_falling"],
                    f"spend fell: {Decimal(r.spend_recent or 0):.2f} in the last 180 days "
                    f"against {spend_before:.2f} per 180 days before",
                )
            )
        complaints_before = float(r.complaints_before) / 3.0
        if r.complaints_recent >= 1 and r.complaints_recent > complaints_before:
            signals.append(
                ChurnSignal(
                    "complaints_rising",
                    WEIGHTS["complaints_rising"],
                    f"complaints rose: {r.complaints_recent} in the last 90 days "
                    f"against {complaints_before:.1f} per 90 days before",
                )
            )
        if r.unhappy >= 1:
            signals.append(
                ChurnSignal(
                    "unhappy_outcome",
                    WEIGHTS["unhappy_outcome"],
                    f"unhappy complaint outcome: {r.unhappy} complaint(s) rated 2 or lower "
                    "in the last 180 days",
                )
            )
        contacts_before = float(r.contacts_before) / 3.0
        if _falling(float(r.contacts_recent), contacts_before):
            signals.append(
                ChurnSignal(
                    "contact_fading",
                    WEIGHTS["contact_fading"],
                    f"contact is fading: {r.contacts_recent} contacts in the last 90 days "
                    f"against {contacts_before:.1f} per 90 days before",
                )
            )
        keep = 1.0 - model_risk
        for s in signals[1:]:
            keep *= 1.0 - s.weight
        out.append(ChurnRisk(r.id, round(1.0 - keep, 4), p, e, signals))
    return out
