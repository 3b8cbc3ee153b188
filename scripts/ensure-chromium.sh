#!/usr/bin/env bash
# Runs before `npm test`: the calibration-report test opens the report in headless Chromium, and
# uses Debian's package for it (never a browser downloaded by a test tool). Installs it when it
# is missing and this user may; otherwise says what to run.
set -euo pipefail
if [ -n "${CHROMIUM_PATH:-}" ] || command -v chromium >/dev/null 2>&1; then exit 0; fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "rag-guard tests: Chromium is needed for the report test; install it, or set CHROMIUM_PATH to its binary." >&2
  exit 1
fi
sudo_cmd=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo_cmd="sudo"; else
    echo "rag-guard tests: Chromium is needed for the report test: run  sudo apt-get install -y chromium  (or set CHROMIUM_PATH)." >&2
    exit 1
  fi
fi
echo "rag-guard tests: installing Debian's chromium for the report test (apt-get)…" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo_cmd apt-get update -q >&2
$sudo_cmd apt-get install -y -q --no-install-recommends chromium >&2
