#!/bin/sh
# LocDiff Studio's installer for Linux and macOS: a private virtual environment with the app
# from the package registry (or a wheel), and its entry in the desktop's applications menu.
#
#   sh install.sh                     install, or upgrade in place
#   sh install.sh --wheel FILE.whl    install that wheel (its dependencies from the registry)
#   sh install.sh --uninstall         remove the menu entry and the environment, keep user data
#   sh install.sh --help              every option
#
# Needs only Python 3.11 or newer with its venv module; never sudo. Everything it writes is in
# the environment's folder and, through `locdiff-app --install-desktop`, the user's own
# desktop folders.
set -eu

PROG=install.sh
APP="LocDiff Studio"
MIN_MAJOR=3
MIN_MINOR=11

usage() {
    cat <<EOF
usage: $PROG [options]

Installs $APP into a private Python virtual environment and adds it to the
desktop's applications menu. Run it again to upgrade in place.

options:
  --python PATH      the Python to build the environment with (3.$MIN_MINOR or newer);
                     default: the newest python3.N (N >= $MIN_MINOR) or python3 on PATH
  --prefix DIR       the environment's folder; default:
                       Linux: \${XDG_DATA_HOME:-\$HOME/.local/share}/LocDiff Studio/venv
                       macOS: ~/Library/Application Support/LocDiff Studio/venv
  --wheel FILE.whl   install this wheel instead of 'locdiff' from the registry
  --pip-args "ARGS"  options for every 'pip install' this runs, split at spaces
                     (an index, a constraints file), e.g. the CPU-only PyTorch:
                     --pip-args "--extra-index-url https://download.pytorch.org/whl/cpu"
  --no-desktop       do not add the applications-menu entry
  --uninstall        remove the menu entry, then the environment; settings, models,
                     sessions and caches are kept (and listed)
  --purge            with --uninstall: remove those too
  -h, --help         show this help and exit

Environment: the usual PIP_* variables and pip configuration files apply.
EOF
}

say() { printf '%s: %s\n' "$PROG" "$*"; }
warn() { printf '%s: warning: %s\n' "$PROG" "$*" >&2; }
# "$1" in single quotes for a command line the user may copy.
quote() {
    printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"
}

die() {
    printf '%s: error: %s\n' "$PROG" "$1" >&2
    shift
    for line in "$@"; do printf '  %s\n' "$line" >&2; done
    exit 1
}

# --- options ---------------------------------------------------------------------------------
PYTHON=""
PREFIX=""
WHEEL=""
PIP_ARGS=""
ACTION=install
PURGE=0
DESKTOP=1

need_value() {
    [ "$2" -ge 2 ] || die "$1 needs a value (see $PROG --help)"
}

while [ $# -gt 0 ]; do
    case "$1" in
        -h | --help) usage; exit 0 ;;
        --python) need_value "$1" $#; PYTHON=$2; shift 2 ;;
        --python=*) PYTHON=${1#*=}; shift ;;
        --prefix) need_value "$1" $#; PREFIX=$2; shift 2 ;;
        --prefix=*) PREFIX=${1#*=}; shift ;;
        --wheel) need_value "$1" $#; WHEEL=$2; shift 2 ;;
        --wheel=*) WHEEL=${1#*=}; shift ;;
        --pip-args) need_value "$1" $#; PIP_ARGS=$2; shift 2 ;;
        --pip-args=*) PIP_ARGS=${1#*=}; shift ;;
        --no-desktop) DESKTOP=0; shift ;;
        --uninstall) ACTION=uninstall; shift ;;
        --purge) PURGE=1; shift ;;
        *) die "unknown option '$1' (see $PROG --help)" ;;
    esac
done

if [ "$PURGE" = 1 ] && [ "$ACTION" != uninstall ]; then
    die "--purge only goes with --uninstall"
fi
if [ "$ACTION" = uninstall ] && [ -n "$WHEEL" ]; then
    die "--wheel does not go with --uninstall"
fi
[ -n "${HOME:-}" ] || die "HOME is not set: the per-user folders are found from it"
if [ -n "${SUDO_USER:-}" ] && [ "$(id -u)" = 0 ]; then
    warn "running under sudo: this installs for root only; run it as $SUDO_USER instead"
