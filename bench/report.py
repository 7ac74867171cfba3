"""The JSON and Markdown reports, with the goal ratios computed from the same run."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def _find(rows: list[dict[str, Any]], **match: Any) -> dict[str, Any] | None:
    for row in rows:
        if all(row.get(k) == v for k, v in match.items()):
            return row
    return None


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return round(a / b, 2)


def ratios(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Goal ratios per backend and mode; None where a run did not happen."""
    found: dict[str, Any] = {}
    for backend in sorted({r["backend"] for r in rows}):
        for mode in sorted({r["mode"] for r in rows if r["backend"] == backend}):
            key = f"{backend}/{mode}"

            def p50(scenario: str, target: str, concurrency: int = 1) -> float | None:
                row = _find(
                    rows,
                    backend=backend,  # noqa: B023
                    mode=mode,  # noqa: B023
                    scenario=scenario,
                    target=target,
                    concurrency=concurrency,
                )
                return row["p50_ms"] if row else None

            def cpu(scenario: str, target: str, concurrency: int = 1) -> float | None:
                row = _find(
                    rows,
                    backend=backend,  # noqa: B023
                    mode=mode,  # noqa: B023
                    scenario=scenario,
                    target=target,
                    concurrency=concurrency,
                )
                return row["cpu_ms_per_request"] if row else None

            create = _find(
                rows, backend=backend, mode=mode, scenario="create_customer", target="app"
            )
            found[key] = {
                "list_1000_app_over_A": _ratio(p50("list_1000", "app"), p50("list_1000", "A")),
                "list_1000_B_over_app": _ratio(p50("list_1000", "B"), p50("list_1000", "app")),
                "list_1000_plain_over_app": _ratio(
                    p50("list_1000", "app-plain"), p50("list_1000", "app")
                ),
                # CPU per request is steadier than wall time on a shared machine.
                "list_1000_cpu_app_over_A": _ratio(cpu("list_1000", "app"), cpu("list_1000", "A")),
                "list_1000_cpu_B_over_app": _ratio(cpu("list_1000", "B"), cpu("list_1000", "app")),
                "single_p50_app_over_C": _ratio(
                    p50("single_by_id", "app"), p50("single_by_id", "C")
                ),
                "create_rps_per_worker": round(create["rps"] / create["workers"], 1)
                if create
                else None,
            }
        for scenario, concurrency in (("single_by_id", 16), ("list_1000", 1)):
            one = _find(
                rows,
                backend=backend,
                mode="http-1w",
                scenario=scenario,
                target="app",
                concurrency=concurrency,
            )
            many = [
                r
                for r in rows
                if r["backend"] == backend
                and r["mode"].startswith("http-")
                and r["workers"] > 1
                and r["scenario"] == scenario
                and r["target"] == "app"
                and r["concurrency"] == concurrency
            ]
            if one and many:
                found[f"{backend}/scaling_{scenario}_c{concurrency}"] = {
                    "workers": many[0]["workers"],
                    "rps_ratio_to_1_worker": _ratio(many[0]["rps"], one["rps"]),
                }
    return found


COLUMNS = [
    "backend",
    "mode",
    "scenario",
    "target",
    "concurrency",
    "round",
    "requests",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "rps",
    "cpu_ms_per_request",
    "sql_per_request",
    "failures",
]


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"# Custos benchmark — {report['started']} ({report['mode']})",
        "",
        f"Machine: {report['machine']}",
        f"Sizes: {report['sizes']}",
        "",
        "Targets: app = the real GraphQL endpoint; A = hand-written Starlette endpoint; "
        "B = idiomatic strawberry; C = precomputed bytes (transport floor); "
        "app-plain = the app on graphql-core's own executor (no fast path). "
        "In-process CPU includes the load generator; HTTP CPU is the server processes only.",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    for row in report["results"]:
        lines.append("| " + " | ".join(str(row.get(c, "")) for c in COLUMNS) + " |")
    lines += ["", "## Goal ratios", "", "```", json.dumps(report["ratios"], indent=2), "```"]
    if report["skipped"]:
        lines += ["", "## Skipped", ""]
        lines += [f"- {name}: {why}" for name, why in report["skipped"].items()]
    return "\n".join(lines) + "\n"


def write_reports(directory: Path, report: dict[str, Any]) -> tuple[Path, Path]:
    report["ratios"] = ratios(report["results"])
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    json_path = directory / f"bench-{stamp}.json"
    md_path = directory / f"bench-{stamp}.md"
    json_path.write_text(json.dumps(report, indent=2, default=str))
    md_path.write_text(markdown(report))
    return json_path, md_path
