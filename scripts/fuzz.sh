#!/usr/bin/env bash
# Runs every Go fuzz target of the module for FUZZTIME (default 3s) each.
set -euo pipefail
FUZZTIME=${FUZZTIME:-3s}
fail=0
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  targets=$(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u || true)
  for t in $targets; do
    echo "fuzz $pkg $t ($FUZZTIME)"
    if ! go test -run='^$' -fuzz="^${t}\$" -fuzztime="$FUZZTIME" "$pkg" >/tmp/fuzz.$$.log 2>&1; then
      cat /tmp/fuzz.$$.log; fail=1
    fi
  done
done
rm -f /tmp/fuzz.$$.log
exit $fail
