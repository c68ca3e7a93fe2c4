#!/usr/bin/env bash
# Run a benchmark against a clean copy of one commit's code, so that uncommitted work in the
# tree (someone else's, say) does not leak into the figures:
#
#   bench/snapshot.sh [COMMIT] -- bench.record_capacity --streams 16 32
#
# The commit's citywatch/ and tests/ are extracted with `git archive` (the repository is not
# touched) into a temporary directory next to the current bench/ code, the project venv and
# bench/out (results and the media cache are shared); the module runs there and the
# directory is removed afterwards. Results name the commit (machine.git_head).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
commit=HEAD
if [[ $# -gt 0 && "$1" != "--" ]]; then commit=$1; shift; fi
[[ "${1:-}" == "--" ]] && shift
[[ $# -gt 0 ]] || { echo "usage: $0 [COMMIT] -- bench.MODULE [ARGS...]" >&2; exit 2; }
sha=$(git -C "$repo" rev-parse --short "$commit")
dir=$(mktemp -d "${TMPDIR:-/tmp}/citywatch-bench-$sha-XXXXXX")
trap 'rm -rf "$dir"' EXIT
git -C "$repo" archive "$sha" citywatch tests pyproject.toml | tar -x -C "$dir"
mkdir "$dir/bench"
find "$repo/bench" -maxdepth 1 -type f \( -name '*.py' -o -name '*.sh' \) -exec cp {} "$dir/bench/" \;
mkdir -p "$repo/bench/out"
ln -s "$repo/bench/out" "$dir/bench/out"
ln -s "$repo/.venv" "$dir/.venv"
echo "$sha" > "$dir/.snapshot-commit"
cd "$dir"
PYTHONPATH="$dir" .venv/bin/python -m "$@"
