-- The debezium format through peek: envelope, source block, value
-- encodings, unchanged TOAST, transaction metadata, truncate and messages
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgoutput_stream;
RESET client_min_messages;
SET synchronous_commit = on;

-- LSNs, xids and times differ from run to run
CREATE FUNCTION dbz_masked(payload text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
	SELECT regexp_replace(regexp_replace(regexp_replace(regexp_replace(regexp_replace(regexp_replace(
		payload,
		'"(ts_ms|ts_us|ts_ns)":[0-9]+', '"\1":T', 'g'),
		'"(lsn|txId)":[0-9]+', '"\1":N', 'g'),
		'"sequence":"[^"]*(\\"[^"]*)*"', '"sequence":"SEQ"', 'g'),
		'"id":"[0-9]+:[0-9]+"', '"id":"XID:LSN"', 'g'),
		'\[\\"[0-9]+\\",\\"[0-9]+\\"\]', 'SEQ', 'g'),
		'"db":"[^"]*"', '"db":"DB"', 'g')
$$;

CREATE TYPE dbz_mood AS ENUM ('sad', 'happy');
CREATE TABLE dbz_types (
	id bigint PRIMARY KEY,
	b boolean, i2 smallint, i4 integer, i8 bigint, o oid,
	f4 real, f8 double precision, n numeric(12,4), nn numeric, m money,
	t text, vc varchar(10), ch char(3), by bytea, bits bit(10), vb varbit,
	d date, tm time, ttz timetz, ts timestamp, tstz timestamptz, iv interval,
	u uuid, j json, jb jsonb, x xml, ip inet, e dbz_mood,
	ia integer[], ta text[], na numeric[], da date[], m2 integer[][]
);
CREATE TABLE dbz_rows (id int PRIMARY KEY, v text, big text);
ALTER TABLE dbz_rows ALTER COLUMN big SET STORAGE EXTERNAL;
CREATE TABLE dbz_full (id int PRIMARY KEY, v text, big text);
ALTER TABLE dbz_full REPLICA IDENTITY FULL;
ALTER TABLE dbz_full ALTER COLUMN big SET STORAGE EXTERNAL;
CREATE PUBLICATION dbz_pub FOR TABLE dbz_types, dbz_rows, dbz_full;

SELECT pgoutput_stream.create_stream('dbz', 'dbz_pub', format => 'debezium', start => false);
SELECT pgoutput_stream.create_stream('dbz_tx', 'dbz_pub', format => 'debezium', start => false,
	options => '{"transaction_events": true}');

INSERT INTO dbz_types VALUES (
	1, true, -32768, 2147483647, 9223372036854775807, 4294967295,
	1.5, 0.1, 12.5, 123456789012345678901234567890.123456789, 12.34,
	E'quote" backslash\\ newline\n ünï', 'vc', 'ab', '\x00ff10', B'1000000001', B'101',
	'2026-01-02', '03:04:05.123456', '03:04:05+02', '2026-01-02 03:04:05.5',
	'2026-01-02 03:04:05.123+02', '1 year 2 months 3 days 04:05:06.7',
	'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"k": [1, 2.50]}', '{"b": 2, "a": 1}',
	'<a>x</a>', '192.168.0.1/24', 'happy',
	'{1,NULL,3}', '{"a b",NULL,"c\"d"}', '{1.5,NaN}', '{1970-01-01,1969-12-31}', '{{1,2},{3,4}}');
INSERT INTO dbz_types (id, f4, f8, nn, d, ts, tstz) VALUES
	(2, 'NaN', '-Infinity', 'NaN', 'infinity', '1969-12-31 23:59:59.999', '-infinity');
INSERT INTO dbz_types (id) VALUES (3);

SELECT subject, dbz_masked(payload) AS payload
FROM pgoutput_stream.peek('dbz', 100);

-- transaction metadata: BEGIN, the "transaction" block, END with counts
BEGIN;
INSERT INTO dbz_rows VALUES (1, 'a', repeat('x', 3000));
INSERT INTO dbz_full VALUES (1, 'a', repeat('y', 3000));
INSERT INTO dbz_rows VALUES (2, 'b', NULL);
COMMIT;
SELECT subject, dbz_masked(regexp_replace(payload, '(x{20}|y{20})[^"]*', '\1...', 'g')) AS payload
FROM pgoutput_stream.peek('dbz_tx', 100)
WHERE xid > (SELECT max(xid::text::bigint)::text::xid FROM pgoutput_stream.peek('dbz_tx', 100)
			 WHERE subject LIKE '%dbz_types%');

SELECT pgoutput_stream.drop_stream('dbz_tx');
SELECT pgoutput_stream.drop_stream('dbz');
SELECT pgoutput_stream.create_stream('dbz', 'dbz_pub', format => 'debezium', start => false);

-- updates and deletes: before under DEFAULT (key only) and FULL; unchanged
-- TOAST as Debezium's placeholder, or from the full old row
UPDATE dbz_rows SET v = 'a2' WHERE id = 1;
UPDATE dbz_rows SET id = 10 WHERE id = 1;
UPDATE dbz_full SET v = 'a2' WHERE id = 1;
DELETE FROM dbz_rows WHERE id = 2;
DELETE FROM dbz_full WHERE id = 1;
TRUNCATE dbz_rows;
SELECT pg_logical_emit_message(true, 'outbox', '{"order": 1}') IS NOT NULL AS emitted;
SELECT subject, dbz_masked(regexp_replace(payload, '(x{20}|y{20}|eHh4eH|eXl5eX)[^"]*', '\1...', 'g')) AS payload
FROM pgoutput_stream.peek('dbz', 100);

-- every payload is valid JSON with the envelope
SELECT count(*) AS events,
	bool_and(payload::jsonb ? 'payload') AS all_enveloped
FROM pgoutput_stream.peek('dbz', 100);

SELECT pgoutput_stream.drop_stream('dbz');

-- unchanged TOAST placeholders by type, as Debezium writes them
CREATE TABLE dbz_toast (id int PRIMARY KEY, v int, tx text, by bytea, ia int[], ta text[], jb jsonb);
ALTER TABLE dbz_toast ALTER COLUMN tx SET STORAGE EXTERNAL, ALTER COLUMN by SET STORAGE EXTERNAL,
	ALTER COLUMN ia SET STORAGE EXTERNAL, ALTER COLUMN ta SET STORAGE EXTERNAL,
	ALTER COLUMN jb SET STORAGE EXTERNAL;
INSERT INTO dbz_toast SELECT 1, 0, repeat('t', 3000), convert_to(repeat('b', 3000), 'UTF8'),
	array_fill(7, ARRAY[1000]), array_fill('s'::text, ARRAY[1000]),
	jsonb_build_object('k', repeat('j', 3000));
-- Feldera's debezium_postgres flavour: the values it reads differently
CREATE TABLE dbz_fel (id int PRIMARY KEY, tm time, tstz timestamptz, by bytea, f8 float8, n numeric, ts timestamp);
CREATE PUBLICATION dbz_pub2 FOR TABLE dbz_toast, dbz_fel;
SELECT pgoutput_stream.create_stream('dbz', 'dbz_pub2', format => 'debezium', start => false);
SELECT pgoutput_stream.create_stream('dbz_fel', 'dbz_pub2', format => 'debezium', start => false,
	options => '{"debezium_values": "feldera"}');
UPDATE dbz_toast SET v = 1;
INSERT INTO dbz_fel VALUES (1, '03:04:05.123456', '2026-01-02 03:04:05.123456+02', '\x00ff', 'NaN', 'NaN', 'infinity'),
	(2, '23:59:59.999999', '1969-12-31 23:59:59.9995+00', '\x', 1.5, '1.50', '2026-01-02 03:04:05'),
	-- the ends of the ranges: Feldera can hold neither 24:00:00 nor years after 262142
	(3, '24:00:00', '294276-12-31 23:59:59.999999+00', NULL, NULL, NULL, '294276-12-31 23:59:59.999999'),
	(4, '00:00:00', '4713-01-01 00:00:00+00 BC', NULL, NULL, NULL, '262142-12-31 23:59:59.999');
-- intervals beyond 64 bits of microseconds saturate, as Debezium's do
CREATE TABLE dbz_iv (id int PRIMARY KEY, iv interval);
ALTER PUBLICATION dbz_pub2 ADD TABLE dbz_iv;
INSERT INTO dbz_iv VALUES (1, '178000000 years'), (2, '-178000000 years'), (3, '-1 mon -1 day -00:00:00.000001');
SELECT (payload::jsonb)->'payload'->'after' AS after
FROM pgoutput_stream.peek('dbz', 100);
SELECT (payload::jsonb)->'payload'->'after' AS after
FROM pgoutput_stream.peek('dbz_fel', 100) WHERE subject LIKE '%dbz_fel%';
SELECT (payload::jsonb)->'payload'->'after' AS after
FROM pgoutput_stream.peek('dbz', 100) WHERE subject LIKE '%dbz_iv%';
SELECT pgoutput_stream.alter_stream('dbz_fel', options => '{"debezium_values": "avro"}');
SELECT pgoutput_stream.drop_stream('dbz');
SELECT pgoutput_stream.drop_stream('dbz_fel');
DROP PUBLICATION dbz_pub;
DROP PUBLICATION dbz_pub2;
