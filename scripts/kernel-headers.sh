#!/usr/bin/env bash
# Kernel headers for bcc (memleak-bpfcc), which compiles its probes with clang
# each time it starts and needs a kernel header tree: this kernel has none
# (no /lib/modules/$(uname -r)/build, no CONFIG_IKHEADERS). Debian's
# linux-headers-6.1.0-N-amd64 and -common packages are unpacked (never
# installed: they are for another kernel, and bcc only needs the headers to
# compile; the probes themselves are plain uprobes) and merged into one tree,
# once per machine, under /var/cache/memprof-bpf/kheaders.
# Prints the tree's path as its last line of stdout, for BCC_KERNEL_SOURCE:
#
#   BCC_KERNEL_SOURCE=$(bash scripts/kernel-headers.sh) memleak-bpfcc -p PID
#
# Cached: a later run only checks the stamp file. Interrupted runs leave a
# kheaders.tmp.* folder and no tree; the next run removes it and starts over.
set -euo pipefail

CACHE=${MEMPROF_CACHE:-/var/cache/memprof-bpf}
TREE=$CACHE/kheaders
STAMP=$TREE/.complete # written inside the tree before it is renamed in place

if [ -f "$STAMP" ]; then
	echo "$TREE"
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "kernel-headers: run as root (it writes $CACHE and uses apt)" >&2
	exit 1
fi

mkdir -p "$CACHE"
# Two runs at once (e.g. parallel tests) would race on the rename below.
exec 9>"$CACHE/kheaders.lock"
flock 9
if [ -f "$STAMP" ]; then # built by the run we waited for
	echo "$TREE"
	exit 0
fi
# Leftovers of an interrupted run (a tree without its stamp is one too).
rm -rf "$TREE" "$CACHE"/kheaders.tmp.*

# The newest 6.1 ABI Debian 12 offers. Any one does: bcc takes type layouts
# from the headers, and memleak's uprobe programs read no kernel structures.
newest_abi() {
	apt-cache search --names-only '^linux-headers-6\.1\.0-[0-9]+-amd64$' |
		sed -n 's/^linux-headers-\(6\.1\.0-[0-9]*\)-amd64 .*/\1/p' | sort -V | tail -n 1
}

work=$(mktemp -d "$CACHE/kheaders.tmp.XXXXXX")
trap 'rm -rf "$work"' EXIT
chmod 755 "$work" # mktemp makes it 0700, which _apt cannot enter
mkdir "$work/dl"
# apt-get download drops to _apt and warns when _apt cannot write the folder.
if id _apt >/dev/null 2>&1; then
	chown _apt "$work/dl"
fi

download() {
	abi=$(newest_abi)
	[ -n "$abi" ] || return 1
	(cd "$work/dl" && apt-get download -qq "linux-headers-$abi-amd64" "linux-headers-$abi-common") >&2
}
# Empty or stale package lists (a fresh machine, or a mirror that has moved
# past the listed version): refresh them once and try again.
if ! download; then
	echo "kernel-headers: refreshing apt's package lists" >&2
	apt-get update -qq >&2
	if ! download; then
		echo "kernel-headers: cannot download linux-headers-6.1.0-*-amd64/-common" >&2
		exit 1
	fi
fi

for deb in "$work"/dl/*.deb; do
	dpkg -x "$deb" "$work/root"
done
amd64=$work/root/usr/src/linux-headers-$abi-amd64
common=$work/root/usr/src/linux-headers-$abi-common
if [ ! -d "$amd64/include/generated" ] || [ ! -d "$common/include/linux" ]; then
	echo "kernel-headers: unexpected package layout under $work/root/usr/src" >&2
	exit 1
fi

# -common holds the source headers, -amd64 the configured parts
# (include/generated, arch/x86/include/generated, .config); bcc takes one
# directory, so lay -amd64 over -common. Three names clash: -amd64's Makefile
# only includes -common's by its absolute /usr/src path (keep -common's), and
# both have scripts/ and tools/ symlinks into linux-kbuild-6.1, which is not
# fetched and which bcc does not use (drop them, so nothing dangles).
rm -f "$amd64/Makefile" "$amd64/scripts" "$amd64/tools" "$common/scripts" "$common/tools"
mkdir "$work/tree"
cp -a "$common/." "$work/tree/"
cp -a "$amd64/." "$work/tree/"

# What bcc's clang front end includes or adds to its -I path.
for f in include/linux/kconfig.h include/generated/autoconf.h \
	include/generated/uapi/linux/version.h arch/x86/include/generated/asm \
	arch/x86/include/uapi include/uapi; do
	if [ ! -e "$work/tree/$f" ]; then
		echo "kernel-headers: merged tree lacks $f" >&2
		exit 1
	fi
done

# The stamp names the packages the tree came from.
printf 'linux-headers-%s-amd64\nlinux-headers-%s-common\n' "$abi" "$abi" >"$work/tree/.complete"
# One rename: the tree appears whole or not at all.
mv "$work/tree" "$TREE"
echo "$TREE"
