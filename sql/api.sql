-- The SQL API: create, stop, start, alter, drop, and stream_status
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgoutput_stream;
RESET client_min_messages;
SET synchronous_commit = on;

-- poll stream_status until the stream reaches a state (no fixed sleeps)
CREATE FUNCTION wait_for_state(stream text, wanted text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	current text;
BEGIN
	FOR i IN 1 .. 600 LOOP
		SELECT state INTO current FROM pgoutput_stream.stream_status WHERE name = stream;
		IF current = wanted THEN
			RETURN current;
		END IF;
		PERFORM pg_sleep(0.05);
		PERFORM pg_stat_clear_snapshot();
	END LOOP;
	RETURN 'timed out in state ' || coalesce(current, 'none');
END
$$;

CREATE TABLE api_t (id int PRIMARY KEY, v text);
CREATE PUBLICATION api_pub FOR TABLE api_t;

SELECT pgoutput_stream.create_stream('api_s', publication => 'api_pub');
SELECT wait_for_state('api_s', 'streaming');
SELECT name, database = current_database() AS this_db, state, pid IS NOT NULL AS has_pid,
       publication, slot_name, targets, format, enabled, last_error
FROM pgoutput_stream.stream_status;

-- the slot exists and the worker holds it
SELECT slot_name, plugin, slot_type, database = current_database() AS this_db,
       active, active_pid = (SELECT pid FROM pgoutput_stream.stream_status WHERE name = 'api_s') AS held_by_worker
FROM pg_replication_slots WHERE slot_name = 'pgs_api_s';

-- the worker is recognisable
SELECT backend_type, application_name FROM pg_stat_activity
WHERE pid = (SELECT pid FROM pgoutput_stream.stream_status WHERE name = 'api_s');

-- rows are delivered and confirmed: counters move, lag drops to zero
INSERT INTO api_t VALUES (1, 'one'), (2, 'two');
SELECT pg_current_wal_flush_lsn() AS target \gset
CREATE FUNCTION wait_for_confirmed(stream text, target pg_lsn) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
	FOR i IN 1 .. 600 LOOP
		IF (SELECT confirmed_lsn >= target FROM pgoutput_stream.stream_status WHERE name = stream) THEN
			RETURN true;
		END IF;
		PERFORM pg_sleep(0.05);
	END LOOP;
	RETURN false;
END
$$;
SELECT wait_for_confirmed('api_s', :'target');
SELECT transactions, events, bytes > 0 AS has_bytes, lag_bytes >= 0 AS lag_known
FROM pgoutput_stream.stream_status WHERE name = 'api_s';
-- caught up: no lag in time, nothing in flight, what went to which target
SELECT state_reason, lag_time, confirmed_commit_time <= now() AS commit_time_known,
       in_flight, target_counters, last_ack_at IS NOT NULL AS acked, retries,
       wal_status, safe_wal_size IS NULL AS no_wal_limit, retained_wal >= 0 AS retained_known,
       wal_warning
FROM pgoutput_stream.stream_status WHERE name = 'api_s';

-- stop takes effect at commit
BEGIN;
SELECT pgoutput_stream.stop_stream('api_s');
SELECT enabled FROM pgoutput_stream.stream_status WHERE name = 'api_s';
ROLLBACK;
SELECT state, enabled FROM pgoutput_stream.stream_status WHERE name = 'api_s';
SELECT pgoutput_stream.stop_stream('api_s');
SELECT wait_for_state('api_s', 'stopped');
SELECT pid, enabled FROM pgoutput_stream.stream_status WHERE name = 'api_s';
SELECT active FROM pg_replication_slots WHERE slot_name = 'pgs_api_s';
-- stopping twice is harmless
SELECT pgoutput_stream.stop_stream('api_s');

-- changes made while stopped wait in the slot
INSERT INTO api_t VALUES (3, 'three');
SELECT subject, payload::jsonb -> 'Insert' -> 'new_tuple' AS new_tuple
FROM pgoutput_stream.peek('api_s', 10) WHERE subject LIKE '%api_t%';

-- start resumes; starting twice is harmless
SELECT pgoutput_stream.start_stream('api_s');
SELECT wait_for_state('api_s', 'streaming');
SELECT pgoutput_stream.start_stream('api_s');

-- a start that rolls back leaves the stream stopped
SELECT pgoutput_stream.stop_stream('api_s');
SELECT wait_for_state('api_s', 'stopped');
BEGIN;
SELECT pgoutput_stream.start_stream('api_s');
ROLLBACK;
SELECT state, enabled FROM pgoutput_stream.stream_status WHERE name = 'api_s';

-- alter: options merge, null removes, validated like create
SELECT pgoutput_stream.alter_stream('api_s', options => '{"value_mode": "text"}');
SELECT pgoutput_stream.alter_stream('api_s', options => '{"subject_prefix": "app.cdc"}');
SELECT options FROM pgoutput_stream.streams WHERE name = 'api_s';
SELECT pgoutput_stream.alter_stream('api_s', format => 'text', options => '{"value_mode": null}');
SELECT format, options FROM pgoutput_stream.streams WHERE name = 'api_s';
SELECT pgoutput_stream.alter_stream('api_s', format => 'json');

-- alter restarts a running stream with the new settings
SELECT pgoutput_stream.start_stream('api_s');
SELECT wait_for_state('api_s', 'streaming');
SELECT pid AS old_pid FROM pgoutput_stream.stream_status WHERE name = 'api_s' \gset
SELECT pgoutput_stream.alter_stream('api_s', options => '{"value_mode": "text"}');
CREATE FUNCTION wait_for_new_pid(stream text, old integer) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
	FOR i IN 1 .. 600 LOOP
		IF (SELECT pid IS NOT NULL AND pid <> old AND state = 'streaming'
			FROM pgoutput_stream.stream_status WHERE name = stream) THEN
			RETURN true;
		END IF;
		PERFORM pg_sleep(0.05);
	END LOOP;
	RETURN false;
END
$$;
SELECT wait_for_new_pid('api_s', :old_pid);

-- a stream that does not start
SELECT pgoutput_stream.create_stream('api_idle', 'api_pub', start => false, format => 'json-pretty');
SELECT name, state, pid IS NOT NULL AS has_pid, enabled FROM pgoutput_stream.stream_status ORDER BY name;

-- an explicit slot name, and an existing slot reused
SELECT pgoutput_stream.create_stream('api_named', 'api_pub', slot => 'my_slot', start => false);
SELECT slot_name FROM pgoutput_stream.streams WHERE name = 'api_named';
SELECT pgoutput_stream.drop_stream('api_named', drop_slot => false);
SELECT count(*) AS kept FROM pg_replication_slots WHERE slot_name = 'my_slot';
SELECT pgoutput_stream.create_stream('api_named', 'api_pub', slot => 'my_slot', start => false);
SELECT pgoutput_stream.drop_stream('api_named');
SELECT count(*) AS dropped FROM pg_replication_slots WHERE slot_name = 'my_slot';

-- a create that rolls back leaves no slot and no row
BEGIN;
SELECT pgoutput_stream.create_stream('api_gone', 'api_pub');
ROLLBACK;
SELECT count(*) AS rows FROM pgoutput_stream.streams WHERE name = 'api_gone';
SELECT count(*) AS slots FROM pg_replication_slots WHERE slot_name = 'pgs_api_gone';
-- likewise inside a savepoint that rolls back while the transaction commits
BEGIN;
SAVEPOINT a;
SELECT pgoutput_stream.create_stream('api_gone', 'api_pub', start => false);
ROLLBACK TO SAVEPOINT a;
COMMIT;
SELECT count(*) AS rows FROM pgoutput_stream.streams WHERE name = 'api_gone';
SELECT count(*) AS slots FROM pg_replication_slots WHERE slot_name = 'pgs_api_gone';

-- drop stops a running worker and drops its slot
SELECT pgoutput_stream.drop_stream('api_s');
SELECT pgoutput_stream.drop_stream('api_idle');
SELECT count(*) AS streams FROM pgoutput_stream.stream_status;
SELECT count(*) AS slots FROM pg_replication_slots WHERE slot_name LIKE 'pgs_api%';
SELECT count(*) AS workers FROM pg_stat_activity WHERE backend_type = 'pgoutput_stream worker';

-- a drop that rolls back keeps the stream, its slot and its worker
SELECT pgoutput_stream.create_stream('api_keep', 'api_pub');
SELECT wait_for_state('api_keep', 'streaming');
BEGIN;
SELECT pgoutput_stream.drop_stream('api_keep');
SELECT count(*) AS rows_inside FROM pgoutput_stream.streams WHERE name = 'api_keep';
ROLLBACK;
SELECT count(*) AS slots FROM pg_replication_slots WHERE slot_name = 'pgs_api_keep';
SELECT wait_for_state('api_keep', 'streaming');

-- the extension's own table is never streamed, even FOR ALL TABLES
CREATE PUBLICATION api_all FOR ALL TABLES;
SELECT pgoutput_stream.create_stream('api_all_s', 'api_all', start => false);
SELECT pgoutput_stream.alter_stream('api_all_s', options => '{"value_mode": "text"}');
INSERT INTO api_t VALUES (10, 'ten');
SELECT DISTINCT subject FROM pgoutput_stream.peek('api_all_s', 100)
WHERE subject NOT LIKE '%.transactions.%' ORDER BY 1;

-- DROP EXTENSION removes every stream with its worker and slot; a
-- rollback keeps them
BEGIN;
DROP EXTENSION pgoutput_stream;
ROLLBACK;
SELECT count(*) AS slots FROM pg_replication_slots WHERE slot_name IN ('pgs_api_keep', 'pgs_api_all_s');
SELECT wait_for_state('api_keep', 'streaming');
DROP EXTENSION pgoutput_stream;
SELECT count(*) AS slots FROM pg_replication_slots WHERE slot_name LIKE 'pgs_api%';
SELECT count(*) AS workers FROM pg_stat_activity WHERE backend_type = 'pgoutput_stream worker';
CREATE EXTENSION pgoutput_stream;
DROP PUBLICATION api_all;