fi

# --- where -----------------------------------------------------------------------------------
default_prefix() {
    if [ "$(uname -s)" = Darwin ]; then
        printf '%s\n' "$HOME/Library/Application Support/LocDiff Studio/venv"
        return
    fi
    data_home=${XDG_DATA_HOME:-}
    case "$data_home" in
        /*) ;;
        *) data_home="$HOME/.local/share" ;;  # the XDG spec: a relative value is ignored
    esac
    printf '%s\n' "$data_home/LocDiff Studio/venv"
}

PREFIX_OPTION=""  # for the closing instructions
if [ -z "$PREFIX" ]; then
    PREFIX=$(default_prefix)
else
    case "$PREFIX" in
        /*) ;;
        *) PREFIX="$(pwd)/$PREFIX" ;;
    esac
    PREFIX=${PREFIX%/}
    [ -n "$PREFIX" ] || die "--prefix / is not a folder for an environment"
    PREFIX_OPTION=" --prefix $(quote "$PREFIX")"
fi
BIN="$PREFIX/bin"
APP_EXE="$BIN/locdiff-app"

# This script's own path for the closing instructions ("sh install.sh" when piped into sh).
case "$0" in
    */install.sh | install.sh) SELF=$(quote "$0") ;;
    *) SELF=install.sh ;;
esac

is_venv() { [ -f "$1/pyvenv.cfg" ]; }

# An environment this installer may remove: a venv with LocDiff Studio's launcher in it.
is_our_venv() { is_venv "$1" && [ -e "$1/bin/locdiff-app" ]; }

# --- Python ----------------------------------------------------------------------------------
VERSION_CHECK="import sys; print('%d.%d.%d' % sys.version_info[:3]); \
sys.exit(0 if sys.version_info >= ($MIN_MAJOR, $MIN_MINOR) else 3)"

# Prints the version of the Python "$1"; exit status 0 when new enough, 3 when too old, other
# when it is not a working Python.
python_version() {
    "$1" -c "$VERSION_CHECK" 2>/dev/null
}

if [ "$(uname -s)" = Darwin ]; then
    GET_PYTHON="install Python 3.$MIN_MINOR or newer from python.org (or: brew install python@3.12),"
else
    GET_PYTHON="install Python 3.$MIN_MINOR or newer from your distribution (e.g. python3.12),"
fi
GET_PYTHON_THEN="then run this again, or name it with --python PATH"

find_python() {
    if [ -n "$PYTHON" ]; then
        if ! command -v "$PYTHON" >/dev/null 2>&1; then
            die "--python $PYTHON: no such program" "$GET_PYTHON" "$GET_PYTHON_THEN"
        fi
        status=0
        found=$(python_version "$PYTHON") || status=$?
        case "$status" in
            0) printf '%s\n' "$(command -v "$PYTHON")"; return ;;
            3) die "--python $PYTHON is Python $found; $APP needs 3.$MIN_MINOR or newer" \
                   "$GET_PYTHON" "$GET_PYTHON_THEN" ;;
            *) die "--python $PYTHON does not run as a Python interpreter" "$GET_PYTHON" "$GET_PYTHON_THEN" ;;
        esac
    fi
    seen=""
    for name in python3.14 python3.13 python3.12 python3.11 python3 python; do
        path=$(command -v "$name" 2>/dev/null) || continue
        status=0
        found=$(python_version "$path") || status=$?
        if [ "$status" = 0 ]; then
            printf '%s\n' "$path"
            return
        fi
        [ "$status" = 3 ] && seen="$seen $path ($found)"
    done
    if [ -n "$seen" ]; then
        die "no Python 3.$MIN_MINOR or newer on PATH; found only:$seen" "$GET_PYTHON" "$GET_PYTHON_THEN"
    fi
    die "no Python 3 on PATH" "$GET_PYTHON" "$GET_PYTHON_THEN"
}

