#!/bin/sh
# The container image's root file system, all but the operator binary: Debian's C runtime
# (libc6, libgcc-s1), the CA certificates the tenant client trusts, os-release and the
# package records that image scanners read, the license texts, and the user 65532.
# No shell, no package manager, no other program.
#
# Both builds run this script, so both images have the same base: `cargo xtask image`
# (xtask/src/image/mod.rs) on the build host, and the Dockerfile in its Debian build stage.
# It needs apt-get (with current package lists: `apt-get update`) and dpkg-deb, and runs
# as any user.
#
# usage: rootfs.sh OUT_DIR WORK_DIR
#   OUT_DIR   created (emptied first): the root file system
#   WORK_DIR  created (emptied first): downloaded packages and their unpacked contents
set -eu
umask 022
export LC_ALL=C

out=${1:?usage: rootfs.sh OUT_DIR WORK_DIR}
work=${2:?usage: rootfs.sh OUT_DIR WORK_DIR}
rm -rf "$out" "$work"
mkdir -p "$out" "$work/debs" "$work/unpacked"
out=$(cd "$out" && pwd)
work=$(cd "$work" && pwd)

# apt-get downloads as its unprivileged `_apt` user when run as root; let it write here.
chmod 0777 "$work/debs"
cd "$work/debs"
apt-get download -q base-files libc6 libgcc-s1 ca-certificates >/dev/null
# libgcc-s1's copyright file lives in the gcc-N-base package it depends on.
gcc_base=$(dpkg-deb -f libgcc-s1_*.deb Depends | tr ',' '\n' | sed -n 's/^ *\(gcc-[0-9]*-base\).*/\1/p')
apt-get download -q "${gcc_base:?libgcc-s1 names no gcc-N-base}" >/dev/null

mkdir -p "$out/var/lib/dpkg/status.d"
for deb in *.deb; do
    dpkg-deb -x "$deb" "$work/unpacked"
    package=$(dpkg-deb -f "$deb" Package)
    version=$(dpkg-deb -f "$deb" Version)
    echo "rootfs: $package $version" >&2
    # One record per package, as distroless images have them, so that scanners (Trivy,
    # Grype) see which Debian packages, at which versions, the image contains.
    {
        dpkg-deb -f "$deb"
        echo "Status: install ok installed"
    } >"$out/var/lib/dpkg/status.d/$package"
done

# Keep only what the binary needs at run time and what identifies and licenses it.
cd "$work/unpacked"
for path in \
    lib/*-linux-gnu*/*.so* \
    lib/ld-linux* \
    lib64/ld-linux* \
    etc/debian_version \
    etc/os-release \
    usr/lib/os-release \
    usr/share/common-licenses; do
    if [ -e "$path" ] || [ -L "$path" ]; then
        cp -a --parents "$path" "$out/"
    fi
done
# Each package's copyright file; a package whose documentation directory is a link to
# another's (libgcc-s1 -> gcc-N-base) keeps the link.
for doc in usr/share/doc/*; do
    if [ -L "$doc" ]; then
        cp -a --parents "$doc" "$out/"
    elif [ -e "$doc/copyright" ]; then
        cp -a --parents "$doc/copyright" "$out/"
    fi
done

# The CA bundle rustls-native-certs reads, made as update-ca-certificates makes it (the
# package leaves that to its install script): every Mozilla root, in name order.
mkdir -p "$out/etc/ssl/certs"
for cert in usr/share/ca-certificates/mozilla/*.crt; do
    cat "$cert"
    if [ -n "$(tail -c 1 "$cert")" ]; then
        echo
    fi
done >"$out/etc/ssl/certs/ca-certificates.crt"
count=$(grep -c 'BEGIN CERTIFICATE' "$out/etc/ssl/certs/ca-certificates.crt")
if [ "$count" -lt 100 ]; then
    echo "rootfs: only $count CA certificates found" >&2
    exit 1
fi

# The image's user (the chart's runAsUser) and the conventional root and nobody. No login
# shell exists: /usr/sbin/nologin is only a name.
cat >"$out/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
nonroot:x:65532:65532:nonroot:/nonexistent:/usr/sbin/nologin
EOF
cat >"$out/etc/group" <<'EOF'
root:x:0:
nobody:x:65534:
nonroot:x:65532:
EOF
# Without this file glibc asks DNS before /etc/hosts (and so ignores a pod's hostAliases).
cat >"$out/etc/nsswitch.conf" <<'EOF'
passwd: files
group: files
hosts: files dns
EOF
mkdir -p "$out/usr/local/bin"
