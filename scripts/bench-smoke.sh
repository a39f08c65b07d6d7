#!/usr/bin/env bash
# The benchmark harness in smoke mode: every part, tiny durations. It checks
# only that the harness still runs (no figure is judged). Called by the test
# command; needs what bench/run.sh installs (cargo, apt-get download nginx,
# libssl-dev and pkg-config to build oha once).
set -euo pipefail
cd "$(dirname "$0")/.."
exec bench/run.sh --smoke
