#!/bin/sh
# tools/deps.sh -- install the Debian packages spool needs to build and
# test, only those that are missing.  Run as root (or with sudo).
set -eu

missing=""
need() {	# need PACKAGE TEST...: add PACKAGE unless TEST succeeds
	pkg=$1
	shift
	"$@" >/dev/null 2>&1 || missing="$missing $pkg"
}
have_pc() {
	command -v pkg-config >/dev/null && pkg-config --exists "$@"
}

need gcc command -v gcc
need make command -v make
need autoconf command -v autoreconf
need automake command -v automake
need libtool command -v libtoolize
need pkgconf command -v pkg-config
need libsqlite3-dev have_pc 'sqlite3 >= 3.35'
need libevent-dev have_pc libevent_core libevent_pthreads
need libcunit1-dev have_pc cunit
need sqlite3 command -v sqlite3
need python3 command -v python3
need util-linux command -v setpriv
need mandoc command -v mandoc		# tests/cli/man.sh lints the man pages
need groff-base command -v groff	# and renders them with groff -w all
need fiu-utils command -v fiu-run	# tests/cli/faults.sh: random I/O errors
need clang command -v clang		# tests/cli/fuzz.sh: libFuzzer harnesses
need libclang-rt-14-dev dpkg -s libclang-rt-14-dev	# ... and its runtime
need abigail-tools command -v abidiff	# tests/cli/abi.sh: the ABI against abi/
need locales test -f /usr/share/i18n/locales/de_DE	# t-metrics: a comma locale
# A new machine may lack pkg-config itself: then the library checks above
# all failed and their packages are listed, which is what is wanted.

[ -z "$missing" ] && exit 0
echo "tools/deps.sh: installing:$missing"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo=sudo
export DEBIAN_FRONTEND=noninteractive
# shellcheck disable=SC2086
$sudo apt-get install -y --no-install-recommends $missing ||
    { $sudo apt-get update && $sudo apt-get install -y --no-install-recommends $missing; }
