#!/usr/bin/env bash
# Lists the hub revisions to judge, for the new-model workflow's matrix.
#
#   scripts/ci/detect.sh [REPO [REVISION]]
#
# Without arguments: every watched revision the suite has not registered (`fitcheck hub`, the suite's
# [watch]). With REPO (and REVISION, default main): that one, resolved to its commit, unless it is
# registered already. Prints the JSON of `fitcheck hub --json`; under GitHub Actions also writes the
# outputs `matrix` ({"include": [{"repo", "sha"}, ...]}) and `count`.
#
# Environment: FITCHECK (the binary, default `fitcheck`), SUITE (default `cases`), HF_ENDPOINT, HF_TOKEN.
set -euo pipefail
fitcheck=${FITCHECK:-fitcheck}
suite=${SUITE:-cases}
args=(hub --json --suite "$suite")
if [ -n "${1:-}" ]; then
    args+=(--repo "$1" --revision "${2:-main}")
fi
json=$("$fitcheck" "${args[@]}")
echo "$json"
if [ -n "${GITHUB_OUTPUT:-}" ]; then
    {
        echo "matrix=$(jq -c '{include: [.new[] | {repo, sha}]}' <<<"$json")"
        echo "count=$(jq '.new | length' <<<"$json")"
    } >>"$GITHUB_OUTPUT"
fi
