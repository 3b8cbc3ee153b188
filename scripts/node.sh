#!/usr/bin/env bash
# Runs a command of the project's npm scripts under a Node that its tools accept (>= 22.12): the
# Node on PATH when it is recent enough, else Node from .nvmrc installed by scripts/ensure-node.sh.
set -euo pipefail
source "$(dirname "$0")/ensure-node.sh"
exec "$@"
