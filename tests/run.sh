#!/usr/bin/env bash
# THE test command: installs what the tests need when it is missing, then runs every check
# the project has. Works on a fresh Debian/Ubuntu machine (as root, or with sudo).
#
#   tests/run.sh
#
# Steps: rustfmt check, clippy (warnings are errors), fuzz crate check, chart lint, doc
# tests, the test suite (cargo-nextest when installed, else cargo test), then the cluster
# tests.
#
# Cluster tests are the #[ignore = "needs a cluster"] ones. When ../shared/controlplane/up
# exists beside the checkout, this starts that throwaway control plane (kube-apiserver,
# kube-controller-manager and etcd on loopback), runs every ignored test against it with
# HOMESTEAD_TEST_KUBECONFIG set, and stops it on exit; they must pass like the rest. When
# it does not exist they are skipped, and the run says so. By hand, against any cluster
# you may write to: HOMESTEAD_TEST_KUBECONFIG=~/.kube/config cargo test -- --ignored
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
CONTROLPLANE="$(cd .. && pwd)/shared/controlplane"

log() { printf '==> %s\n' "$*" >&2; }

# Run a command as root (directly, or through sudo).
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        log "need root to run: $*"
        return 1
    fi
}

APT_UPDATED=0
# Install Debian packages (apt-get update once per run).
apt_install() {
    if ! command -v apt-get >/dev/null 2>&1; then
        log "apt-get not found; install these yourself: $*"
        return 1
    fi
    if [ "$APT_UPDATED" -eq 0 ]; then
        log "apt-get update"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
        APT_UPDATED=1
    fi
    log "apt-get install $*"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"
}

have() { command -v "$1" >/dev/null 2>&1; }

# --- toolchain: a C compiler (ring), curl, and Rust with rustfmt and clippy ------------
ensure_toolchain() {
    local missing=()
    have cc || missing+=(build-essential)
    have curl || missing+=(curl ca-certificates)
    have git || missing+=(git)
    if [ "${#missing[@]}" -gt 0 ]; then
        apt_install "${missing[@]}"
    fi
    if ! have cargo && [ -x "$HOME/.cargo/bin/cargo" ]; then
        export PATH="$HOME/.cargo/bin:$PATH"
    fi
    if ! have cargo; then
        log "installing Rust (rustup, stable)"
        curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs |
            sh -s -- -y --profile minimal --component rustfmt,clippy
        export PATH="$HOME/.cargo/bin:$PATH"
    fi
    if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
        if have rustup; then
            rustup component add rustfmt clippy
        else
            log "cargo fmt / cargo clippy missing and rustup not found"
            return 1
        fi
    fi
}

# --- ldap: a real OpenLDAP server for the LDAP sync tests -------------------------------
ensure_ldap() {
    if have slapd || [ -x /usr/sbin/slapd ]; then
        return 0
    fi
    # slapd's debconf questions are skipped; the tests run their own slapd with their own
    # configuration and never use the system instance.
    apt_install slapd ldap-utils
}

# --- mariadb: a real MariaDB server for the ISPyB session sync tests --------------------
ensure_mariadb() {
    if have mariadbd || [ -x /usr/sbin/mariadbd ]; then
        return 0
    fi
    # The tests run their own mariadbd on a loopback port with a throwaway data directory
    # and never use the system instance.
    apt_install mariadb-server
}

# --- helm: tools the Helm chart checks need (the chart section installs them here) -----
# The chart is linted and rendered with Helm's own library: PyPI's helm-sdkpy bundles
# Helm v4 (it declares Python >= 3.12 but runs on 3.11, hence --ignore-requires-python).
ensure_helm() {
    if python3 -c 'import helm_sdkpy' >/dev/null 2>&1; then
        return 0
    fi
    if ! have python3 || ! python3 -m pip --version >/dev/null 2>&1; then
        apt_install python3 python3-pip
    fi
    log "pip install helm-sdkpy"
    python3 -m pip install --quiet --ignore-requires-python helm-sdkpy ||
        python3 -m pip install --quiet --ignore-requires-python --break-system-packages helm-sdkpy
}

