#!/usr/bin/env bash
# Installs what the linkifier tests of reset need, when missing: Node.js
# (apt) and three linkifiers that mail and chat clients use (npm, into a
# fixed directory): linkify-it (markdown-it's), linkifyjs and Autolinker.
# Prints the export the tests read:
#
#   PASSRESET_LINKIFIERS=/tmp/passreset-tools/node_modules
#
# Usage: eval "$(scripts/linkifiers.sh)"
# PASSRESET_TOOLS sets the directory (default /tmp/passreset-tools).
set -euo pipefail
tools=${PASSRESET_TOOLS:-/tmp/passreset-tools}
packages=(linkify-it@6.1.0 linkifyjs@4.4.0 autolinker@4.1.5)

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "installing nodejs and npm (apt-get)" >&2
  apt-get update >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nodejs npm >&2
fi

missing=()
for p in "${packages[@]}"; do
  name=${p%@*} version=${p##*@}
  have=$(node -p "require('$tools/node_modules/$name/package.json').version" 2>/dev/null || true)
  if [ "$have" != "$version" ]; then missing+=("$p"); fi
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]} (npm) into $tools" >&2
  mkdir -p "$tools"
  npm install --prefix "$tools" --no-audit --no-fund --silent "${missing[@]}" >&2
fi

echo "export PASSRESET_LINKIFIERS=$tools/node_modules"
