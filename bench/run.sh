#!/usr/bin/env bash
#
# bench/run.sh
#      Throughput, lag, latency and memory figures of pgoutput_stream with the
#      nats target, on a private PostgreSQL 15 cluster and a private
#      nats-server -js (both on free loopback ports, in a temporary directory
#      that is removed on exit).  Run as root, like test/run-tests.sh:
#
#          sudo bench/run.sh
#
#      The extension must already be built and installed.  stdout carries only
#      the figures, one "name value unit" line each; progress goes to stderr.
#      Environment: BENCH_KEEP=1 keeps the temporary directory; BENCH_PG_CONF
#      adds lines to postgresql.conf; BENCH_SMOKE=1 runs every workload at a
#      small size (a check that the script works, not a measurement).

set -euo pipefail
exec </dev/null

# shellcheck source-path=SCRIPTDIR source=../scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/common.sh"

BENCH_DIR=$PGS_ROOT/bench
NODE_DIR=$PGS_ROOT/test/nats

BULK_ROWS=200000
BULK_ROUNDS=5
MEM_ROWS=1000000
SMALL_CLIENTS=4
SMALL_PER_CLIENT=5000
LAT_TX=2000
LAT_RATE=200
# BENCH_SMOKE=1: every workload at a small size, to check that the script
# works (test/run-tests.sh runs it so); the figures mean nothing then
if [[ ${BENCH_SMOKE:-0} == 1 ]]; then
	BULK_ROWS=5000 BULK_ROUNDS=2 MEM_ROWS=20000 SMALL_PER_CLIENT=500 LAT_TX=100
fi

# Figures go to fd 3 (the original stdout); everything else to stderr.
exec 3>&1 1>&2

