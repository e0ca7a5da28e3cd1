#!/usr/bin/env bash
# Install every Debian package that memprof-bpf's build, tests, benchmarks
# and demo need. Idempotent: packages already present are not reinstalled,
# and apt-get update only runs when something is missing.
set -euo pipefail

PKGS=(
	# build
	clang llvm make gcc pkg-config libbpf-dev bpftool libelf-dev zlib1g-dev
	libjansson-dev libcapstone-dev linux-libc-dev
	# lint and unit tests
	clang-format libcriterion-dev
	# integration tests: real Python processes, notebooks
	python3 python3-pytest python3-pytest-timeout python3-numpy
	# benchmarks (side-by-side peers)
	heaptrack
)

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
