#!/usr/bin/env bash
#
# test/run-tests.sh
#      Run every test of pgoutput_stream on Debian 12, as root:
#
#          sudo test/run-tests.sh [make variable=value ...]
#
#      1. installs the Debian packages it needs (skipped with PGS_SKIP_INSTALL=1)
#      2. copies the source tree to a scratch directory
#      3. builds it with warnings as errors, installs it
#      4. runs `make installcheck` as the user "postgres" in that copy:
#         pg_regress on a private preloaded instance (test/regress.conf),
#         then the Perl TAP tests (test/t/*.pl)
#      5. runs bench/run.sh at a small size (BENCH_SMOKE=1), to check that
#         the benchmark works (not when make arguments select a subset)
#
#      Arguments are passed to `make installcheck`, e.g. to run a subset:
#          sudo PGS_SKIP_INSTALL=1 test/run-tests.sh REGRESS=api PROVE_TESTS=test/t/001_lifecycle.pl
#
#      Environment: PGS_SKIP_INSTALL=1 (no apt-get), PGS_TEST_TIMEOUT (seconds
#      for installcheck, default 3600), CI=true (never keep scratch
#      directories; otherwise they are kept when a test fails).
#
#      The cluster Debian's postgresql-15 package creates (15/main, port 5432)
#      is neither used nor touched: the test instances pick their own ports.

set -euo pipefail
exec </dev/null

# shellcheck source-path=SCRIPTDIR source=../scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/common.sh"

work=
tests_passed=0

# On exit: stop servers a killed test run may have left behind, print where
# the failure logs are, and remove the scratch directory unless a local run
# failed.
cleanup()
{
	local rc=$?

	trap - EXIT
	if ((rc != 0)); then
		pgs_banner "FAILED (exit $rc)"
	fi
	if [[ -n $work && -d $work ]]; then
		pgs_stop_postmasters "$work"
		if [[ $tests_passed == 1 || ${CI:-} == true ]]; then
			rm -rf "$work"
		else
			pgs_log "kept the test directory for inspection: $work/src"
		fi
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Print $1 with a header; with $2, only its last $2 lines.
show_file()
{
	local f=$1 lines=${2:-}

	printf '\n---------------- %s ----------------\n' "$f"
	if [[ -n $lines ]]; then
		tail -n "$lines" "$f"
	else
		cat "$f"
	fi
}

# show_file every file of the NUL-separated list on stdin, or say there is
# none; $1 as for show_file.
show_files()
{
	local f n=0

	while IFS= read -r -d '' f; do
		show_file "$f" "${1:-}"
		n=$((n + 1))
	done
	((n > 0)) || echo "(none)"
}

# What a failed installcheck left in the copy $1: pg_regress's diffs, the
# TAP logs and the logs of pg_regress's temporary instance.
print_failure_logs()
{
	local dir=$1

	pgs_banner "regression.diffs"
	show_files < <(find "$dir" -name regression.diffs -type f -print0)

	pgs_banner "TAP logs (tmp_check/log, last 200 lines each)"
	show_files 200 < <(find "$dir/tmp_check/log" -type f \( -name 'regress_log_*' -o -name '*.log' \) \
		-print0 2>/dev/null | sort -z)

	# pg_regress writes them to <outputdir>/log (results_dir/log here)
	pgs_banner "pg_regress temporary instance logs (last 200 lines each)"
	show_files 200 < <(find "$dir/results_dir/log" "$dir/tmp_check_regress/log" "$dir/log" \
		-maxdepth 1 -type f -name '*.log' -print0 2>/dev/null | sort -z)
}

pgs_banner "pgoutput_stream tests (CI=${CI:-}, $(nproc) CPUs)"
pgs_require_root

pgs_banner "Installing packages"
pgs_install_packages
pgs_check_tools

work=$(mktemp -d /tmp/pgoutput_stream-test.XXXXXX)
src=$work/src
pgs_banner "Copying the source tree to $src"
pgs_copy_tree "$PGS_ROOT" "$src"

pgs_banner "Building with warnings as errors (make PROFILE=-Werror)"
pgs_build "$src" werror

pgs_banner "Installing the extension (make install)"
pgs_install "$src"

pgs_banner "Installing npm test clients"
pgs_install_npm_clients "$src"

# TMPDIR inside the scratch directory: the socket directories of the test
# instances (which the TAP modules keep after a failure) go away with it.
mkdir "$work/tmp"
chown -R postgres:postgres "$work"

pgs_banner "Running make installcheck as postgres (pg_regress, then TAP)"
if pgs_as_postgres env TMPDIR="$work/tmp" timeout --kill-after=60 "${PGS_TEST_TIMEOUT:-3600}" \
	make -C "$src" PG_CONFIG="$PGS_PG_CONFIG" installcheck "$@"; then
	:
else
	rc=$?
	if [[ $rc == 124 ]]; then
		pgs_log "installcheck timed out after ${PGS_TEST_TIMEOUT:-3600} s"
	fi
	print_failure_logs "$src"
	exit 1
fi

# The benchmark is not timed here, but it must keep working: at a small
# size it runs every workload (the script itself fails when an event does
# not reach JetStream), and it must print the figures bench/README.md shows,
# in that order, each a number.  A run of a subset (make arguments given)
# leaves it out.
bench_figures_ok()
{
	diff <(awk '{ print $1 }' "$1") \
		<(sed -n '/^bulk_events_per_s /,/^```$/p' "$src/bench/README.md" | awk '/^[a-z0-9_]+ / { print $1 }') &&
		awk 'NF != 3 || $2 !~ /^-?[0-9]+(\.[0-9]+)?$/ { bad = 1 } END { exit bad }' "$1"
}
if (($# == 0)); then
	pgs_banner "Running the benchmark at a small size (BENCH_SMOKE=1 bench/run.sh)"
	BENCH_SMOKE=1 "$src/bench/run.sh" >"$work/bench.out"
	if ! bench_figures_ok "$work/bench.out"; then
		cat "$work/bench.out"
		pgs_die "bench/run.sh did not print the figures bench/README.md lists, each a number"
	fi
fi
tests_passed=1
pgs_banner "All tests passed"