work= nats_pid= sub_pid=
cleanup()
{
	local rc=$?

	trap - EXIT
	if [[ -n $sub_pid ]]; then kill "$sub_pid" 2>/dev/null || true; fi
	if [[ -n $work && -d $work ]]; then
		pgs_stop_postmasters "$work"
	fi
	if [[ -n $nats_pid ]]; then
		kill "$nats_pid" 2>/dev/null || true
		wait "$nats_pid" 2>/dev/null || true
	fi
	if ((rc != 0)) && [[ -n $work ]]; then
		pgs_log "FAILED (exit $rc); server log tail:"
		tail -n 30 "$work/postgres.log" 2>/dev/null || true
	fi
	if [[ -n $work && -d $work && ${BENCH_KEEP:-0} != 1 ]]; then
		rm -rf "$work"
	elif [[ -n $work ]]; then
		pgs_log "kept $work"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

figure() { printf '%s %s %s\n' "$1" "$2" "$3" >&3; pgs_log "figure: $1 $2 $3"; }
now() { echo "$EPOCHREALTIME"; }
# elapsed seconds between two now() stamps
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.6f", b - a }'; }

pgs_require_root
pgs_check_tools
for t in "$PGS_PGBIN/pgbench" node curl jq awk gcc; do
	command -v "$t" >/dev/null 2>&1 || pgs_die "missing $t"
done
[[ -f $("$PGS_PG_CONFIG" --pkglibdir)/pgoutput_stream.so ]] ||
	pgs_die "pgoutput_stream is not installed (make install)"
if [[ ! -d $NODE_DIR/node_modules/nats ]]; then
	pgs_log "npm ci in test/nats"
	(cd "$NODE_DIR" && npm ci --no-audit --no-fund </dev/null)
fi

work=$(mktemp -d /tmp/pgs-bench.XXXXXX)
chmod 755 "$work"
chown postgres: "$work"

# JetStream's own ceiling: a small C program publishing with cnats
gcc -O2 -Wall -Wextra -o "$work/js_ceiling" "$BENCH_DIR/js_ceiling.c" -lnats ||
	pgs_die "could not build bench/js_ceiling.c"

# ---------------------------------------------------------------- nats-server
nats_port=$(pgs_free_port 24222)
mon_port=$(pgs_free_port 28222)
mkdir -p "$work/js"
nats-server -js -a 127.0.0.1 -p "$nats_port" -m "$mon_port" -sd "$work/js" \
	-l "$work/nats.log" &
nats_pid=$!
nats_url=nats://127.0.0.1:$nats_port
pgs_wait_until 20 curl -sf "http://127.0.0.1:$mon_port/healthz?js-enabled-only=true" -o /dev/null ||
	pgs_die "nats-server did not come up"
pgs_log "nats-server $nats_url (monitor $mon_port), pid $nats_pid"

# ----------------------------------------------------------------- PostgreSQL
pg_port=$(pgs_free_port 25432)
pgs_as_postgres initdb -D "$work/data" -A trust -U postgres --no-sync >/dev/null
cat >>"$work/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $pg_port
unix_socket_directories = '$work'
shared_preload_libraries = 'pgoutput_stream'
wal_level = logical
synchronous_commit = on
max_wal_size = '4GB'
log_min_messages = info
pgoutput_stream.nats_url = '$nats_url'
${BENCH_PG_CONF:-}
CONF
pgs_as_postgres pg_ctl -D "$work/data" -l "$work/postgres.log" -w -t 60 start >/dev/null
pgs_log "PostgreSQL 15 on 127.0.0.1:$pg_port, log $work/postgres.log"

psql_cmd() { pgs_as_postgres psql -X -q -At -v ON_ERROR_STOP=1 -h "$work" -p "$pg_port" -d bench "$@"; }
sql() { psql_cmd -c "$1"; }
pgs_as_postgres createdb -h "$work" -p "$pg_port" bench
sql "CREATE EXTENSION pgoutput_stream"

# Waits, polling every millisecond, until stream $1 has confirmed all WAL
# written so far (JetStream acknowledged every event), then returns the
# seconds from the commit of the last transaction it confirmed to the
# moment the worker had all of that transaction's acknowledgements
# (worker_status: confirmed_commit_time, last_ack_at).  Both stamps come
# from the server's clock, so the figure holds no process start-up.
sql "CREATE FUNCTION bench_delivery_seconds(stream text, timeout_s float8) RETURNS float8
LANGUAGE plpgsql AS \$\$
DECLARE
	target pg_lsn := pg_current_wal_lsn();
	deadline timestamptz := clock_timestamp() + make_interval(secs => timeout_s);
	st record;
BEGIN
	LOOP
		SELECT w.confirmed_lsn, w.confirmed_commit_time, w.last_ack_at INTO st
		FROM pgoutput_stream.streams s
			JOIN pgoutput_stream.worker_status() w ON w.stream_id = s.id
		WHERE s.name = stream;
		IF st.confirmed_lsn >= target THEN
			RETURN extract(epoch FROM st.last_ack_at - st.confirmed_commit_time);
		END IF;
		IF clock_timestamp() > deadline THEN
			RAISE EXCEPTION 'stream % did not confirm % within % s', stream, target, timeout_s;
		END IF;
		PERFORM pg_sleep(0.001);
	END LOOP;
END \$\$"

# Messages in JetStream stream $1 (monitoring endpoint).
js_count()
{
	curl -sf "http://127.0.0.1:$mon_port/jsz?streams=true" |
		jq -r --arg s "$1" '[.account_details[]?.stream_detail[]? | select(.name == $s) | .state.messages] | add // 0'
}
js_add() { node "$NODE_DIR/js_admin.mjs" "$nats_url" -- add "$1" file "$2.>" >/dev/null; }
# Delete JetStream stream $1: its files go before the kernel writes them
# out, which would slow down what runs next
js_del() { node "$NODE_DIR/js_admin.mjs" "$nats_url" -- delete "$1" >/dev/null; }
# $1 as a percentage of $2, one decimal
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", a / b * 100 }'; }
# create_stream with the nats target and its own prefix / JetStream stream
make_stream()
{
	local name=$1 pub=$2 prefix=$3 jstream=$4
	js_add "$jstream" "$prefix"
	sql "SELECT pgoutput_stream.create_stream('$name', '$pub', targets => '{nats}',
		options => '{\"subject_prefix\": \"$prefix\", \"nats_stream\": \"$jstream\"}')" >/dev/null
	pgs_wait_until 30 stream_state_is "$name" streaming ||
		pgs_die "stream $name did not reach streaming: $(sql "SELECT state, state_reason FROM pgoutput_stream.stream_status WHERE name = '$name'")"
}
stream_state_is() { [[ $(sql "SELECT state FROM pgoutput_stream.stream_status WHERE name = '$1'") == "$2" ]]; }
# Poll (every 20 ms, up to $3 s) until JetStream stream $1 holds >= $2 messages.
wait_js_count()
{
	local deadline=$((SECONDS + $3))
	while (($(js_count "$1") < $2)); do
		((SECONDS < deadline)) || return 1
		sleep 0.02
	done
}

