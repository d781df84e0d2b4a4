# shellcheck shell=bash
#
# scripts/common.sh
#      Functions shared by test/run-tests.sh and scripts/demo.sh: install the
#      Debian 12 packages the project needs, build and install the extension
#      from a scratch copy of the source tree, and run commands as the
#      unprivileged user "postgres".
#
# Sourced, never executed.  The caller has already done `set -euo pipefail`.
#
# Environment:
#   PGS_SKIP_INSTALL=1   skip apt-get entirely (developer re-runs)
#   CI=true              set by CI; temporary directories are never kept
#
# Everything is built in a copy under /tmp, so the developer's checkout never
# receives root-owned build products.

# shellcheck disable=SC2034 # used by the scripts that source this file
PGS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PGS_PGBIN=/usr/lib/postgresql/15/bin
PGS_PG_CONFIG=$PGS_PGBIN/pg_config
# What commands run as "postgres" see: the PostgreSQL 15 binaries first, a
# fixed UTF-8 locale (so initdb creates UTF8 databases everywhere), no
# inherited PG* connection variables.
PGS_PATH=$PGS_PGBIN:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# Debian packages needed to build, test and demo the extension.
PGS_APT_PACKAGES=(
	build-essential
	postgresql-15
	postgresql-server-dev-15
	postgresql-15-pgtap
	libnats-dev
	nats-server
	libcurl4-openssl-dev
	libipc-run-perl
	openssl
	clang
	libclang-rt-14-dev
	llvm-14
)

# ---------------------------------------------------------------------------
# npm: test clients (e.g. the NATS JavaScript client for consumer tests).
# >>> Add here the directories, relative to the repository root, that hold a
# >>> package.json + package-lock.json of test clients; `npm ci` runs in each
# >>> of them inside the build copy.
PGS_NPM_DIRS=(
	test/nats
)
# ---------------------------------------------------------------------------

pgs_banner()
{
	printf '\n======== [%s] %s ========\n' "$(date -u '+%Y-%m-%d %H:%M:%S UTC')" "$*"
}

pgs_log()
{
	printf '[%s] %s\n' "$(date -u '+%H:%M:%S')" "$*"
}

pgs_die()
{
	printf '[%s] ERROR: %s\n' "$(date -u '+%H:%M:%S')" "$*" >&2
	exit 1
}

pgs_require_root()
{
	[[ $EUID -eq 0 ]] || pgs_die "run this as root (sudo $0): it installs packages and the extension"
}

# Is the Debian package $1 installed?
pgs_pkg_installed()
{
	[[ $(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null) == ii* ]]
}

