#!/usr/bin/env sh
# Refresh the vendored Swagger UI from node_modules/swagger-ui-dist (pinned in package.json).
# Run from anywhere after `npm ci`; then update the version in README.md and check `git diff --stat`.
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
dist="$root/node_modules/swagger-ui-dist"
if [ ! -f "$dist/package.json" ]; then
  echo "node_modules/swagger-ui-dist is missing: run 'npm ci' at the project root first" >&2
  exit 1
fi
for name in swagger-ui-bundle.js swagger-ui.css favicon-32x32.png favicon-16x16.png LICENSE NOTICE \
  swagger-ui-bundle.js.LICENSE.txt; do
  cp "$dist/$name" "$here/$name"
done
version="$(node -p "require('$dist/package.json').version" 2>/dev/null || sed -n 's/.*"version": *"\([^"]*\)".*/\1/p' "$dist/package.json")"
echo "copied swagger-ui-dist $version into api/static/swagger-ui/"
