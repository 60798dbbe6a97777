#!/usr/bin/env bash
# The upstream CRI conformance suite, whole, against `hull cri serve`.
#
#   test/critest.sh
#
# Runs as root. hack/critest.sh builds critest (cri-tools v1.37.0, from the
# Go module proxy, cached in /var/tmp/hull-critools), starts a local
# registry holding stand-ins for the images the suite pulls and hull-cri on
# private roots, runs critest and removes everything at the end (`make
# critest`). A run takes about 90 s; the first build of critest and crictl
# about 1m45s on cold Go caches. Not part of `make test`: its outcome
# depends on the host (on a kernel with AppArmor the AppArmor specs run,
# and hull loads no AppArmor profiles).
#
# The only skips it accepts are the ones docs/cri.md lists:
#   - "public image with digest" (1 spec), skipped here: it pulls
#     test-image-digest@sha256:9700f9..., which no offline registry can
#     serve;
#   - AppArmor (9 specs), which critest skips itself on a kernel without
#     it ("AppArmor is disabled on this host");
#   - the benchmarks (5 specs), which critest skips itself unless run
#     with -benchmark (bench/cri.sh runs them).
# (critest registers the SELinux specs only where SELinux is enabled.)
# Any other skip (critest also skips a feature the runtime does not
# offer) is listed and fails the run, as a failed spec does.
#
# Prints critest's output, each unexpected skip, then one line:
#   passed N failed N skipped N
# Exits 1 on a failed spec or an unexpected skip, or when critest did not
# get as far as a report.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
out=$(mktemp -d /tmp/hull-critest-report.XXXXXX)
trap 'rm -rf "$out"' EXIT
report=$out/report.json

status=0
"$here/hack/critest.sh" run --ginkgo.skip='public image with digest' --ginkgo.json-report="$report" || status=$?
if [ ! -s "$report" ]; then
  echo "critest.sh: critest wrote no report (status $status)" >&2
  exit 1
fi

# The specs (It nodes) of ginkgo's report: state, then full text, then
# the skip's reason.
jq -r '.[].SpecReports[] | select(.LeafNodeType == "It") |
  [.State, ((.ContainerHierarchyTexts + [.LeafNodeText]) | join(" ")), (.Failure.Message // "" | gsub("\n"; " "))] | @tsv' \
  "$report" >"$out/specs.tsv"

passed=0 failed=0 skipped=0 unexpected=0
while IFS=$'\t' read -r state text reason; do
  case $state in
  passed) passed=$((passed + 1)) ;;
  skipped | pending)
    skipped=$((skipped + 1))
    case "$text|$reason" in
    *"public image with digest"*"|" | *"[k8s.io] AppArmor "*"|AppArmor is disabled on this host" | *" benchmark "*"|") ;;
    *)
      echo "unexpected skip: $text: ${reason:-(no reason)}"
      unexpected=$((unexpected + 1))
      ;;
    esac
    ;;
  *) failed=$((failed + 1)) ;;
  esac
done <"$out/specs.tsv"

echo "passed $passed failed $failed skipped $skipped"
if ((failed > 0 || unexpected > 0 || status != 0)); then
  exit 1
fi
