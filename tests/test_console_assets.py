"""The console's vendored assets are the pinned builds that tools/console/vendor.sh wrote."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from server.console.routes import ASSETS, STATIC_DIR

ROOT = Path(__file__).resolve().parents[1]


def test_vendored_assets_are_the_pinned_builds() -> None:
    listed: dict[str, str] = {}
    for line in (STATIC_DIR / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split()
        listed[name] = digest
    assert set(listed) == set(ASSETS) - {"console.js", "console.css"}
    for name, digest in listed.items():
        assert hashlib.sha256((STATIC_DIR / name).read_bytes()).hexdigest() == digest, name
    package = json.loads((ROOT / "tools/console/package.json").read_text())
    lock = json.loads((ROOT / "tools/console/package-lock.json").read_text())
    for name, version in package["dependencies"].items():
        assert re.fullmatch(r"\d+\.\d+\.\d+", version), (name, version)
        assert lock["packages"][f"node_modules/{name}"]["version"] == version
        assert lock["packages"][f"node_modules/{name}"]["integrity"].startswith("sha512-")
