#!/usr/bin/env bash
# A Debian unstable root for what this machine's Debian 12 lacks: glibc 2.43
# and Python 3.14 and 3.15 with numpy, pandas, ipykernel and nbclient. Made
# once per machine with `debootstrap --variant=minbase sid`, under
# /var/cache/memprof-bpf/sid; processes started with `chroot DIR ...` run
# there, and the agent reads their files through /proc/PID/root. Prints the
# root's path as its last line of stdout:
#
#   ROOT=$(bash scripts/sid-root.sh) && chroot "$ROOT" python3.14 -c '...'
#
# unstable's Release file is signed with a Valid-Until date that has passed
# on this mirror, so apt inside is told not to check it
# (Acquire::Check-Valid-Until=false); the signature itself is still checked.
# Cached: a later run only checks the stamp file, which lists what the root
# holds. Interrupted runs leave a sid.tmp.* folder and no root; the next run
# removes it and starts over.
set -euo pipefail

CACHE=${MEMPROF_CACHE:-/var/cache/memprof-bpf}
ROOT=$CACHE/sid
STAMP=$ROOT/.complete # written inside the root before it is renamed in place
MIRROR=${SID_MIRROR:-http://deb.debian.org/debian}
PACKAGES="python3.14 python3.15 python3-numpy python3-pandas python3-ipykernel python3-nbclient"

if [ -f "$STAMP" ]; then
	echo "$ROOT"
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "sid-root: run as root (it writes $CACHE and runs debootstrap)" >&2
	exit 1
fi
if ! command -v debootstrap >/dev/null; then
	apt-get install -y -qq debootstrap >&2
fi

mkdir -p "$CACHE"
# Two runs at once (parallel tests) would race on the rename below.
exec 9>"$CACHE/sid.lock"
flock 9
if [ -f "$STAMP" ]; then # made by the run we waited for
	echo "$ROOT"
	exit 0
fi
rm -rf "$ROOT" "$CACHE"/sid.tmp.*
work=$(mktemp -d "$CACHE/sid.tmp.XXXXXX")
# A mount left behind would make rm -rf reach into the host's /proc.
cleanup() {
	umount "$work/proc" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
chmod 755 "$work"

echo "sid-root: debootstrap --variant=minbase sid (about a minute)" >&2
debootstrap --variant=minbase sid "$work" "$MIRROR" >"$CACHE/sid-debootstrap.log" 2>&1 || {
	tail -n 20 "$CACHE/sid-debootstrap.log" >&2
	echo "sid-root: debootstrap failed (log: $CACHE/sid-debootstrap.log)" >&2
	exit 1
}

# apt inside: the expired Release is accepted, nothing asks questions.
cat >"$work/etc/apt/apt.conf.d/99memprof" <<'EOF'
Acquire::Check-Valid-Until "false";
APT::Install-Recommends "false";
EOF
cp /etc/resolv.conf "$work/etc/resolv.conf"
mount -t proc proc "$work/proc"
echo "sid-root: installing $PACKAGES (a few minutes)" >&2
if ! chroot "$work" /usr/bin/env DEBIAN_FRONTEND=noninteractive \
	sh -c "apt-get update -qq && apt-get install -y -qq $PACKAGES" >"$CACHE/sid-apt.log" 2>&1; then
	tail -n 20 "$CACHE/sid-apt.log" >&2
	echo "sid-root: apt-get inside the root failed (log: $CACHE/sid-apt.log)" >&2
	exit 1
fi
chroot "$work" apt-get clean
umount "$work/proc"

# Every piece the tests rely on, or no root at all.
for py in python3.14 python3.15; do
	chroot "$work" "$py" -c 'import sys' || {
		echo "sid-root: $py does not run in the root" >&2
		exit 1
	}
done
chroot "$work" python3 -c 'import numpy, pandas, ipykernel, nbclient' || {
	echo "sid-root: numpy/pandas/ipykernel/nbclient missing from the root" >&2
	exit 1
}

# The stamp says what the root holds: glibc and the interpreters' versions.
{
	echo "glibc $(chroot "$work" /usr/bin/ldd --version | head -n 1 | awk '{ print $NF }')"
	for py in python3.14 python3.15; do
		echo "$py $(chroot "$work" "$py" -c 'import platform; print(platform.python_version())')"
	done
	chroot "$work" python3 -c 'import numpy, pandas, ipykernel; print("numpy", numpy.__version__); print("pandas", pandas.__version__); print("ipykernel", ipykernel.__version__)'
} >"$work/.complete"
# One rename: the root appears whole or not at all.
mv "$work" "$ROOT"
trap - EXIT
echo "$ROOT"
