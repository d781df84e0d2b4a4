-- Catalog objects and privileges, with pgTAP
\set VERBOSITY terse
\set QUIET on
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS pgoutput_stream;
RESET client_min_messages;
CREATE ROLE tap_user LOGIN;
CREATE ROLE tap_monitor LOGIN;

SELECT plan(30);

SELECT has_schema('pgoutput_stream');
SELECT has_table('pgoutput_stream', 'streams', 'streams table exists');
SELECT has_view('pgoutput_stream', 'stream_status', 'stream_status view exists');
SELECT columns_are('pgoutput_stream', 'stream_status', ARRAY[
	'name', 'database', 'state', 'state_reason', 'pid', 'publication',
	'slot_name', 'targets', 'format', 'confirmed_lsn', 'decoded_lsn',
	'lag_bytes', 'lag_time', 'confirmed_commit_time', 'transactions', 'events',
	'bytes', 'target_counters', 'in_flight', 'last_ack_at', 'retries',
	'last_error', 'last_error_at', 'started_at', 'wal_status', 'safe_wal_size',
	'retained_wal', 'wal_warning', 'enabled', 'snapshot', 'snapshot_tables_done',
	'snapshot_tables_total', 'snapshot_rows']);
SELECT has_function('pgoutput_stream', 'create_stream',
	ARRAY['text', 'text', 'text', 'text[]', 'text', 'jsonb', 'boolean', 'boolean']);
SELECT has_function('pgoutput_stream', 'start_stream', ARRAY['text']);
SELECT has_function('pgoutput_stream', 'stop_stream', ARRAY['text']);
SELECT has_function('pgoutput_stream', 'alter_stream', ARRAY['text', 'text[]', 'text', 'jsonb']);
SELECT has_function('pgoutput_stream', 'drop_stream', ARRAY['text', 'boolean']);
SELECT has_function('pgoutput_stream', 'peek', ARRAY['text', 'integer']);
SELECT has_function('pgoutput_stream', 'worker_status', ARRAY[]::text[]);

-- PUBLIC gets nothing
SELECT schema_privs_are('pgoutput_stream', 'public', ARRAY[]::text[]);
SELECT table_privs_are('pgoutput_stream', 'streams', 'public', ARRAY[]::text[]);
SELECT table_privs_are('pgoutput_stream', 'stream_status', 'public', ARRAY[]::text[]);
SELECT function_privs_are('pgoutput_stream', 'create_stream',
	ARRAY['text', 'text', 'text', 'text[]', 'text', 'jsonb', 'boolean', 'boolean'], 'public', ARRAY[]::text[]);
SELECT function_privs_are('pgoutput_stream', 'drop_stream', ARRAY['text', 'boolean'], 'public', ARRAY[]::text[]);
SELECT function_privs_are('pgoutput_stream', 'peek', ARRAY['text', 'integer'], 'public', ARRAY[]::text[]);
SELECT function_privs_are('pgoutput_stream', 'worker_status', ARRAY[]::text[], 'public', ARRAY[]::text[]);

-- an ordinary role can do nothing
SET ROLE tap_user;
SELECT throws_ok($$SELECT pgoutput_stream.create_stream('tap_s', 'tap_pub')$$, '42501');
SELECT throws_ok($$SELECT * FROM pgoutput_stream.stream_status$$, '42501');
SELECT throws_ok($$SELECT * FROM pgoutput_stream.streams$$, '42501');
RESET ROLE;

-- granting EXECUTE does not hand on the right to manage streams
GRANT USAGE ON SCHEMA pgoutput_stream TO tap_user;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA pgoutput_stream TO tap_user;
SET ROLE tap_user;
SELECT throws_ok($$SELECT pgoutput_stream.create_stream('tap_s', 'tap_pub')$$, '42501',
	'permission denied to manage streams');
SELECT throws_ok($$SELECT * FROM pgoutput_stream.peek('tap_s', 1)$$, '42501',
	'permission denied to manage streams');
RESET ROLE;

-- the documented monitoring grant lets a role read stream_status only
GRANT USAGE ON SCHEMA pgoutput_stream TO tap_monitor;
GRANT SELECT ON pgoutput_stream.stream_status TO tap_monitor;
GRANT EXECUTE ON FUNCTION pgoutput_stream.worker_status() TO tap_monitor;
SET ROLE tap_monitor;
SELECT lives_ok($$SELECT * FROM pgoutput_stream.stream_status$$, 'monitor reads stream_status');
SELECT throws_ok($$SELECT pgoutput_stream.stop_stream('x')$$, '42501');
SELECT throws_ok($$SELECT * FROM pgoutput_stream.streams$$, '42501');
RESET ROLE;
-- credentials and connection settings are hidden from ordinary roles
SET ROLE tap_user;
SELECT throws_ok($$SHOW pgoutput_stream.nats_password$$, '42501');
SELECT throws_ok($$SHOW pgoutput_stream.nats_token$$, '42501');
SELECT throws_ok($$SHOW pgoutput_stream.nats_url$$, '42501');
SELECT is((SELECT count(*)::int FROM pg_settings
	WHERE name IN ('pgoutput_stream.nats_password', 'pgoutput_stream.nats_user',
		'pgoutput_stream.nats_token', 'pgoutput_stream.nats_nkey_seed_file',
		'pgoutput_stream.nats_creds_file', 'pgoutput_stream.nats_tls_key_file')),
	0, 'secret settings are not listed in pg_settings for ordinary roles');
RESET ROLE;

SELECT * FROM finish();

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA pgoutput_stream FROM tap_user, tap_monitor;
REVOKE ALL ON pgoutput_stream.stream_status FROM tap_monitor;
REVOKE ALL ON SCHEMA pgoutput_stream FROM tap_user, tap_monitor;
DROP ROLE tap_user;
DROP ROLE tap_monitor;
