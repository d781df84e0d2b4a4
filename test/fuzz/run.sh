#!/usr/bin/env bash
#
# test/fuzz/run.sh
#      Fuzz the pgoutput reader (src/proto.c) and the formatters inside a
#      PostgreSQL 15 backend with libFuzzer (see fuzz_proto.c).
#
#          test/fuzz/run.sh [--update-corpus]
#
#      Runs as root (the instance then runs as "postgres") or as any user
#      who can run initdb.  It builds the harness in a scratch copy, starts
#      a throwaway instance (Unix socket only) with AddressSanitizer's
#      runtime preloaded, creates a UTF8, a SQL_ASCII and a LATIN1
#      database, and then:
#
#      default (CI) mode: runs every file of test/fuzz/corpus once in each
#          database (libFuzzer -runs=0); fails on a crash or if the corpus
#          did not run.
#      long mode (PGS_TEST_LONG=1): fuzzes for PGS_FUZZ_SECONDS (default
#          600) in PGS_FUZZ_JOBS parallel backends (default: the number of
#          CPUs, at most 3), one per database; new interesting inputs go to
#          a work directory, then a libFuzzer merge (-merge=1) adds those
#          that add coverage to a copy of the corpus there, or, with
#          --update-corpus, to test/fuzz/corpus itself.  Fails if libFuzzer
#          reports a crash, and prints the crashing input's path.
#
#      Environment: PGS_TEST_LONG, PGS_FUZZ_SECONDS, PGS_FUZZ_JOBS,
#      PGS_FUZZ_WORKDIR (work directory of long mode; default: a new one
#      under TMPDIR, kept), PGS_FUZZ_ASAN=0 (coverage instrumentation only,
#      no AddressSanitizer), PGS_FUZZ_UBSAN=1 (UndefinedBehaviorSanitizer
#      too; the code is built with -fwrapv, as PostgreSQL builds it, so
#      signed overflow is not reported), PGS_FUZZ_TIMEOUT (seconds for one
#      input, default 20), PGS_FUZZ_CORPUS (the corpus directory, default
#      test/fuzz/corpus: e.g. a directory holding a crash input, to
#      reproduce it), PGS_FUZZ_ARGS (more libFuzzer flags, e.g.
#      -print_coverage=1), PG_CONFIG, CLANG, PGS_FUZZ_KEEP=1 (keep the scratch
#      directory: build, instance, logs), CI=true (never keep it).
#
#      Exit status: 0 no crash, 1 crash or failure, 2 usage, 77 skipped
#      (no clang or libFuzzer runtime).

set -euo pipefail
exec </dev/null

# The whole script is one block, read before it runs: editing the file
# during a long run cannot change what the run does.
{
update_corpus=0
for arg in "$@"; do
	case $arg in
		--update-corpus) update_corpus=1 ;;
		*)
			echo "usage: $0 [--update-corpus]" >&2
			exit 2
			;;
	esac
done

long=${PGS_TEST_LONG:-0}
fuzz_seconds=${PGS_FUZZ_SECONDS:-600}
timeout_s=${PGS_FUZZ_TIMEOUT:-20}
use_asan=${PGS_FUZZ_ASAN:-1}

FZ_SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/pgs-fuzz.XXXXXX")
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

corpus=${PGS_FUZZ_CORPUS:-$FZ_ROOT/test/fuzz/corpus}
read -r -a extra_args <<<"${PGS_FUZZ_ARGS:-}"
passed=0
work=

