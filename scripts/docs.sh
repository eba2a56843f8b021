#!/usr/bin/env bash
# The docs: builds the site (mdBook: docs/ into target/book), failing on any warning, and checks
# every link of README.md, docs/ and the chart's README offline with lychee: files, anchors, and
# the links to this repository's own files on GitHub, which are mapped back to this clone.
#
#   scripts/docs.sh          build the site and check the links (the test command runs this)
#   scripts/docs.sh --open   the same, then serve the site at http://localhost:3000
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

open=false
case "${1:-}" in
  "") ;;
  --open) open=true ;;
  *) echo "usage: scripts/docs.sh [--open]" >&2; exit 2 ;;
esac

tools=$(tools/cargo/install.sh mdbook lychee | tail -n 1)

# mdBook reports a broken page (a chapter SUMMARY.md names that is missing, a bad include) as a
# warning or an error and may still write the site: either fails the build here.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! "$tools/mdbook" build 2>&1 | tee "$log" >&2; then
  echo "docs.sh: mdbook build failed" >&2
  exit 1
fi
if grep -E '(^| )(WARN|ERROR)( |$)' "$log" >/dev/null; then
  echo "docs.sh: mdbook build warned (warnings fail the docs build):" >&2
  grep -E '(^| )(WARN|ERROR)( |$)' "$log" >&2
  exit 1
fi

# Offline: the repository's own GitHub links are checked as files of this clone, every other web
# address is left out (nothing here reaches the web).
repo=https://github.com/aws-operators/rekognition-operator
root=$(pwd)
"$tools/lychee" --offline --no-progress --include-fragments \
  --root-dir "$root" \
  --remap "^$repo/(blob|tree|raw)/main/ file://$root/" \
  README.md docs deploy/helm/rekognition-operator/README.md

if $open; then
  exec "$tools/mdbook" serve --open
fi
