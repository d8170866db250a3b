#!/usr/bin/env bash
# Install fer-edge as a systemd service on Raspberry Pi OS (bookworm, 64-bit) or Jetson (JetPack 6).
#
#   sudo deploy/install.sh                  # install from this checkout, enable and start the unit
#   deploy/install.sh --prefix /tmp/root    # dry run into a tree, no root needed (used by the tests)
#
# What it does (paths shown for a real install; with --prefix DIR they are under DIR):
#   1. OS packages (apt): python3-venv; on a Pi python3-picamera2 (libcamera is not on PyPI).
#   2. A system user `fer-edge` (no login, home /var/lib/fer-edge) in the camera groups.
#   3. A virtual environment /opt/fer-edge/venv with this package installed (pip; pip, setuptools and
#      wheel are brought up to date in it first when the interpreter's cannot build a wheel).
#   4. The pinned third-party models (deploy/fetch_models.py) into /var/lib/fer-edge/models.
#   5. /etc/fer-edge/config.yaml from config.yaml (never overwrites an existing one; validated),
#      /etc/fer-edge/credentials/<NAME> for secrets (root only, loaded by systemd's LoadCredential=).
#   6. /etc/systemd/system/fer-edge.service; daemon-reload, enable, (re)start.
# Board specifics and troubleshooting: docs/deploy.md.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: install.sh [options]
  --prefix DIR      dry run: install into DIR as if it were /, skip apt/useradd/chown/systemctl
                    (prints them instead) and write a unit whose paths point into DIR; no root needed
  --board B         pi | jetson | generic (default: detected from the device tree)
  --python PY       Python interpreter for the venv (default: python3); the venv sees PY's packages
  --skip-models     do not fetch the third-party models (the Haar detector still works)
  --no-start        install and enable the unit but do not (re)start it
  --pip-args ARGS   extra pip arguments (default with --prefix: "--no-deps --no-build-isolation",
                    which installs offline against the system's packages)
  -h, --help        this text
EOF
}

PREFIX=""
BOARD=""
PYTHON="python3"
SKIP_MODELS=0
NO_START=0
PIP_ARGS=""
PIP_ARGS_SET=0
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) PREFIX="${2:?--prefix needs a directory}"; shift 2 ;;
        --prefix=*) PREFIX="${1#*=}"; shift ;;
        --board) BOARD="${2:?--board needs pi, jetson or generic}"; shift 2 ;;
        --python) PYTHON="${2:?--python needs an interpreter}"; shift 2 ;;
        --skip-models) SKIP_MODELS=1; shift ;;
        --no-start) NO_START=1; shift ;;
        --pip-args) PIP_ARGS="${2-}"; PIP_ARGS_SET=1; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DRY=0
if [ -n "$PREFIX" ]; then
    DRY=1
    mkdir -p "$PREFIX"
    PREFIX="$(cd "$PREFIX" && pwd)"
    [ "$PIP_ARGS_SET" = 1 ] || PIP_ARGS="--no-deps --no-build-isolation"
elif [ "$(id -u)" -ne 0 ]; then
    echo "install.sh: run as root (sudo), or use --prefix DIR for a dry run" >&2
    exit 2
fi

OPT="$PREFIX/opt/fer-edge"
VENV="$OPT/venv"
ETC="$PREFIX/etc/fer-edge"
STATE="$PREFIX/var/lib/fer-edge"
UNIT_DIR="$PREFIX/etc/systemd/system"
USER_NAME="fer-edge"

say() { printf '==> %s\n' "$*"; }
# Commands that need root and a real system: run them, or in a dry run print them.
sys() {
    if [ "$DRY" = 1 ]; then printf 'would run: %s\n' "$*"; else "$@"; fi
}

detect_board() {
    local model=""
    [ -r /proc/device-tree/model ] && model="$(tr -d '\0' </proc/device-tree/model)"
    if [[ "$model" == *"Raspberry Pi"* ]]; then echo pi
    elif [ -e /etc/nv_tegra_release ] || [[ "$model" == *"Jetson"* ]]; then echo jetson
    else echo generic
    fi
}
[ -n "$BOARD" ] || BOARD="$(detect_board)"
case "$BOARD" in pi|jetson|generic) ;; *) echo "install.sh: unknown board '$BOARD'" >&2; exit 2 ;; esac
say "board: $BOARD; source: $SRC; target: ${PREFIX:-/}"