cleanup()
{
	local rc=$?

	trap - EXIT
	fz_stop
	if [[ ${PGS_FUZZ_KEEP:-0} != 1 && ($passed == 1 || ${CI:-} == true) ]]; then
		rm -rf "$FZ_SCRATCH"
	else
		fz_log "kept the scratch directory for inspection: $FZ_SCRATCH"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- tools ----------------------------------------------------------------
clang=
for c in "${CLANG:-}" clang clang-14; do
	if [[ -n $c ]] && command -v "$c" >/dev/null 2>&1; then
		clang=$(command -v "$c")
		break
	fi
done
if [[ -z $clang ]]; then
	fz_log "SKIP: clang not found (Debian: clang-14)"
	passed=1
	exit 77
fi
fuzzer_rt=$("$clang" -print-resource-dir)/lib/linux/libclang_rt.fuzzer_no_main-x86_64.a
if [[ ! -f $fuzzer_rt ]]; then
	fz_log "SKIP: libFuzzer runtime $fuzzer_rt not found (Debian: libclang-rt-14-dev)"
	passed=1
	exit 77
fi
[[ -d $corpus ]] || fz_die "no corpus at $corpus"
fz_instance_paths

# --- build ------------------------------------------------------------------
build=$FZ_SCRATCH/build
mkdir -p "$build/test" "$FZ_SCRATCH/logs" "$FZ_SCRATCH/tmp"
cp -r "$FZ_ROOT/src" "$build/src"
rm -f "$build"/src/*.o "$build"/src/*.bc
cp -r "$FZ_ROOT/test/fuzz" "$build/test/fuzz"
rm -rf "$build/test/fuzz/corpus" "$build/test/fuzz/obj"
sanitize=address
[[ ${PGS_FUZZ_UBSAN:-0} == 1 ]] && sanitize=address,undefined
[[ $use_asan == 1 ]] || sanitize=
fz_log "building the harness with $("$clang" --version | head -n 1) (sanitizers: fuzzer-no-link${sanitize:+,$sanitize})"
make -s -C "$build/test/fuzz" -j "$(nproc)" CLANG="$clang" PG_CONFIG="$FZ_PG_CONFIG" \
	SANITIZE="$sanitize" >"$FZ_SCRATCH/build.log" 2>&1 ||
	{ cat "$FZ_SCRATCH/build.log" >&2; fz_die "building the harness failed"; }
harness=$build/test/fuzz/pgoutput_stream_fuzz.so
# --no-print-directory: under "make installcheck", MAKEFLAGS asks for the
# "Entering directory" lines, which would end up in the value
preload=$(make -s --no-print-directory -C "$build/test/fuzz" CLANG="$clang" PG_CONFIG="$FZ_PG_CONFIG" \
	SANITIZE="$sanitize" print-preload)

# --- instance -------------------------------------------------------------
if [[ $long == 1 ]]; then
	work=${PGS_FUZZ_WORKDIR:-$(mktemp -d "${TMPDIR:-/tmp}/pgs-fuzz-work.XXXXXX")}
	mkdir -p "$work/corpus" "$work/artifacts" "$work/merged"
	if [[ $EUID -eq 0 ]]; then
		chown -R postgres: "$work"
	fi
fi
chmod 755 "$FZ_SCRATCH"
fz_chown_scratch
fz_initdb </dev/null
# what the server environment gives merge-inner.sh
export PGS_FUZZ_PSQL=$FZ_PGBIN/psql PGS_FUZZ_LOGDIR=$FZ_SCRATCH/logs PGS_FUZZ_MERGE_DB=fuzz_utf8
export TMPDIR=$FZ_SCRATCH/tmp
fz_log "starting a throwaway instance in $FZ_DATA${preload:+ (LD_PRELOAD=$preload)}"
fz_start "$preload"

fz_create_types
databases=(fuzz_utf8 fuzz_sql_ascii fuzz_latin1)
fz_psql postgres <<SQL
CREATE DATABASE fuzz_utf8 TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C.UTF-8';
CREATE DATABASE fuzz_sql_ascii TEMPLATE template0 ENCODING 'SQL_ASCII' LOCALE 'C';
CREATE DATABASE fuzz_latin1 TEMPLATE template0 ENCODING 'LATIN1' LOCALE 'C';
SQL
for db in "${databases[@]}"; do
	fz_psql "$db" -c "CREATE FUNCTION fuzz_pgoutput(text[]) RETURNS int AS '$harness', 'fuzz_pgoutput' LANGUAGE C STRICT"
done

# Run libFuzzer in a new backend of database $1, job name $2, with the
# libFuzzer arguments that follow (argv[0] first).  Returns when the
# backend is gone; $FZ_SCRATCH/logs/$2.log has its output, and
# $FZ_SCRATCH/logs/$2.done exists if the run ended normally.
run_fuzzer()
{
	local db=$1 name=$2 array='' arg

	shift 2
	for arg in "$@" "-pgs_log=$FZ_SCRATCH/logs/$name.log" "-pgs_done=$FZ_SCRATCH/logs/$name.done"; do
		array+="${array:+,}'${arg//\'/\'\'}'"
	done
	# the backend exits when libFuzzer is done: psql reports a lost connection
	fz_psql "$db" -c "SELECT fuzz_pgoutput(ARRAY[$array]::text[])" \
		>"$FZ_SCRATCH/logs/$name.psql" 2>&1 || true
}

# Did job $1 end normally?  Prints its statistics or why not.
check_job()
{
	local name=$1 log=$FZ_SCRATCH/logs/$1.log

	if [[ -f $FZ_SCRATCH/logs/$name.done ]] && ! grep -qE '^==[0-9]+==ERROR|ERROR: libFuzzer|deadly signal' "$log"; then
		head -n 1 "$FZ_SCRATCH/logs/$name.done"
		return 0
	fi
	fz_log "job $name did not end normally; end of its log $log:"
	tail -n 60 "$log" >&2 2>/dev/null || cat "$FZ_SCRATCH/logs/$name.psql" >&2
	return 1
}

# Print the crash inputs libFuzzer wrote; true if there is any
report_artifacts()
{
	local dir=$1 f found=1

	for f in "$dir"/crash-* "$dir"/leak-* "$dir"/timeout-* "$dir"/oom-* "$dir"/slow-unit-*; do
		[[ -f $f ]] || continue
		case ${f##*/} in
			slow-unit-*) fz_log "slow input (not a failure): $f" ; continue ;;
		esac
		fz_log "CRASH INPUT: $f ($(wc -c <"$f") bytes; first 512 in hex:)"
		od -An -tx1 -N 512 "$f" | sed 's/^/    /' >&2
		found=0
	done
	return $found
}

