#!/bin/sh
# Rebuild server/static/graphiql/ from the exact packages pinned in package-lock.json:
# `npm ci` in a scratch directory, then copy the browser builds, their licences and a
# SHA256SUMS that tests/test_graphiql.py checks. Run by `make graphiql-assets`.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=$(cd "$here/../../server/static/graphiql" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM
cp "$here/package.json" "$here/package-lock.json" "$work/"
(cd "$work" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
modules="$work/node_modules"
cp "$modules/react/umd/react.production.min.js" "$out/react.production.min.js"
cp "$modules/react-dom/umd/react-dom.production.min.js" "$out/react-dom.production.min.js"
cp "$modules/graphiql/graphiql.min.js" "$out/graphiql.min.js"
cp "$modules/graphiql/graphiql.min.css" "$out/graphiql.min.css"
cp "$modules/react/LICENSE" "$out/LICENSE.react"
cp "$modules/graphiql/LICENSE" "$out/LICENSE.graphiql"
cd "$out"
# The source-map comments point at files not vendored; browsers would ask for them.
for f in react.production.min.js react-dom.production.min.js graphiql.min.js; do
  sed -i -e '/^\/\/# sourceMappingURL=/d' "$f"
done
sha256sum react.production.min.js react-dom.production.min.js graphiql.min.js \
  graphiql.min.css > SHA256SUMS
echo "vendored into $out:"
cat SHA256SUMS
