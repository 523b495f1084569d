#!/usr/bin/env bash
# Show that a change kept shotgraph's behaviour byte-identical: the same plans (cache keys and
# full requests), graphs, validation findings and lockfile of a real local-backend run, for every
# example pipeline, in REV (default: main) and in the working tree.
#
#   scripts/compare_behaviour.sh [REV]
#
# Both sides run with this checkout's .venv (REV's source goes first on PYTHONPATH) in the same
# scratch directory, so absolute paths match. Only the lockfile's request ids (fresh per job) are
# masked. Prints "identical" and exits 0, or prints the diff
# and exits 1. Takes about a minute: it renders the demo twice on the emulator.
set -euo pipefail

rev=${1:-main}
repo=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-$repo/.venv/bin/python}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# record SOURCE_DIR OUT_DIR: every artefact the comparison covers, one file each.
record() {
    local src=$1 out=$2 project=$scratch/project
    rm -rf "$project" "$scratch/cache"
    mkdir -p "$out"
    cp -r "$src/pipelines" "$project"
    (
        cd "$project"
        export PYTHONPATH=$src SHOTGRAPH_CACHE_DIR=$scratch/cache
        for pipeline in *.yaml; do
            name=${pipeline%.yaml}
            for backend in fal local; do
                "$python" -m runner plan "$pipeline" --json -v --backend "$backend" \
                    >"$out/$name.plan.$backend.json" 2>&1 || echo "exit $?" >>"$out/$name.plan.$backend.json"
            done
            "$python" -m runner validate "$pipeline" --json \
                >"$out/$name.validate.json" 2>&1 || echo "exit $?" >>"$out/$name.validate.json"
            for format in mermaid dot; do
                "$python" -m runner graph "$pipeline" --format "$format" \
                    >"$out/$name.graph.$format" 2>&1 || echo "exit $?" >>"$out/$name.graph.$format"
            done
        done
        "$python" -m runner run demo.yaml --backend local --plain >"$out/demo.run.log" 2>&1
        # fal (and the emulator) name each job with a fresh random request id; all else is pinned.
        sed -E 's/"request_id": "[^"]*"/"request_id": "…"/g' demo.lock.json >"$out/demo.lock.json"
        # The same plan once everything is cached: every key must now be a hit.
        "$python" -m runner plan demo.yaml --json -v --backend local >"$out/demo.plan.cached.json"
        (cd renders && sha256sum -- *) >"$out/demo.renders.sha256"
    )
    # The run log has timings; keep only its summary and output lines, which must not change.
    grep -v '^\[' "$out/demo.run.log" >"$out/demo.run.summary" || true
    rm "$out/demo.run.log"
    # The golden requests the test suite pins (tests/golden before issue 8's layout).
    for golden in "$src/tests/compile/golden" "$src/tests/golden"; do
        if [ -d "$golden" ]; then cp -r "$golden" "$out/golden" && break; fi
    done
}

git -C "$repo" archive "$rev" | (mkdir -p "$scratch/base" && tar -x -C "$scratch/base")
record "$scratch/base" "$scratch/before"
record "$repo" "$scratch/after"

if diff -r "$scratch/before" "$scratch/after"; then
    echo "identical: $(find "$scratch/after" -type f | wc -l) artefacts of $rev and the working tree"
else
    echo "DIFFERENT: see the diff above ($rev vs the working tree)" >&2
    exit 1
fi
