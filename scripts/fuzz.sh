#!/usr/bin/env bash
# Runs every Go fuzz target of the module for FUZZTIME (default 3s) each.
#
# Go 1.26's fuzz coordinator can report a bare "context deadline exceeded"
# when -fuzztime expires while a worker is mid-call on a loaded machine
# (golang/go#75804, fixed in Go 1.27). That is not a finding: a real one
# writes a reproducer ("Failing input written to ...") or prints a panic or
# a test error. Such a run is retried once; if the bare deadline error
# recurs, the target's corpus is replayed deterministically (go test -run)
# and only that replay decides. Any other failure fails the run.
set -uo pipefail
FUZZTIME=${FUZZTIME:-3s}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
fail=0 ran=0 flaked=0

is_deadline_flake() {
  grep -q 'context deadline exceeded' "$log" &&
    ! grep -qE 'Failing input written|panic:|_test\.go:[0-9]+:' "$log"
}

for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  targets=$(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u || true)
  for t in $targets; do
    ran=$((ran + 1))
    echo "fuzz $pkg $t ($FUZZTIME)"
    ok=0
    for attempt in 1 2; do
      if go test -run='^$' -fuzz="^${t}\$" -fuzztime="$FUZZTIME" "$pkg" >"$log" 2>&1; then
        ok=1; break
      fi
      is_deadline_flake || break
      echo "  $t: bare 'context deadline exceeded' at the fuzztime boundary (golang/go#75804); attempt $attempt"
    done
    if [ $ok = 0 ] && is_deadline_flake; then
      if go test -count=1 -run="^${t}\$" "$pkg" >"$log" 2>&1; then
        echo "  $t: corpus replay passes; counted as the Go 1.26 coordinator flake, not a finding"
        flaked=$((flaked + 1)); ok=1
      fi
    fi
    if [ $ok = 0 ]; then
      cat "$log"; fail=$((fail + 1))
    fi
  done
done
echo "fuzz: $flaked target(s) hit only the Go 1.26 coordinator deadline flake"
echo "fuzz: $((ran - fail)) passed, $fail failed"
[ $fail = 0 ]
