#!/bin/sh
# Rebuild server/console/static/'s vendored files from the exact packages pinned in
# package-lock.json: `npm ci` in a scratch directory, then copy the browser builds, their
# licences and a SHA256SUMS that tests/test_console_assets.py checks.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=$(cd "$here/../../server/console/static" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM
cp "$here/package.json" "$here/package-lock.json" "$work/"
(cd "$work" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
modules="$work/node_modules"
cp "$modules/htmx.org/dist/htmx.min.js" "$out/htmx.min.js"
cp "$modules/echarts/dist/echarts.simple.min.js" "$out/echarts.simple.min.js"
cp "$modules/htmx.org/LICENSE" "$out/LICENSE.htmx"
cp "$modules/echarts/LICENSE" "$out/LICENSE.echarts"
cp "$modules/echarts/NOTICE" "$out/NOTICE.echarts"
cd "$out"
sha256sum htmx.min.js echarts.simple.min.js > SHA256SUMS
echo "vendored into $out:"
cat SHA256SUMS
