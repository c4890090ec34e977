#!/usr/bin/env bash
# Runs the op tests against a library built with AddressSanitizer.
# Python and TensorFlow are not instrumented, so the ASan runtime is
# preloaded and leak checking is off (TF's own allocations at exit would
# drown the report); any invalid read or write in our kernels aborts the run.
#
#   bash scripts/asan_ops.sh            # from the repository root, in the venv
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python}"
BUILD="$(mktemp -d)/asan-build"
export TF_SPARSESIGN_BUILD_DIR="$BUILD"
# UBSan is left out here: with it absl headers in TF fail to compile
# (constexpr checks); the plain C++ core runs under ASan+UBSan in
# tests/test_build.py instead.
export TF_SPARSESIGN_CXXFLAGS="-fsanitize=address -fno-omit-frame-pointer -g -O1"
"$PY" -m tf_sparsesign build --force
ASAN_LIB="$(${CXX:-g++} -print-file-name=libasan.so)"

# libstdc++ too: python does not link it, and ASan must find __cxa_throw.
export LD_PRELOAD="$ASAN_LIB:$(${CXX:-g++} -print-file-name=libstdc++.so)"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1"

"$PY" -m pytest -q -p no:cacheprovider tests/test_encode.py tests/test_vote.py \
    tests/test_rice.py tests/test_packed_ops.py "$@"
echo "ASan op tests passed (library: $BUILD)"
