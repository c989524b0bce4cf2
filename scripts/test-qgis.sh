#!/usr/bin/env bash
# The QGIS suite (tests/qgis) against each QGIS version given, then a summary; fails if any fails.
#   scripts/test-qgis.sh 3.22 3.40 3.44
# A version that is the host's own QGIS runs there (QGIS_PY, engine ENGINE_PY); any other runs in
# its Debian chroot (scripts/qgis-chroot.sh, created or completed first), with the engine venv
# made inside that chroot. Every version runs even when an earlier one failed, so one run shows
# the whole matrix. Extra pytest arguments: PYTEST_ARGS="-k batch".
set -uo pipefail
cd "$(dirname "$0")/.."
QGIS_PY=${QGIS_PY:-/usr/bin/python3}
ENGINE_PY=${ENGINE_PY:-.venv/bin/python}
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo -E"; fi  # chroots need root; -E keeps PIX2PIX_* settings
[ $# -ge 1 ] || { echo "usage: $0 VERSION..." >&2; exit 2; }

host=$("$QGIS_PY" -c "from qgis.core import Qgis; print('.'.join(Qgis.QGIS_VERSION.split('.')[:2]))" 2>/dev/null)
summary=()
failed=0

TIMES=$(mktemp)
trap 'rm -f "$TIMES"' EXIT
cpu_seconds() {  # CPU_SECONDS = user + system seconds of this script's finished children so far
  # `times` must run in this shell: in a pipe or $(…) it would run in a subshell, which has no children
  times >"$TIMES"
  CPU_SECONDS=$(awk 'NR == 2 { split($1, u, /[ms]/); split($2, s, /[ms]/)
    printf "%d", u[1] * 60 + u[2] + s[1] * 60 + s[2] }' "$TIMES")
}

suite() {  # VERSION: run pytest for one version, where that version lives
  local version=$1
  # shellcheck disable=SC2086
  if [ "$version" = "$host" ]; then
    PIX2PIX_PYTHON="$PWD/$ENGINE_PY" PIX2PIX_EXPECT_QGIS="$version" \
      "$QGIS_PY" -m pytest -p no:cacheprovider ${PYTEST_ARGS:-} tests/qgis
  else
    # The chroot shares the host's network, so its Xvfb must not take a display number
    # (an abstract socket) that a host Xvfb may hold: each version gets its own range.
    $SUDO scripts/qgis-chroot.sh run "$version" env PIX2PIX_PYTHON=/opt/pix2pix/engine/bin/python \
      PIX2PIX_EXPECT_QGIS="$version" PIX2PIX_XVFB_SERVERNUM="${version//./}" \
      python3 -m pytest -p no:cacheprovider ${PYTEST_ARGS:-} tests/qgis
  fi
}

for version in "$@"; do
  echo
  echo "=== QGIS $version ($( [ "$version" = "$host" ] && echo "host" || echo "chroot"))"
  started=$SECONDS
  prepare=0
  if [ "$version" != "$host" ]; then
    if ! $SUDO scripts/qgis-chroot.sh setup "$version"; then
      summary+=("QGIS $version: set-up FAILED after $((SECONDS - started)) s")
      failed=1
      continue
    fi
    prepare=$((SECONDS - started))
  fi
  started=$SECONDS
  cpu_seconds
  cpu=$CPU_SECONDS
  suite "$version"
  status=$?
  took=$((SECONDS - started))
  cpu_seconds
  cpu=$((CPU_SECONDS - cpu))
  case $status in
    0) result="passed" ;;
    5) result="FAILED: no tests were collected" ;;  # pytest's 5 would otherwise read as a quiet success
    *) result="FAILED (pytest exit $status)" ;;
  esac
  [ "$status" -eq 0 ] || failed=1
  # CPU time beside wall time: on a shared machine the wall time says more about the neighbours
  summary+=("QGIS $version: $result, suite $((took / 60)) min $((took % 60)) s (CPU $((cpu / 60)) min)$(
    [ "$prepare" -gt 0 ] && echo ", set-up $prepare s")")
done

echo
echo "=== QGIS version matrix"
printf '%s\n' "${summary[@]}"
exit $failed
