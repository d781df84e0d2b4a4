#!/bin/sh
#
# test/fuzz/merge-inner.sh
#      libFuzzer's -merge=1 runs the inputs in a child process: it runs its
#      argv[0] with the same flags plus -merge_inner=1.  run.sh passes this
#      script as argv[0], so the child is a new backend of the fuzzing
#      instance, reached with the PG* settings of the server's environment.
#      Exits 0 when that run ended normally (libFuzzer retries otherwise,
#      skipping an input that crashed).
#
unset LD_PRELOAD
done_file=$PGS_FUZZ_LOGDIR/merge-inner.$$.done
rm -f "$done_file"
array=""
for arg in "$@"; do
	quoted=$(printf '%s' "$arg" | sed "s/'/''/g")
	array="$array${array:+,}'$quoted'"
done
"$PGS_FUZZ_PSQL" -X -q -d "$PGS_FUZZ_MERGE_DB" \
	-c "SELECT fuzz_pgoutput(ARRAY[$array,'-pgs_log=$PGS_FUZZ_LOGDIR/merge-inner.log','-pgs_done=$done_file']::text[])" \
	>/dev/null 2>&1
if [ -f "$done_file" ]; then
	rm -f "$done_file"
	exit 0
fi
exit 1