# 1. OS packages --------------------------------------------------------------------------------
case "$BOARD" in
    # picamera2/libcamera come only from Raspberry Pi OS's apt repository; the venv sees them
    # through --system-site-packages.
    pi) sys apt-get install -y --no-install-recommends python3-venv python3-pip python3-picamera2 ;;
    # JetPack 6 is Ubuntu 22.04 (Python 3.10); USB cameras are V4L2, CSI cameras go through GStreamer.
    jetson) sys apt-get install -y --no-install-recommends python3-venv python3-pip v4l-utils ;;
    generic) sys apt-get install -y --no-install-recommends python3-venv python3-pip ;;
esac

# 2. User -----------------------------------------------------------------------------------------
if [ "$DRY" = 1 ] || ! id "$USER_NAME" >/dev/null 2>&1; then
    sys useradd --system --home-dir /var/lib/fer-edge --no-create-home --shell /usr/sbin/nologin "$USER_NAME"
fi
for group in video render gpio; do      # camera nodes, DMA heaps / GPU, Pi GPIO: whichever exist
    if getent group "$group" >/dev/null 2>&1; then sys usermod -aG "$group" "$USER_NAME"; fi
done

# 3. Virtual environment -------------------------------------------------------------------------
say "virtual environment $VENV"
mkdir -p "$OPT" "$ETC" "$STATE/models" "$UNIT_DIR"
# The venv sees what $PYTHON sees: picamera2 on a Pi, and the OS's own numpy/OpenCV builds where
# present (--system-site-packages). When $PYTHON is itself in a virtual environment (a developer's,
# or the tests'), `venv --system-site-packages` would skip that environment and see only the base
# interpreter's packages; its site directories are added by a .pth file instead (with addsitedir,
# so that their own .pth files count, as they do for system site-packages).
if ! PARENT_SITE="$("$PYTHON" -c 'import site, sys
if sys.prefix != sys.base_prefix:
    print("\n".join(f"import site; site.addsitedir({d!r})" for d in site.getsitepackages()))' 2>&1)"; then
    echo "install.sh: $PYTHON does not run ($PARENT_SITE); pass a working interpreter with --python" >&2
    exit 2
fi
if [ -n "$PARENT_SITE" ]; then
    "$PYTHON" -m venv "$VENV"
    printf '%s\n' "$PARENT_SITE" >"$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/_fer_edge_parent_env.pth"
else
    "$PYTHON" -m venv --system-site-packages "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check --no-input)
# A stock Python's venv cannot build this package without build isolation: Python 3.11's ensurepip
# brings setuptools 65.5, JetPack 6 (Python 3.10) 59.6, Python 3.12+ none, and none of them `wheel`
# ("invalid command 'bdist_wheel'"). setuptools 70.1+ builds wheels by itself; older ones need `wheel`.
if ! "$VENV/bin/python" - 2>/dev/null <<'PY'
import importlib.util, sys
import setuptools
major, minor = (int(x) for x in setuptools.__version__.split(".")[:2])
sys.exit(0 if (major, minor) >= (70, 1) or importlib.util.find_spec("wheel") else 1)
PY
then
    say "build tools: upgrading pip, setuptools and wheel in the venv (the interpreter's are too old to build)"
    if ! "${PIP[@]}" install --quiet --upgrade pip setuptools wheel; then
        echo "install.sh: cannot fetch setuptools and wheel into $VENV (offline?); connect to the package index, or install the OS's python3-setuptools and python3-wheel, then run install.sh again" >&2
        exit 1
    fi
fi
CONSTRAINTS=()
if [ "$BOARD" = pi ]; then
    # Raspberry Pi OS's picamera2/simplejpeg are built against its numpy 1.x; a numpy 2 wheel
    # in the venv would shadow it and break `import picamera2`.
    echo "numpy<2" >"$OPT/constraints.txt"
    CONSTRAINTS=(-c "$OPT/constraints.txt")