libfuzzer_common=(-timeout="$timeout_s" -malloc_limit_mb=2048 -print_final_stats=1 "${extra_args[@]}")
status=0

if [[ $long != 1 ]]; then
	# --- CI mode: every corpus file once, in every database ---------------
	nfiles=$(find "$corpus" -maxdepth 1 -type f | wc -l)
	fz_log "running the $nfiles corpus files once in each of: ${databases[*]}"
	mkdir -p "$FZ_SCRATCH/artifacts"
	fz_chown_scratch
	for db in "${databases[@]}"; do
		run_fuzzer "$db" "corpus-$db" "$build/test/fuzz/pgoutput_stream_fuzz" \
			"${libfuzzer_common[@]}" -runs=0 -artifact_prefix="$FZ_SCRATCH/artifacts/" "$corpus"
		if stats=$(check_job "corpus-$db"); then
			fz_log "$db: $stats"
			inputs=$(sed -n 's/.* inputs=\([0-9]*\) .*/\1/p' <<<"$stats")
			events=$(sed -n 's/.* events=\([0-9]*\) .*/\1/p' <<<"$stats")
			if ((inputs < nfiles || events == 0)); then
				fz_log "$db: the corpus did not run: $inputs inputs for $nfiles files, $events events"
				status=1
			fi
		else
			status=1
			# restart_after_crash is off: a crash stops the instance
			if ! fz_as_owner "$FZ_PGBIN/pg_ctl" -D "$FZ_DATA" status >/dev/null 2>&1; then
				fz_log "the instance is gone after a crash: not running the other databases"
				break
			fi
		fi
	done
	report_artifacts "$FZ_SCRATCH/artifacts" && status=1
else
	# --- long mode: fuzz, then merge --------------------------------------
	jobs=${PGS_FUZZ_JOBS:-$(nproc)}
	((jobs > 3)) && jobs=3
	((jobs < 1)) && jobs=1
	fz_log "fuzzing for $fuzz_seconds s in $jobs backend(s); new inputs go to $work/corpus"
	pids=()
	for ((j = 0; j < jobs; j++)); do
		db=${databases[j % ${#databases[@]}]}
		run_fuzzer "$db" "fuzz-$j-$db" "$build/test/fuzz/pgoutput_stream_fuzz" \
			"${libfuzzer_common[@]}" -max_total_time="$fuzz_seconds" -max_len=20000 \
			-dict="$build/test/fuzz/pgoutput.dict" -artifact_prefix="$work/artifacts/" \
			-reload=30 -print_pcs=0 "$work/corpus" "$corpus" &
		pids+=($!)
	done
	for pid in "${pids[@]}"; do
		wait "$pid" || true
	done
	for ((j = 0; j < jobs; j++)); do
		db=${databases[j % ${#databases[@]}]}
		name=fuzz-$j-$db
		cp "$FZ_SCRATCH/logs/$name.log" "$work/$name.log" 2>/dev/null || true
		if stats=$(check_job "$name"); then
			fz_log "$name: $stats"
			grep -E '^(stat::|Done [0-9]+ runs)' "$FZ_SCRATCH/logs/$name.log" | sed "s/^/    /" >&2 || true
			grep -E '^#[0-9]+ +DONE' "$FZ_SCRATCH/logs/$name.log" | tail -n 1 | sed "s/^/    /" >&2 || true
		else
			status=1
		fi
	done
	if report_artifacts "$work/artifacts"; then
		status=1
	fi

	if [[ $status == 0 ]]; then
		target=$work/merged
		if [[ $update_corpus == 1 ]]; then
			target=$corpus
		else
			cp "$corpus"/* "$target"/
		fi
		if [[ $EUID -eq 0 ]]; then
			chown -R postgres: "$target"
		fi
		before=$(find "$target" -maxdepth 1 -type f | wc -l)
		fz_log "merging the $(find "$work/corpus" -maxdepth 1 -type f | wc -l) new inputs into $target"
		run_fuzzer fuzz_utf8 merge "$build/test/fuzz/merge-inner.sh" "${libfuzzer_common[@]}" \
			-merge=1 -merge_control_file="$FZ_SCRATCH/merge.ctl" "$target" "$work/corpus"
		if ! grep -q 'MERGE-OUTER: [0-9]* new files' "$FZ_SCRATCH/logs/merge.log"; then
			fz_log "the merge failed; end of its log:"
			tail -n 30 "$FZ_SCRATCH/logs/merge.log" >&2 || true
			status=1
		else
			grep 'MERGE-OUTER: [0-9]* new files' "$FZ_SCRATCH/logs/merge.log" | sed "s/^/    /" >&2
			fz_log "$target: $before files before the merge, $(find "$target" -maxdepth 1 -type f | wc -l) after"
		fi
		if [[ $update_corpus == 1 && $EUID -eq 0 ]]; then
			chown -R --reference="$FZ_ROOT/test/fuzz" "$corpus"
		fi
	fi
	fz_log "work directory (new inputs, merged corpus, logs): $work"
fi

if [[ $status == 0 ]]; then
	passed=1
	fz_log "PASS: no crash"
else
	fz_log "FAIL"
fi
exit "$status"
}
