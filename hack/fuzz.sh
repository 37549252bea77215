#!/usr/bin/env bash
# Runs every fuzz target of the module for the given time each (default 10s), and fails if any
# target failed. go test writes a failing input to the package's testdata/fuzz/<target>/, where
# every later `go test` runs it as a seed: fix the bug, and commit the seed with the fix.
#
# Go 1.26's fuzzing coordinator can fail a target with a bare "context deadline exceeded" when its
# time is up, racing its own deadline (go.dev/issue/75804, fixed in Go 1.27); that alone, with no
# failing input written, is reported and not counted.
set -uo pipefail
fuzztime=${1:-10s}
go=${GO:-go}
cd "$(dirname "$0")/.."
pkgs=$("$go" list -f '{{.ImportPath}}={{.Dir}}' ./...) || exit 1
log=$(mktemp)
trap 'rm -f "$log"' EXIT
failed=()
for p in $pkgs; do
  pkg=${p%%=*} dir=${p#*=}
  for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | cut -d' ' -f2); do
    echo "== $pkg $target"
    "$go" test "$pkg" -run '^$' -fuzz "^$target\$" -fuzztime "$fuzztime" 2>&1 | tee "$log"
    if ((PIPESTATUS[0] == 0)); then
      continue
    fi
    if grep -qx '    context deadline exceeded' "$log" && ! grep -q 'Failing input written' "$log"; then
      echo "== $target: Go's fuzzing coordinator raced its own deadline (go.dev/issue/75804); no failing input, not counted"
      continue
    fi
    failed+=("$pkg.$target")
  done
done
if ((${#failed[@]})); then
  echo "fuzzing failed: ${failed[*]}; commit the new seeds in testdata/fuzz with the fix" >&2
  exit 1
fi
