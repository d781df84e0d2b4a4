/* pgoutput_stream--1.0.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION pgoutput_stream" to load this file. \quit

-- Streams of this database.  Written only through the functions below.
CREATE TABLE pgoutput_stream.streams (
	id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	name text NOT NULL UNIQUE,
	publication name NOT NULL,
	slot_name name NOT NULL UNIQUE,
	targets text[] NOT NULL,
	format text NOT NULL,
	options jsonb NOT NULL DEFAULT '{}',
	enabled boolean NOT NULL,
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	-- initial snapshot: none asked, pending (not delivered yet), done
	snapshot text NOT NULL DEFAULT 'none'
		CHECK (snapshot IN ('none', 'pending', 'done')),
	snapshot_attempts integer NOT NULL DEFAULT 0
);
COMMENT ON TABLE pgoutput_stream.streams IS
	'Streams of this database; change them with the pgoutput_stream functions';
SELECT pg_catalog.pg_extension_config_dump('pgoutput_stream.streams', '');

CREATE FUNCTION pgoutput_stream.create_stream(
	name text,
	publication text,
	slot text DEFAULT NULL,
	targets text[] DEFAULT '{log}',
	format text DEFAULT 'json',
	options jsonb DEFAULT '{}',
	start boolean DEFAULT true,
	snapshot boolean DEFAULT false)
RETURNS void
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'pgoutput_stream_create_stream';
COMMENT ON FUNCTION pgoutput_stream.create_stream(text, text, text, text[], text, jsonb, boolean, boolean) IS
	'Create a stream and its replication slot, and start it unless start is false; with snapshot, the worker creates the slot and first sends the existing rows';

CREATE FUNCTION pgoutput_stream.start_stream(name text)
RETURNS void
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'pgoutput_stream_start_stream';
COMMENT ON FUNCTION pgoutput_stream.start_stream(text) IS
	'Start a stream''s worker; it resumes where the stream stopped';

CREATE FUNCTION pgoutput_stream.stop_stream(name text)
RETURNS void
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'pgoutput_stream_stop_stream';
COMMENT ON FUNCTION pgoutput_stream.stop_stream(text) IS
	'Stop a stream''s worker when the transaction commits; its slot keeps the position';

CREATE FUNCTION pgoutput_stream.alter_stream(
	name text,
	targets text[] DEFAULT NULL,
	format text DEFAULT NULL,
	options jsonb DEFAULT NULL)
RETURNS void
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'pgoutput_stream_alter_stream';
COMMENT ON FUNCTION pgoutput_stream.alter_stream(text, text[], text, jsonb) IS
	'Change a stream''s targets, format or options (merged; null removes an option); a running stream restarts';

CREATE FUNCTION pgoutput_stream.drop_stream(name text, drop_slot boolean DEFAULT true)
RETURNS void
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'pgoutput_stream_drop_stream';
COMMENT ON FUNCTION pgoutput_stream.drop_stream(text, boolean) IS
	'Stop a stream, delete it and, unless drop_slot is false, drop its replication slot';

CREATE FUNCTION pgoutput_stream.peek(
	stream text,
	n integer DEFAULT 10,
	OUT lsn pg_lsn,
	OUT xid xid,
	OUT subject text,
	OUT payload text)
RETURNS SETOF record
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'pgoutput_stream_peek';
COMMENT ON FUNCTION pgoutput_stream.peek(text, integer) IS
	'The next n events of a stream as its targets would receive them, without consuming them';

CREATE FUNCTION pgoutput_stream.worker_status(
	OUT stream_id integer,
	OUT state text,
	OUT pid integer,
	OUT decoded_lsn pg_lsn,
	OUT confirmed_lsn pg_lsn,
	OUT transactions bigint,
	OUT events bigint,
	OUT bytes bigint,
	OUT last_error text,
	OUT last_error_at timestamptz,
	OUT started_at timestamptz,
	OUT wait_reason text,
	OUT confirmed_commit_time timestamptz,
	OUT in_flight bigint,
	OUT last_ack_at timestamptz,
	OUT retries bigint,
	OUT target_counters jsonb,
	OUT retained_wal bigint,
	OUT wal_warning boolean,
	OUT snapshot_tables_total integer,
	OUT snapshot_tables_done integer,
	OUT snapshot_rows bigint)
RETURNS SETOF record
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'pgoutput_stream_worker_status';
COMMENT ON FUNCTION pgoutput_stream.worker_status() IS
	'Shared-memory state of the workers of this database (used by stream_status)';

CREATE VIEW pgoutput_stream.stream_status AS
SELECT s.name,
	pg_catalog.current_database() AS database,
	CASE
		WHEN w.pid IS NOT NULL THEN w.state
		WHEN NOT s.enabled THEN 'stopped'
		WHEN w.state IN ('failed', 'restarting') THEN w.state
		ELSE 'starting'
	END AS state,
	CASE
		WHEN w.pid IS NOT NULL AND w.state = 'waiting for target' THEN w.wait_reason
		WHEN w.pid IS NULL AND s.enabled AND w.state IN ('failed', 'restarting') THEN w.last_error
	END AS state_reason,
	w.pid,
	s.publication,
	s.slot_name,
	s.targets,
	s.format,
	r.confirmed_flush_lsn AS confirmed_lsn,
	w.decoded_lsn,
	pg_catalog.pg_wal_lsn_diff(wal.lsn, r.confirmed_flush_lsn)::bigint AS lag_bytes,
	CASE
		WHEN w.confirmed_commit_time IS NULL THEN NULL
		WHEN w.pid IS NOT NULL AND w.state IN ('streaming', 'catching up')
			AND COALESCE(w.in_flight, 0) = 0 AND w.decoded_lsn <= r.confirmed_flush_lsn
			THEN '0'::interval
		ELSE pg_catalog.now() - w.confirmed_commit_time
	END AS lag_time,
	w.confirmed_commit_time,
	COALESCE(w.transactions, 0) AS transactions,
	COALESCE(w.events, 0) AS events,
	COALESCE(w.bytes, 0) AS bytes,
	w.target_counters,
	COALESCE(w.in_flight, 0) AS in_flight,
	w.last_ack_at,
	COALESCE(w.retries, 0) AS retries,
	w.last_error,
	w.last_error_at,
	w.started_at,
	r.wal_status,
	r.safe_wal_size,
	pg_catalog.pg_wal_lsn_diff(wal.lsn, r.restart_lsn)::bigint AS retained_wal,
	COALESCE(w.wal_warning, false) OR COALESCE(
		t.threshold_mb > 0 AND
		pg_catalog.pg_wal_lsn_diff(wal.lsn, r.restart_lsn) > t.threshold_mb * 1048576,
		false) AS wal_warning,
	s.enabled,
	s.snapshot,
	w.snapshot_tables_done,
	w.snapshot_tables_total,
	w.snapshot_rows
FROM pgoutput_stream.streams s
	-- the current end of WAL, for lag and retained WAL
	CROSS JOIN (SELECT CASE WHEN pg_catalog.pg_is_in_recovery()
			THEN pg_catalog.pg_last_wal_replay_lsn()
			ELSE pg_catalog.pg_current_wal_lsn() END AS lsn) wal
	LEFT JOIN pgoutput_stream.worker_status() w ON w.stream_id = s.id
	LEFT JOIN pg_catalog.pg_replication_slots r ON r.slot_name = s.slot_name
	LEFT JOIN (SELECT p.setting::bigint AS threshold_mb FROM pg_catalog.pg_settings p
			   WHERE p.name = 'pgoutput_stream.retained_wal_warning') t ON true;
COMMENT ON VIEW pgoutput_stream.stream_status IS
	'State, positions, lag, counters and last error of every stream of this database';

-- Nothing for PUBLIC: managing streams is for superusers (checked in C as
-- well), and status readers must be granted access explicitly.
REVOKE ALL ON ALL TABLES IN SCHEMA pgoutput_stream FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA pgoutput_stream FROM PUBLIC;
REVOKE ALL ON SCHEMA pgoutput_stream FROM PUBLIC;
