#!/usr/bin/env bash
# Tests of the editor support, for CI and by hand:
#   1. VS Code: the TextMate grammar (tokenized with vscode-textmate, as in
#      VS Code) and the client's wiring, with `node --test`.
#   2. tree-sitter, with tree-sitter-cli 0.27.1 on PATH (or $TREE_SITTER):
#      the committed parser matches grammar.js, the corpus passes, and every
#      sample recipe parses without ERROR or MISSING nodes.
#   3. Neovim and Helix: their copies of the highlight queries match the
#      grammar's; with nvim >= 0.10 on PATH (or $NVIM) and a C compiler,
#      headless checks of filetype, ftplugin, LSP start-up and tree-sitter
#      highlighting (nvim/test/check.lua; no real server needed).
# A missing tool is a failure, never a skip: scripts/test.sh installs both.
# Prints "N passed, M failed" last; exits non-zero if anything failed.
set -u
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
passed=0
failed=0
pass() { passed=$((passed + 1)); echo "ok   $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1"; }

# ── 1. VS Code ───────────────────────────────────────────────────────────
cd "$here/vscode"
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ]; then
  npm ci --no-audit --no-fund --loglevel=error >/dev/null || fail "npm ci"
fi
# The TAP summary gives the counts of the node tests.
out="$(node --test test/ 2>&1)"
status=$?
n_pass=$(printf '%s\n' "$out" | sed -n 's/^# pass \([0-9]*\)$/\1/p')
n_fail=$(printf '%s\n' "$out" | sed -n 's/^# fail \([0-9]*\)$/\1/p')
passed=$((passed + ${n_pass:-0}))
failed=$((failed + ${n_fail:-0}))
if [ "$status" -ne 0 ]; then
  printf '%s\n' "$out" | grep -E '^not ok|error:|expected|actual' | head -40
  [ "${n_fail:-0}" -gt 0 ] || fail "node --test (exit $status)"
fi
echo "vscode: ${n_pass:-0} passed, ${n_fail:-0} failed (node --test)"

# ── 2. tree-sitter ───────────────────────────────────────────────────────
ts="${TREE_SITTER:-$(command -v tree-sitter || true)}"
generated_by="0.27.1"
cd "$here/tree-sitter-ft"
if [ -n "$ts" ]; then
  # Regenerating must not change the committed files (grammar.js edited
  # without `tree-sitter generate` is a mistake CI should catch). ABI 14
  # keeps the parser loadable by Neovim 0.10 and Helix. parser.c's tables
  # differ between CLI versions, so the comparison needs the version that
  # generated the committed one.
  tmp="$(mktemp -d)"
  cp -r grammar.js tree-sitter.json src "$tmp/"
  compare="src/grammar.json src/node-types.json src/parser.c"
  stale=""
  if ! "$ts" --version | grep -qF " $generated_by"; then
    stale=" (tree-sitter $generated_by generated the committed parser; this is $("$ts" --version))"
  elif (cd "$tmp" && "$ts" generate --abi 14 >/dev/null 2>&1); then
    for f in $compare; do cmp -s "$tmp/$f" "$f" || stale="$stale $f"; done
  else
    stale=" (generate failed)"
  fi
  if [ -z "$stale" ]; then
    pass "tree-sitter: ${compare// /, } up to date with grammar.js"
  else
    fail "tree-sitter: stale$stale (run: tree-sitter generate --abi 14)"
  fi
  rm -rf "$tmp"

  out="$("$ts" test 2>&1)"
  status=$?
  # One line per corpus case: "  N. ✓ name" or "  N. ✗ name".
  n_ok=$(printf '%s\n' "$out" | grep -c '✓' || true)
  n_bad=$(printf '%s\n' "$out" | grep -c '✗' || true)
  passed=$((passed + n_ok))
  failed=$((failed + n_bad))
  if [ "$status" -ne 0 ]; then
    printf '%s\n' "$out" | tail -40
    [ "$n_bad" -gt 0 ] || fail "tree-sitter test (exit $status)"
  fi
  echo "tree-sitter corpus: $n_ok passed, $n_bad failed"

  # Sample recipes: the VS Code fixtures and the project's recipes.
  for f in "$here"/vscode/test/fixtures/*.ft "$repo"/recipes/*.ft; do
    [ -f "$f" ] || continue
    name="${f#"$repo"/}"
    if "$ts" parse --quiet "$f" >/dev/null 2>&1 && ! "$ts" parse "$f" 2>/dev/null | grep -qE 'ERROR|MISSING'; then
      pass "tree-sitter parse $name"
    else
      fail "tree-sitter parse $name"
      "$ts" parse "$f" 2>&1 | grep -nE 'ERROR|MISSING' | head -5
    fi
  done
else
  fail "tree-sitter: no binary (set TREE_SITTER, or run scripts/test.sh, which installs tree-sitter-cli $generated_by)"
fi

# ── 3. Neovim and Helix ────────────────────────────────────────────────────
if cmp -s "$here/tree-sitter-ft/queries/highlights.scm" "$here/nvim/queries/ft/highlights.scm"; then
  pass "nvim/queries/ft/highlights.scm matches tree-sitter-ft/queries/highlights.scm"
else
  fail "nvim/queries/ft/highlights.scm differs from tree-sitter-ft/queries/highlights.scm (copy it)"
fi
if sed -E -f "$here/helix/captures.sed" "$here/tree-sitter-ft/queries/highlights.scm" | cmp -s - "$here/helix/queries/ft/highlights.scm"; then
  pass "helix/queries/ft/highlights.scm is captures.sed of the grammar's queries"
else
  fail "helix/queries/ft/highlights.scm is stale (regenerate with helix/captures.sed)"
fi
nvim="${NVIM:-$(command -v nvim || true)}"
cc="${CC:-cc}"
nvim_minor=$([ -n "$nvim" ] && "$nvim" --version 2>/dev/null | sed -n '1s/^NVIM v0\.\([0-9]*\).*/\1/p')
if [ -n "$nvim" ] && [ "${nvim_minor:-0}" -ge 10 ] && command -v "$cc" >/dev/null; then
  tmp="$(mktemp -d)"
  mkdir -p "$tmp/parser"
  if "$cc" -O2 -shared -fPIC -I "$here/tree-sitter-ft/src" "$here/tree-sitter-ft/src/parser.c" -o "$tmp/parser/ft.so"; then
    out="$(cd "$here" && XDG_STATE_HOME="$tmp/state" timeout 60 "$nvim" --headless --clean \
      -l nvim/test/check.lua nvim "$tmp" vscode/test/fixtures/*.ft 2>&1)"
    status=$?
    printf '%s\n' "$out" | grep -E '^(ok|FAIL) ' | grep -v '^ok' || true
    n_ok=$(printf '%s\n' "$out" | grep -c '^ok ' || true)
    n_bad=$(printf '%s\n' "$out" | grep -c '^FAIL ' || true)
    passed=$((passed + n_ok))
    failed=$((failed + n_bad))
    [ "$status" -eq 0 ] || [ "$n_bad" -gt 0 ] || { printf '%s\n' "$out" | tail -20; fail "nvim check.lua (exit $status)"; }
    echo "nvim: $n_ok passed, $n_bad failed"
  else
    fail "cc: compiling tree-sitter-ft/src/parser.c"
  fi
  rm -rf "$tmp"
else
  fail "nvim: no nvim >= 0.10 (set NVIM, or run scripts/test.sh, which installs one) or no C compiler"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