# ======================================================================= bulk
# BULK_ROUNDS rounds, each a bulk transaction followed by the id-only JetStream
# ceiling: the machine's speed drifts by ±10-15 % within minutes, so the
# target's ratio is taken per pair (bulk, ceiling measured right after it)
# and the median pair is reported, with the lowest and highest.  Each round
# has a stream of its own into a new JetStream stream, as each ceiling run
# has: with one stream for all rounds, the last round was 10-40 % slower
# than the others (not the worker, whose CPU per round and RSS stayed the
# same; nats-server's memory grew with each round).
pgs_banner "bulk: one transaction of $BULK_ROWS rows, $BULK_ROUNDS rounds"
# without autovacuum: a vacuum of the previous round's rows, started by
# the next insert, took CPU from the delivery it was timed against
sql "CREATE TABLE bench (id bigint PRIMARY KEY, t text, n numeric, ts timestamptz, j jsonb)
     WITH (autovacuum_enabled = off)"
sql "CREATE PUBLICATION p FOR TABLE bench"

# One transaction of $BULK_ROWS rows from id $1 + 1 through stream $2 into
# JetStream stream $3; sets round_bulk_rate: events per second from its
# commit to the last acknowledgement
bulk_round()
{
	local first=$1 stream=$2 jstream=$3 base t0 t1 dt events
	base=$(js_count "$jstream")
	t0=$(now)
	sql "INSERT INTO bench SELECT g, 'row ' || g, g * 1.25, now(), jsonb_build_object('g', g, 'k', 'v')
	     FROM generate_series($first + 1, $first + $BULK_ROWS) g"
	t1=$(now)
	pgs_log "insert + commit took $(elapsed "$t0" "$t1") s"
	events=$((BULK_ROWS + 2))	# Begin, the inserts, Commit (a Relation event comes on top)
	dt=$(sql "SELECT bench_delivery_seconds('$stream', 240)") || pgs_die "stream $stream did not catch up"
	# every event is in JetStream (not timed)
	wait_js_count "$jstream" $((base + events)) 240 || pgs_die "JetStream did not receive the bulk transaction"
	round_bulk_rate=$(awk -v n="$events" -v t="$dt" 'BEGIN { printf "%.0f", n / t }')
	pgs_log "delivered $events events in $dt s after the commit: $round_bulk_rate events/s"
}

# The same number of 250-byte messages, published asynchronously with
# message ids by cnats alone, each run into its own new JetStream stream
# ($2, with its own ids: a repeated id would be a cheap duplicate).  $1 is
# js_ceiling's HEADERS: 0 for the id only (the ceiling the target is set
# against); 1 with pgoutput_stream's eight Pg-* headers set through cnats'
# header functions (what those cost); 2 with the ten headers of a
# pgoutput_stream message encoded as one block, as the extension sends them
# (what JetStream costs for messages like ours).  Sets round_ceiling (msgs/s)
# and round_ceiling_cpu: CPU microseconds per message of the publishing
# program and nats-server together.
ceiling_run()
{
	local out n0 n1
	js_add "$2" "${2,,}"
	n0=$(cpu_ticks "$nats_pid")
	out=$("$work/js_ceiling" "$nats_url" "$2" "${2,,}" "$BULK_ROWS" 250 "$1")
	n1=$(cpu_ticks "$nats_pid")
	js_del "$2"
	round_ceiling=${out% *}
	round_ceiling_cpu=$(awk -v c="${out#* }" -v t=$((n1 - n0)) -v hz="$(getconf CLK_TCK)" -v n="$BULK_ROWS" \
		'BEGIN { printf "%.2f", c + t / hz * 1e6 / n }')
	pgs_log "js_ceiling $1 into $2: $round_ceiling msgs/s, $round_ceiling_cpu us of CPU per message (client and nats-server)"
}
# CPU time (user + system) of process $1 and all its threads, in clock ticks
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

