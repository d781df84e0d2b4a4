# shellcheck shell=bash
#
# test/fuzz/lib.sh
#      Functions shared by test/fuzz/run.sh and test/fuzz/make-corpus.sh: a
#      throwaway PostgreSQL 15 instance in a scratch directory, run as the
#      user "postgres" when the caller is root and as the caller otherwise,
#      reachable only through a Unix socket in that directory.
#
# Sourced, never executed.  The caller has already done `set -euo pipefail`
# and set FZ_SCRATCH (an empty directory).

FZ_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck disable=SC2034 # used by the scripts that source this file
FZ_ROOT=$(cd "$FZ_HERE/../.." && pwd)

fz_log()
{
	printf '[%s] %s\n' "$(date -u '+%H:%M:%S')" "$*" >&2
}

fz_die()
{
	fz_log "ERROR: $*"
	exit 1
}

# pg_config of PostgreSQL 15: $PG_CONFIG, Debian's, or the one on PATH
fz_find_pg_config()
{
	local c

	for c in "${PG_CONFIG:-}" /usr/lib/postgresql/15/bin/pg_config pg_config; do
		if [[ -n $c ]] && command -v "$c" >/dev/null 2>&1; then
			command -v "$c"
			return 0
		fi
	done
	return 1
}

# Run a command as the instance's owner
fz_as_owner()
{
	if [[ $EUID -eq 0 ]]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

# Set the instance's paths: FZ_PGBIN, FZ_DATA, FZ_SOCK, FZ_PORT
fz_instance_paths()
{
	local pg_config

	pg_config=$(fz_find_pg_config) || fz_die "pg_config not found (set PG_CONFIG)"
	# shellcheck disable=SC2034 # used by run.sh
	FZ_PG_CONFIG=$pg_config
	FZ_PGBIN=$("$pg_config" --bindir)
	FZ_DATA=$FZ_SCRATCH/data
	FZ_SOCK=$FZ_SCRATCH/sock
	# the socket directory is private: any port number will do
	FZ_PORT=${PGS_FUZZ_PORT:-54399}
}

# Hand the scratch directory to the instance's owner (when we are root)
fz_chown_scratch()
{
	if [[ $EUID -eq 0 ]]; then
		chown -R postgres: "$FZ_SCRATCH"
	fi
}

# initdb with extra postgresql.conf lines from stdin
fz_initdb()
{
	fz_as_owner "$FZ_PGBIN/initdb" -D "$FZ_DATA" -E UTF8 --locale=C.UTF-8 \
		-A trust --no-sync -U postgres >"$FZ_SCRATCH/initdb.log" 2>&1 ||
		{ cat "$FZ_SCRATCH/initdb.log" >&2; fz_die "initdb failed"; }
	fz_as_owner mkdir -p "$FZ_SOCK"
	{
		echo "listen_addresses = ''"
		echo "unix_socket_directories = '$FZ_SOCK'"
		echo "port = $FZ_PORT"
		echo "fsync = off"
		echo "max_connections = 20"
		echo "shared_buffers = 32MB"
		echo "restart_after_crash = off"
		echo "log_min_messages = warning"
		cat
	} | fz_as_owner tee -a "$FZ_DATA/postgresql.conf" >/dev/null
}

# llvm-symbolizer, for stack traces with function names and lines in
# AddressSanitizer's reports (Debian: llvm-14); empty if there is none
fz_symbolizer()
{
	local s

	for s in /usr/lib/llvm-14/bin/llvm-symbolizer "$(command -v llvm-symbolizer || true)"; do
		if [[ -n $s && -x $s ]]; then
			echo "$s"
			return 0
		fi
	done
}

# Start the instance; $1: LD_PRELOAD for the server (may be empty).  No
# leak detection: every backend would report the memory that PostgreSQL
# frees by exiting, and exit with an error.
fz_start()
{
	local preload=${1:-} asan_options symbolizer

	symbolizer=$(fz_symbolizer)
	asan_options=${ASAN_OPTIONS:-detect_leaks=0:handle_abort=1${symbolizer:+:external_symbolizer_path=$symbolizer}}
	fz_as_owner env ${preload:+LD_PRELOAD="$preload"} \
		ASAN_OPTIONS="$asan_options" \
		PGHOST="$FZ_SOCK" PGPORT="$FZ_PORT" PGUSER=postgres \
		"$FZ_PGBIN/pg_ctl" -D "$FZ_DATA" -l "$FZ_SCRATCH/server.log" -w -t 60 start >/dev/null ||
		{ tail -n 50 "$FZ_SCRATCH/server.log" >&2 || true; fz_die "could not start the instance"; }
}

# Stop the instance if it runs (immediate: it is thrown away)
fz_stop()
{
	if [[ -n ${FZ_DATA:-} && -f $FZ_DATA/postmaster.pid ]]; then
		fz_as_owner "$FZ_PGBIN/pg_ctl" -D "$FZ_DATA" -m immediate -w stop >/dev/null 2>&1 || true
	fi
}

# psql on the instance: fz_psql DATABASE [psql arguments...]
fz_psql()
{
	local db=$1

	shift
	fz_as_owner "$FZ_PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$FZ_SOCK" -p "$FZ_PORT" \
		-U postgres -d "$db" "$@"
}

# Create the corpus's user-defined types in template0 (see types.sql)
fz_create_types()
{
	fz_psql postgres -c "ALTER DATABASE template0 ALLOW_CONNECTIONS true"
	fz_psql template0 -f - <"$FZ_HERE/types.sql" >/dev/null
	fz_psql postgres -c "ALTER DATABASE template0 ALLOW_CONNECTIONS false"
}
