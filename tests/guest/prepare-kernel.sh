#!/usr/bin/env bash
# Fetch the current Debian kernel (the one linux-image-amd64 depends on) into a cache and
# print the cache directory of that kernel on stdout. It holds:
#   vmlinux    uncompressed ELF kernel: QEMU boots it directly through PVH, which saves the
#              3-6 s the XZ decompressor would take under TCG
#   vmlinuz    the bzImage as Debian ships it, for guests that boot through a boot loader
#   fuse.ko cuse.ko   uncompressed modules (busybox insmod cannot read .ko.xz)
#   nvme-core.ko nvme.ko   the guest's own NVMe driver, for guests on a vfio-user-pci device
#   modules    the modules above with what they need, in insmod order (one name a line)
#   version    the kernel package name
# Cache: $VNVME_GUEST_CACHE, else /var/cache/vnvme-guest if it can be written, else
# ~/.cache/vnvme-guest. A cached kernel costs one `apt-cache depends` per call; a new kernel
# version (after apt-get update) is downloaded once. Needs apt-get, dpkg-deb, xz, grep.
set -euo pipefail

log() { echo "prepare-kernel: $*" >&2; }

pick_cache() {
  if [ -n "${VNVME_GUEST_CACHE:-}" ]; then
    echo "$VNVME_GUEST_CACHE"
  elif mkdir -p /var/cache/vnvme-guest 2>/dev/null && [ -w /var/cache/vnvme-guest ]; then
    echo /var/cache/vnvme-guest
  else
    echo "${XDG_CACHE_HOME:-$HOME/.cache}/vnvme-guest"
  fi
}

# The version is never hard-coded: Debian removes old kernel packages from the mirror.
current_kernel_package() {
  apt-cache depends linux-image-amd64 2>/dev/null |
    sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*\)$/\1/p' | head -n1
}

# Debian's vmlinuz is a boot stub followed by an XZ stream holding vmlinux. The XZ magic can
# also occur by chance earlier in the stub, so try every candidate until one yields an ELF.
extract_vmlinux() {
  local vmlinuz=$1 out=$2 offset
  for offset in $(LC_ALL=C grep -obaP '\xfd7zXZ\x00' "$vmlinuz" | cut -d: -f1); do
    # --single-stream: the stream is followed by the stub's trailer, which is not XZ. xz then
    # stops reading, so tail dies of SIGPIPE: only xz's status counts.
    if { tail -c +$((offset + 1)) "$vmlinuz" || true; } |
         xz -dc --single-stream >"$out.tmp" 2>/dev/null &&
       [ "$(head -c 4 "$out.tmp" | od -An -tx1 | tr -d ' \n')" = 7f454c46 ]; then
      mv "$out.tmp" "$out"
      return 0
    fi
  done
  rm -f "$out.tmp"
  return 1
}

download_deb() {
  local pkg=$1 dir=$2
  # Root downloads into a directory the _apt sandbox user cannot write: skip the sandbox
  # instead of printing a warning on every first run.
  if (cd "$dir" && apt-get download -q -o APT::Sandbox::User=root "$pkg" >/dev/null 2>&1); then
    return 0
  fi
  # The package lists may name a kernel that has already left the mirror.
  if [ "$(id -u)" -eq 0 ]; then
    log "download of $pkg failed; refreshing package lists"
    apt-get update -qq >/dev/null
    (cd "$dir" && apt-get download -q -o APT::Sandbox::User=root "$pkg" >/dev/null)
  else
    log "cannot download $pkg (stale package lists? run apt-get update)"
    return 1
  fi
}

populate() {
  local pkg=$1 dest=$2
  work=$(mktemp -d "${dest}.work.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  log "downloading $pkg"
  download_deb "$pkg" "$work"
  local deb
  deb=$(ls "$work"/*.deb)
  log "extracting vmlinuz and the fuse and nvme modules"
  mkdir "$work/root"
  dpkg-deb --fsys-tarfile "$deb" |
    tar -x -C "$work/root" --wildcards './boot/vmlinuz-*' './lib/modules/*/kernel/fs/fuse/*' \
      './lib/modules/*/kernel/drivers/nvme/*' './lib/modules/*/kernel/lib/*' \
      './lib/modules/*/kernel/crypto/*' './lib/modules/*/kernel/block/*'
  rm -f "$deb"

  mkdir "$work/out"
  local vmlinuz mod name
  vmlinuz=$(ls "$work"/root/boot/vmlinuz-*)
  extract_vmlinux "$vmlinuz" "$work/out/vmlinux" || { log "no ELF kernel inside $vmlinuz"; return 1; }
  cp "$vmlinuz" "$work/out/vmlinuz"
  # Each wanted module after what it depends on, read from the .ko's own modinfo strings
  # (the .deb ships no modules.dep).
  local order=()
  add_module() {
    local name=$1 mod dep
    case " ${order[*]:-} " in *" $name "*) return 0 ;; esac
    # Module names treat - and _ alike.
    mod=$(find "$work"/root/lib/modules -name "${name//[-_]/[-_]}.ko*" | head -n1)
    [ -n "$mod" ] || { log "$pkg has no $name module"; return 1; }
    case $mod in
      *.ko.xz)  xz -dc "$mod" >"$work/out/$name.ko" ;;
      *.ko.zst) zstd -dcq "$mod" >"$work/out/$name.ko" ;;
      *.ko.gz)  gzip -dc "$mod" >"$work/out/$name.ko" ;;
      *.ko)     cp "$mod" "$work/out/$name.ko" ;;
      *) log "unknown module format: $mod"; return 1 ;;
    esac
    for dep in $(tr '\0' '\n' <"$work/out/$name.ko" | sed -n 's/^depends=//p' | head -n1 | tr ',' ' '); do
      add_module "$dep" || return 1
    done
    order+=("$name")
  }
  for name in fuse cuse nvme-core nvme; do
    add_module "$name" || return 1
  done
  printf '%s\n' "${order[@]}" >"$work/out/modules"
  echo "$pkg" >"$work/out/version"
  # Rename last so a half-built cache is never taken for a complete one.
  rm -rf "$dest"
  mv "$work/out" "$dest"
  rm -rf "$work"
  # Kernels the package lists no longer name are never used again.
  find "$(dirname "$dest")" -mindepth 1 -maxdepth 1 -type d -name 'linux-image-*' \
    ! -name "$pkg" ! -name '*.work.*' -exec rm -rf {} +
}

main() {
  local cache pkg dest
  cache=$(pick_cache)
  mkdir -p "$cache"
  pkg=$(current_kernel_package)
  [ -n "$pkg" ] || { log "apt-cache knows no linux-image-amd64 (run apt-get update)"; exit 1; }
  dest="$cache/$pkg"
  # A cache from before the NVMe modules were kept is filled again.
  if [ ! -f "$dest/version" ] || [ ! -f "$dest/modules" ] || [ ! -f "$dest/vmlinuz" ]; then
    # Two test runs at once (normal and ASan build dirs) must not download into each other.
    exec 9>"$cache/.lock"
    flock 9
    [ -f "$dest/version" ] && [ -f "$dest/modules" ] && [ -f "$dest/vmlinuz" ] || populate "$pkg" "$dest"
    exec 9>&-
  fi
  echo "$dest"
}

main "$@"
