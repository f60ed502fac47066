#!/usr/bin/env bash
# Installs tmux for the terminal-chat test (packages/client/test/cli-terminal.test.ts
# drives `parley chat` and `parley listen` in real terminals). Idempotent;
# needs root (or sudo) and Debian's package mirror. In CI the test fails
# rather than skips when tmux is missing.
set -euo pipefail
if command -v tmux >/dev/null 2>&1; then
  echo "tmux present: $(tmux -V)"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends tmux >/dev/null
echo "installed: $(tmux -V)"
