#!/usr/bin/env bash
# Judges one new hub revision against the accepted checkpoint and opens or updates its pull request.
#
#   scripts/ci/new-model.sh REPO SHA WORKTREE
#
# REPO is the hub id, SHA the 40-hex commit, WORKTREE a clean git checkout of the base branch that this
# script may change (in CI the job's own checkout; by hand e.g. `git worktree add ../adopt main`). The
# comparison runs first; only when it judged something (exit 0 or 1) does the work tree change: the
# candidate's snapshots are written as accepted, `fitcheck adopt` pins [model] to it and registers it,
# and the result is committed on branch fitcheck/REPO/SHA, pushed (replacing an earlier run's branch)
# and proposed as one pull request per revision, created or updated with `gh`.
#
# Environment: FITCHECK (the fitcheck binary, default `fitcheck`), SUITE (the cases directory inside
# the work tree, default `cases`), OUT (where the reports go, outside the work tree; default a new
# temporary directory), BASE (the pull request's base, default the work tree's branch), REMOTE (default
# `origin`), GH (default `gh`), HF_ENDPOINT (for the link to the model), GITHUB_STEP_SUMMARY (the
# pull request's body is appended there when set).
#
# Exit status: 0 pull request opened or updated, no regression; 1 the same, but the candidate regressed
# (stated at the top of the pull request) or the pull request could not be made; 2 nothing could be
# judged (the work tree is left as it was).
set -euo pipefail

if [ $# -ne 3 ]; then
    echo "usage: $0 REPO SHA WORKTREE" >&2
    exit 2
fi
repo=$1 sha=$2 worktree=$3
fitcheck=${FITCHECK:-fitcheck}
gh=${GH:-gh}
remote=${REMOTE:-origin}
suite=${SUITE:-cases}

if ! [[ $repo =~ ^[^/[:space:]]+/[^/[:space:]]+$ ]]; then
    echo "error: invalid hub id '$repo': write it as owner/name" >&2
    exit 2
fi
if ! [[ $sha =~ ^[0-9a-f]{40}$ ]]; then
    echo "error: $repo: '$sha' is not a 40-hex commit sha: resolve the branch first with \`fitcheck hub --repo $repo --revision BRANCH\`" >&2
    exit 2
fi
if ! git -C "$worktree" rev-parse --git-dir >/dev/null 2>&1; then
    echo "error: $worktree: not a git work tree: pass a checkout of the base branch" >&2
    exit 2
fi
if [ -n "$(git -C "$worktree" status --porcelain)" ]; then
    echo "error: $worktree: the work tree has uncommitted changes: they would end up in the pull request; pass a clean checkout" >&2
    exit 2
fi
out=${OUT:-$(mktemp -d)}
mkdir -p "$out"
out=$(cd "$out" && pwd)
# Run from the work tree, so reports name its paths as the repository does.
case $fitcheck in
*/*) fitcheck=$(cd "$(dirname "$fitcheck")" && pwd)/$(basename "$fitcheck") ;;
esac
cd "$worktree"
worktree=.
base=${BASE:-$(git -C "$worktree" rev-parse --abbrev-ref HEAD)}
branch="fitcheck/$repo/$sha"
short=${sha:0:7}

# 1. Compare. fitcheck writes the snapshots only after everything was computed; on exit 2 it wrote nothing.
html=()
if "$fitcheck" compare --help | grep -q -- '--html'; then
    html=(--html "$out/compare.html")
fi
set +e
"$fitcheck" compare "$repo@$sha" --suite "$suite" --json "$out/compare.json" --markdown "$out/compare.md" \
    "${html[@]}" --write-snapshots >"$out/compare.txt"
status=$?
set -e
cat "$out/compare.txt"
echo "reports: $out"
if [ "$status" -ge 2 ]; then
    echo "error: $repo@$sha: nothing could be judged (see above): no pull request" >&2
    exit 2
fi

# 2. Pin [model] to the candidate and register it.
"$fitcheck" adopt "$repo@$sha" --suite "$suite"

# 3. The pull request's body: a regression first, then the comparison.
{
    if [ "$status" -eq 1 ]; then
        echo "> [!CAUTION]"
        echo "> **Regression.** \`$repo@$short\` fails the gate against the accepted checkpoint; merging adopts it anyway:"
        grep '^gate: ' "$out/compare.txt" | sed 's/^gate: /> - /'
        echo
    fi
    echo "Adopts [\`$repo\`](${HF_ENDPOINT:-https://huggingface.co}/$repo/tree/$sha) at \`$sha\`: \`[model]\` is pinned to it, it is registered in \`[[checkpoints]]\` and the snapshots are its rankings. Merge to adopt it, close to reject it."
    echo
    cat "$out/compare.md"
} >"$out/body.full.md"
# GitHub refuses bodies over 65,536 characters: keep the head, point at the artifacts for the rest.
if [ "$(wc -c <"$out/body.full.md")" -gt 60000 ]; then
    head -c 60000 "$out/body.full.md" >"$out/body.md"
    printf '\n\n… cut here: the full report is in the run'"'"'s artifacts (compare.md, compare.json).\n' >>"$out/body.md"
else
    cp "$out/body.full.md" "$out/body.md"
fi
if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
    cat "$out/body.md" >>"$GITHUB_STEP_SUMMARY"
fi

# 4. Commit on the revision's branch and push it (a later run for the same revision replaces it).
title="Adopt $repo@$short"
[ "$status" -eq 1 ] && title="$title (regression)"
git -C "$worktree" checkout -q -B "$branch"
git -C "$worktree" add -A
git -C "$worktree" -c user.name="${GIT_AUTHOR_NAME:-fitcheck}" -c user.email="${GIT_AUTHOR_EMAIL:-fitcheck@users.noreply.github.com}" \
    commit -q -m "$title" -m "Pins [model] to $repo at $sha, registers it and accepts its snapshots."
git -C "$worktree" push -q --force "$remote" "$branch"

# 5. One pull request per revision: update it when it exists.
number=$("$gh" pr list --head "$branch" --state open --json number --jq '.[0].number // empty')
if [ -n "$number" ]; then
    "$gh" pr edit "$number" --title "$title" --body-file "$out/body.md"
    echo "updated pull request #$number ($branch)"
else
    "$gh" pr create --base "$base" --head "$branch" --title "$title" --body-file "$out/body.md"
    echo "opened a pull request for $branch"
fi
exit "$status"
