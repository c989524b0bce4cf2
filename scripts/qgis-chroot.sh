#!/usr/bin/env bash
# Newer QGIS releases for the test matrix, each in a Debian chroot made with debootstrap, kept
# outside the clone so that a clean clone reuses it. The host's own QGIS is never touched.
#
#   scripts/qgis-chroot.sh setup VERSION         create or complete the chroot and its engine venv
#   scripts/qgis-chroot.sh run VERSION CMD...    run CMD inside it, in the repository (same path)
#   scripts/qgis-chroot.sh versions              the versions a chroot can host
#
# PIX2PIX_CHROOT_DIR  where chroots live (default /var/cache/pix2pix-qgis; one folder per version)
# DEBIAN_MIRROR       Debian archive for debootstrap and apt (default http://deb.debian.org/debian)
#
# Every run happens in new mount and PID namespaces (unshare): the mounts (proc, dev, sys, the
# repository, pip's local wheels) exist only in that namespace, so they vanish with it whatever
# way the command ends — no unmount step that a failure could skip, no mount left on the host,
# and no process of the run (an Xvfb, a stuck QGIS) outlives it. Needs root (chroot, mounts).
set -euo pipefail

CACHE=${PIX2PIX_CHROOT_DIR:-/var/cache/pix2pix-qgis}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
ENGINE=/opt/pix2pix/engine  # the engine's venv inside each chroot
# What the chroots install: QGIS with qgis_process and its Python, the GUI check's Xvfb, the
# test runner and venv for QGIS's Python. The stamp holds this list: change it and every
# chroot is completed again on its next set-up.
PACKAGES="qgis python3-qgis qgis-providers python3-gdal gdal-bin python3-pytest python3-venv xvfb xauth
  ca-certificates python3-setuptools-whl python3-pip-whl"
# Host paths bound read-only at the same place inside, when they exist: the host's certificate
# store (a site's TLS proxy CA lives there), pip's configuration and the local wheels and indexes
# it points to (on machines without them, pip uses PyPI as usual).
HOST_PATHS="/etc/ssl/certs /etc/pip.conf /etc/xdg/pip /root/.config/pip /opt/wheels /opt/pypi /opt/pypi-more"
# The host's Python 3.11 (Debian 12's, which its QGIS needs) appears in every chroot under its own
# prefix, HOST_PYTHON: a chroot whose Python has no PyTorch wheel here makes the engine's venv
# with it. Its extension modules link only libraries that newer Debian still ships (libc, libssl3,
# libffi8, ...), and the prefix keeps the chroot's own /usr untouched.
HOST_PYTHON=/opt/host-python3.11

die() { echo "qgis-chroot: $*" >&2; exit 1; }

# VERSION -> SUITE (debootstrap), SOURCES (apt lines), TARGET (apt -t), ENGINE_PY (the engine's base
# Python) and SETUP_BASE (the base Python that tests of *Set up engine* must name, when the chroot's
# own python3 has no PyTorch wheel here; empty when it has one).
recipe() {
  local main="deb $MIRROR"
  SETUP_BASE=""
  case $1 in
    3.22)  # Debian 12's own QGIS: the declared minimum, for hosts that are not Debian 12
      SUITE=bookworm; TARGET=bookworm; SCRIPT=bookworm; ENGINE_PY=/usr/bin/python3.11
      SOURCES="$main bookworm main"$'\n'"$main bookworm-updates main" ;;
    3.40)  # the LTR, from Debian 12's backports; Python 3.11 as on the host, so the CPU torch wheel fits
      SUITE=bookworm; TARGET=bookworm-backports; SCRIPT=bookworm; ENGINE_PY=/usr/bin/python3.11
      SOURCES="$main bookworm main"$'\n'"$main bookworm-updates main"$'\n'"$main bookworm-backports main" ;;
    3.44)  # the newest release in Debian ("forky", whose Python is newer than any torch wheel
           # here): the engine's venv is made with the host's Python 3.11, bound in (HOST_PYTHON)
      SUITE=forky; TARGET=forky; SCRIPT=sid; ENGINE_PY=$HOST_PYTHON/bin/python3.11; SETUP_BASE=$ENGINE_PY
      SOURCES="$main forky main" ;;
    *) die "no chroot recipe for QGIS $1 (known: $(versions))" ;;
  esac
}

versions() { echo "3.22 3.40 3.44"; }

