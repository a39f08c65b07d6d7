#!/usr/bin/env bash
# The benchmark harness in its short smoke mode: checks that it still runs.
exec "$(dirname "$0")/../bench/run.sh" --smoke
