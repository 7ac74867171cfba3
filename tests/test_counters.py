"""In-process counters: Prometheus names, labels, the text exposition."""

from __future__ import annotations

import pytest

from server.counters import REGISTRY, Counter, counter, exposition


def test_a_counter_grows_per_label_set_and_renders_as_prometheus_text() -> None:
    hits = counter("custos_test_hits_total", "Hits in a test.", ("code",))
    assert counter("custos_test_hits_total", "again", ("code",)) is hits
    hits.inc("A")
    hits.inc("A", amount=2)
    hits.inc('B"\n')
    assert (hits.value("A"), hits.value("C")) == (3, 0)
    text = exposition()
    assert "# TYPE custos_test_hits_total counter\n" in text
    assert 'custos_test_hits_total{code="A"} 3\n' in text
    assert 'custos_test_hits_total{code="B\\"\\n"} 1\n' in text
    assert "custos_authentication_failures_total" in REGISTRY
    del REGISTRY["custos_test_hits_total"]


def test_counters_refuse_bad_names_labels_and_decrements() -> None:
    with pytest.raises(ValueError, match="ending in _total"):
        Counter("custos_hits", "not a _total name")
    plain = Counter("custos_plain_total", "No labels.")
    with pytest.raises(ValueError, match="takes labels"):
        plain.inc("extra")
    with pytest.raises(ValueError, match="never decreases"):
        plain.inc(amount=-1)
