#!/usr/bin/env bash
# Installs libflow from an existing build directory (no rebuild) into a scratch prefix, checks that the
# installed public headers include no third-party header of the runtime (CAF, Boost, librdkafka, ZeroMQ,
# simdjson, SQLite, RocksDB) and that the package does not point back into the build, then configures, builds
# and runs tests/install/consumer against it with find_package(libflow CONFIG REQUIRED).
# usage: test_install.sh BUILD_DIR SCRATCH_DIR [cmake arguments for the consumer's configure step]
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 BUILD_DIR SCRATCH_DIR [cmake arguments for the consumer]" >&2
  exit 2
fi
build_dir=$(realpath "$1")
scratch=$2
shift 2
source_dir=$(realpath "$(dirname "$0")/../..")
prefix=$scratch/prefix

rm -rf "$scratch"
mkdir -p "$scratch"
if ! cmake --install "$build_dir" --prefix "$prefix" > "$scratch/install.log"; then
  echo "FAIL: cmake --install $build_dir failed; build the libraries first: cmake --build $build_dir --target flow_runtime" >&2
  exit 1
fi

mapfile -t headers < <(find "$prefix/include" -name '*.hpp' | sort)
if [ ${#headers[@]} -eq 0 ]; then
  echo "FAIL: no header installed under $prefix/include" >&2
  exit 1
fi
failures=0
for header in "${headers[@]}"; do
  # Every quoted include is one of the installed headers.
  while read -r included; do
    if [ ! -f "$prefix/include/$included" ]; then
      echo "FAIL: ${header#"$prefix/"} includes \"$included\", which is not installed" >&2
      failures=1
    fi
  done < <(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$header")
done
# User code must compile without the runtime's dependencies: no public header may include theirs.
if grep -En '^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"](caf/|boost/|librdkafka/|rdkafka|zmq|simdjson|sqlite3|rocksdb/)' \
     "${headers[@]}" >&2; then
  echo "FAIL: the installed public headers above include a dependency's header" >&2
  failures=1
fi
if grep -rlF -e "$source_dir" -e "$build_dir" "$prefix"/lib*/cmake >&2; then
  echo "FAIL: the installed CMake package above names the source or build directory" >&2
  failures=1
fi
[ "$failures" = 0 ]

cmake -S "$source_dir/tests/install/consumer" -B "$scratch/consumer-build" -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_PREFIX_PATH="$prefix" "$@" > "$scratch/configure.log" || { cat "$scratch/configure.log"; exit 1; }
cmake --build "$scratch/consumer-build" > "$scratch/build.log" || { cat "$scratch/build.log"; exit 1; }
"$scratch/consumer-build/app"
rm -rf "$scratch"
echo "the consumer built against the installed package ran correctly"
