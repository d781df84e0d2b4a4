-- The json format through peek: shapes, typed and text values, column
-- order, TOAST, old tuples, truncate and messages
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgoutput_stream;
RESET client_min_messages;
SET synchronous_commit = on;

-- LSNs, xids, OIDs and times differ from run to run
CREATE OR REPLACE FUNCTION masked(payload text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
	SELECT regexp_replace(regexp_replace(regexp_replace(regexp_replace(regexp_replace(regexp_replace(
		payload,
		'"type_id": ?[0-9]{5,}', '"type_id":OID', 'g'),
		'"(lsn|end_lsn)": ?"[0-9A-F]+/[0-9A-F]+"', '"\1":"LSN"', 'g'),
		'"relation_id": ?[0-9]+', '"relation_id":OID', 'g'),
		'"xid": ?[0-9]+', '"xid":XID', 'g'),
		'"timestamp": ?[0-9]+', '"timestamp":TS', 'g'),
		'"commit_time": ?"[^"]+"', '"commit_time":"TIME"', 'g')
$$;

CREATE TYPE mood AS ENUM ('sad', 'happy');
CREATE DOMAIN posint AS integer CHECK (VALUE > 0);
CREATE TABLE fmt_types (
	id bigint PRIMARY KEY,
	i2 smallint, i4 integer, n numeric(12,4), nn numeric, f4 real, f8 double precision,
	b boolean, t text, vc varchar(10), ch char(3),
	j json, jb jsonb, ia integer[], ta text[], nested integer[][],
	by bytea, ts timestamp, tstz timestamptz, d date, u uuid,
	dom posint, e mood, o oid
);
-- column order is table order, not alphabetical
CREATE TABLE fmt_order (zeta int, alpha text, mid int PRIMARY KEY);
CREATE TABLE fmt_full (id int PRIMARY KEY, v text, big text);
ALTER TABLE fmt_full REPLICA IDENTITY FULL;
ALTER TABLE fmt_full ALTER COLUMN big SET STORAGE EXTERNAL;
CREATE TABLE fmt_toast (id int PRIMARY KEY, v text, big text);
ALTER TABLE fmt_toast ALTER COLUMN big SET STORAGE EXTERNAL;
CREATE TABLE "Odd.Name *>" ("col ""q""" int PRIMARY KEY, "é" text);
CREATE PUBLICATION fmt_pub FOR TABLE fmt_types, fmt_order, fmt_full, fmt_toast, "Odd.Name *>";

SELECT pgoutput_stream.create_stream('fmt_typed', 'fmt_pub', start => false);
SELECT pgoutput_stream.create_stream('fmt_text', 'fmt_pub', start => false,
	options => '{"value_mode": "text"}');

INSERT INTO fmt_types VALUES (
	1, -32768, 2147483647, 12.5000, 123456789012345678901234567890.123456789,
	1.5, 0.1, true, E'quote" backslash\\ newline\n tab\t ünïcödé', 'vc', 'ab',
	'{"k": [1, 2.50, "x"],  "n": null}', '{"b": 2, "a": 1}', '{1,NULL,3}',
	'{"a b",NULL,"c\"d"}', '{{1,2},{3,4}}', '\x00ff10', '2026-01-02 03:04:05.123456',
	'2026-01-02 03:04:05+02', '2026-01-02', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
	7, 'happy', 42);
INSERT INTO fmt_types (id, n, f4, f8, b) VALUES (2, 'NaN', 'Infinity', '-Infinity', false);
INSERT INTO fmt_types (id) VALUES (3);
INSERT INTO fmt_order VALUES (1, 'a', 2);

SELECT subject, masked(payload) AS payload
FROM pgoutput_stream.peek('fmt_typed', 100);
SELECT subject, masked(payload) AS payload
FROM pgoutput_stream.peek('fmt_text', 100)
WHERE subject NOT LIKE '%.transactions.%' AND subject NOT LIKE '%.relation';

-- every payload is valid JSON
SELECT count(*) AS events, bool_and(payload::jsonb IS NOT NULL) AS all_json
FROM pgoutput_stream.peek('fmt_typed', 100);

SELECT pgoutput_stream.drop_stream('fmt_typed');
SELECT pgoutput_stream.drop_stream('fmt_text');

-- old tuples: key only under REPLICA IDENTITY DEFAULT, full under FULL;
-- unchanged TOASTed values are omitted and listed, never null
INSERT INTO fmt_full VALUES (1, 'v', repeat('x', 10000));
INSERT INTO fmt_toast VALUES (1, 'v', repeat('y', 10000));
INSERT INTO fmt_order VALUES (5, 'e', 6);
SELECT pgoutput_stream.create_stream('fmt_rows', 'fmt_pub', start => false);
UPDATE fmt_toast SET v = 'changed' WHERE id = 1;
UPDATE fmt_toast SET id = 2 WHERE id = 1;
UPDATE fmt_full SET v = 'changed' WHERE id = 1;
UPDATE fmt_order SET alpha = 'b' WHERE mid = 2;
UPDATE fmt_order SET mid = 3 WHERE mid = 2;
DELETE FROM fmt_order WHERE mid = 3;
DELETE FROM fmt_full;
DELETE FROM fmt_toast;
TRUNCATE fmt_order, fmt_types;
SELECT pg_logical_emit_message(true, 'outbox', '{"order": 1}') IS NOT NULL AS emitted;
SELECT pg_logical_emit_message(false, 'audit.dot*ted', 'not transactional') IS NOT NULL AS emitted;
SELECT pg_logical_emit_message(true, 'bin', '\xdeadbeef00'::bytea) IS NOT NULL AS emitted;
INSERT INTO "Odd.Name *>" VALUES (1, 'accent é');

SELECT subject, regexp_replace(masked(payload), '(x{250}){40}|(y{250}){40}', '<10000 chars>', 'g') AS payload
FROM pgoutput_stream.peek('fmt_rows', 100)
WHERE subject NOT LIKE '%.transactions.%' AND subject NOT LIKE '%.relation';

-- begin and commit frame every transaction; commit carries end_lsn
SELECT subject, masked(payload) AS payload
FROM pgoutput_stream.peek('fmt_rows', 3);
SELECT bool_and((payload::jsonb -> 'Commit' ->> 'end_lsn')::pg_lsn > (payload::jsonb -> 'Commit' ->> 'lsn')::pg_lsn) AS end_after_start,
       bool_and(lsn = (payload::jsonb -> 'Commit' ->> 'end_lsn')::pg_lsn) AS lsn_is_end
FROM pgoutput_stream.peek('fmt_rows', 100)
WHERE subject LIKE '%.commit.event';

-- the feldera format: Feldera's encodings, UPDATE as delete + insert
SELECT pgoutput_stream.alter_stream('fmt_rows', format => 'feldera');
SELECT subject, regexp_replace(payload, '(x{250}){40}|(y{250}){40}', '<10000 chars>', 'g') AS payload
FROM pgoutput_stream.peek('fmt_rows', 100);
SELECT pgoutput_stream.drop_stream('fmt_rows');

CREATE TABLE fmt_feldera (id int PRIMARY KEY, b bool, n numeric(10,2), f float8,
	d date, ts timestamp, tz timestamptz, t time, by bytea, u uuid, ia int[],
	na int[][], ta text[], j jsonb, s text);
CREATE PUBLICATION fmt_feldera_pub FOR TABLE fmt_feldera;
SELECT pgoutput_stream.create_stream('fmt_f', 'fmt_feldera_pub', format => 'feldera', start => false);
INSERT INTO fmt_feldera VALUES (1, true, 12.50, 1.5, '2026-01-02',
	'2026-01-02 03:04:05.5', '2026-01-02 03:04:05.123456+02', '12:13:14.5', '\x00ff10',
	'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{1,NULL,3}', '{{1,2},{3,4}}',
	'{"a b",NULL,"c\"d"}', '{"k": [1, "x"]}', E'quote" \\ ü');
INSERT INTO fmt_feldera (id) VALUES (2);
SELECT payload FROM pgoutput_stream.peek('fmt_f', 10);
-- values Feldera cannot represent stop the stream, naming table and column
INSERT INTO fmt_feldera (id, f) VALUES (3, 'NaN');
SELECT * FROM pgoutput_stream.peek('fmt_f', 10);
SELECT pgoutput_stream.drop_stream('fmt_f');
SELECT pgoutput_stream.create_stream('fmt_f', 'fmt_feldera_pub', format => 'feldera', start => false);
INSERT INTO fmt_feldera (id, n) VALUES (4, 'NaN');
SELECT * FROM pgoutput_stream.peek('fmt_f', 10);
SELECT pgoutput_stream.drop_stream('fmt_f');
SELECT pgoutput_stream.create_stream('fmt_f', 'fmt_feldera_pub', format => 'feldera', start => false);
INSERT INTO fmt_feldera (id, d) VALUES (5, 'infinity');
SELECT * FROM pgoutput_stream.peek('fmt_f', 10);
SELECT pgoutput_stream.drop_stream('fmt_f');
-- an unchanged TOASTed value is refused unless the old row is logged
CREATE TABLE fmt_feldera_toast (id int PRIMARY KEY, v text, big text);
ALTER TABLE fmt_feldera_toast ALTER COLUMN big SET STORAGE EXTERNAL;
INSERT INTO fmt_feldera_toast VALUES (1, 'a', repeat('z', 5000));
CREATE PUBLICATION fmt_feldera_toast_pub FOR TABLE fmt_feldera_toast;
SELECT pgoutput_stream.create_stream('fmt_ft', 'fmt_feldera_toast_pub', format => 'feldera', start => false);
UPDATE fmt_feldera_toast SET v = 'b';
SELECT * FROM pgoutput_stream.peek('fmt_ft', 10);
SELECT pgoutput_stream.drop_stream('fmt_ft');
ALTER TABLE fmt_feldera_toast REPLICA IDENTITY FULL;
SELECT pgoutput_stream.create_stream('fmt_ft', 'fmt_feldera_toast_pub', format => 'feldera', start => false);
UPDATE fmt_feldera_toast SET v = 'c';
SELECT regexp_replace(payload, '(z{250}){20}', '<5000 chars>', 'g') AS payload
FROM pgoutput_stream.peek('fmt_ft', 10);
SELECT pgoutput_stream.drop_stream('fmt_ft');