sql "SELECT pg_create_logical_replication_slot('ceiling', 'pgoutput')" >/dev/null
: >"$work/bulk.rounds"
for ((round = 1; round <= BULK_ROUNDS; round++)); do
	if ((round > 1)); then
		sql "SELECT pgoutput_stream.drop_stream('bulk$((round - 1))')" >/dev/null
		js_del "BULK$((round - 1))"
	fi
	make_stream "bulk$round" p "bulk$round" "BULK$round"
	bulk_round $(((round - 1) * BULK_ROWS)) "bulk$round" "BULK$round"
	if ((round == 1)); then
		# pgoutput alone on the first round's transaction, after its
		# delivery (so that the two do not compete for CPU)
		t0=$(now)
		n=$(sql "SELECT count(*) FROM pg_logical_slot_get_binary_changes('ceiling', NULL, NULL, 'proto_version', '1', 'publication_names', 'p')")
		t1=$(now)
		sql "SELECT pg_drop_replication_slot('ceiling')" >/dev/null
		dt=$(elapsed "$t0" "$t1")
		pgs_log "decoded $n pgoutput messages ($BULK_ROWS rows) in $dt s"
		decode_rate=$(awk -v n="$BULK_ROWS" -v t="$dt" 'BEGIN { printf "%.0f", n / t }')
	fi
	ceiling_run 0 "CEIL0R$round"
	ceiling=$round_ceiling ceiling_cpu=$round_ceiling_cpu
	ratio=$(pct "$round_bulk_rate" "$ceiling")
	ceiling_run 2 "CEIL2R$round"
	ratio_enc=$(pct "$round_bulk_rate" "$round_ceiling")
	pgs_log "round $round: bulk $round_bulk_rate events/s, ceiling $ceiling msgs/s: $ratio %; with the extension's headers $round_ceiling msgs/s: $ratio_enc %"
	echo "$round_bulk_rate $ceiling $ratio $ceiling_cpu $round_ceiling $ratio_enc" >>"$work/bulk.rounds"
done
ceiling_run 1 CEIL1
ceiling_hdr=$round_ceiling
bulk_col() { awk -v c="$1" '{ print $c }' "$work/bulk.rounds" | median; }
bulk_rate=$(bulk_col 1)
figure bulk_events_per_s "$bulk_rate" events/s
figure decode_ceiling_rows_per_s "$decode_rate" rows/s
figure jetstream_ceiling_msgs_per_s "$(bulk_col 2)" msgs/s
figure jetstream_ceiling_with_headers_msgs_per_s "$ceiling_hdr" msgs/s
figure jetstream_ceiling_with_encoded_headers_msgs_per_s "$(bulk_col 5)" msgs/s
figure jetstream_ceiling_cpu_us_per_msg "$(bulk_col 4)" us
figure bulk_vs_jetstream_ceiling_pct "$(bulk_col 3)" %
figure bulk_vs_jetstream_ceiling_min_pct "$(awk '{ print $3 }' "$work/bulk.rounds" | sort -n | head -n 1)" %
figure bulk_vs_jetstream_ceiling_max_pct "$(awk '{ print $3 }' "$work/bulk.rounds" | sort -n | tail -n 1)" %
figure bulk_vs_jetstream_ceiling_encoded_headers_pct "$(bulk_col 6)" %

