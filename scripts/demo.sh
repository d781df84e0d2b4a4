#!/usr/bin/env bash
#
# scripts/demo.sh
#      Live demo of pgoutput_stream on Debian 12, as root:
#
#          sudo scripts/demo.sh
#
#      Installs what is missing (skipped with PGS_SKIP_INSTALL=1), builds and
#      installs the extension, then, as the user "postgres", starts a
#      throwaway PostgreSQL 15 instance and a JetStream-enabled nats-server on
#      free loopback ports, creates a stream, changes some rows and shows the
#      events the stream's worker delivers.  Everything is stopped and removed
#      on exit.  The cluster of Debian's postgresql-15 package (15/main, port
#      5432) is not touched.
#
#      Environment: PGS_SKIP_INSTALL=1, PGS_DEMO_PG_PORT (first port tried,
#      default 55432), PGS_DEMO_NATS_PORT (default 54222),
#      PGS_DEMO_EVENT_TIMEOUT (seconds to wait for the events, default 30).

set -euo pipefail
exec </dev/null

# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# Server log lines that carry the stream's events: the log target writes
#   <time> [<pid>] pgoutput_stream worker: LOG:  stream "demo" event <subject>: <payload>
# (log_line_prefix below shows the backend type, %b, which is the worker's).
EVENT_LINE_RE='pgoutput_stream.*[[:space:]]event[[:space:]]'
# The demo's last change (subject postgres.public.demo_orders.delete); once it
# is in the log, every event has arrived.
LAST_EVENT_RE='demo_orders.*[Dd]elete|[Dd]elete.*demo_orders'
EVENT_TIMEOUT=${PGS_DEMO_EVENT_TIMEOUT:-30}

work=
nats_job=

process_gone()
{
	! kill -0 "$1" 2>/dev/null
}

# Stop nats-server (by the pid it wrote) and reap the runuser that started it.
stop_nats()
{
	local pid

	[[ -n $nats_job ]] || return 0
	if [[ -s $work/nats.pid ]]; then
		pid=$(<"$work/nats.pid")
		kill "$pid" 2>/dev/null || true
		if ! pgs_wait_until 15 process_gone "$pid"; then
			kill -KILL "$pid" 2>/dev/null || true
		fi
	fi
	wait "$nats_job" 2>/dev/null || true
	nats_job=
}