check_venv_module() {
    if "$1" -c "import venv, ensurepip" >/dev/null 2>&1; then
        return
    fi
    minor=$("$1" -c "import sys; print('%d.%d' % sys.version_info[:2])")
    die "$1 has no working venv module (venv and ensurepip), which this installer needs" \
        "on Debian and Ubuntu it is the package python$minor-venv (or python3-venv):" \
        "  sudo apt install python$minor-venv" \
        "elsewhere install Python from python.org, which includes it"
}

# --- pip -------------------------------------------------------------------------------------
# pip inside the environment, with --pip-args split at spaces and never globbed.
venv_pip() {
    set -f
    # shellcheck disable=SC2086  # PIP_ARGS is a list of options, split on purpose
    "$PREFIX/bin/python" -m pip "$@" $PIP_ARGS
    status=$?
    set +f
    return "$status"
}

pip_failed() {
    die "pip could not install $APP (exit status $1); its messages are above" \
        "no network or a proxy: set HTTPS_PROXY, or point --pip-args at a reachable index" \
        "'No matching distribution found for locdiff': this index does not have it; use --wheel" \
        "no disk space: the default PyTorch from PyPI brings its CUDA libraries (several GB);" \
        "  a CPU-only PyTorch is far smaller:" \
        "  --pip-args \"--extra-index-url https://download.pytorch.org/whl/cpu\"" \
        "the environment at $PREFIX is left as it was for another try"
}

# --- install ---------------------------------------------------------------------------------
make_venv() {
    py=$1
    if is_venv "$PREFIX"; then
        if has=$(python_version "$BIN/python"); then
            wanted=$("$py" -c "import sys; print('%d.%d' % sys.version_info[:2])")
            # an explicit --python of another minor version remakes it; otherwise it is kept
            if [ -z "$PYTHON" ] || [ "${has%.*}" = "$wanted" ]; then
                say "upgrading the environment at $PREFIX (Python $has)"
                return
            fi
            say "the environment at $PREFIX has Python $has; remaking it with $py"
        else
            say "the environment at $PREFIX does not run any more; remaking it"
        fi
        is_our_venv "$PREFIX" || die "$PREFIX is a virtual environment without $APP in it;" \
            "choose another --prefix, or remove it yourself"
        rm -rf -- "$PREFIX"
    elif [ -e "$PREFIX" ] && [ -n "$(ls -A -- "$PREFIX" 2>/dev/null)" ]; then
        die "$PREFIX exists and is not a virtual environment; choose another --prefix"
    fi
    check_venv_module "$py"
    say "creating the environment at $PREFIX with $py"
    mkdir -p -- "$(dirname -- "$PREFIX")"
    "$py" -m venv -- "$PREFIX" || die "'$py -m venv $PREFIX' failed (its message is above)" \
        "on Debian and Ubuntu install python3-venv; check that the folder is writable"
}

install_app() {
    say "updating pip"
    venv_pip install --quiet --upgrade pip || warn "pip could not update itself; going on"
    if [ -n "$WHEEL" ]; then
        say "installing $WHEEL and its dependencies"
        venv_pip install --upgrade "$WHEEL" || pip_failed $?
        # the same version again: pip keeps the installed copy unless told to replace it
        venv_pip install --quiet --force-reinstall --no-deps "$WHEEL" || pip_failed $?
    else
        say "installing locdiff and its dependencies from the package registry"
        venv_pip install --upgrade locdiff || pip_failed $?
    fi
    [ -x "$APP_EXE" ] || die "pip finished but $APP_EXE is missing; the package is damaged"
}

install_desktop() {
    if ! "$APP_EXE" --help 2>/dev/null | grep -q -- '--install-desktop'; then
        die "this $APP ($("$APP_EXE" --version 2>&1)) has no --install-desktop option," \
            "so no menu entry was made; it is installed: start it with $APP_EXE" \
            "(or install a newer version; --no-desktop skips this step)"
    fi
    say "adding $APP to the applications menu"
    "$APP_EXE" --install-desktop || die "the menu entry could not be made (see above);" \
        "$APP is installed: start it with $APP_EXE"
}

