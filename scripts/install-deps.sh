#!/usr/bin/env bash
# Install every Debian package that memprof-bpf's build, tests, benchmarks
# and demo need. Idempotent: packages already present are not reinstalled,
# and apt-get update only runs when something is missing.
#
#   install-deps.sh          what build, tests and demo need
#   install-deps.sh --bench  also the optional peers of scripts/bench's
#                            Python workloads (scalene, memory_profiler);
#                            make test never needs them
set -euo pipefail

PKGS=(
	# build
	clang llvm make gcc pkg-config libbpf-dev bpftool libelf-dev zlib1g-dev
	libjansson-dev libcapstone-dev linux-libc-dev
	# the live terminal view (user/view/topview.c)
	libncurses-dev
	# lint and unit tests
	clang-format libcriterion-dev
	# integration tests: real Python processes, notebooks
	python3 python3-pytest python3-pytest-timeout python3-numpy
	python3-pandas python3-ipykernel python3-nbclient python3-nbformat
	# the terminal view's test drives it in tmux
	tmux
	# the HTML export's test opens the page in a headless browser
	chromium
	# the cell-marker library of the python/ package (<sys/sdt.h>)
	systemtap-sdt-dev
	# benchmarks (side-by-side peers)
	heaptrack
	# other tracers on the same processes (tests/integration/
	# test_other_tracers.py), and a busy core for make test-repeat
	bpftrace bpfcc-tools stress-ng
	# pprof output (user/format/pprof.c): protobuf-c, protoc-c at build
	# time; go tool pprof opens the files in the integration test
	libprotobuf-c-dev protobuf-c-compiler golang-go
)
# Optional: scalene and memory_profiler, peers in scripts/bench's "python"
# section (its pandas workload uses python3-pandas above). Only with --bench.
BENCH_PKGS=(python3-scalene python3-memory-profiler)

case "${1:-}" in
--bench) PKGS+=("${BENCH_PKGS[@]}") ;;
"") ;;
*)
	echo "usage: $0 [--bench]" >&2
	exit 2
	;;
esac

missing=()
for p in "${PKGS[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then
		missing+=("$p")
	fi
done

if [ "${#missing[@]}" -eq 0 ]; then
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing packages (${missing[*]}); run as root: sudo $0" >&2
	exit 1
fi

echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
