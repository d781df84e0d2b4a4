-- Hostile input: every function with NULL, empty, over-long, quoted,
-- injected, unicode and control-character arguments, hostile JSON options,
-- and tables and columns named with every special character.
--
-- After every failed call: an ERROR with the right SQLSTATE, and nothing
-- left behind: the rows of pgoutput_stream.streams, the replication slots,
-- the registry (worker_status()) and the table h_victim are exactly as
-- before.  Calls that are accepted are rolled back (by a savepoint), and the
-- same check then proves that the rollback left nothing behind.
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgoutput_stream;
RESET client_min_messages;
SET synchronous_commit = on;

CREATE TABLE h_t (id int PRIMARY KEY, v text);
CREATE TABLE h_victim (id int);		-- what the injections try to drop
CREATE PUBLICATION h_pub FOR TABLE h_t;
SELECT pgoutput_stream.create_stream('h_ok', 'h_pub', start => false);

-- Everything no failed (or rolled back) call may change
CREATE FUNCTION h_state() RETURNS text
LANGUAGE sql AS $$
SELECT (SELECT count(*) FROM pgoutput_stream.streams) || ' streams '
	|| md5(coalesce((SELECT string_agg(s::text, '|' ORDER BY id) FROM pgoutput_stream.streams s), ''))
	|| ', slots: ' || coalesce((SELECT string_agg(slot_name::text, ',' ORDER BY slot_name::text COLLATE "C")
		FROM pg_replication_slots), '')
	|| ', registry: ' || (SELECT count(*) FROM pgoutput_stream.worker_status())
	|| ', victim: ' || (to_regclass('h_victim') IS NOT NULL)
$$;
CREATE TABLE h_baseline AS SELECT h_state() AS state;
SELECT regexp_replace(state, '[0-9a-f]{32}', '<md5>') AS state FROM h_baseline;