do_install() {
    if [ -n "$WHEEL" ]; then
        case "$WHEEL" in
            *.whl) ;;
            *) die "--wheel $WHEEL: not a .whl file" ;;
        esac
        [ -f "$WHEEL" ] || die "--wheel $WHEEL: no such file"
        case "$WHEEL" in
            /*) ;;
            *) WHEEL="$(pwd)/$WHEEL" ;;
        esac
    fi
    py=$(find_python)
    make_venv "$py"
    install_app
    if [ "$DESKTOP" = 1 ]; then
        install_desktop
    fi
    version=$("$BIN/python" -c "from locdiff_core import __version__; print(__version__)" \
        2>/dev/null) || version="(unknown version)"
    echo
    say "$APP $version is installed in $PREFIX"
    echo "Start it:"
    if [ "$DESKTOP" = 1 ]; then
        echo "  from the applications menu: $APP"
    fi
    echo "  or: '$APP_EXE' [photos or folders]"
    echo "  the command line (training, selfcheck): '$BIN/locdiff' --help"
    echo "Upgrade: sh $SELF$PREFIX_OPTION  (again)"
    echo "Uninstall: sh $SELF$PREFIX_OPTION --uninstall  (keeps settings, models, sessions)"
}

# --- uninstall -------------------------------------------------------------------------------
# "what<TAB>folder" for each per-user folder of the app's data, as the installed app finds them
# (its LOCDIFF_*_DIR overrides included).
USER_FOLDERS="import sys
from app.model.settings import cache_dir, config_dir, data_dir
from locdiff_core.encoder_weights import default_cache_dir
from locdiff_core.photo.journal import state_dir
for what, path in (('models, sessions, write journal', data_dir()), ('settings', config_dir()),
                   ('map tiles', cache_dir()), ('image-encoder weights', default_cache_dir()),
                   ('undo journal', state_dir())):
    print(what, path, sep=chr(9))"

remove_folder() {
    case "$1" in
        / | "$HOME" | "$HOME/" | "") warn "not removing $1"; return ;;
    esac
    rm -rf -- "$1"
    echo "  removed   $1"
}

do_uninstall() {
    if ! is_venv "$PREFIX"; then
        if [ -e "$PREFIX" ]; then
            die "$PREFIX is not a virtual environment; nothing removed"
        fi
        say "nothing is installed at $PREFIX"
        return
    fi
    is_our_venv "$PREFIX" || die "$PREFIX is a virtual environment without $APP in it;" \
        "nothing removed (is --prefix right?)"
    folders=$("$BIN/python" -c "$USER_FOLDERS" 2>/dev/null) || folders=""
    if "$APP_EXE" --help 2>/dev/null | grep -q -- '--uninstall-desktop'; then
        say "removing the applications-menu entry"
        "$APP_EXE" --uninstall-desktop || die "the menu entry could not be removed (see above);" \
            "the environment is left in place so this can be run again"
    else
        warn "this $APP has no --uninstall-desktop; no menu entry removed"
    fi
    say "removing the environment $PREFIX"
    rm -rf -- "$PREFIX"
    parent=$(dirname -- "$PREFIX")
    if [ "$(basename -- "$parent")" = "LocDiff Studio" ]; then
        rmdir -- "$parent" 2>/dev/null || true  # when the environment was all it held
    fi
    if [ -z "$folders" ]; then
        warn "the installation could not tell where its data is; only the environment was removed"
        return
    fi
    kept=""
    tab=$(printf '\t')
    # the folders may repeat (one override for two caches) or not exist yet
    while IFS=$tab read -r what folder; do
        [ -e "$folder" ] || continue
        if [ "$PURGE" = 1 ]; then
            remove_folder "$folder"
        else
            kept="$kept
  kept      $folder ($what)"
        fi
    done <<EOF
$(printf '%s\n' "$folders" | awk -F '\t' '!seen[$2]++')
EOF
    if [ -n "$kept" ]; then
        say "your data is kept:$kept"
        echo "Delete those folders to remove it as well (--uninstall --purge does that)."
    fi
    say "$APP is uninstalled"
}

if [ "$ACTION" = uninstall ]; then
    do_uninstall
else
    do_install
fi
