#!/usr/bin/env bash
# Runs the linters of `make lint`, built from the tools module hack/lint/go.mod, whose tool
# directives pin them (the first run downloads them through the module proxy):
#   - staticcheck ./...
#   - deadcode -test ./...: functions that no command and no test reaches, test helpers included;
#   - deadcode ./cmd/...: functions that only tests reach, which no shipped binary needs.
# It fails on every finding except those hack/lint/pending lists, and on a listed one that no
# longer occurs, so that the list only shrinks.
set -euo pipefail
cd "$(dirname "$0")/.."

findings=""
for args in "staticcheck ./..." "deadcode -test ./..." "deadcode ./cmd/..."; do
  status=0
  # Findings come on stdout; stderr, where go reports the first run's downloads, is left alone.
  # shellcheck disable=SC2086 # args is words
  out=$("${GO:-go}" tool -modfile=hack/lint/go.mod $args) || status=$?
  # staticcheck exits 1 with findings; a failure without findings is the tool's.
  if ((status != 0)) && [[ -z $out ]]; then
    printf '%s' "$findings"
    echo "lint: $args failed with exit status $status" >&2
    exit 1
  fi
  findings+=${out:+$out$'\n'}
done

# A finding is matched without its line and column, which change with unrelated edits.
awk '
  BEGIN { while ((getline line < "hack/lint/pending") > 0) if (line !~ /^(#|$)/) pending[line] = 0 }
  /^$/ || seen[$0]++ { next }
  {
    key = $0
    sub(/:[0-9]+:[0-9]+: /, ": ", key)
    if (key in pending) pending[key]++
    else { print; failed = 1 }
  }
  END {
    for (key in pending) if (!pending[key]) {
      print "hack/lint/pending lists a finding that no longer occurs; delete it: " key
      failed = 1
    }
    exit failed
  }
' <<<"${findings%$'\n'}"
