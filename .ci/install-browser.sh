#!/usr/bin/env bash
# Installs Debian's Chromium for the headless browser test (the portable
# build of @parley/core running in a real browser). Idempotent; needs root
# (or sudo) and Debian's package mirror. Skips when Chromium is present.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  echo "chromium present: $(chromium --version 2>/dev/null || true)"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
echo "installed: $(chromium --version 2>/dev/null || true)"
