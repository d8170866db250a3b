#!/usr/bin/env bash
# Prove fer-edge on arm64, the architecture of every board it targets, on an x86 host.
#
#   sudo nice -n 15 deploy/check_arm64.sh              # build (or reuse) the root, install, run, compare
#   sudo deploy/check_arm64.sh --root-only             # only build the cached arm64 root
#
# What it does (slow: everything inside the root runs under qemu user emulation; keep it out of CI):
#   1. binfmt_misc mounted and qemu-aarch64 enabled (Debian's qemu-user-static and binfmt-support).
#   2. A Debian bookworm arm64 root (the base of Raspberry Pi OS) by debootstrap, cached in
#      $FER_EDGE_ARM64_CACHE (default /var/cache/fer-edge-arm64) and reused by later runs.
#   3. The host's CA bundle and resolv.conf copied in (pip inside the root reaches PyPI).
#   4. fer-edge installed the way docs/deploy.md says: deploy/install.sh (apt, user, venv, pip from
#      PyPI, fetch_models.py, config, unit), from a fresh copy of this checkout; timed.
#   5. `fer-edge run --demo` and the two-camera example (docs/examples/two_cameras.yaml: the demo and
#      the shared clip) inside the root and the same runs on the host (from the same copy of the code,
#      with the same detector files); deploy/compare_runs.py compares their events (same types,
#      cameras, tracks and labels in the same order; boxes and scores within int8 tolerance).
#      The two-camera example runs twice: with the clip's frames as PNG files, decoded once on the
#      host (`two_cameras`: both machines read the same pixels, so any difference is fer-edge's),
#      and with the .mp4 itself (`two_cameras_mp4`: reported, not judged; the arm64 OpenCV wheel's
#      video decoder gives pixels up to 2 levels away from the x86 wheel's, see docs/deploy.md).
# Exit code: 0 same events, 1 different or a step failed, 2 usage / missing host tools.
# Host needs: debootstrap qemu-user-static binfmt-support (apt) and fer-edge runnable on the host
# (HOST_PYTHON, default: python3, with PYTHONPATH set to this checkout).
set -euo pipefail

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${FER_EDGE_ARM64_CACHE:-/var/cache/fer-edge-arm64}"
ROOT="$CACHE/bookworm-arm64"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
HOST_PYTHON="${HOST_PYTHON:-python3}"
SHARED_VIDEO="$SRC/../shared/data/video/single_face.mp4"
ROOT_ONLY=0
case "${1-}" in
    --root-only) ROOT_ONLY=1 ;;
    "") ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "check_arm64.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
esac

say() { printf '==> %s\n' "$*"; }
die() { echo "check_arm64.sh: $*" >&2; exit "${2:-1}"; }
[ "$(id -u)" -eq 0 ] || die "run as root (debootstrap, chroot and binfmt_misc need it)" 2
for tool in debootstrap qemu-aarch64-static update-binfmts chroot; do
    command -v "$tool" >/dev/null || die "$tool missing: apt-get install debootstrap qemu-user-static binfmt-support" 2
done

# 1. binfmt_misc -------------------------------------------------------------------------------------
mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
update-binfmts --enable qemu-aarch64 2>/dev/null || true
grep -qx enabled /proc/sys/fs/binfmt_misc/qemu-aarch64 2>/dev/null \
    || die "qemu-aarch64 is not enabled in binfmt_misc (update-binfmts --display qemu-aarch64)"
say "host: $(uname -m), $(nproc) cores; binfmt qemu-aarch64 enabled"

# 2. The arm64 root (cached) -------------------------------------------------------------------------
mkdir -p "$CACHE"
if [ -f "$ROOT/.fer-edge-root-complete" ]; then
    say "arm64 root: reusing $ROOT"
else
    rm -rf "$ROOT"
    say "arm64 root: debootstrap --arch=arm64 bookworm into $ROOT (emulated second stage; many minutes)"
    start=$SECONDS
    # systemd: deploy/install.sh enables the unit with systemctl (offline inside a chroot), as on Pi OS.
    debootstrap --arch=arm64 --variant=minbase --include=ca-certificates,systemd,python3 \
        bookworm "$ROOT" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 \
        || die "debootstrap failed; its log: $CACHE/debootstrap.log (last lines: $(tail -3 "$CACHE/debootstrap.log" | tr '\n' ' '))"
    touch "$ROOT/.fer-edge-root-complete"
    say "arm64 root: built in $((SECONDS - start)) s"