# Install the packages in PGS_APT_PACKAGES (plus nodejs/npm when no node or
# npm is on PATH).  apt-get update and install run once, and only when
# something is missing; --no-upgrade keeps already-installed packages (and a
# running PostgreSQL) at their version, so re-runs change nothing.
pgs_install_packages()
{
	local pkgs=("${PGS_APT_PACKAGES[@]}") missing=() p

	if [[ ${PGS_SKIP_INSTALL:-0} == 1 ]]; then
		pgs_log "PGS_SKIP_INSTALL=1: not installing packages"
		return 0
	fi
	command -v node >/dev/null 2>&1 || pkgs+=(nodejs)
	command -v npm >/dev/null 2>&1 || pkgs+=(npm)
	for p in "${pkgs[@]}"; do
		pgs_pkg_installed "$p" || missing+=("$p")
	done
	if [[ ${#missing[@]} -eq 0 ]]; then
		pgs_log "all required packages are installed: ${pkgs[*]}"
		return 0
	fi

	pgs_log "installing: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get -q update </dev/null
	apt-get -q install -y --no-install-recommends --no-upgrade \
		-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
		"${pkgs[@]}" </dev/null
}

# Check that what the scripts use is really there (also after
# PGS_SKIP_INSTALL=1) and print the versions in use.
pgs_check_tools()
{
	local t

	for t in "$PGS_PG_CONFIG" "$PGS_PGBIN/initdb" "$PGS_PGBIN/pg_ctl" gcc make prove nats-server runuser; do
		command -v "$t" >/dev/null 2>&1 || pgs_die "missing $t (run without PGS_SKIP_INSTALL=1 to install it)"
	done
	id postgres >/dev/null 2>&1 || pgs_die "user \"postgres\" does not exist (it comes with postgresql-common)"
	pgs_log "$("$PGS_PG_CONFIG" --version), $(gcc --version | head -n 1), $(nats-server --version 2>&1 | head -n 1)"
	if command -v node >/dev/null 2>&1; then
		pgs_log "node $(node --version), npm $(npm --version 2>/dev/null || echo missing)"
	fi
}

# Copy the source tree (without .git and build/test leftovers) into the new
# directory $2, which must not exist.
pgs_copy_tree()
{
	local src=$1 dst=$2

	mkdir -p "$dst"
	tar -C "$src" \
		--exclude=./.git --exclude=./tmp_check --exclude=./tmp_check_regress \
		--exclude=./results_dir --exclude=node_modules \
		-cf - . | tar -C "$dst" -xf -
}

# Run make in directory $1 with the PostgreSQL 15 pg_config; further
# arguments go to make.
pgs_make()
{
	local dir=$1

	shift
	make -C "$dir" PG_CONFIG="$PGS_PG_CONFIG" "$@"
}

# Build in $1 from scratch.  With a second argument "werror", compiler
# warnings are errors (the Makefile adds -Wall -Wextra).
pgs_build()
{
	local dir=$1 mode=${2:-}

	pgs_make "$dir" clean >/dev/null
	if [[ $mode == werror ]]; then
		pgs_make "$dir" -j"$(nproc)" PROFILE="-Werror"
	else
		pgs_make "$dir" -j"$(nproc)"
	fi
}

pgs_install()
{
	pgs_make "$1" install
}

# npm ci in each of PGS_NPM_DIRS below $1 (see the marked block above).
pgs_install_npm_clients()
{
	local dir=$1 d

	for d in "${PGS_NPM_DIRS[@]}"; do
		pgs_log "npm ci in $d"
		(cd "$dir/$d" && npm ci --no-audit --no-fund </dev/null)
	done
}

# Run a command as "postgres" with a clean, fixed environment.
pgs_as_postgres()
{
	local envs=(HOME=/var/lib/postgresql USER=postgres LOGNAME=postgres
				PATH="$PGS_PATH" LANG=C.UTF-8 LC_ALL=C.UTF-8) v

	# passed through when set: CI, the knobs of PostgreSQL's TAP modules, and
	# ours (long mode, random seed, fuzzing time; docs/reliability.md)
	for v in CI PG_TEST_EXTRA PG_TEST_TIMEOUT_DEFAULT PGS_TEST_LONG PGS_TEST_SEED PGS_FUZZ_SECONDS; do
		if [[ -n ${!v:-} ]]; then
			envs+=("$v=${!v}")
		fi
	done
	runuser -u postgres -- env -i "${envs[@]}" "$@"
}

# Stop every postmaster still running from a data directory below $1 (tests
# interrupted by a timeout can leave one behind).  Only servers whose
# postmaster.pid lies in our own scratch directory are touched.
pgs_stop_postmasters()
{
	local pidfile

	[[ -d $1 ]] || return 0
	while IFS= read -r -d '' pidfile; do
		pgs_log "stopping the server left running in ${pidfile%/postmaster.pid}"
		pgs_as_postgres pg_ctl -D "${pidfile%/postmaster.pid}" stop -m immediate -w -t 30 >/dev/null 2>&1 || true
	done < <(find "$1" -name postmaster.pid -type f -print0 2>/dev/null)
}

# Is something listening on 127.0.0.1:$1?
pgs_port_in_use()
{
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Print the first port from $1 upwards (20 tries) that nothing listens on.
pgs_free_port()
{
	local port=$1 last=$(($1 + 19))

	while ((port <= last)); do
		if ! pgs_port_in_use "$port"; then
			echo "$port"
			return 0
		fi
		port=$((port + 1))
	done
	pgs_die "no free port in $1..$last on 127.0.0.1"
}

# Poll: run "$@" every 0.2 s until it succeeds or $1 seconds have passed.
pgs_wait_until()
{
	local timeout=$1 deadline

	shift
	deadline=$((SECONDS + timeout))
	until "$@"; do
		((SECONDS < deadline)) || return 1
		sleep 0.2
	done
}
