# Helpers shared by .ci/run and .ci/py313 (sourced, not run). Nothing here assumes root or sudo:
# each helper says what it could not do, and why, and lets the caller decide.

say() { echo ".ci [$(date +%T)]: $*" >&2; }

# can_root: true when this run may act as root: it is root, or sudo works without a password.
can_root() {
    [ "$(id -u)" = 0 ] || { command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; }
}

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi
}

# The package system's locks (APT_LOCKS may name others, for tests/test_ci.py).
APT_LOCKS="${APT_LOCKS:-/var/lib/dpkg/lock-frontend /var/lib/dpkg/lock /var/lib/apt/lists/lock /var/cache/apt/archives/lock}"

# apt_locked: true while another apt or dpkg holds one of the package-system locks.
apt_locked() {
    command -v lslocks >/dev/null 2>&1 || return 1 # util-linux is Essential on Debian; else do not wait
    lslocks -n -o PATH 2>/dev/null | grep -qxF -f <(tr ' ' '\n' <<<"$APT_LOCKS")
}

# wait_for_apt: wait (at most SMTP_MAGIC_CI_APT_WAIT seconds, default 300) for another apt/dpkg.
wait_for_apt() {
    local waited=0 limit="${SMTP_MAGIC_CI_APT_WAIT:-300}"
    while apt_locked; do
        if [ "$waited" -ge "$limit" ]; then
            APT_PROBLEM="another apt or dpkg still held the package lock after ${limit} s"
            return 1
        fi
        if [ $((waited % 30)) = 0 ]; then
            say "another apt or dpkg holds the package lock (an update or install is running);" \
                "waiting for it, ${waited} of at most ${limit} s"
        fi
        sleep 5
        waited=$((waited + 5))
    done
}

# apt_install PKG...: install Debian packages. On failure sets APT_PROBLEM (one sentence) and
# returns 1, so the caller can let only the tests that need the package fail, with the reason.
apt_install() {
    APT_PROBLEM=""
    if ! command -v apt-get >/dev/null 2>&1; then
        APT_PROBLEM="this machine has no apt-get (not Debian or Ubuntu): install $* yourself"
        return 1
    fi
    if ! can_root; then
        APT_PROBLEM="installing $* needs root or passwordless sudo, and this run has neither:"
        APT_PROBLEM+=" install $* yourself (apt-get install $*), or run as root"
        return 1
    fi
    wait_for_apt || return 1
    say "installing $* with apt-get"
    local log
    log="$(mktemp)"
    # DPkg::Lock::Timeout: apt itself waits if another apt takes the lock after our check.
    if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get -qq -o DPkg::Lock::Timeout=120 update \
        >"$log" 2>&1 ||
        ! as_root env DEBIAN_FRONTEND=noninteractive apt-get -qq -y -o DPkg::Lock::Timeout=120 \
            install "$@" >>"$log" 2>&1; then
        APT_PROBLEM="apt-get could not install $*: $(grep -E '^(E|W):' "$log" | tail -2 | tr '\n' ' ')"
        rm -f "$log"
        return 1
    fi
    rm -f "$log"
}

# background LOG CMD...: run CMD in the background, its output in LOG, in a process group of its
# own (so it can be stopped as a whole), with SIGINT as usual: a script's plain `&` job starts
# with SIGINT ignored, Python keeps that (no KeyboardInterrupt), and the suite tests Ctrl-C.
# Sets BACKGROUND_PID.
background() {
    local log="$1"
    shift
    set -m
    "$@" >"$log" 2>&1 &
    BACKGROUND_PID=$!
    set +m
}