fi
[ "$(chroot "$ROOT" uname -m)" = aarch64 ] || die "the root does not run as aarch64"
[ "$ROOT_ONLY" = 1 ] && { say "root only: done"; exit 0; }

# 3. Network for apt and pip inside the root ---------------------------------------------------------
install -m 0644 /etc/ssl/certs/ca-certificates.crt "$ROOT/etc/ssl/certs/ca-certificates.crt"
cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf"
MOUNTS=()
cleanup() {
    local i
    for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do umount -l "${MOUNTS[$i]}" 2>/dev/null || true; done
}
trap cleanup EXIT
# No /sys: under qemu-user the host's x86 /sys makes cpuinfo (inside LiteRT's XNNPACK) crash the
# arm64 interpreter with SIGSEGV; without it cpuinfo falls back to /proc and the defaults.
for fs in proc dev dev/pts; do
    mkdir -p "$ROOT/$fs"
    mount --bind "/$fs" "$ROOT/$fs"
    MOUNTS+=("$ROOT/$fs")
done

# 4. Install as docs/deploy.md says ------------------------------------------------------------------
say "copying this checkout to $ROOT/work/fer-edge (and the shared clip to $ROOT/work/shared/data/video)"
rm -rf "$ROOT/work/fer-edge"
mkdir -p "$ROOT/work/fer-edge" "$ROOT/work/shared/data/video"
tar -C "$SRC" --exclude=./.git --exclude=./build --exclude='*.egg-info' --exclude=./models/runs \
    --exclude='__pycache__' --exclude=./.venv --exclude=./.hypothesis --exclude=./.pytest_cache \
    -cf - . | tar -C "$ROOT/work/fer-edge" -xf -
[ -f "$SHARED_VIDEO" ] || die "$SHARED_VIDEO missing: the two-camera run needs the shared clip beside the checkout"
install -m 0644 "$SHARED_VIDEO" "$ROOT/work/shared/data/video/single_face.mp4"
# The clip's frames, decoded once on the host, and the two-camera example reading them (a folder at
# the clip's frame rate) instead of the .mp4: both machines then read the very same pixels.
FRAMES_CONFIG=/work/two_cameras_frames.yaml
"$HOST_PYTHON" - "$ROOT/work/shared/data/video" "$SRC/docs/examples/two_cameras.yaml" "$ROOT$FRAMES_CONFIG" <<'PY' \
    || die "cannot write the clip's frames with $HOST_PYTHON (it needs OpenCV and PyYAML)"
import sys
from pathlib import Path

import cv2
import yaml

video_dir, example, out = (Path(a) for a in sys.argv[1:])
frames = video_dir / "single_face_frames"
frames.mkdir(exist_ok=True)
cap = cv2.VideoCapture(str(video_dir / "single_face.mp4"))
fps, n = cap.get(cv2.CAP_PROP_FPS), 0
while True:
    ok, image = cap.read()
    if not ok:
        break
    cv2.imwrite(str(frames / f"frame_{n:05d}.png"), image)
    n += 1
cfg = yaml.safe_load(example.read_text())
for cam in cfg["cameras"]:
    if str(cam["uri"]).endswith("single_face.mp4"):
        cam.update(uri="../shared/data/video/single_face_frames", kind="folder", fps=fps)
        cam.pop("pace", None)
out.write_text(yaml.safe_dump(cfg, sort_keys=False))
print(f"    the clip's frames: {n} PNG files at {fps:g} fps (decoded on the host)")
PY
# No systemd runs inside the root (it is a chroot, not a booted board): install.sh's `systemctl enable`
# is done offline (--root=/), daemon-reload and restart are skipped, and say so.
mkdir -p "$ROOT/work/shim"
cat >"$ROOT/work/shim/systemctl" <<'SHIM'
#!/bin/sh
case "$1" in
    enable) exec /usr/bin/systemctl --root=/ "$@" ;;
    *) echo "check_arm64: systemctl $* skipped (no systemd runs in the emulated root)"; exit 0 ;;