fi
# Build from a clean copy: pip builds in the source tree, and a stale build/ there could slip
# modules deleted since into the install.
BUILD="$(mktemp -d)"
trap 'rm -rf "$BUILD"' EXIT
tar -C "$SRC" --exclude=./.git --exclude=./build --exclude='*.egg-info' --exclude=./models/runs \
    --exclude='__pycache__' --exclude=./.venv --exclude=./.hypothesis --exclude=./.pytest_cache \
    -cf - . | tar -C "$BUILD" -xf -
# shellcheck disable=SC2086  # PIP_ARGS is a list of words on purpose
"${PIP[@]}" install --quiet ${PIP_ARGS} "${CONSTRAINTS[@]}" "$BUILD"
if [ ! -x "$VENV/bin/fer-edge" ]; then
    echo "install.sh: $VENV/bin/fer-edge was not installed" >&2
    exit 1
fi
mkdir -p "$OPT/docs"
cp "$SRC"/docs/*.md "$OPT/docs/" 2>/dev/null || true

# 4. Third-party models ---------------------------------------------------------------------------
if [ "$SKIP_MODELS" = 1 ]; then
    say "models: skipped (--skip-models); fetch later with: sudo -u $USER_NAME $VENV/bin/python $SRC/deploy/fetch_models.py /var/lib/fer-edge/models"
elif [ -f "$SRC/deploy/fetch_models.py" ]; then
    say "models -> $STATE/models"
    "$VENV/bin/python" "$SRC/deploy/fetch_models.py" "$STATE/models"
else
    echo "install.sh: deploy/fetch_models.py missing; models not fetched" >&2
    exit 1
fi

# 5. Config and secrets ---------------------------------------------------------------------------
if [ -f "$ETC/config.yaml" ]; then
    say "config: keeping existing $ETC/config.yaml"
else
    say "config: $ETC/config.yaml (from config.yaml)"
    install -m 0640 "$SRC/config.yaml" "$ETC/config.yaml"
fi
# Secrets: one file per secret in $ETC/credentials (root only), handed to the service by systemd's
# LoadCredential= (never an environment file). An empty file means "not set". Values from an
# /etc/fer-edge/env of an earlier install are moved over once.
install -d -m 0700 "$ETC/credentials"
for name in FER_EDGE_MQTT_PASSWORD FER_EDGE_CONFIG_SECRET; do
    cred="$ETC/credentials/$name"
    if [ ! -s "$cred" ]; then
        value=""
        if [ -f "$ETC/env" ]; then
            value=$(sed -n "s/^[[:space:]]*$name=//p" "$ETC/env" | tail -n 1)
            value=${value%\"}; value=${value#\"}
        fi
        ( umask 077; printf '%s' "$value" >"$cred" )
        if [ -n "$value" ]; then say "secrets: $name moved from $ETC/env to $cred (the unit no longer reads $ETC/env)"; fi
    fi
done
"$VENV/bin/fer-edge" config validate "$ETC/config.yaml"
# The service writes only its state directory (queue, models, remote config, serials). /etc/fer-edge
# stays root's: the service may read config.yaml but not replace it, nor read the root-only credentials.
sys chown -R "$USER_NAME:$USER_NAME" /var/lib/fer-edge
sys chown root:"$USER_NAME" /etc/fer-edge /etc/fer-edge/config.yaml
sys chown -R root:root /etc/fer-edge/credentials
sys chmod 0750 /etc/fer-edge /var/lib/fer-edge
sys chmod 0640 /etc/fer-edge/config.yaml

# 6. systemd unit ---------------------------------------------------------------------------------
say "unit: $UNIT_DIR/fer-edge.service"
if [ "$DRY" = 1 ]; then
    # Point the dry-run unit into the tree, so `systemd-analyze verify` can check it there.
    sed -e "s#/opt/fer-edge#$OPT#g" -e "s#/etc/fer-edge#$ETC#g" -e "s#/var/lib/fer-edge#$STATE#g" \
        "$SRC/systemd/fer-edge.service" >"$UNIT_DIR/fer-edge.service"
    chmod 0644 "$UNIT_DIR/fer-edge.service"
else
    install -m 0644 "$SRC/systemd/fer-edge.service" "$UNIT_DIR/fer-edge.service"
fi
sys systemctl daemon-reload
sys systemctl enable fer-edge.service
if [ "$NO_START" = 0 ]; then
    sys systemctl restart fer-edge.service
fi
say "done. Logs: journalctl -u fer-edge -f    Status: systemctl status fer-edge"