# bind SRC DEST [ro]: bind-mount a file or folder, creating the mount point.
bind() {
  if [ -d "$1" ]; then mkdir -p "$2"; else mkdir -p "$(dirname "$2")"; [ -e "$2" ] || : >"$2"; fi
  mount --bind "$1" "$2"
  if [ "${3:-}" = ro ]; then mount -o remount,bind,ro "$2"; fi
}

# Runs as PID 1 of fresh mount and PID namespaces (see `enter`): mount, chroot, run.
inside() {
  local version=$1 root=$2 workdir=$3; shift 3
  recipe "$version"
  mount --make-rprivate /
  mount -t proc proc "$root/proc"
  mount --rbind /dev "$root/dev"
  mount --rbind /sys "$root/sys"
  bind "$REPO" "$root$REPO"
  local path
  if [ "${PIX2PIX_CHROOT_BARE:-}" != 1 ]; then  # not while apt configures the chroot's own files
    for path in $HOST_PATHS; do
      if [ -e "$path" ]; then bind "$path" "$root$path" ro; fi
    done
    if [ -x /usr/bin/python3.11 ]; then
      bind /usr/bin/python3.11 "$root$HOST_PYTHON/bin/python3.11" ro
      bind /usr/lib/python3.11 "$root$HOST_PYTHON/lib/python3.11" ro
    fi
  fi
  cp -L /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
  local runtime
  runtime=$(chroot "$root" mktemp -d /tmp/xdg-runtime.XXXXXX)
  chmod 700 "$root$runtime"
  # A clean environment: only what the tests need from outside passes in.
  local pass=() name
  for name in $(compgen -e); do
    case $name in
      PIX2PIX_*|PIP_*|PYTEST_ADDOPTS|TORCH_*|http_proxy|https_proxy|no_proxy|HTTP_PROXY|HTTPS_PROXY|NO_PROXY) pass+=("$name=${!name}") ;;
    esac
  done
  exec chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 LC_ALL=C.UTF-8 \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin QT_QPA_PLATFORM=offscreen \
    XDG_RUNTIME_DIR="$runtime" PIX2PIX_ENGINE_VENV="$ENGINE" ${SETUP_BASE:+PIX2PIX_TEST_BASE_PYTHON=$SETUP_BASE} \
    "${pass[@]}" \
    /bin/sh -c 'cd "$0" && exec "$@"' "$workdir" "$@"
}

# enter VERSION CMD...: CMD in the chroot of VERSION, in new mount + PID namespaces.
enter() {
  local version=$1; shift
  local root="$CACHE/$version/root"
  # The chroot's /tmp is emptied before each run (runs of one version are serialised by the lock).
  rm -rf "$root/tmp"
  mkdir -m 1777 "$root/tmp"
  # unshare ignores SIGTERM while it waits, and the namespace's first process only gets the
  # signals it handles; so a stop (Ctrl-C, a CI timeout) kills unshare, and --kill-child then
  # takes the whole namespace with it.
  PIX2PIX_CHROOT_BARE=${PIX2PIX_CHROOT_BARE:-} \
    unshare --mount --pid --fork --kill-child -- "$HERE/qgis-chroot.sh" __inside "$version" "$root" "$REPO" "$@" &
  local child=$! status=0
  # shellcheck disable=SC2064  # expanded now, on purpose
  trap "kill -KILL $child 2>/dev/null; wait $child 2>/dev/null || true; no_mounts_left $(printf %q "$root"); exit 143" \
    INT TERM HUP
  wait "$child" || status=$?
  trap - INT TERM HUP
  no_mounts_left "$root"
  return $status
}

no_mounts_left() {
  if grep -qF " $1/" /proc/mounts; then die "mounts under $1 are left on the host"; fi
}

stamp() { printf 'packages: %s\nsources: %s\n' "$(echo $PACKAGES)" "$SOURCES"; }

