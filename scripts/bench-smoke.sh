#!/usr/bin/env bash
# The benchmark harness in smoke mode: every part, tiny durations. It checks
# only that the harness still runs (no figure is judged). Called by the test
# command; it builds nothing the tests did not (the test profile's binaries,
# the driver's own load generator) and fetches Debian's nginx package once.
set -euo pipefail
cd "$(dirname "$0")/.."
exec bench/run.sh --smoke
