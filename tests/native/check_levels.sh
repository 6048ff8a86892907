#!/usr/bin/env bash
# The SIMD bit-identity check (tests/native/levels.cpp) on this machine and,
# cross-built, on aarch64 under qemu-aarch64: the NEON kernels run nowhere
# else in CI. Each build must give every level byte-identical to its scalar
# level, and the two builds the same digest (the same outputs on both
# architectures).
#
# Needs cmake and a C++17 compiler; for aarch64 also aarch64-linux-gnu-g++
# and qemu-aarch64 (Debian: apt-get install g++-aarch64-linux-gnu qemu-user).
# Without them the aarch64 half is skipped with a message, or fails if
# REQUIRE_AARCH64=1.
set -euo pipefail
cd "$(dirname "$0")/../.."
JOBS=$(nproc 2>/dev/null || echo 2)
COMMON=(-DCMAKE_BUILD_TYPE=Release -DDCTSPARSE_PYTHON=OFF -DDCTSPARSE_NATIVE_TESTS=ON)

build() {  # build dir, extra cmake args...
    local dir=$1
    shift
    cmake -S . -B "$dir" "${COMMON[@]}" "$@" > "$dir.log" 2>&1 &&
        cmake --build "$dir" -j "$JOBS" >> "$dir.log" 2>&1 ||
        { cat "$dir.log"; echo "build of $dir failed"; return 1; }
}

digest_of() { sed -n 's/^digest //p' <<<"$1"; }

mkdir -p build
echo "-- $(uname -m), native build"
build build/native -DDCTSPARSE_TEST_CHUNKS=ON
HOST_OUT=$(build/native/levels) || { echo "$HOST_OUT"; exit 1; }
echo "$HOST_OUT"

if ! command -v aarch64-linux-gnu-g++ > /dev/null || ! command -v qemu-aarch64 > /dev/null; then
    echo "-- aarch64: SKIPPED (needs aarch64-linux-gnu-g++ and qemu-aarch64)"
    [ "${REQUIRE_AARCH64:-0}" = 1 ] && exit 1
    exit 0
fi
echo "-- aarch64, cross-built, under qemu-aarch64"
# Static, so qemu needs no aarch64 sysroot at run time.
build build/native-aarch64 -DCMAKE_SYSTEM_NAME=Linux -DCMAKE_SYSTEM_PROCESSOR=aarch64 \
    -DCMAKE_CXX_COMPILER=aarch64-linux-gnu-g++ -DCMAKE_EXE_LINKER_FLAGS=-static
ARM_OUT=$(qemu-aarch64 build/native-aarch64/levels) || { echo "$ARM_OUT"; exit 1; }
echo "$ARM_OUT"
grep -q '^neon: all' <<<"$ARM_OUT" || { echo "the aarch64 build did not run its neon level"; exit 1; }
if [ "$(digest_of "$HOST_OUT")" != "$(digest_of "$ARM_OUT")" ]; then
    echo "the two architectures' outputs differ"
    exit 1
fi
echo "-- same digest on $(uname -m) and aarch64"
