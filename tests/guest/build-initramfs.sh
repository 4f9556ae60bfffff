#!/usr/bin/env bash
# Build the test guest's initramfs:
#   build-initramfs.sh OUT.cpio[.gz] RUN_SCRIPT [FILE[:DEST]...]
# It holds busybox (static, with its applet links), nvme-cli, the modules of the kernel
# prepare-kernel.sh fetched (fuse, cuse, the NVMe driver; /lib/modules/order says in which
# order init.sh loads them), /init (init.sh), RUN_SCRIPT as /tests/run, and each
# FILE at DEST (default /bin/NAME). Dynamic executables among them (nvme, FILEs) get their
# shared libraries and the dynamic loader copied at the same paths as on the host.
# OUT ending in .gz is gzipped, else a plain cpio (twice the size, no gzip on either side).
# VNVME_GUEST_KERNEL_DIR names the prepared kernel (else prepare-kernel.sh is run).
# Needs no root: no device node is created (init.sh takes /dev/console from devtmpfs).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
die() { echo "build-initramfs: $*" >&2; exit 1; }

[ $# -ge 2 ] || die "usage: $0 OUT.cpio[.gz] RUN_SCRIPT [FILE[:DEST]...]"
out=$1 run_script=$2
shift 2

kernel_dir=${VNVME_GUEST_KERNEL_DIR:-$("$here/prepare-kernel.sh")}
busybox=$(command -v busybox) || die "busybox not found (apt-get install busybox-static)"
nvme=$(command -v nvme) || die "nvme not found (apt-get install nvme-cli)"
command -v cpio >/dev/null || die "cpio not found"

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT

is_elf() { [ "$(head -c 4 "$1" | od -An -tx1 | tr -d ' \n')" = 7f454c46 ]; }

# $1 host file, $2 path inside the guest
install_file() {
  mkdir -p "$root$(dirname "$2")"
  rm -f "$root$2" # a busybox applet link of that name would be written through
  cp -L "$1" "$root$2"
}

# ldd prints "name => /path (addr)" for libraries and "/path (addr)" for the loader.
install_libs() {
  local lib
  is_elf "$1" || return 0
  ldd "$1" >/dev/null 2>&1 || return 0 # static
  for lib in $(ldd "$1" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'); do
    [ -e "$root$lib" ] || install_file "$lib" "$lib"
  done
}

mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,tests,lib/modules}

# Static busybox does not need libraries; is_elf+ldd would say so anyway.
install_file "$busybox" /bin/busybox
is_elf "$root/bin/busybox" && ! ldd "$root/bin/busybox" >/dev/null 2>&1 ||
  die "$busybox is not static (install busybox-static, not busybox)"
for applet in $("$busybox" --list); do
  [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
done

install_file "$nvme" /usr/sbin/nvme
install_libs "$nvme"

while read -r mod; do
  install_file "$kernel_dir/$mod.ko" "/lib/modules/$mod.ko"
done <"$kernel_dir/modules"
install_file "$kernel_dir/modules" /lib/modules/order

install_file "$here/init.sh" /init
chmod 755 "$root/init"
install_file "$run_script" /tests/run

for spec in "$@"; do
  src=${spec%%:*}
  dest=/bin/$(basename "$src")
  [ "$spec" = "$src" ] || dest=${spec#*:}
  [ -f "$src" ] || die "no such file: $src"
  install_file "$src" "$dest"
  install_libs "$src"
done

tmp_out="$out.tmp"
(cd "$root" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >"$tmp_out"
case $out in
  *.gz) gzip -1 -c "$tmp_out" >"$out"; rm -f "$tmp_out" ;;
  *) mv "$tmp_out" "$out" ;;
esac