# ===================================================================== memory
pgs_banner "memory: one transaction of $MEM_ROWS rows"
bulk_stream=bulk$BULK_ROUNDS bulk_js=BULK$BULK_ROUNDS
wpid=$(sql "SELECT pid FROM pgoutput_stream.stream_status WHERE name = '$bulk_stream'")
pgs_log "worker pid $wpid, VmHWM before: $(awk '/VmHWM/ { print $2, $3 }' "/proc/$wpid/status")"
base=$(js_count "$bulk_js")
t0=$(now)
sql "INSERT INTO bench SELECT g, 'row ' || g, g * 1.25, now(), jsonb_build_object('g', g, 'k', 'v')
     FROM generate_series($BULK_ROUNDS * $BULK_ROWS + 1, $BULK_ROUNDS * $BULK_ROWS + $MEM_ROWS) g"
t1=$(now)
pgs_log "insert + commit took $(elapsed "$t0" "$t1") s"
wait_js_count "$bulk_js" $((base + MEM_ROWS + 2)) 240 || pgs_die "JetStream did not receive the 1M-row transaction"
t2=$(now)
pgs_log "delivered in $(elapsed "$t1" "$t2") s after the commit"
[[ $(sql "SELECT pid FROM pgoutput_stream.stream_status WHERE name = '$bulk_stream'") == "$wpid" ]] ||
	pgs_die "the worker restarted during the transaction"
hwm_kb=$(awk '/VmHWM/ { print $2 }' "/proc/$wpid/status")
pgs_log "worker memory after delivery: $(grep -E '^(VmHWM|VmRSS|RssAnon|RssFile|RssShmem)' "/proc/$wpid/status" | tr -s ' \t\n' ' ')"
figure worker_peak_rss_mb "$(awk -v k="$hwm_kb" 'BEGIN { printf "%.1f", k / 1024 }')" MB
ldwm_mb=$(sql "SELECT setting::bigint / 1024 FROM pg_settings WHERE name = 'logical_decoding_work_mem'")
figure logical_decoding_work_mem_mb "$ldwm_mb" MB
figure worker_peak_rss_over_ldwm_mb "$(awk -v k="$hwm_kb" -v l="$ldwm_mb" 'BEGIN { printf "%.1f", k / 1024 - l }')" MB
sql "SELECT pgoutput_stream.drop_stream('$bulk_stream')" >/dev/null
sql "DROP TABLE bench"
sql "CHECKPOINT"

