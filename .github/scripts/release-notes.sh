#!/usr/bin/env bash
# Prints the CHANGELOG.md section of one version (`0.1.0`, or `Unreleased`), the release's
# notes; fails when there is none, so that a release cannot go out without its entry.
# `make lint` runs it on Unreleased.
set -euo pipefail
version="${1:?usage: release-notes.sh VERSION}"
notes=$(awk -v heading="## [${version}]" '
  index($0, heading) == 1 { found = 1; next }
  found && /^## \[/ { exit }
  found && /^\[[^]]+\]: / { exit }
  found { print }
' "$(dirname "$0")/../../CHANGELOG.md")
if [ -z "$(tr -d '[:space:]' <<<"$notes")" ]; then
  echo "CHANGELOG.md has no entry for ${version}: add a section '## [${version}] - YYYY-MM-DD'" >&2
  exit 1
fi
printf '%s\n' "$notes"