-- Messages are shown as JSON strings (control characters escaped), with
-- runs of 20 or more equal characters shortened to <N x c>
CREATE FUNCTION h_show(msg text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	m text[];
BEGIN
	FOR m IN SELECT regexp_matches(msg, '((.)\2{19,})', 'g') LOOP
		msg := replace(msg, m[1], '<' || length(m[1]) || ' x ' || m[2] || '>');
	END LOOP;
	msg := to_json(msg)::text;
	-- DEL, C1 controls and the Unicode line separators, visibly
	FOR m IN SELECT regexp_matches(msg, '([\u007f-\u009f\u2028\u2029])', 'g') LOOP
		msg := replace(msg, m[1], '\u' || lpad(to_hex(ascii(m[1])), 4, '0'));
	END LOOP;
	RETURN msg;
END
$$;

-- Run sql in a savepoint that is always rolled back.  Returns the SQLSTATE
-- and message of its error, or "accepted" (then rolled back); "!! LEFT
-- BEHIND" if the state is not what it was before.
CREATE FUNCTION h_try(sql text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	result text;
BEGIN
	BEGIN
		EXECUTE sql;
		RAISE EXCEPTION USING ERRCODE = 'P0999', MESSAGE = 'undo';
	EXCEPTION WHEN OTHERS THEN
		IF SQLSTATE = 'P0999' THEN
			result := 'accepted';
		ELSE
			result := SQLSTATE || ': ' || h_show(SQLERRM);
		END IF;
	END;
	IF h_state() IS DISTINCT FROM (SELECT state FROM h_baseline) THEN
		result := result || ' !! LEFT BEHIND: ' || h_state();
	END IF;
	RETURN result;
END
$$;

-- the detector detects: a slot that a call creates and leaves is reported
SELECT h_try($$SELECT pg_create_logical_replication_slot('h_selftest', 'pgoutput')$$)
	LIKE 'accepted !! LEFT BEHIND: % slots: h_selftest,pgs_h_ok, %' AS detected;
SELECT pg_drop_replication_slot('h_selftest');

-- Hostile values for every text argument
CREATE TABLE h_val (n int, label text, val text);
INSERT INTO h_val VALUES
	(1, 'null', NULL),
	(2, 'empty', ''),
	(3, '48 chars', repeat('a', 48)),
	(4, '63 chars', repeat('a', 63)),
	(5, '64 chars', repeat('a', 64)),
	(6, '1000 chars', repeat('a', 1000)),
	(7, '32 x é (64 bytes)', repeat('é', 32)),
	(8, 'quote', 'x''y'),
	(9, 'double quote', 'x"y'),
	(10, 'backslash', 'x\y'),
	(11, 'injection', 'x''); DROP TABLE h_victim; --'),
	(12, 'injection 2', '"; DROP TABLE h_victim; --'),
	(13, 'format string', '%s%n%x%999999d'),
	(14, 'unicode', 'é日🐘'),
	(15, 'newline', E'a\nb'),
	(16, 'tab', E'a\tb'),
	(17, 'control', E'a\x01\x1bb'),
	(18, 'DEL', E'a\x7fb'),
	(19, 'upper case', 'H_OK'),
	(20, 'leading space', ' h_ok'),
	(21, 'U+2028', E'a\u2028b'),
	(22, 'JSON', '{"a": 1}');

-- the functions and their text arguments; %s is the hostile value
CREATE TABLE h_call (n int, fn text, sql text);
INSERT INTO h_call VALUES
	(1, 'create_stream name', 'SELECT pgoutput_stream.create_stream(%s, ''h_pub'', start => false)'),
	(2, 'create_stream publication', 'SELECT pgoutput_stream.create_stream(''h_x'', %s, start => false)'),
	(3, 'create_stream slot', 'SELECT pgoutput_stream.create_stream(''h_x'', ''h_pub'', slot => %s, start => false)'),
	(4, 'create_stream target', 'SELECT pgoutput_stream.create_stream(''h_x'', ''h_pub'', targets => ARRAY[%s], start => false)'),
	(5, 'create_stream format', 'SELECT pgoutput_stream.create_stream(''h_x'', ''h_pub'', format => %s, start => false)'),
	(6, 'create_stream option key', 'SELECT pgoutput_stream.create_stream(''h_x'', ''h_pub'', options => jsonb_build_object(%s::text, ''1''), start => false)'),
	(7, 'start_stream', 'SELECT pgoutput_stream.start_stream(%s)'),
	(8, 'stop_stream', 'SELECT pgoutput_stream.stop_stream(%s)'),
	(9, 'drop_stream', 'SELECT pgoutput_stream.drop_stream(%s)'),
	(10, 'alter_stream name', 'SELECT pgoutput_stream.alter_stream(%s, format => ''text'')'),
	(11, 'alter_stream target', 'SELECT pgoutput_stream.alter_stream(''h_ok'', targets => ARRAY[%s])'),
	(12, 'alter_stream format', 'SELECT pgoutput_stream.alter_stream(''h_ok'', format => %s)'),
	(13, 'alter_stream option key', 'SELECT pgoutput_stream.alter_stream(''h_ok'', options => jsonb_build_object(%s::text, ''1''))'),
	(14, 'peek', 'SELECT * FROM pgoutput_stream.peek(%s, 1)');

-- One statement (one transaction) per call
\pset tuples_only on
\pset format unaligned
\set ECHO none
SELECT format('SELECT %L || '' | '' || %L || '' => '' || h_try(%L)',
	c.fn, v.label, format(c.sql, quote_nullable(v.val)))
FROM h_call c CROSS JOIN h_val v ORDER BY c.n, v.n
\gexec
\set ECHO all
\pset tuples_only off
\pset format aligned

-- The text-valued stream options with hostile values.  Accepted values are
-- stored as given (then rolled back); they never reach SQL text.
CREATE TABLE h_opt (n int, opt text);
INSERT INTO h_opt VALUES (1, 'value_mode'), (2, 'subject_prefix'), (3, 'nats_url'), (4, 'nats_stream'),
	(5, 'nats_storage'), (6, 'nats_max_msgs'), (7, 'transaction_events'), (8, 'debezium_values'),
	(9, 'include_tables'), (10, 'exclude_columns'), (11, 'operations'), (12, 'heartbeat_interval'),
	(13, 'feldera_url'), (14, 'feldera_pipeline'), (15, 'feldera_table_names'), (16, 'feldera_table_map'),
	(17, 'feldera_tables'), (18, 'feldera_truncate'), (19, 'feldera_max_rows'), (20, 'feldera_wait_completion');
\pset tuples_only on
\pset format unaligned
\set ECHO none
SELECT format('SELECT %L || '' | '' || %L || '' => '' || h_try(%L)',
	o.opt, v.label,
	format('SELECT pgoutput_stream.create_stream(''h_x'', ''h_pub'', start => false, options => jsonb_build_object(%L, %s::text))',
		o.opt, quote_nullable(v.val)))
FROM h_opt o CROSS JOIN h_val v
WHERE v.label NOT IN ('null', '48 chars', '63 chars', '64 chars', 'upper case', 'leading space')
ORDER BY o.n, v.n
\gexec
\set ECHO all
\pset tuples_only off
\pset format aligned

-- NULL in every other argument
SELECT h_try($$SELECT pgoutput_stream.create_stream('h_x', 'h_pub', targets => NULL)$$);
SELECT h_try($$SELECT pgoutput_stream.create_stream('h_x', 'h_pub', targets => '{NULL}')$$);
SELECT h_try($$SELECT pgoutput_stream.create_stream('h_x', 'h_pub', targets => '{log,NULL}')$$);
SELECT h_try($$SELECT pgoutput_stream.create_stream('h_x', 'h_pub', format => NULL)$$);
SELECT h_try($$SELECT pgoutput_stream.create_stream('h_x', 'h_pub', options => NULL)$$);
SELECT h_try($$SELECT pgoutput_stream.create_stream('h_x', 'h_pub', start => NULL)$$);
SELECT h_try($$SELECT pgoutput_stream.create_stream(NULL, NULL, NULL, NULL, NULL, NULL, NULL)$$);
SELECT h_try($$SELECT pgoutput_stream.alter_stream(NULL, NULL, NULL, NULL)$$);
SELECT h_try($$SELECT pgoutput_stream.alter_stream('h_ok', NULL, NULL, NULL)$$);
SELECT h_try($$SELECT pgoutput_stream.drop_stream('h_ok', NULL)$$);
SELECT h_try($$SELECT pgoutput_stream.drop_stream(NULL, NULL)$$);
SELECT h_try($$SELECT * FROM pgoutput_stream.peek('h_ok', NULL)$$);
SELECT h_try($$SELECT * FROM pgoutput_stream.peek(NULL, NULL)$$);
SELECT h_try($$SELECT * FROM pgoutput_stream.peek('h_ok', -1)$$);
SELECT h_try($$SELECT * FROM pgoutput_stream.peek('h_ok', -2147483648)$$);
SELECT h_try($$SELECT * FROM pgoutput_stream.peek('h_ok', 2147483647)$$);
SELECT h_try($$SELECT * FROM pgoutput_stream.peek('h_ok', 2147483648)$$);
SELECT h_try($$SELECT pgoutput_stream.peek('h_ok', 1)$$);
SELECT h_try($$SELECT (SELECT lsn FROM pgoutput_stream.peek('h_ok', 1) LIMIT 1)$$);
-- worker_status() takes no argument
SELECT h_try($$SELECT * FROM pgoutput_stream.worker_status(NULL)$$);
SELECT h_try($$SELECT * FROM pgoutput_stream.worker_status('h_ok')$$);
SELECT h_try($$SELECT count(*) FROM pgoutput_stream.worker_status()$$);
SELECT h_try($$SELECT pgoutput_stream.worker_status()$$);

-- Characters SQL itself refuses never reach the functions
SELECT h_try($$SELECT pgoutput_stream.create_stream(chr(0), 'h_pub')$$);
SELECT h_try($$SELECT pgoutput_stream.create_stream(E'a\u0000b', 'h_pub')$$);
SELECT h_try($$SELECT pgoutput_stream.create_stream(E'a\xffb', 'h_pub')$$);
SELECT h_try($$SELECT pgoutput_stream.start_stream(E'\xc3')$$);

-- Arrays of targets
SELECT h_try($$SELECT pgoutput_stream.create_stream('h_x', 'h_pub', targets => '{}')$$);
SELECT h_try($$SELECT pgoutput_stream.create_stream('h_x', 'h_pub', targets => '{{log},{nats}}')$$);
SELECT h_try($$SELECT pgoutput_stream.create_stream('h_x', 'h_pub', targets => '[5:5]={log}', start => false)$$);
SELECT h_try($$SELECT pgoutput_stream.create_stream('h_x', 'h_pub', targets => '{log,Log}')$$);
SELECT h_try($$SELECT pgoutput_stream.create_stream('h_x', 'h_pub', targets => array_fill('log'::text, ARRAY[10000]))$$);

-- Options: not an object, wrong JSON types, NUL escapes, surrogates
SELECT h_try($$SELECT pgoutput_stream.create_stream('h_x', 'h_pub', options => 'null')$$);
SELECT h_try($$SELECT pgoutput_stream.create_stream('h_x', 'h_pub', options => '"{}"')$$);
SELECT h_try($$SELECT pgoutput_stream.create_stream('h_x', 'h_pub', options => '1')$$);
SELECT h_try($$SELECT pgoutput_stream.create_stream('h_x', 'h_pub', options => 'true')$$);
SELECT h_try($$SELECT pgoutput_stream.create_stream('h_x', 'h_pub', options => '[{"value_mode": "text"}]')$$);
SELECT h_try($$SELECT pgoutput_stream.create_stream('h_x', 'h_pub', options => '{"value_mode": null}')$$);
SELECT h_try($$SELECT pgoutput_stream.create_stream('h_x', 'h_pub', options => '{"value_mode": ["text"]}')$$);
SELECT h_try($$SELECT pgoutput_stream.create_stream('h_x', 'h_pub', options => '{"value_mode": {"text": 1}}')$$);
SELECT h_try($$SELECT pgoutput_stream.create_stream('h_x', 'h_pub', options => '{"nats_stream": "a\u0000b"}')$$);
SELECT h_try($$SELECT pgoutput_stream.create_stream('h_x', 'h_pub', options => '{"\u0000": "x"}')$$);
SELECT h_try($$SELECT pgoutput_stream.create_stream('h_x', 'h_pub', options => '{"feldera_pipeline": "\ud800"}')$$);
SELECT h_try($$SELECT pgoutput_stream.create_stream('h_x', 'h_pub', options => '{"nats_stream": "a\u0001b"}')$$);
SELECT h_try($$SELECT pgoutput_stream.create_stream('h_x', 'h_pub', options => '{"subject_prefix": "caf\u00e9"}')$$);
SELECT h_try($$SELECT pgoutput_stream.create_stream('h_x', 'h_pub', options => '{"subject_prefix": "a\u0000"}')$$);
SELECT h_try($$SELECT pgoutput_stream.create_stream('h_x', 'h_pub', options => '{"subject_prefix": "a.>"}')$$);
SELECT h_try($$SELECT pgoutput_stream.create_stream('h_x', 'h_pub', options => '{"subject_prefix": ".a"}')$$);
SELECT h_try($$SELECT pgoutput_stream.create_stream('h_x', 'h_pub', options => '{"subject_prefix": "a."}')$$);
SELECT h_try($$SELECT pgoutput_stream.create_stream('h_x', 'h_pub', options => '{"subject_prefix": "a\tb"}')$$);
SELECT h_try($$SELECT pgoutput_stream.create_stream('h_x', 'h_pub', options => '{"value_mode": "text", "value_mode": "binary"}')$$);
SELECT h_try($$SELECT pgoutput_stream.create_stream('h_x', 'h_pub', options => '{"Value_Mode": "text"}')$$);
SELECT h_try($$SELECT pgoutput_stream.create_stream('h_x', 'h_pub', options => '{"value_mode ": "text"}')$$);
SELECT h_try($$SELECT pgoutput_stream.create_stream('h_x', 'h_pub', options => '{"": "text"}')$$);
SELECT h_try(format($$SELECT pgoutput_stream.create_stream('h_x', 'h_pub', options => '{"a": %s1%s}')$$,
	repeat('[', 1000), repeat(']', 1000)));
-- start_lsn is only planned: any value is refused
SELECT h_try($$SELECT pgoutput_stream.create_stream('h_x', 'h_pub', options => '{"start_lsn": "0/0"}')$$);
SELECT h_try($$SELECT pgoutput_stream.create_stream('h_x', 'h_pub', options => '{"start_lsn": "garbage"}')$$);
SELECT h_try($$SELECT pgoutput_stream.create_stream('h_x', 'h_pub', options => '{"start_lsn": -1}')$$);
SELECT h_try($$SELECT pgoutput_stream.create_stream('h_x', 'h_pub', options => '{"start_lsn": "FFFFFFFF/FFFFFFFF"}')$$);
SELECT h_try($$SELECT pgoutput_stream.create_stream('h_x', 'h_pub', options => '{"start_lsn": "1FFFFFFFF/0"}')$$);
-- numbers: range, type, overflow, fractions, exponents
SELECT h_try($$SELECT pgoutput_stream.create_stream('h_x', 'h_pub', options => '{"nats_max_msgs": 9223372036854775807}')$$);
SELECT h_try($$SELECT pgoutput_stream.create_stream('h_x', 'h_pub', options => '{"nats_max_msgs": 9223372036854775808}')$$);
SELECT h_try($$SELECT pgoutput_stream.create_stream('h_x', 'h_pub', options => '{"nats_max_msgs": -2}')$$);
SELECT h_try($$SELECT pgoutput_stream.create_stream('h_x', 'h_pub', options => '{"nats_max_msgs": 1.5}')$$);
SELECT h_try($$SELECT pgoutput_stream.create_stream('h_x', 'h_pub', options => '{"nats_max_msgs": 1e3}')$$);
SELECT h_try($$SELECT pgoutput_stream.create_stream('h_x', 'h_pub', options => '{"nats_max_msgs": 1e400}')$$);
SELECT h_try($$SELECT pgoutput_stream.create_stream('h_x', 'h_pub', options => '{"nats_max_msgs": " 5"}')$$);
SELECT h_try($$SELECT pgoutput_stream.create_stream('h_x', 'h_pub', options => '{"nats_max_msgs": "5 "}')$$);
SELECT h_try($$SELECT pgoutput_stream.create_stream('h_x', 'h_pub', options => '{"nats_max_msgs": "0x10"}')$$);
SELECT h_try($$SELECT pgoutput_stream.create_stream('h_x', 'h_pub', options => '{"nats_max_msgs": true}')$$);
SELECT h_try($$SELECT pgoutput_stream.create_stream('h_x', 'h_pub', options => '{"nats_max_age": 9223372037}')$$);
SELECT h_try($$SELECT pgoutput_stream.create_stream('h_x', 'h_pub', options => '{"nats_replicas": 0}')$$);
SELECT h_try($$SELECT pgoutput_stream.create_stream('h_x', 'h_pub', options => '{"heartbeat_interval": 86401}')$$);
SELECT h_try($$SELECT pgoutput_stream.create_stream('h_x', 'h_pub', options => '{"heartbeat_interval": "1h"}')$$);
SELECT h_try($$SELECT pgoutput_stream.create_stream('h_x', 'h_pub', options => '{"feldera_max_rows": 1000001}')$$);
SELECT h_try($$SELECT pgoutput_stream.create_stream('h_x', 'h_pub', options => '{"transaction_events": 2}')$$);
SELECT h_try($$SELECT pgoutput_stream.create_stream('h_x', 'h_pub', options => '{"transaction_events": "yes"}')$$);
-- list options
SELECT h_try($$SELECT pgoutput_stream.create_stream('h_x', 'h_pub', options => '{"include_tables": []}')$$);
SELECT h_try($$SELECT pgoutput_stream.create_stream('h_x', 'h_pub', options => '{"include_tables": [1]}')$$);
SELECT h_try($$SELECT pgoutput_stream.create_stream('h_x', 'h_pub', options => '{"include_tables": [null]}')$$);
SELECT h_try($$SELECT pgoutput_stream.create_stream('h_x', 'h_pub', options => '{"include_tables": {"a": "b"}}')$$);
SELECT h_try($$SELECT pgoutput_stream.create_stream('h_x', 'h_pub', options => '{"include_tables": [["public.t"]]}')$$);
SELECT h_try($$SELECT pgoutput_stream.create_stream('h_x', 'h_pub', options => '{"include_tables": ","}')$$);
SELECT h_try($$SELECT pgoutput_stream.create_stream('h_x', 'h_pub', options => '{"include_tables": "public.t\\"}')$$);
SELECT h_try($$SELECT pgoutput_stream.create_stream('h_x', 'h_pub', options => '{"exclude_columns": "a.b"}')$$);
SELECT h_try($$SELECT pgoutput_stream.create_stream('h_x', 'h_pub', options => '{"operations": "insert,INSERT"}')$$);
SELECT h_try($$SELECT pgoutput_stream.create_stream('h_x', 'h_pub', options => '{"operations": "insert,insert"}')$$);
SELECT h_try($$SELECT pgoutput_stream.create_stream('h_x', 'h_pub', options => '{"operations": ""}')$$);
-- options of a valid stream, merged by alter_stream
SELECT h_try($$SELECT pgoutput_stream.alter_stream('h_ok', options => 'null')$$);
SELECT h_try($$SELECT pgoutput_stream.alter_stream('h_ok', options => '[]')$$);
SELECT h_try($$SELECT pgoutput_stream.alter_stream('h_ok', options => '"x"')$$);
SELECT h_try($$SELECT pgoutput_stream.alter_stream('h_ok', options => '{"start_lsn": "0/1"}')$$);
SELECT h_try($$SELECT pgoutput_stream.alter_stream('h_ok', options => '{"value_mode": null}')$$);
SELECT h_try($$SELECT pgoutput_stream.alter_stream('h_ok', targets => '{}')$$);
SELECT h_try($$SELECT pgoutput_stream.alter_stream('h_ok', targets => '{feldera}')$$);
SELECT h_try($$SELECT pgoutput_stream.alter_stream('h_ok', targets => '{feldera}', options => '{"feldera_pipeline": null}')$$);

-- The rows the checks above rolled back were stored exactly as given: the
-- hostile values are data, never SQL
BEGIN;
SELECT pgoutput_stream.create_stream('h_x', 'h_pub', slot => repeat('s', 63), start => false,
	options => jsonb_build_object('feldera_pipeline', 'x''); DROP TABLE h_victim; --',
		'nats_url', 'nats://x'';DROP/**/TABLE/**/h_victim;--@h:1',
		'feldera_table_map', 'a.b=c'';DROP/**/TABLE/**/h_victim;--'));
SELECT name, slot_name = repeat('s', 63) AS slot_63, options->>'feldera_pipeline' AS pipeline,
       options->>'nats_url' AS nats_url, options->>'feldera_table_map' AS table_map
FROM pgoutput_stream.streams WHERE name = 'h_x';
SELECT slot_name = repeat('s', 63) AS slot_63, plugin FROM pg_replication_slots WHERE slot_name LIKE 'sss%';
ROLLBACK;
SELECT h_state() = state AS unchanged FROM h_baseline;

-- Failed calls at the top level of a transaction (no savepoint): the
-- transaction aborts and nothing stays
\set VERBOSITY sqlstate
BEGIN;
SELECT pgoutput_stream.create_stream('h_y', 'h_pub', slot => repeat('s', 64));
\echo :LAST_ERROR_SQLSTATE :LAST_ERROR_MESSAGE
ROLLBACK;
SELECT pgoutput_stream.create_stream('h_y', 'h_pub', options => '{"start_lsn": "0/0"}');
\echo :LAST_ERROR_SQLSTATE :LAST_ERROR_MESSAGE
SELECT pgoutput_stream.create_stream('h_y', 'x''); DROP TABLE h_victim; --');
\echo :LAST_ERROR_SQLSTATE :LAST_ERROR_MESSAGE
SELECT pgoutput_stream.drop_stream('x''); DROP TABLE h_victim; --');
\echo :LAST_ERROR_SQLSTATE :LAST_ERROR_MESSAGE
\set VERBOSITY terse
SELECT h_state() = state AS unchanged FROM h_baseline;

-- Valid calls, then ROLLBACK: create (started, explicit 63-character
-- slot), alter, stop, start, drop, each in its own savepoint too
BEGIN;
SELECT pgoutput_stream.create_stream(repeat('z', 48), 'h_pub', slot => repeat('q', 63),
	targets => '{log,nats}', options => '{"subject_prefix": "h.rolled.back", "nats_stream": "h_rb"}');
SELECT pgoutput_stream.alter_stream(repeat('z', 48), format => 'text', options => '{"value_mode": "text"}');
SELECT pgoutput_stream.stop_stream(repeat('z', 48));
SELECT pgoutput_stream.start_stream(repeat('z', 48));
SAVEPOINT a;
SELECT pgoutput_stream.drop_stream('h_ok');
ROLLBACK TO a;
SELECT pgoutput_stream.alter_stream('h_ok', targets => '{log,nats}', format => 'debezium');
SELECT pgoutput_stream.stop_stream('h_ok');
SELECT count(*) AS streams, count(*) FILTER (WHERE enabled) AS enabled FROM pgoutput_stream.streams;
ROLLBACK;
SELECT h_state() = state AS unchanged FROM h_baseline;
-- the worker registered by the rolled-back create_stream exits
CREATE FUNCTION h_wait_no_worker() RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
	FOR i IN 1 .. 600 LOOP
		PERFORM pg_stat_clear_snapshot();
		IF NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE backend_type = 'pgoutput_stream worker') THEN
			RETURN true;
		END IF;
		PERFORM pg_sleep(0.05);
	END LOOP;
	RETURN false;
END
$$;
SELECT h_wait_no_worker();
-- and a drop_stream that is rolled back keeps the stream and its slot
BEGIN;
SELECT pgoutput_stream.drop_stream('h_ok');
SELECT count(*) FROM pgoutput_stream.streams WHERE name = 'h_ok';
ROLLBACK;
SELECT h_state() = state AS unchanged FROM h_baseline;
-- savepoints: a create rolled back to a savepoint drops its slot at once
BEGIN;
SAVEPOINT a;
SELECT pgoutput_stream.create_stream('h_sp', 'h_pub', start => false);
SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'pgs_h_sp';
ROLLBACK TO a;
SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'pgs_h_sp';
COMMIT;
SELECT h_state() = state AS unchanged FROM h_baseline;

-- ---------------------------------------------------------------------
-- Tables and columns named with every special character, through peek
-- ---------------------------------------------------------------------

-- the documented escaping rule (docs/formats.md), written independently
CREATE FUNCTION h_escape(name text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
SELECT CASE WHEN name = '' THEN '%00' ELSE (
	SELECT string_agg(CASE WHEN b BETWEEN 65 AND 90 OR b BETWEEN 97 AND 122
			OR b BETWEEN 48 AND 57 OR b IN (45, 95) THEN chr(b)
		ELSE '%' || upper(lpad(to_hex(b), 2, '0')) END, '' ORDER BY i)
	FROM (SELECT i, get_byte(convert_to(name, 'UTF8'), i) AS b
		FROM generate_series(0, octet_length(convert_to(name, 'UTF8')) - 1) i) x)
END
$$;
-- and decoding: percent-decode, read the bytes as UTF-8, "%00" is ''
CREATE FUNCTION h_unescape(token text) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
	bytes bytea := '';
	i int := 1;
BEGIN
	IF token = '%00' THEN
		RETURN '';
	END IF;
	WHILE i <= length(token) LOOP
		IF substr(token, i, 1) = '%' THEN
			bytes := bytes || decode(substr(token, i + 1, 2), 'hex');
			i := i + 3;
		ELSE
			bytes := bytes || convert_to(substr(token, i, 1), 'UTF8');
			i := i + 1;
		END IF;
	END LOOP;
	RETURN convert_from(bytes, 'UTF8');
END
$$;

CREATE TABLE h_names (n int, name text);
INSERT INTO h_names VALUES
	(1, 'plain'), (2, 'dot.ted'), (3, '*'), (4, '>'), (5, 'a.*.>'), (6, 'sp ace'),
	(7, E'tab\there'), (8, E'new\nline'), (9, E'cr\rret'), (10, 'quo''te'), (11, 'dq"uote'),
	(12, E'back\\slash'), (13, 'per%cent'), (14, '%2E'), (15, 'a%2Eb'), (16, '%00'),
	(17, 'café'), (18, '日本語'), (19, '🐘'), (20, '1leading'), (21, repeat('n', 63)),
	(22, repeat('é', 31) || 'x'), (23, 'Mixed'), (24, 'mixed'), (25, 'MIXED'), (26, '-'),
	(27, '_'), (28, E'ctl\x01\x1f\x7f'), (29, E'a\u2028b'), (30, 'x;DROP TABLE h_victim;--'),
	(31, '{"a":1}'), (32, '$1'), (33, ' '), (34, 'a.b');
CREATE SCHEMA "s.p*e c>%";
CREATE SCHEMA "public.a";
CREATE SCHEMA transactions;
CREATE SCHEMA "Public";
-- the tables: every name in public and in "s.p*e c>%", and the pairs that
-- would collide without escaping: public."a.b" / "public.a".b,
-- transactions.begin (vs the Begin subject), "Public".plain / public.plain
CREATE TABLE h_tables (schema text, name text);
INSERT INTO h_tables SELECT s, name FROM h_names, unnest(ARRAY['public', 's.p*e c>%']) s;
INSERT INTO h_tables VALUES ('public.a', 'b'), ('transactions', 'begin'), ('transactions', 'event'),
	('Public', 'plain');
-- every column name of h_names in one table, and a json column
\set ECHO none
SELECT format('CREATE TABLE %I.%I (id int PRIMARY KEY, %s, j json)', 's.p*e c>%', 'columns',
	string_agg(format('%I text', name), ', ' ORDER BY n))
FROM h_names
\gexec
\set ECHO all
INSERT INTO h_tables VALUES ('s.p*e c>%', 'columns');
\set ECHO none
SELECT format('CREATE TABLE %I.%I (id int PRIMARY KEY, v text)', schema, name)
FROM h_tables WHERE name <> 'columns'
\gexec
\set ECHO all
\set ECHO none
SELECT format('CREATE PUBLICATION h_names_pub FOR TABLE %s',
	string_agg(format('%I.%I', schema, name), ', '))
FROM h_tables
\gexec
\set ECHO all
-- a publication with a hostile name works too (quoted as an identifier)
CREATE PUBLICATION "x""'; DROP TABLE h_victim; --" FOR TABLE "s.p*e c>%"."quo'te";
SELECT pgoutput_stream.create_stream('h_json', 'h_names_pub', start => false);
SELECT pgoutput_stream.create_stream('h_pretty', 'h_names_pub', format => 'json-pretty',
	options => '{"value_mode": "text", "subject_prefix": "a.b-c_d"}', start => false);
SELECT pgoutput_stream.create_stream('h_dbz', 'h_names_pub', format => 'debezium',
	options => '{"transaction_events": true}', start => false);
SELECT pgoutput_stream.create_stream('h_feld', 'h_names_pub', format => 'feldera', start => false);
SELECT pgoutput_stream.create_stream('h_qpub', E'x"''; DROP TABLE h_victim; --', start => false);

-- one row per table whose value is the table's name; an update and a
-- delete per table; the columns table with every column holding its own
-- name; a truncate; logical messages with hostile prefixes
\set ECHO none
SELECT format('INSERT INTO %I.%I VALUES (1, %L)', schema, name, name)
FROM h_tables WHERE name <> 'columns'
\gexec
\set ECHO all
\set ECHO none
SELECT format('INSERT INTO %I.%I VALUES (1, %s, %L)', 's.p*e c>%', 'columns',
	string_agg(quote_literal(name), ', ' ORDER BY n), '{"k": "v\u2028", "n": [1, 2]}')
FROM h_names
\gexec
\set ECHO all
\set ECHO none
SELECT format('UPDATE %I.%I SET v = v || %L WHERE id = 1', schema, name, E'\n"\\')
FROM h_tables WHERE name <> 'columns'
\gexec
\set ECHO all
\set ECHO none
SELECT format('DELETE FROM %I.%I WHERE id = 1', schema, name)
FROM h_tables WHERE name <> 'columns'
\gexec
\set ECHO all
TRUNCATE "s.p*e c>%"."dot.ted", public."a.b", "public.a".b;
SELECT count(pg_logical_emit_message(true, name, convert_to(name, 'UTF8'))) AS messages FROM h_names;
SELECT pg_logical_emit_message(true, '', '\x00ff'::bytea) IS NOT NULL AS emitted;
SELECT pg_logical_emit_message(false, 'a.b', 'outside a transaction') IS NOT NULL AS emitted;

-- (one statement per peek: peek cannot run after a write in its transaction)
CREATE TABLE h_peek (stream text, lsn pg_lsn, xid xid, subject text, payload text);
INSERT INTO h_peek SELECT 'json', * FROM pgoutput_stream.peek('h_json', 100000);
INSERT INTO h_peek SELECT 'pretty', * FROM pgoutput_stream.peek('h_pretty', 100000);
INSERT INTO h_peek SELECT 'dbz', * FROM pgoutput_stream.peek('h_dbz', 100000);
INSERT INTO h_peek SELECT 'feld', * FROM pgoutput_stream.peek('h_feld', 100000);
SELECT stream, count(*) FROM h_peek GROUP BY stream ORDER BY stream COLLATE "C";
ALTER TABLE h_peek ADD COLUMN doc jsonb, ADD COLUMN tokens text[];
UPDATE h_peek SET tokens = string_to_array(subject, '.');

-- every payload of every format is JSON (jsonb parses it)
CREATE FUNCTION h_jsonb(t text) RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
	RETURN t::jsonb;
EXCEPTION WHEN OTHERS THEN
	RETURN NULL;
END
$$;
UPDATE h_peek SET doc = h_jsonb(payload);
SELECT stream, subject, payload FROM h_peek WHERE doc IS NULL ORDER BY 1, 2;

-- every subject is a valid NATS subject: non-empty tokens of printable
-- ASCII without "*" or ">"; escaped tokens use only A-Z a-z 0-9 _ - %
SELECT stream, subject FROM h_peek
WHERE subject !~ '^[!-~]+$' OR subject ~ '[*>]' OR subject ~ '(^\.|\.\.|\.$)'
	OR array_to_string(tokens[array_length(tokens, 1) - 2:], '.') !~ '^[A-Za-z0-9_%-]+(\.[A-Za-z0-9_%-]+)*$';

-- the table events: prefix (1 token; "a.b-c_d": 2), schema, table, operation
CREATE VIEW h_table_events AS
SELECT stream, subject, payload, doc, tokens[array_length(tokens, 1) - 2] AS schema_token,
	tokens[array_length(tokens, 1) - 1] AS table_token, tokens[array_length(tokens, 1)] AS op
FROM h_peek
WHERE tokens[array_length(tokens, 1)] IN ('insert', 'update', 'delete', 'truncate', 'relation');
SELECT stream, op, count(*) FROM h_table_events GROUP BY 1, 2 ORDER BY stream COLLATE "C", op COLLATE "C";
SELECT stream, subject FROM h_table_events
WHERE array_length(string_to_array(subject, '.'), 1) <> CASE stream WHEN 'pretty' THEN 5 ELSE 4 END;

-- decoding the tokens gives back the exact names, and the names' escaping
-- by the documented rule gives the tokens
SELECT stream, subject FROM h_table_events e
WHERE NOT EXISTS (SELECT 1 FROM h_tables t
	WHERE t.schema = h_unescape(e.schema_token) AND t.name = h_unescape(e.table_token))
	OR h_escape(h_unescape(e.schema_token)) <> e.schema_token
	OR h_escape(h_unescape(e.table_token)) <> e.table_token;
-- every table got its own insert subject: no two tables share one
SELECT stream, count(DISTINCT subject) AS insert_subjects,
	(SELECT count(*) FROM h_tables) AS tables
FROM h_table_events WHERE op = 'insert' GROUP BY stream ORDER BY stream COLLATE "C";
SELECT stream, subject, count(DISTINCT (schema_token, table_token))
FROM h_table_events GROUP BY 1, 2 HAVING count(DISTINCT (schema_token, table_token)) > 1;
-- the subjects of the pairs that would collide without escaping
SELECT subject FROM h_table_events
WHERE stream = 'json' AND op = 'insert'
	AND (h_unescape(table_token) IN ('a.b', 'b', 'begin', 'event', '%2E', 'a%2Eb', 'dot.ted', '%00')
		OR h_unescape(schema_token) = 'Public')
GROUP BY subject ORDER BY subject COLLATE "C";

-- the payloads name the same table as the subject (json, json-pretty,
-- debezium; feldera rows carry no table name)
SELECT stream, subject FROM h_table_events
WHERE stream IN ('json', 'pretty') AND op <> 'relation' AND (
	doc->(initcap(op))->>'schema' IS DISTINCT FROM h_unescape(schema_token) OR
	doc->(initcap(op))->>'table' IS DISTINCT FROM h_unescape(table_token));
SELECT stream, subject FROM h_table_events
WHERE stream = 'dbz' AND (
	doc->'payload'->'source'->>'schema' IS DISTINCT FROM h_unescape(schema_token) OR
	doc->'payload'->'source'->>'table' IS DISTINCT FROM h_unescape(table_token));

-- values and column names survive the JSON encoding exactly: the inserted
-- value is the table's name, the updated one has a newline, a quote and
-- a backslash appended
SELECT stream, subject, payload FROM h_table_events
WHERE op = 'insert' AND table_token <> 'columns' AND
	CASE stream
		WHEN 'dbz' THEN doc->'payload'->'after'
		WHEN 'feld' THEN doc->'insert'
		ELSE doc->'Insert'->'new_tuple' END
	IS DISTINCT FROM jsonb_build_object('id', CASE stream WHEN 'pretty' THEN to_jsonb('1'::text) ELSE to_jsonb(1) END,
		'v', h_unescape(table_token));
SELECT stream, subject, payload FROM h_table_events
WHERE op = 'update' AND
	CASE stream
		WHEN 'dbz' THEN doc->'payload'->'after'->>'v'
		WHEN 'feld' THEN doc->'insert'->>'v'
		ELSE doc->'Update'->'new_tuple'->>'v' END
	IS DISTINCT FROM h_unescape(table_token) || E'\n"\\';
-- the columns table: every column holds its own name
SELECT stream,
	(CASE stream
		WHEN 'dbz' THEN doc->'payload'->'after'
		WHEN 'feld' THEN doc->'insert'
		ELSE doc->'Insert'->'new_tuple' END) - 'id' - 'j'
	= (SELECT jsonb_object_agg(name, name) FROM h_names) AS all_columns_exact
FROM h_table_events WHERE op = 'insert' AND table_token = 'columns'
ORDER BY stream COLLATE "C";
SELECT doc->'Relation'->'columns' @> (SELECT jsonb_agg(jsonb_build_object('name', name)) FROM h_names)
	AS relation_names_exact
FROM h_table_events WHERE stream = 'json' AND op = 'relation' AND table_token = 'columns';

-- messages: prefix token decodes to the prefix; the empty prefix is %00,
-- the prefix "%00" is %2500
SELECT stream, subject FROM h_peek
WHERE tokens[array_length(tokens, 1) - 1] = 'messages' AND stream IN ('json', 'pretty') AND (
	h_unescape(tokens[array_length(tokens, 1)]) IS DISTINCT FROM doc->'Message'->>'prefix' OR
	h_escape(doc->'Message'->>'prefix') <> tokens[array_length(tokens, 1)]);
SELECT stream, count(*) AS messages, count(DISTINCT subject) AS subjects
FROM h_peek WHERE tokens[array_length(tokens, 1) - 1] = 'messages'
GROUP BY stream ORDER BY stream COLLATE "C";
SELECT subject, doc->'Message'->>'prefix' AS prefix, doc->'Message'->>'content_base64' AS b64
FROM h_peek WHERE stream = 'json' AND tokens[2] = 'messages' AND tokens[3] IN ('%00', '%2500', 'a%2Eb')
GROUP BY 1, 2, 3 ORDER BY subject COLLATE "C", b64;
-- the same subjects in every format
SELECT f.stream,
	(SELECT array_agg(DISTINCT subject ORDER BY subject) FROM h_table_events
	 WHERE stream = f.stream AND op IN ('insert', 'update', 'delete')) =
	(SELECT array_agg(DISTINCT subject ORDER BY subject) FROM h_table_events
	 WHERE stream = 'json' AND op IN ('insert', 'update', 'delete')) AS same_as_json
FROM (VALUES ('dbz'), ('feld')) f(stream);

-- the stream on the hostile publication decodes its one table
SELECT subject FROM pgoutput_stream.peek('h_qpub', 100) WHERE subject LIKE '%.insert';

-- json column values are embedded as they are: JSON that jsonb (and strict
-- parsers) may refuse, \u0000 and lone surrogates, is passed on
CREATE TABLE h_jv (id int PRIMARY KEY, j json);
CREATE PUBLICATION h_jv_pub FOR TABLE h_jv;
SELECT pgoutput_stream.create_stream('h_jv_json', 'h_jv_pub', start => false);
SELECT pgoutput_stream.create_stream('h_jv_dbz', 'h_jv_pub', format => 'debezium', start => false);
SELECT pgoutput_stream.create_stream('h_jv_feld', 'h_jv_pub', format => 'feldera', start => false);
INSERT INTO h_jv VALUES (1, '"\u0000"'), (2, '"\ud800"'), (3, '{"a": 1, "a": 2}'), (4, '"\u2028 \ud83d\udc18"');
SELECT s, (SELECT count(*) FROM h_jv) AS "rows",
	count(*) FILTER (WHERE h_jsonb(payload) IS NOT NULL) AS jsonb_ok,
	string_agg(regexp_replace(payload, '"relation_id":\d+', '"relation_id":OID'), E'\n' ORDER BY lsn)
		FILTER (WHERE h_jsonb(payload) IS NULL) AS refused
FROM unnest(ARRAY['h_jv_json', 'h_jv_dbz', 'h_jv_feld']) s,
	LATERAL pgoutput_stream.peek(s, 100)
WHERE subject LIKE '%.insert'
GROUP BY s ORDER BY s COLLATE "C";

-- nothing was dropped by any of it
SELECT to_regclass('h_victim') IS NOT NULL AS victim_exists;

SELECT count(pgoutput_stream.drop_stream(name)) AS dropped FROM pgoutput_stream.streams;
SELECT count(*) AS streams, (SELECT count(*) FROM pg_replication_slots) AS slots FROM pgoutput_stream.streams;

-- leave nothing for the tests that follow
SET client_min_messages = warning;
DROP SCHEMA "s.p*e c>%", "public.a", transactions, "Public" CASCADE;
\set ECHO none
SELECT format('DROP TABLE %I.%I', schema, name) FROM h_tables WHERE schema = 'public'
\gexec
\set ECHO all
DROP PUBLICATION h_pub, h_names_pub, "x""'; DROP TABLE h_victim; --", h_jv_pub;
DROP TABLE h_t, h_victim, h_jv, h_baseline, h_val, h_call, h_opt, h_names, h_tables, h_peek CASCADE;
DROP FUNCTION h_state(), h_show(text), h_try(text), h_wait_no_worker(), h_escape(text), h_unescape(text), h_jsonb(text);
RESET client_min_messages;
