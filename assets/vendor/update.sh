#!/usr/bin/env bash
# Re-fetch the vendored front-end files from the npm registry at their pinned versions.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
npm pack --silent requirejs@2.3.6 d3@5.7.0 jquery@3.7.1 >/dev/null
for package in requirejs-2.3.6 d3-5.7.0 jquery-3.7.1; do
  mkdir -p "$package" && tar xzf "$package.tgz" -C "$package"
done
cp requirejs-2.3.6/package/require.js "$here/requirejs-2.3.6/"
cp d3-5.7.0/package/dist/d3.min.js d3-5.7.0/package/LICENSE "$here/d3-5.7.0/"
cp jquery-3.7.1/package/dist/jquery.min.js jquery-3.7.1/package/LICENSE.txt "$here/jquery-3.7.1/"
cd "$here" && sha256sum -c SHA256SUMS
