#!/usr/bin/env bash
# Installs Debian's Chromium for the headless browser test (the portable
# build of @parley/core running in a real browser,
# packages/core/test/browser.test.ts). Idempotent; needs root (or sudo) and
# Debian's package mirror. Skips when Chromium is already at the path the
# test launches (/usr/bin/chromium); a chromium elsewhere on PATH (a snap,
# say) does not count, since the test would not find it.
set -euo pipefail
CHROMIUM=/usr/bin/chromium
if [ -x "$CHROMIUM" ]; then
  echo "chromium present: $("$CHROMIUM" --version 2>/dev/null || true)"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
if [ ! -x "$CHROMIUM" ]; then
  echo "chromium package installed but $CHROMIUM is missing" >&2
  exit 1
fi
echo "installed: $("$CHROMIUM" --version 2>/dev/null || true)"