cleanup()
{
	local rc=$? f

	trap - EXIT
	if [[ -n $work && -d $work ]]; then
		if ((rc != 0)); then
			for f in "$work/postgresql.log" "$work/nats.log"; do
				if [[ -f $f ]]; then
					printf '\n---------------- %s (last 50 lines) ----------------\n' "${f##*/}"
					tail -n 50 "$f"
				fi
			done
		fi
		pgs_banner "Stopping PostgreSQL and nats-server, removing $work"
		if [[ -f $work/data/postmaster.pid ]]; then
			pgs_as_postgres pg_ctl -D "$work/data" stop -m fast -w -t 60 || true
		fi
		stop_nats
		rm -rf "$work"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

psql_demo()
{
	pgs_as_postgres psql -X -v ON_ERROR_STOP=1 -h "$work" -p "$pg_port" -U postgres -d postgres "$@"
}

nats_ready()
{
	(
		exec 3<>"/dev/tcp/127.0.0.1/$nats_port" &&
			IFS= read -r -t 2 line <&3 &&
			[[ $line == INFO*'"jetstream":true'* ]]
	) 2>/dev/null
}

# The demo's events in the server log, from byte $log_offset on.
demo_events()
{
	tail -c +"$((log_offset + 1))" "$work/postgresql.log" | grep -E "$EVENT_LINE_RE"
}

events_arrived()
{
	demo_events | grep -E "$LAST_EVENT_RE" >/dev/null
}

pgs_banner "pgoutput_stream demo"
pgs_require_root

pgs_banner "Installing packages"
pgs_install_packages
pgs_check_tools

work=$(mktemp -d /tmp/pgoutput_stream-demo.XXXXXX)
pgs_banner "Building and installing the extension"
pgs_copy_tree "$PGS_ROOT" "$work/src"
pgs_build "$work/src"
pgs_install "$work/src"
pgs_install_npm_clients "$work/src"
chown -R postgres:postgres "$work"

pg_port=$(pgs_free_port "${PGS_DEMO_PG_PORT:-55432}")
nats_port=$(pgs_free_port "${PGS_DEMO_NATS_PORT:-54222}")

pgs_banner "Starting PostgreSQL on 127.0.0.1:$pg_port"
if ! pgs_as_postgres initdb -D "$work/data" -U postgres -A trust --no-locale -E UTF8 >"$work/initdb.log" 2>&1; then
	cat "$work/initdb.log"
	pgs_die "initdb failed"
fi
cat >>"$work/data/postgresql.conf" <<EOF

# pgoutput_stream demo
listen_addresses = '127.0.0.1'
port = $pg_port
unix_socket_directories = '$work'
shared_preload_libraries = 'pgoutput_stream'
wal_level = logical
logging_collector = off
log_line_prefix = '%m [%p] %b: '
pgoutput_stream.nats_url = 'nats://127.0.0.1:$nats_port'
EOF
pgs_as_postgres pg_ctl -D "$work/data" -l "$work/postgresql.log" -w -t 60 start
pgs_log "server log: $work/postgresql.log"

pgs_banner "Starting nats-server (JetStream) on 127.0.0.1:$nats_port"
mkdir "$work/nats"
chown postgres:postgres "$work/nats"
pgs_as_postgres nats-server -js -a 127.0.0.1 -p "$nats_port" -sd "$work/nats" -P "$work/nats.pid" \
	>"$work/nats.log" 2>&1 &
nats_job=$!
pgs_wait_until 30 nats_ready || pgs_die "nats-server did not come up on 127.0.0.1:$nats_port"
pgs_log "nats-server is up with JetStream: nats://127.0.0.1:$nats_port"

pgs_banner "Creating the extension, a table, a publication and a stream"
# The stream delivers to the server log and to JetStream
psql_demo --echo-all <<'SQL'
CREATE EXTENSION pgoutput_stream;
CREATE TABLE demo_orders(id bigint primary key, item text, qty int, price numeric(10,2), created_at timestamptz default now());
CREATE PUBLICATION demo_pub FOR TABLE demo_orders;
SELECT pgoutput_stream.create_stream('demo', publication => 'demo_pub', targets => '{log,nats}');
SQL

log_offset=$(stat -c %s "$work/postgresql.log")

pgs_banner "Changing rows"
psql_demo --echo-all <<'SQL'
BEGIN;
INSERT INTO demo_orders(id, item, qty, price) VALUES (1, 'widget', 3, 9.99);
INSERT INTO demo_orders(id, item, qty, price) VALUES (2, 'gadget', 1, 24.50);
INSERT INTO demo_orders(id, item, qty, price) VALUES (3, 'gizmo', 7, 3.25);
COMMIT;
UPDATE demo_orders SET qty = 5 WHERE id = 2;
DELETE FROM demo_orders WHERE id = 3;
SQL

pgs_log "waiting up to $EVENT_TIMEOUT s for the worker to deliver the events"
if ! pgs_wait_until "$EVENT_TIMEOUT" events_arrived; then
	psql_demo -c 'SELECT * FROM pgoutput_stream.stream_status' -x || true
	pgs_die "the events did not arrive in the server log within $EVENT_TIMEOUT s"
fi

pgs_banner "Stream status"
psql_demo --echo-all <<'SQL'
SELECT * FROM pgoutput_stream.stream_status \gx
SQL

pgs_banner "Events"
echo "Events delivered by the worker (server log):"
demo_events
echo
delivered_to_nats()
{
	[[ $(psql_demo -Atc "SELECT in_flight = 0 AND target_counters->>'nats' = events::text FROM pgoutput_stream.stream_status WHERE name = 'demo'") == t ]]
}
pgs_wait_until "$EVENT_TIMEOUT" delivered_to_nats || pgs_die "JetStream did not acknowledge the events within $EVENT_TIMEOUT s"
echo "Messages stored in JetStream stream postgres_replication (subject, Nats-Msg-Id, payload):"
pgs_as_postgres node "$work/src/test/nats/js_dump.mjs" "nats://127.0.0.1:$nats_port" postgres_replication |
	node -e '
		const lines = require("fs").readFileSync(0, "utf8").trim().split("\n");
		for (const l of lines) {
			const m = JSON.parse(l);
			if (m.seq) console.log(`${m.seq} ${m.subject} ${m.id}\n    ${m.data}`);
			else console.log(`(${m.count} messages)`);
		}'
pgs_banner "Demo finished"
