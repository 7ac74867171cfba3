"""The peer run's report: the goals of the audit-ledger work as ratios from one run."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

PEER = "postgraphile"
AUDIT_BYTES_PER_LIST = 20_000
TIMES = "\u00d7"


def _rows(
    runs: list[dict[str, Any]], target: str, scenario: str, c: int, phase: str | None = None
) -> list[dict[str, Any]]:
    return [
        r
        for r in runs
        if r["target"] == target
        and r["scenario"] == scenario
        and r["concurrency"] == c
        and (phase is None or r.get("phase") == phase)
    ]


def _best(
    runs: list[dict[str, Any]],
    target: str,
    scenario: str,
    c: int,
    key: str,
    phase: str | None = None,
) -> Any:
    """The best of the rounds: the highest throughput, the lowest latency, CPU or bytes
    (the round least disturbed by anything else on the machine). A round in which a
    request failed timed its refusals, not the scenario: it does not count."""
    values = [
        r[key]
        for r in _rows(runs, target, scenario, c, phase)
        if r.get(key) is not None and not r.get("failures")
    ]
    if not values:
        return None
    return max(values) if key == "rps" else min(values)


def _waits(runs: list[dict[str, Any]], target: str) -> tuple[int, int] | None:
    """Audit lock waits and active backend samples at 16 connections, all rounds."""
    found = [r["waits"] for r in _rows(runs, target, "by_id", 16, "scaling") if "waits" in r]
    if not found:
        return None
    return sum(w["audit_lock_waits"] for w in found), sum(
        w["active_backend_samples"] for w in found
    )


def _num(value: Any, unit: str = "") -> str:
    if value is None:
        return "—"
    if isinstance(value, float) and value >= 100:
        return f"{value:,.0f}{unit}"
    return f"{value:,.2f}{unit}" if isinstance(value, float) else f"{value:,}{unit}"


def _met(ok: bool | None) -> str:
    return "—" if ok is None else ("yes" if ok else "no")


def _slower(ours: Any, theirs: Any) -> tuple[str, float | None]:
    if not ours or not theirs:
        return "—", None
    ratio = ours / theirs
    return f"{ratio:.2f}{TIMES}", ratio


def goals(report: dict[str, Any]) -> list[dict[str, str]]:
    """One row per goal: Custos, PostGraphile, the ratio, the target, met or not."""
    rows: list[dict[str, str]] = []
    workers = report["options"]["workers"]
    one, many = "custos-1w", f"custos-{workers}w"

    def add(goal: str, custos: str, peer: str, ratio: str, target: str, met: bool | None) -> None:
        rows.append(
            {
                "goal": goal,
                "custos": custos,
                "postgraphile": peer,
                "ratio": ratio,
                "target": target,
                "met": _met(met),
            }
        )

    pg = report["backends"].get("postgresql")
    if pg:
        runs = pg["runs"]
        ours = _best(runs, one, "by_id", 16, "rps", "peer")
        theirs = _best(runs, PEER, "by_id", 16, "rps", "peer")
        share = ours / theirs if ours and theirs else None
        add(
            "customer by id, 16 connections",
            _num(ours, " rps"),
            _num(theirs, " rps"),
            f"1/{1 / share:.1f}" if share else "—",
            "≥ 1/3 of PostGraphile",
            share >= 1 / 3 if share else None,
        )
        for scenario, c, label, limit in (
            ("by_id", 1, "customer by id, 1 connection, p50", 2.0),
            ("list_1000", 1, "list of 1,000, p50", 1.5),
            ("nested_50x20", 1, f"50 customers {TIMES} 20 interactions, p50", 2.0),
        ):
            ours = _best(runs, one, scenario, c, "p50_ms")
            theirs = _best(runs, PEER, scenario, c, "p50_ms")
            text, ratio = _slower(ours, theirs)
            met = ratio <= limit if ratio is not None else None
            add(label, _num(ours, " ms"), _num(theirs, " ms"), text, f"≤ {limit}{TIMES}", met)
        for key, label in (("server_cpu_ms", "server"), ("db_cpu_ms", "database")):
            ours_cpu, theirs_cpu, ratios = [], [], []
            for scenario in ("by_id", "list_1000", "nested_50x20"):
                a = _best(runs, one, scenario, 1, key)
                b = _best(runs, PEER, scenario, 1, key)
                ours_cpu.append(_num(a))
                theirs_cpu.append(_num(b))
                ratios.append(_slower(a, b)[0])
            add(
                f"CPU per request, {label} (by id / list / nested), ms",
                " / ".join(ours_cpu),
                " / ".join(theirs_cpu),
                " / ".join(ratios),
                "—",
                None,
            )
        r1 = _best(runs, one, "by_id", 16, "rps", "scaling")
        rn = _best(runs, many, "by_id", 16, "rps", "scaling")
        scale = rn / r1 if r1 and rn else None
        add(
            f"{workers} workers / 1 worker (by id, 16 connections)",
            f"{_num(r1)} → {_num(rn)} rps",
            "",
            f"{scale:.2f}{TIMES}" if scale else "—",
            f"≥ 1.8{TIMES}",
            scale >= 1.8 if scale else None,
        )
        r2 = _best(runs, "custos-2x1w", "by_id", 16, "rps", "scaling")
        if r2:
            add(
                "2 instances / 1 instance on one PostgreSQL (by id, 8 + 8 connections)",
                f"{_num(r1)} → {_num(r2)} rps",
                "",
                f"{r2 / r1:.2f}{TIMES}" if r1 else "—",
                "",
                None,
            )
        lags = [
            r["waits"]["seal_lag_max_s"]
            for t in (one, many)
            for r in _rows(runs, t, "by_id", 16, "scaling")
            if "seal_lag_max_s" in r.get("waits", {})
        ]
        if lags:
            add(
                f"seal lag at 16 connections, worst sample (1 and {workers} workers)",
                f"{max(lags):.2f} s",
                "",
                "",
                "≤ 1 s",
                max(lags) <= 1.0,
            )
        waits = [_waits(runs, t) for t in (one, many)]
        if all(waits):
            add(
                f"lock waits on audit rows at 16 connections (1 / {workers} workers)",
                " / ".join(f"{w[0]} of {w[1]}" for w in waits if w),
                "",
                "",
                "0 (backend samples)",
                sum(w[0] for w in waits if w) == 0,
            )
        stored = _best(runs, one, "list_1000", 1, "stored_bytes_per_request")
        add(
            "audit bytes per 1,000-row list",
            _num(stored, " B"),
            "",
            "",
            f"≤ {AUDIT_BYTES_PER_LIST:,} B",
            stored <= AUDIT_BYTES_PER_LIST if stored is not None else None,
        )
    for backend, name in (("postgresql", "PostgreSQL"), ("sqlite", "SQLite")):
        trips = (report["backends"].get(backend) or {}).get("round_trips")
        if trips:
            values = [trips[s]["round_trips"] for s in ("by_id", "list_1000", "nested_50x20")]
            add(
                f"round trips per read request, {name} (by id / list / nested)",
                " / ".join(_num(v) for v in values),
                "",
                "",
                "≤ 4 + share of group commit",
                max(values) <= 4,
            )
    lite = report["backends"].get("sqlite")
    if lite:
        runs = lite["runs"]
        for scenario, c, label, floor in (
            ("by_id", 16, "SQLite: by id per worker (16 connections)", 800),
            ("create_interaction", 8, "SQLite: create interaction per worker (8 connections)", 500),
        ):
            rps = _best(runs, one, scenario, c, "rps")
            add(label, _num(rps, " rps"), "", "", f"≥ {floor} rps", rps >= floor if rps else None)
        slow = lite.get("slow_read")
        if slow:
            alone, during, reads = slow["cheap_alone"], slow["cheap_during"], slow["slow"]
            add(
                "SQLite: by id p50 / p99 alone → during slow reads (2 lists of 1,000)",
                f"{_num(alone['p50_ms'])} / {_num(alone['p99_ms'])} → "
                f"{_num(during['p50_ms'])} / {_num(during['p99_ms'])} ms "
                f"(slow read p50 {_num(reads['p50_ms'])} ms)",
                "",
                "",
                "no wait on the write lock: p99 during < ½ slow read p50",
                during["p99_ms"] < reads["p50_ms"] / 2,
            )
    return rows


RUN_COLUMNS = [
    "phase",
    "round",
    "target",
    "scenario",
    "concurrency",
    "requests",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "rps",
    "server_cpu_ms",
    "db_cpu_ms",
    "client_cpu_ms",
    "stored_bytes_per_request",
    "failures",
]


def markdown(report: dict[str, Any]) -> str:
    options = report["options"]
    lines = [
        f"# Custos against PostGraphile 4 — {report['started']}",
        "",
        f"Machine: {report['machine']}",
        f"Options: {options}",
        "",
        f"Custos = one uvicorn worker unless named. Each run was repeated {options['rounds']} "
        "times, Custos and PostGraphile interleaved; the goals take the best round of each "
        "(every round is listed below). Server CPU is the server's processes; database CPU "
        "its PostgreSQL backends; client CPU the load generator's.",
        "",
        "| goal | Custos | PostGraphile | ratio | target | met? |",
        "|---|---|---|---|---|---|",
    ]
    for g in report["goals"]:
        lines.append(
            f"| {g['goal']} | {g['custos']} | {g['postgraphile']} | {g['ratio']} "
            f"| {g['target']} | {g['met']} |"
        )
    for backend, data in report["backends"].items():
        lines += ["", f"## {backend}", ""]
        if data.get("answers_checked"):
            lines.append(
                f"Answers checked equal before timing (records): {data['answers_checked']}"
            )
            lines.append("")
        lines += ["| " + " | ".join(RUN_COLUMNS) + " |", "|" + "---|" * len(RUN_COLUMNS)]
        runs = list(data.get("runs", []))
        slow = data.get("slow_read")
        if slow:
            runs += [slow["cheap_alone"], slow["cheap_during"]]
        for row in runs:
            lines.append("| " + " | ".join(str(row.get(c, "")) for c in RUN_COLUMNS) + " |")
        if slow:
            lines += ["", f"Slow reads during the second cheap run: {slow['slow']}"]
        waits = [r for r in data.get("runs", []) if "waits" in r]
        if waits:
            lines += ["", "Wait events of active backends at 16 connections (samples):", ""]
            lines += [f"- {r['target']} ({r['phase']} {r['round']}): {r['waits']}" for r in waits]
        trips = data.get("round_trips")
        if trips:
            lines += ["", "Round trips per read request (in-process, one request logged):", ""]
            for name, t in trips.items():
                lines.append(
                    f"- {name}: {t['round_trips']} round trips ({t['statements']} statements)"
                )
            lines += ["", "One `customer(id)` request, in order:", "", "```"]
            lines += trips["by_id"]["one_request"]
            lines.append("```")
        for name, why in data.get("skipped", {}).items():
            lines += ["", f"Skipped {name}: {why}"]
    return "\n".join(lines) + "\n"


def write_reports(directory: Path, report: dict[str, Any]) -> tuple[Path, Path]:
    report["goals"] = goals(report)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    json_path = directory / f"peer-{stamp}.json"
    md_path = directory / f"peer-{stamp}.md"
    json_path.write_text(json.dumps(report, indent=2, default=str))
    md_path.write_text(markdown(report))
    return json_path, md_path
