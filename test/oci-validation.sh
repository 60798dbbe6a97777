#!/usr/bin/env bash
# Runs the OCI runtime validation suite (github.com/opencontainers/runtime-tools,
# its validation/ programs) against `hull oci` and against runc on this
# machine, and prints the pass counts of both.
#
# runtime-tools is not a dependency of hull: it is fetched through the Go
# module proxy into a private GOMODCACHE under $WORK and built there. Its last
# release (v0.9.0) predates Go modules, so the script writes a go.mod pinning
# the spec and selinux versions it was written against.
#
# Usage: test/oci-validation.sh [hull-binary]   (default: bin/hull, built if missing)
# Env:   WORK (default /tmp/hull-oci-validation), RUNC (default runc), TESTS
#        (space-separated test names, default all), TIMEOUT per test (60s).
set -uo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
hull=${1:-$here/bin/hull}
work=${WORK:-/tmp/hull-oci-validation}
runc_bin=$(command -v "${RUNC:-runc}")
timeout=${TIMEOUT:-60}
export PATH=/usr/local/go/bin:$PATH

if [ ! -x "$hull" ]; then
	(cd "$here" && go build -tags libsqlite3 -o "$hull" ./cmd/hull) || exit 1
fi
hull=$(readlink -f "$hull")

mkdir -p "$work"
export GOMODCACHE=$work/modcache GOFLAGS=-modcacherw GOPATH=$work/gopath GOTOOLCHAIN=local
src=$work/runtime-tools
if [ ! -x "$src/runtimetest" ]; then
	echo "== fetching and building runtime-tools validation (once)"
	dir=$(cd "$work" && go mod download -json github.com/opencontainers/runtime-tools@v0.9.0 | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
	[ -n "$dir" ] || { echo "cannot download runtime-tools through the module proxy" >&2; exit 1; }
	rm -rf "$src" && cp -r "$dir" "$src" && chmod -R u+w "$src"
	(
		cd "$src" || exit 1
		printf 'module github.com/opencontainers/runtime-tools\n\ngo 1.16\n' >go.mod
		go get github.com/opencontainers/runtime-spec@v1.0.2 github.com/opencontainers/selinux@v1.5.2 >/dev/null 2>&1
		go mod tidy >/dev/null 2>&1
		go get github.com/opencontainers/runtime-spec@v1.0.2 github.com/opencontainers/selinux@v1.5.2 >/dev/null 2>&1
		mkdir -p bin
		go build -o runtimetest ./cmd/runtimetest || exit 1
		for d in validation/*/; do
			n=$(basename "$d")
			[ "$n" = util ] && continue
			go build -o "bin/$n" "./$d" || exit 1
		done
	) || { echo "building runtime-tools failed" >&2; exit 1; }
fi

# runc-named wrappers: the suite calls "$RUNTIME create ...", as containerd would.
mkdir -p "$work/hull-wrapper" "$work/runc-wrapper"
printf '#!/bin/sh\nexec %s oci "$@"\n' "$hull" >"$work/hull-wrapper/runc"
printf '#!/bin/sh\nexec %s "$@"\n' "$runc_bin" >"$work/runc-wrapper/runc"
chmod +x "$work/hull-wrapper/runc" "$work/runc-wrapper/runc"

tests=${TESTS:-$(ls "$src/bin")}
stamp=$work/.started
touch "$stamp"

# run_suite NAME WRAPPER: runs every test, writes TAP to $work/NAME/<test>.tap
run_suite() {
	local name=$1 wrapper=$2 out=$work/$1
	rm -rf "$out" && mkdir -p "$out"
	for t in $tests; do
		(cd "$src" && RUNTIME=$wrapper timeout -k 5 "$timeout" "bin/$t" >"$out/$t.tap" 2>"$out/$t.err")
		echo $? >"$out/$t.rc"
		# Bundles live in /tmp/ocitest*; a runtime that leaks mounts
		# there (seen once with shared propagation) is charged for it,
		# and the mounts are removed so the next test starts clean.
		leaked=$(awk '$5 ~ "^/tmp/ocitest" {print $5}' /proc/self/mountinfo | sort -r)
		if [ -n "$leaked" ]; then
			echo "$t: $(echo "$leaked" | wc -l)" >>"$out/leaked-mounts"
			for m in $leaked; do umount -l "$m" 2>/dev/null; done
		fi
		# Some programs leave their bundle behind: remove what this run
		# made (by ctime: a bundle's mtime comes from the tarball, 2018).
		find /tmp -maxdepth 1 -name 'ocitest*' -cnewer "$stamp" -exec rm -rf {} +
	done
}

# summarize NAME: prints "programs passed/total, assertions passed/total"
summarize() {
	local out=$work/$1 progs=0 pprog=0 ok=0 notok=0 t o n
	for t in $tests; do
		progs=$((progs + 1))
		o=$(grep -cE '^ok ' "$out/$t.tap")
		n=$(grep -cE '^not ok ' "$out/$t.tap")
		ok=$((ok + o))
		notok=$((notok + n))
		# A program passes when it exits 0 with no "not ok" (one,
		# process_capabilities_fail, prints nothing when it passes).
		if [ "$n" -eq 0 ] && [ "$(cat "$out/$t.rc")" -eq 0 ]; then
			pprog=$((pprog + 1))
		else
			failed+=" $t"
		fi
	done
	printf '%-5s programs passed %d/%d, assertions passed %d/%d\n' "$1" "$pprog" "$progs" "$ok" "$((ok + notok))"
	printf '      failing programs:%s\n' "${failed:- none}"
	if [ -s "$out/leaked-mounts" ]; then
		printf '      leaked mounts (removed): %s\n' "$(tr '\n' ' ' <"$out/leaked-mounts")"
	fi
}

echo "== hull ($hull)"
run_suite hull "$work/hull-wrapper/runc"
echo "== runc ($runc_bin)"
run_suite runc "$work/runc-wrapper/runc"
echo
failed=""
summarize hull
failed=""
summarize runc
echo "TAP output: $work/{hull,runc}/<test>.tap"
