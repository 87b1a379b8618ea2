#!/usr/bin/env bash
# Builds libflow and runs the retail example on the bundled sample (or pass its flags, e.g. --data DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null
exec build/retail_by_day "$@"