esac
SHIM
chmod 0755 "$ROOT/work/shim/systemctl"
in_root() { chroot "$ROOT" /usr/bin/env -i PATH=/work/shim:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"; }
say "apt-get update inside the root"
in_root apt-get update -qq >/dev/null
# A fresh install every run (the root is cached, the install is what is measured): no venv, config,
# state or pip cache from a previous run.
rm -rf "$ROOT/opt/fer-edge" "$ROOT/etc/fer-edge" "$ROOT/var/lib/fer-edge" "$ROOT/root/.cache/pip"
say "install: deploy/install.sh --board generic --no-start (inside the root, emulated)"
start=$SECONDS
in_root bash -c 'cd /work/fer-edge && deploy/install.sh --board generic --no-start' >"$CACHE/install.log" 2>&1 \
    || die "install.sh failed inside the root; its output: $CACHE/install.log (last lines: $(tail -3 "$CACHE/install.log" | tr '\n' ' '))"
grep -E '^(==>|/|check_arm64)' "$CACHE/install.log" | sed 's/^/    /'     # its steps; apt's chatter stays in the log
INSTALL_S=$((SECONDS - start))
say "install: $INSTALL_S s (emulated arm64)"
in_root /opt/fer-edge/venv/bin/python -c 'import platform, edge; print("    installed fer-edge", edge.__version__, "on", platform.machine(), "Python", platform.python_version())'

# 5. The same runs on arm64 and on the host, compared ------------------------------------------------
OUT="$CACHE/runs"
rm -rf "$OUT" && mkdir -p "$OUT"
run_arm64() {    # NAME ARGS...: `fer-edge run ARGS` inside the root, events to $OUT/arm64-NAME.jsonl
    local name="$1"; shift
    local start=$SECONDS
    in_root bash -c 'cd /work/fer-edge && STATE_DIRECTORY=/tmp/fer-edge-state-'"$name"' /opt/fer-edge/venv/bin/fer-edge run "$@"' _ "$@" \
        >"$OUT/arm64-$name.jsonl" 2>"$OUT/arm64-$name.log" || die "arm64 run $name failed: $(tail -3 "$OUT/arm64-$name.log")"
    say "arm64 $name: $(grep -c '^{' "$OUT/arm64-$name.jsonl") events in $((SECONDS - start)) s (emulated)"
}
run_host() {     # NAME ARGS...: the same on the host, from the very copy installed in the root
    local name="$1"; shift
    local state; state="$(mktemp -d)"
    local tree="$ROOT/work/fer-edge"
    (cd "$tree" && STATE_DIRECTORY="$state" PYTHONPATH="$tree" FER_EDGE_MODELS="$ROOT/var/lib/fer-edge/models" \
        "$HOST_PYTHON" -m edge.cli run "$@") >"$OUT/host-$name.jsonl" 2>"$OUT/host-$name.log" \
        || die "host run $name failed: $(tail -3 "$OUT/host-$name.log")"
    rm -rf "$state"
    say "host  $name: $(grep -c '^{' "$OUT/host-$name.jsonl") events"
}
# The installed config (/etc/fer-edge/config.yaml is config.yaml): events on stdout (no mqtt.host).
run_arm64 demo --demo --config /etc/fer-edge/config.yaml
run_host demo --demo --config config.yaml
run_arm64 two_cameras --config "$FRAMES_CONFIG"
run_host two_cameras --config "$ROOT$FRAMES_CONFIG"
run_arm64 two_cameras_mp4 --config docs/examples/two_cameras.yaml
run_host two_cameras_mp4 --config docs/examples/two_cameras.yaml
status=0
for name in demo two_cameras; do
    "$HOST_PYTHON" "$SRC/deploy/compare_runs.py" "$OUT/host-$name.jsonl" "$OUT/arm64-$name.jsonl" \
        --label "$name" || status=1
done
say "two_cameras_mp4 (reported, not judged: each machine's OpenCV decodes the .mp4 itself)"
"$HOST_PYTHON" "$SRC/deploy/compare_runs.py" "$OUT/host-two_cameras_mp4.jsonl" "$OUT/arm64-two_cameras_mp4.jsonl" \
    --label two_cameras_mp4 || true
say "install $INSTALL_S s; events: $([ $status = 0 ] && echo 'arm64 equal to the host' || echo 'DIFFERENT'); runs kept in $OUT"
exit $status