# --- the control plane's own needs (it installs etcd itself) ---------------------------
ensure_controlplane_tools() {
    [ -x "$CONTROLPLANE/up" ] || return 0
    local missing=()
    have xz || missing+=(xz-utils)
    have openssl || missing+=(openssl)
    have setsid || missing+=(util-linux)
    have base64 || missing+=(coreutils)
    if [ "${#missing[@]}" -gt 0 ]; then
        apt_install "${missing[@]}"
    fi
}

# --- cluster tests: every ignored test, against a fresh control plane -------------------
run_cluster_tests() {
    if [ ! -x "$CONTROLPLANE/up" ]; then
        log "SKIPPED: the cluster tests (#[ignore = \"needs a cluster\"]) did not run:" \
            "$CONTROLPLANE/up does not exist, so there is no control plane to run them against"
        return 0
    fi
    local state kubeconfig
    state=$(mktemp -d)
    log "starting the test control plane ($CONTROLPLANE/up $state)"
    if ! kubeconfig=$("$CONTROLPLANE/up" "$state"); then
        log "FAILED: the test control plane did not come up; the end of its logs ($state/logs):"
        for file in "$state"/logs/*; do
            [ -f "$file" ] || continue
            printf -- '--- %s\n' "$file" >&2
            tail -n 20 "$file" >&2
        done
        return 1
    fi
    # Expanded now: `state` is local to this function and gone when the EXIT trap runs.
    # shellcheck disable=SC2064
    trap "\"$CONTROLPLANE/down\" \"$state\" --rm >/dev/null 2>&1 || true" EXIT
    export HOMESTEAD_TEST_KUBECONFIG="$kubeconfig"
    if cargo nextest --version >/dev/null 2>&1; then
        log "cluster tests (cargo nextest, --run-ignored only)"
        cargo nextest run --workspace --no-fail-fast --run-ignored only
    else
        log "cluster tests (cargo test -- --ignored)"
        cargo test --workspace --no-fail-fast --lib --bins --tests -- --ignored
    fi
}

ensure_toolchain
ensure_ldap
ensure_mariadb
ensure_helm
ensure_controlplane_tools

log "cargo fmt --check"
cargo fmt --all -- --check

log "the core crate stays pure (no I/O crates among its dependencies)"
impure=$(cargo tree -p homestead-core -e normal --prefix none |
    grep -oE '^(tokio|hyper|hyper-util|rustls|tokio-rustls|kube-client|kube-runtime|reqwest|ldap3|sqlx|mysql_async) ' | sort -u || true)
if [ -n "$impure" ]; then
    log "homestead-core depends on I/O crates: $impure"
    exit 1
fi

log "the core crate builds and its tests compile on its own (no features borrowed from the shell)"
cargo check -p homestead-core --all-targets

log "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets -- -D warnings

if [ -f fuzz/Cargo.toml ]; then
    log "cargo check of the fuzz crate"
    cargo check --manifest-path fuzz/Cargo.toml --all-targets
fi

log "helm chart: lint, render every certificate mode, refuse bad values"
python3 tests/chart/helm_chart.py lint

log "doc tests"
cargo test --workspace --doc

suite=0
if cargo nextest --version >/dev/null 2>&1; then
    log "test suite (cargo nextest)"
    cargo nextest run --workspace --no-fail-fast || suite=$?
else
    log "test suite (cargo test)"
    cargo test --workspace --no-fail-fast --lib --bins --tests || suite=$?
fi

cluster=0
run_cluster_tests || cluster=$?
if [ "$suite" -ne 0 ] || [ "$cluster" -ne 0 ]; then
    log "FAILED: test suite exit $suite, cluster tests exit $cluster"
    exit 1
fi