# ========================================================== small transactions
small_total=$((SMALL_CLIENTS * SMALL_PER_CLIENT))
pgs_banner "small transactions: $small_total single-row inserts, $SMALL_CLIENTS clients"
sql "CREATE TABLE small (id bigserial PRIMARY KEY, t text, ts timestamptz DEFAULT now())"
sql "CREATE PUBLICATION small_pub FOR TABLE small"
echo "INSERT INTO small (t) VALUES ('small transaction');" >"$work/small.sql"
chmod 644 "$work/small.sql"
run_pgbench()
{
	pgs_as_postgres pgbench -n -h "$work" -p "$pg_port" "$@" bench 2>&1 |
		tee "$work/pgbench.out" | awk '/^tps/ { sub(/^tps = /, ""); printf "%.1f\n", $1 }' | tail -n 1
}
# microseconds per small transaction from a difference in clock ticks
per_tx_us() { awk -v t="$1" -v hz="$(getconf CLK_TCK)" -v n="$small_total" 'BEGIN { printf "%.1f", t / hz * 1e6 / n }'; }
# Busy and total clock ticks of the whole machine, all CPUs ("busy total")
machine_ticks() { awk '/^cpu / { t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t; exit }' /proc/stat; }
# One pgbench run of the small transactions with a fresh stream $1 (none
# if empty) whose options are $2; sets round_tps, round_lag (ms), and the
# CPU time per transaction of the worker and of nats-server (round_worker_us,
# round_nats_us) from the start of pgbench until the stream caught up.
# Without a stream, it sets how busy the CPUs were while pgbench ran
# (round_busy_pct) and the whole machine's CPU time per transaction
# (round_writer_us): what the writers cost.
small_round()
{
	local name=$1 options=$2 tps base count lag wpid w0 n0 s0 s1
	sql "TRUNCATE small"
	sql "CHECKPOINT"
	if [[ -z $name ]]; then
		[[ $(sql "SELECT count(*) FROM pg_replication_slots") == 0 ]] || pgs_die "a slot is left over"
		s0=$(machine_ticks)
		round_tps=$(run_pgbench -c "$SMALL_CLIENTS" -j 2 -t "$SMALL_PER_CLIENT" -f "$work/small.sql")
		s1=$(machine_ticks)
		round_busy_pct=$(pct $((${s1% *} - ${s0% *})) $((${s1#* } - ${s0#* })))
		round_writer_us=$(per_tx_us $((${s1% *} - ${s0% *})))
		round_lag=-
		return
	fi
	sql "SELECT pgoutput_stream.create_stream('$name', 'small_pub', targets => '{nats}', options => '$options')" >/dev/null
	pgs_wait_until 30 stream_state_is "$name" streaming || pgs_die "stream $name did not reach streaming"
	base=$(js_count "${name^^}")
	wpid=$(sql "SELECT pid FROM pgoutput_stream.stream_status WHERE name = '$name'")
	w0=$(cpu_ticks "$wpid") n0=$(cpu_ticks "$nats_pid")
	tps=$(run_pgbench -c "$SMALL_CLIENTS" -j 2 -t "$SMALL_PER_CLIENT" -f "$work/small.sql")
	lag=$(sql "SELECT round((bench_delivery_seconds('$name', 120) * 1000)::numeric, 1)") ||
		pgs_die "stream $name did not catch up"
	round_worker_us=$(per_tx_us $(($(cpu_ticks "$wpid") - w0)))
	round_nats_us=$(per_tx_us $(($(cpu_ticks "$nats_pid") - n0)))
	# every event is in JetStream (not timed): Begin, Insert, Commit, or the
	# Insert alone without transaction events
	count=$((3 * small_total))
	[[ $options == *'"transaction_events": false'* ]] && count=$small_total
	wait_js_count "${name^^}" $((base + count)) 120 || pgs_die "JetStream did not receive every small transaction of $name"
	sql "SELECT pgoutput_stream.drop_stream('$name')" >/dev/null
	pgs_log "$name: $tps tps, caught up $lag ms after the writers ended; CPU per transaction: worker $round_worker_us us, nats-server $round_nats_us us"
	round_tps=$tps round_lag=$lag
}
# The writers beside JetStream's own work and none of the extension's:
# bench/js_ceiling.c publishes $1 messages of 250 bytes per transaction at
# the rate the stream round just before delivered ($2 tps: $1 times that
# many messages per second, in 1 ms bursts, with ids, every one
# acknowledged) into JetStream stream $3 while pgbench runs; stopped when
# pgbench is done, and the stream deleted.  What cnats and nats-server alone cost the writers at
# that message rate: a floor under small_tx_overhead_pct for any publisher
# to JetStream on this machine.  Sets round_tps.
js_alone_round()
{
	local per_tx=$1 tps=$2 stream=$3 jpid
	sql "TRUNCATE small"
	sql "CHECKPOINT"
	js_add "$stream" "${stream,,}"
	"$work/js_ceiling" "$nats_url" "$stream" "${stream,,}" $((3 * per_tx * small_total)) 250 0 \
		"$(awk -v p="$per_tx" -v t="$tps" 'BEGIN { printf "%.0f", p * t }')" >/dev/null &
	jpid=$!
	round_tps=$(run_pgbench -c "$SMALL_CLIENTS" -j 2 -t "$SMALL_PER_CLIENT" -f "$work/small.sql")
	kill -0 "$jpid" 2>/dev/null || pgs_die "js_ceiling stopped before the writers were done"
	kill "$jpid"
	wait "$jpid" 2>/dev/null || true
	js_del "$stream"
	pgs_log "$stream: $round_tps tps beside JetStream alone at $per_tx messages per transaction of $tps tps"
}
js_add SMALL small
js_add SMALL1 small1
: >"$work/small.rounds"
for round in 1 2 3; do
	small_round "" ""
	tps_without=$round_tps busy_without=$round_busy_pct writer_us=$round_writer_us
	small_round small '{"subject_prefix": "small", "nats_stream": "SMALL"}'
	tps_with=$round_tps lag_with=$round_lag worker_with=$round_worker_us nats_with=$round_nats_us
	small_round small1 '{"subject_prefix": "small1", "nats_stream": "SMALL1", "transaction_events": false}'
	tps_one=$round_tps lag_one=$round_lag worker_one=$round_worker_us nats_one=$round_nats_us
	js_alone_round 3 "$tps_with" "JSALONE3R$round"
	tps_js3=$round_tps
	js_alone_round 1 "$tps_one" "JSALONE1R$round"
	tps_js1=$round_tps
	pgs_log "round $round: without $tps_without tps, with $tps_with tps (lag $lag_with ms), one message per transaction $tps_one tps (lag $lag_one ms)"
	echo "$tps_without $tps_with $lag_with $tps_one $lag_one $worker_with $nats_with $worker_one $nats_one $busy_without $writer_us $tps_js3 $tps_js1" >>"$work/small.rounds"
done
col() { awk -v c="$1" '{ print $c }' "$work/small.rounds" | median; }
tps_without=$(col 1) tps_with=$(col 2) lag_with=$(col 3) tps_one=$(col 4) lag_one=$(col 5)
overhead() { awk -v a="$tps_without" -v b="$1" 'BEGIN { printf "%.1f", (a - b) / a * 100 }'; }
figure small_tx_writer_tps_without_stream "$tps_without" tps
figure small_tx_writer_tps_with_stream "$tps_with" tps
figure small_tx_overhead_pct "$(overhead "$tps_with")" %
figure small_tx_lag_ms "$lag_with" ms
figure small_tx_one_msg_writer_tps_with_stream "$tps_one" tps
figure small_tx_one_msg_overhead_pct "$(overhead "$tps_one")" %
figure small_tx_one_msg_lag_ms "$lag_one" ms
figure small_tx_worker_cpu_us_per_tx "$(col 6)" us
figure small_tx_nats_server_cpu_us_per_tx "$(col 7)" us
figure small_tx_one_msg_worker_cpu_us_per_tx "$(col 8)" us
figure small_tx_one_msg_nats_server_cpu_us_per_tx "$(col 9)" us
figure small_tx_cpu_busy_without_stream_pct "$(col 10)" %
figure small_tx_writer_cpu_us_per_tx "$(col 11)" us
figure small_tx_jetstream_alone_tps "$(col 12)" tps
figure small_tx_jetstream_alone_overhead_pct "$(overhead "$(col 12)")" %
figure small_tx_one_msg_jetstream_alone_tps "$(col 13)" tps
figure small_tx_one_msg_jetstream_alone_overhead_pct "$(overhead "$(col 13)")" %

# What decoding itself costs per small transaction: the same 20,000
# transactions through pgoutput alone, in one call (the floor under the
# worker's CPU per transaction; not a rate the workload can reach, since it
# decodes transactions as they commit, not all at once)
sql "TRUNCATE small"
sql "SELECT pg_create_logical_replication_slot('small_ceiling', 'pgoutput')" >/dev/null
run_pgbench -c "$SMALL_CLIENTS" -j 2 -t "$SMALL_PER_CLIENT" -f "$work/small.sql" >/dev/null
t0=$(now)
n=$(sql "SELECT count(*) FROM pg_logical_slot_get_binary_changes('small_ceiling', NULL, NULL, 'proto_version', '1', 'publication_names', 'small_pub')")
t1=$(now)
sql "SELECT pg_drop_replication_slot('small_ceiling')" >/dev/null
pgs_log "decoded $n pgoutput messages ($small_total transactions) in $(elapsed "$t0" "$t1") s"
figure small_tx_decode_ceiling_us_per_tx "$(awk -v t="$(elapsed "$t0" "$t1")" -v n="$small_total" 'BEGIN { printf "%.1f", t * 1e6 / n }')" us


# ==================================================================== latency
pgs_banner "latency: $LAT_TX single-row commits at ~$LAT_RATE/s"
sql "CREATE TABLE lat (id bigserial PRIMARY KEY, us bigint NOT NULL)"
sql "CREATE PUBLICATION lat_pub FOR TABLE lat"
# when each commit had returned to the writer (not published)
sql "CREATE TABLE lat_done (id bigint PRIMARY KEY, us bigint NOT NULL)"
sql "CREATE TABLE lat_recv (id bigint PRIMARY KEY, us bigint NOT NULL, stored_us bigint NOT NULL)"
make_stream lat lat_pub lat LAT
cat >"$work/lat.sql" <<'SQL'
INSERT INTO lat (us) VALUES ((extract(epoch FROM clock_timestamp()) * 1000000)::bigint);
INSERT INTO lat_done VALUES (currval('lat_id_seq'), (extract(epoch FROM clock_timestamp()) * 1000000)::bigint);
SQL
chmod 644 "$work/lat.sql"
node "$BENCH_DIR/latency_sub.mjs" "$nats_url" LAT "$LAT_TX" "$work/lat.recv" >"$work/lat.json" 2>"$work/lat.err" &
sub_pid=$!
pgs_wait_until 20 grep -qs ready "$work/lat.err" || pgs_die "latency subscriber did not start: $(cat "$work/lat.err")"
run_pgbench -c 1 -j 1 -R "$LAT_RATE" -t "$LAT_TX" -f "$work/lat.sql" >/dev/null
pgs_log "pgbench: $(grep -E '^(tps|latency average|rate limit)' "$work/pgbench.out" | tr '\n' ';')"
deadline=$((SECONDS + 60))
while kill -0 "$sub_pid" 2>/dev/null; do
	((SECONDS < deadline)) || pgs_die "latency subscriber did not see $LAT_TX inserts"
	sleep 0.1
done
wait "$sub_pid" || pgs_die "latency subscriber failed: $(cat "$work/lat.err")"
sub_pid=
pgs_log "subscriber: $(cat "$work/lat.json")"
# from the insert's stamp, taken just before its commit (includes the WAL flush)
figure latency_p50_ms "$(jq -r .p50_ms "$work/lat.json")" ms
figure latency_p99_ms "$(jq -r .p99_ms "$work/lat.json")" ms
figure latency_max_ms "$(jq -r .max_ms "$work/lat.json")" ms
# from the moment the commit had returned to the writer (the next statement's
# stamp); negative when the event arrived before the writer saw its commit
chmod 644 "$work/lat.recv"
psql_cmd -c "\\copy lat_recv FROM '$work/lat.recv'"
# figures $1_p50_ms, $1_p99_ms and $1_max_ms of the difference between the
# stamp column $2 of lat_recv and each commit's done stamp
latency_figures()
{
	local p50 p99 max
	read -r p50 p99 max < <(sql "SELECT round((percentile_cont(0.5) WITHIN GROUP (ORDER BY r.$2 - d.us) / 1000)::numeric, 2),
		round((percentile_cont(0.99) WITHIN GROUP (ORDER BY r.$2 - d.us) / 1000)::numeric, 2),
		round((max(r.$2 - d.us) / 1000.0)::numeric, 2)
		FROM lat_recv r JOIN lat_done d USING (id)" | tr '|' ' ')
	figure "$1_p50_ms" "$p50" ms
	figure "$1_p99_ms" "$p99" ms
	figure "$1_max_ms" "$max" ms
}
latency_figures latency_after_commit us
# the part of it until JetStream had stored the message (the stream's own
# stamp): the extension's share, without the consumer's delivery
latency_figures latency_after_commit_to_stored stored_us
sql "SELECT pgoutput_stream.drop_stream('lat')" >/dev/null

pgs_log "done"
