#!/usr/bin/env bash
# Runs every fuzz target for a while (default 20s each). Their seed corpora
# also run as ordinary tests under `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
t=${1:-20s}
grep -rl --include='*_test.go' '^func Fuzz' internal | xargs -n1 dirname | sort -u | while read -r pkg; do
  for f in $(grep -h '^func Fuzz' "$pkg"/*_test.go | sed 's/func \(Fuzz[A-Za-z0-9_]*\).*/\1/'); do
    echo "fuzz: ./$pkg $f ($t)"
    go test -tags libsqlite3 -run '^$' -fuzz "^$f\$" -fuzztime "$t" "./$pkg"
  done
done
