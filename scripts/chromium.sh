#!/usr/bin/env bash
# Installs what the browser tests of httpadapter need, when missing:
# Debian's headless Chromium (apt) and axe-core (npm, into a fixed
# directory). Prints the two exports the tests read:
#
#   PASSRESET_CHROMIUM=/usr/bin/chromium
#   PASSRESET_AXE=/tmp/passreset-tools/node_modules/axe-core/axe.min.js
#
# Usage: eval "$(scripts/chromium.sh)"
# PASSRESET_TOOLS sets the directory (default /tmp/passreset-tools).
set -euo pipefail
tools=${PASSRESET_TOOLS:-/tmp/passreset-tools}
axe_version=4.10.3

chromium=$(command -v chromium || true)
if [ -z "$chromium" ]; then
  echo "installing chromium (apt-get)" >&2
  apt-get update >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium fonts-noto-core fonts-noto-cjk >&2
  chromium=$(command -v chromium)
fi

axe="$tools/node_modules/axe-core/axe.min.js"
if [ ! -f "$axe" ]; then
  if ! command -v npm >/dev/null; then
    echo "installing npm (apt-get)" >&2
    apt-get update >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends npm >&2
  fi
  echo "installing axe-core@$axe_version (npm) into $tools" >&2
  mkdir -p "$tools"
  npm install --prefix "$tools" --no-audit --no-fund --silent "axe-core@$axe_version" >&2
fi

echo "export PASSRESET_CHROMIUM=$chromium"
echo "export PASSRESET_AXE=$axe"
