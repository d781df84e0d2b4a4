-- Bad input: a clear error with an errcode, and nothing half-created
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgoutput_stream;
RESET client_min_messages;
CREATE TABLE err_t (id int PRIMARY KEY);
CREATE PUBLICATION err_pub FOR TABLE err_t;
CREATE ROLE err_user LOGIN;

-- run a statement, return its SQLSTATE and message
CREATE FUNCTION try(sql text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE sql;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;

-- what must stay untouched by every failed call
CREATE VIEW leftovers AS
SELECT (SELECT count(*) FROM pgoutput_stream.streams) AS streams,
       (SELECT count(*) FROM pg_replication_slots) AS slots;

SELECT pgoutput_stream.create_stream('err_ok', 'err_pub', start => false);
SELECT * FROM leftovers;

-- names
SELECT try($$SELECT pgoutput_stream.create_stream(NULL, 'err_pub')$$);
SELECT try($$SELECT pgoutput_stream.create_stream('', 'err_pub')$$);
SELECT try($$SELECT pgoutput_stream.create_stream('Upper', 'err_pub')$$);
SELECT try($$SELECT pgoutput_stream.create_stream('has space', 'err_pub')$$);
SELECT try($$SELECT pgoutput_stream.create_stream('quo''te', 'err_pub')$$);
SELECT try($$SELECT pgoutput_stream.create_stream('x); DROP TABLE err_t; --', 'err_pub')$$);
SELECT try($$SELECT pgoutput_stream.create_stream(repeat('a', 49), 'err_pub')$$);
SELECT try($$SELECT pgoutput_stream.create_stream('err_ok', 'err_pub')$$);
SELECT try($$SELECT pgoutput_stream.create_stream('err_x', 'err_pub', slot => 'Bad-Slot')$$);
SELECT try($$SELECT pgoutput_stream.create_stream('err_x', 'err_pub', slot => repeat('s', 64))$$);
SELECT try($$SELECT pgoutput_stream.create_stream('err_x', 'err_pub', slot => 'pgs_err_ok')$$);
-- publication
SELECT try($$SELECT pgoutput_stream.create_stream('err_x', NULL)$$);
SELECT try($$SELECT pgoutput_stream.create_stream('err_x', 'no_such_pub')$$);
SELECT try($$SELECT pgoutput_stream.create_stream('err_x', '')$$);
SELECT try($$SELECT pgoutput_stream.create_stream('err_x', repeat('p', 64))$$);
-- targets
SELECT try($$SELECT pgoutput_stream.create_stream('err_x', 'err_pub', targets => NULL)$$);
SELECT try($$SELECT pgoutput_stream.create_stream('err_x', 'err_pub', targets => '{}')$$);
SELECT try($$SELECT pgoutput_stream.create_stream('err_x', 'err_pub', targets => '{stdout}')$$);
SELECT try($$SELECT pgoutput_stream.create_stream('err_x', 'err_pub', targets => '{log,log}')$$);
SELECT try($$SELECT pgoutput_stream.create_stream('err_x', 'err_pub', targets => '{log,NULL}')$$);
SELECT try($$SELECT pgoutput_stream.create_stream('err_x', 'err_pub', targets => '{{log}}')$$);
-- format
SELECT try($$SELECT pgoutput_stream.create_stream('err_x', 'err_pub', format => NULL)$$);
SELECT try($$SELECT pgoutput_stream.create_stream('err_x', 'err_pub', format => 'JSON')$$);
SELECT try($$SELECT pgoutput_stream.create_stream('err_x', 'err_pub', format => 'avro')$$);
-- options
SELECT try($$SELECT pgoutput_stream.create_stream('err_x', 'err_pub', options => NULL)$$);
SELECT try($$SELECT pgoutput_stream.create_stream('err_x', 'err_pub', options => '[]')$$);
SELECT try($$SELECT pgoutput_stream.create_stream('err_x', 'err_pub', options => '{"kafka_topic": "x"}')$$);
SELECT try($$SELECT pgoutput_stream.create_stream('err_x', 'err_pub', options => '{"nats_stream": "a.b"}')$$);
SELECT try($$SELECT pgoutput_stream.create_stream('err_x', 'err_pub', options => '{"nats_stream": ""}')$$);
SELECT try($$SELECT pgoutput_stream.create_stream('err_x', 'err_pub', options => '{"nats_storage": "disk"}')$$);
SELECT try($$SELECT pgoutput_stream.create_stream('err_x', 'err_pub', options => '{"nats_replicas": 9}')$$);
SELECT try($$SELECT pgoutput_stream.create_stream('err_x', 'err_pub', options => '{"nats_max_msgs": "many"}')$$);
SELECT try($$SELECT pgoutput_stream.create_stream('err_x', 'err_pub', options => '{"nats_max_age": -5}')$$);
SELECT try($$SELECT pgoutput_stream.create_stream('err_x', 'err_pub', options => '{"nats_url": "nats://a b"}')$$);
SELECT try($$SELECT pgoutput_stream.create_stream('err_x', 'err_pub', options => '{"nats_url": {"host": "x"}}')$$);
-- URL options: what is refused, with the detail, and how the value is
-- shown (user information, a port that is not a number and a query as
-- ***); an accepted value is rolled back
CREATE FUNCTION try_url(opt text, url text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	detail text;
BEGIN
	PERFORM pgoutput_stream.create_stream('err_x', 'err_pub', start => false,
		options => jsonb_build_object(opt, url));
	RAISE EXCEPTION 'accepted';
EXCEPTION WHEN OTHERS THEN
	IF SQLSTATE = 'P0001' THEN
		RETURN 'accepted';
	END IF;
	GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
	RETURN SQLSTATE || ': ' || SQLERRM || ' / ' || detail;
END
$$;
SELECT try_url('nats_url', 'nats://user:pw@127.0.0.1:4222,tls://[::1]:4222,localhost');
SELECT try_url('nats_url', 'nats://user:secret');
SELECT try_url('nats_url', 'nats://user:secret@host:42x');
SELECT try_url('nats_url', 'nats://host:4222?token=secret');
SELECT try_url('nats_url', 'nats://host:70000');
SELECT try_url('nats_url', 'nats://token@host:1 2');
SELECT try_url('feldera_url', 'https://user:pw@feldera.example:8443/base');
SELECT try_url('feldera_url', 'feldera.example:8080');
SELECT try_url('feldera_url', 'ftp://user:pw@host');
SELECT try_url('feldera_url', 'http://:8080');
SELECT try_url('feldera_url', 'http://user@x:pw@host');
SELECT try_url('feldera_url', 'http://host/x#frag');
SELECT try_url('feldera_url', 'http://user:secret');
DROP FUNCTION try_url(text, text);
SELECT try($$SELECT pgoutput_stream.create_stream('err_x', 'err_pub', targets => '{nats,log,nats}')$$);
SELECT try($$SELECT pgoutput_stream.create_stream('err_x', 'err_pub', targets => '{feldera}')$$);
SELECT try($$SELECT pgoutput_stream.create_stream('err_x', 'err_pub', targets => '{feldera}', options => '{"feldera_pipeline": ""}')$$);
SELECT try($$SELECT pgoutput_stream.create_stream('err_x', 'err_pub', options => '{"feldera_truncate": "drop"}')$$);
SELECT try($$SELECT pgoutput_stream.create_stream('err_x', 'err_pub', options => '{"feldera_table_map": "users=u"}')$$);
SELECT try($$SELECT pgoutput_stream.create_stream('err_x', 'err_pub', options => '{"feldera_table_names": "qualified"}')$$);
SELECT try($$SELECT pgoutput_stream.create_stream('err_x', 'err_pub', options => '{"feldera_max_rows": 0}')$$);
SELECT try($$SELECT pgoutput_stream.create_stream('err_x', 'err_pub', options => '{"feldera_wait_completion": "maybe"}')$$);
-- two streams must not share NATS subjects or a JetStream stream
SELECT pgoutput_stream.create_stream('err_n1', 'err_pub', targets => '{nats}', start => false);
SELECT try($$SELECT pgoutput_stream.create_stream('err_n2', 'err_pub', targets => '{nats}', start => false)$$);
SELECT try($$SELECT pgoutput_stream.create_stream('err_n2', 'err_pub', targets => '{nats}', start => false, options => '{"subject_prefix": "other"}')$$);
SELECT try($$SELECT pgoutput_stream.create_stream('err_n2', 'err_pub', targets => '{nats}', start => false, options => '{"nats_stream": "other"}')$$);
SELECT try($$SELECT pgoutput_stream.create_stream('err_n2', 'err_pub', targets => '{nats}', start => false, options => '{"subject_prefix": "other", "nats_stream": "other"}')$$);
SELECT try($$SELECT pgoutput_stream.alter_stream('err_n2', options => '{"subject_prefix": "postgres"}')$$);
-- overlapping subjects: "postgres.>" holds "postgres.sub.>", not "postgresql.>"
SELECT try($$SELECT pgoutput_stream.alter_stream('err_n2', options => '{"subject_prefix": "postgres.sub"}')$$);
SELECT try($$SELECT pgoutput_stream.alter_stream('err_n2', options => '{"subject_prefix": "postgresql"}')$$);
-- the same server, named by the option instead of the GUC's default (scheme,
-- user information, case and the default port aside), or another one
SELECT try($$SELECT pgoutput_stream.create_stream('err_n3', 'err_pub', targets => '{nats}', start => false, options => '{"nats_url": "NATS://someone@127.0.0.1,localhost:4333"}')$$);
SELECT try($$SELECT pgoutput_stream.create_stream('err_n3', 'err_pub', targets => '{nats}', start => false, options => '{"nats_url": "nats://127.0.0.2:4222"}')$$);
SELECT pgoutput_stream.drop_stream('err_n3');
-- nats_shared_stream: only streams that both set it may share
SELECT try($$SELECT pgoutput_stream.create_stream('err_x', 'err_pub', options => '{"nats_shared_stream": "sometimes"}')$$);
SELECT try($$SELECT pgoutput_stream.create_stream('err_n3', 'err_pub', targets => '{nats}', start => false, options => '{"nats_shared_stream": true}')$$);
SELECT pgoutput_stream.alter_stream('err_n1', options => '{"nats_shared_stream": true}');
SELECT try($$SELECT pgoutput_stream.create_stream('err_n3', 'err_pub', targets => '{nats}', start => false, options => '{"nats_shared_stream": true}')$$);
SELECT pgoutput_stream.drop_stream('err_n3');
SELECT pgoutput_stream.drop_stream('err_n1');
SELECT pgoutput_stream.drop_stream('err_n2');
SELECT try($$SELECT pgoutput_stream.create_stream('err_x', 'err_pub', options => '{"value_mode": "binary"}')$$);
SELECT try($$SELECT pgoutput_stream.create_stream('err_x', 'err_pub', options => '{"value_mode": 1}')$$);
SELECT try($$SELECT pgoutput_stream.create_stream('err_x', 'err_pub', options => '{"value_mode": true}')$$);
SELECT try($$SELECT pgoutput_stream.create_stream('err_x', 'err_pub', options => '{"subject_prefix": "a.*"}')$$);
SELECT try($$SELECT pgoutput_stream.create_stream('err_x', 'err_pub', options => '{"subject_prefix": "a..b"}')$$);
SELECT try($$SELECT pgoutput_stream.create_stream('err_x', 'err_pub', options => '{"subject_prefix": "a b"}')$$);
SELECT try($$SELECT pgoutput_stream.create_stream('err_x', 'err_pub', options => '{"subject_prefix": ""}')$$);
SELECT try($$SELECT pgoutput_stream.create_stream('err_x', 'err_pub', start => NULL)$$);
-- a slot cannot be created in a transaction that already wrote
BEGIN;
INSERT INTO err_t VALUES (1);
SELECT pgoutput_stream.create_stream('err_x', 'err_pub');
ROLLBACK;
SELECT * FROM leftovers;

-- the other functions
SELECT try($$SELECT pgoutput_stream.start_stream('no_such_stream')$$);
SELECT try($$SELECT pgoutput_stream.stop_stream('no_such_stream')$$);
SELECT try($$SELECT pgoutput_stream.drop_stream('no_such_stream')$$);
SELECT try($$SELECT pgoutput_stream.alter_stream('no_such_stream', format => 'text')$$);
SELECT try($$SELECT pgoutput_stream.start_stream(NULL)$$);
SELECT try($$SELECT pgoutput_stream.drop_stream('err_ok', drop_slot => NULL)$$);
SELECT try($$SELECT pgoutput_stream.alter_stream('err_ok', targets => '{feldera}')$$);
SELECT try($$SELECT pgoutput_stream.alter_stream('err_ok', format => 'yaml')$$);
SELECT try($$SELECT pgoutput_stream.alter_stream('err_ok', options => '{"bogus": "1"}')$$);
SELECT try($$SELECT * FROM pgoutput_stream.peek('no_such_stream', 1)$$);
SELECT try($$SELECT * FROM pgoutput_stream.peek('err_ok', -1)$$);
SELECT try($$SELECT * FROM pgoutput_stream.peek('err_ok', NULL)$$);
SELECT try($$SELECT * FROM pgoutput_stream.peek(NULL, 1)$$);
SELECT format, options FROM pgoutput_stream.streams WHERE name = 'err_ok';
SELECT * FROM leftovers;

-- callers without the right: PUBLIC has no EXECUTE, and a grant does not
-- hand the right on, because the functions require a superuser
SET ROLE err_user;
SELECT try($$SELECT pgoutput_stream.create_stream('err_x', 'err_pub')$$);
SELECT try($$SELECT * FROM pgoutput_stream.stream_status$$);
RESET ROLE;
GRANT USAGE ON SCHEMA pgoutput_stream TO err_user;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA pgoutput_stream TO err_user;
SET ROLE err_user;
SELECT try($$SELECT pgoutput_stream.create_stream('err_x', 'err_pub')$$);
SELECT try($$SELECT pgoutput_stream.stop_stream('err_ok')$$);
SELECT try($$SELECT pgoutput_stream.start_stream('err_ok')$$);
SELECT try($$SELECT pgoutput_stream.alter_stream('err_ok', format => 'text')$$);
SELECT try($$SELECT pgoutput_stream.drop_stream('err_ok')$$);
SELECT try($$SELECT * FROM pgoutput_stream.peek('err_ok', 1)$$);
RESET ROLE;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA pgoutput_stream FROM err_user;
REVOKE ALL ON SCHEMA pgoutput_stream FROM err_user;
SELECT * FROM leftovers;

SELECT pgoutput_stream.drop_stream('err_ok');
DROP ROLE err_user;
SELECT * FROM leftovers;