setup() {
  local version=$1 dir="$CACHE/$1"
  recipe "$version"
  local root="$dir/root"
  # (The venv's python may link to HOST_PYTHON, which exists only inside a run: test its config.)
  if [ -f "$dir/ready" ] && [ "$(cat "$dir/ready")" = "$(stamp)" ] && [ -f "$root$ENGINE/pyvenv.cfg" ]; then
    # Complete: only make sure the engine venv still fits this checkout (fast when it does).
    enter "$version" /bin/sh -c "scripts/setup-engine.sh $ENGINE $ENGINE_PY" >"$dir/engine.log" 2>&1 ||
      die "the engine's venv could not be completed, see $dir/engine.log"
    echo "QGIS $version: chroot $root is ready ($(qgis_version "$version"))"
    return
  fi
  local started=$SECONDS
  command -v debootstrap >/dev/null || install_debootstrap
  if [ ! -f "$root/.debootstrap-done" ]; then
    echo "QGIS $version: creating a Debian $SUITE chroot in $root (once; a few minutes)..."
    rm -rf "$dir/root.partial"
    mkdir -p "$dir" "$CACHE/debs"
    debootstrap --variant=minbase --cache-dir="$CACHE/debs" "$SUITE" "$dir/root.partial" "$MIRROR" \
      "/usr/share/debootstrap/scripts/$SCRIPT" >"$dir/debootstrap.log" 2>&1 ||
      die "debootstrap failed, see $dir/debootstrap.log"
    touch "$dir/root.partial/.debootstrap-done"
    rm -rf "$root"
    mv "$dir/root.partial" "$root"
  fi
  echo "$SOURCES" >"$root/etc/apt/sources.list"
  rm -f "$root/etc/apt/sources.list.d/"*
  # Keep downloaded packages: a later completion of the chroot does not fetch them again.
  echo 'Binary::apt::APT::Keep-Downloaded-Packages "true";' >"$root/etc/apt/apt.conf.d/90keep"
  # Testing's Release files expire after a week; a mirror that serves a snapshot (or a clock
  # ahead of it) would refuse them. Signatures are still checked.
  echo 'Acquire::Check-Valid-Until "false";' >"$root/etc/apt/apt.conf.d/90snapshot"
  echo "QGIS $version: installing QGIS from $TARGET into the chroot..."
  # shellcheck disable=SC2086
  PIX2PIX_CHROOT_BARE=1 enter "$version" /bin/sh -c "export DEBIAN_FRONTEND=noninteractive; dpkg --configure -a && apt-get update -qq &&
    apt-get install -y -qq --no-install-recommends -t $TARGET $(echo $PACKAGES)" >"$dir/apt.log" 2>&1 ||
    die "installing QGIS failed, see $dir/apt.log"
  echo "QGIS $version: the engine's venv ($ENGINE, $ENGINE_PY)..."
  enter "$version" /bin/sh -c "scripts/setup-engine.sh $ENGINE $ENGINE_PY" >"$dir/engine.log" 2>&1 ||
    die "setting up the engine failed, see $dir/engine.log"
  stamp >"$dir/ready"
  echo "QGIS $version: chroot ready in $((SECONDS - started)) s ($(qgis_version "$version"))"
}

qgis_version() {
  enter "$1" python3 -c "from qgis.core import Qgis; print('QGIS', Qgis.QGIS_VERSION)" 2>/dev/null
}

install_debootstrap() {
  command -v apt-get >/dev/null || die "debootstrap is missing and this is not a Debian/Ubuntu system"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get install -y -qq debootstrap >/dev/null
}

# locked VERSION CMD...: CMD while holding the version's lock (set-up and runs do not overlap).
locked() {
  local version=$1; shift
  mkdir -p "$CACHE"
  exec 9>"$CACHE/$version.lock"
  if ! flock -n 9; then
    echo "QGIS $version: waiting for another set-up or run of this chroot..." >&2
    flock 9
  fi
  "$@"
}

[ $# -ge 1 ] || die "usage: $0 setup VERSION | run VERSION CMD... | versions"
command=$1; shift
case $command in
  versions) versions ;;
  setup)
    [ $# -eq 1 ] || die "usage: $0 setup VERSION"
    [ "$(id -u)" -eq 0 ] || die "chroots need root (debootstrap, chroot, mounts); run as root or with sudo"
    locked "$1" setup "$1" ;;
  run)
    [ $# -ge 2 ] || die "usage: $0 run VERSION CMD..."
    [ "$(id -u)" -eq 0 ] || die "chroots need root (chroot, mounts); run as root or with sudo"
    version=$1; shift
    recipe "$version"
    [ -f "$CACHE/$version/ready" ] || die "no chroot for QGIS $version yet: run $0 setup $version"
    locked "$version" enter "$version" "$@" ;;
  __inside) inside "$@" ;;
  *) die "unknown command $command" ;;
esac
