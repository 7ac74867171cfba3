"""The ASGI app the benchmark serves: the real Custos app plus the baseline routes."""

from __future__ import annotations

import os
from pathlib import Path

from starlette.applications import Starlette

from bench.baselines import mount_baselines
from server.app import create_app

FLOOR_DIR_ENV = "CUSTOS_BENCH_FLOOR_DIR"


def bench_app() -> Starlette:
    """Entry point for `uvicorn --factory bench.app:bench_app` (each worker)."""
    app = create_app(migrate=False)
    mount_baselines(app, Path(os.environ[FLOOR_DIR_ENV]))
    return app
