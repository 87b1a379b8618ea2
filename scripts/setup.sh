#!/usr/bin/env bash
# Installs the Debian 12 packages libflow needs (only when something is missing), then configures and
# builds into BUILD_DIR (default: build). Extra arguments go to cmake's configure step.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(build-essential cmake ninja-build pkg-config ccache libcaf-dev libboost-dev cppzmq-dev libzmq3-dev
          catch2 librdkafka-dev libsimdjson-dev libsqlite3-dev libssl-dev
          librocksdb-dev zlib1g-dev liblz4-dev)
packages+=(openssl)  # the command line: the cluster's TLS test makes its certificates with it
packages+=(iproute2)  # ip and tc: the cluster's network namespace tests (tests/cluster/netns_test.cpp)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

build_dir=${BUILD_DIR:-build}
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@"
cmake --build "$build_dir" -j "$(nproc)"
