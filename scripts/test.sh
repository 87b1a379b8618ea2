#!/usr/bin/env bash
# Builds libflow and runs the whole test suite with ctest; then the same suite under AddressSanitizer
# and UndefinedBehaviorSanitizer (skip that with FLOW_SKIP_SANITIZE=1).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
(cd build && ctest --output-on-failure -j 2 --timeout 300)
if [ "${FLOW_SKIP_SANITIZE:-0}" != 1 ]; then
  BUILD_DIR=build-sanitize scripts/setup.sh -DFLOW_SANITIZE=ON -DFLOW_BUILD_BENCH=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo
  (cd build-sanitize && ctest --output-on-failure -j 2 --timeout 600)
fi
