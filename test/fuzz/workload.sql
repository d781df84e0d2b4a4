-- test/fuzz/workload.sql
--     The transactions whose pgoutput output becomes the seed corpus
--     (make-corpus.sh): many column types and odd values, TOAST, replica
--     identities, key changes, TRUNCATE, logical messages, schema changes,
--     and names that the harness's second pass filters (fuzz_proto.c:
--     include public.* and s?.*, exclude *.skip*, columns secret and c?).
\set ON_ERROR_STOP 1
SET TimeZone = 'UTC';
SET DateStyle = 'ISO';
SET extra_float_digits = 3;

-- the types mood, posint and pair are in types.sql
CREATE SCHEMA s1;
CREATE SCHEMA "odd.schema";
CREATE SCHEMA pgoutput_stream;

CREATE TABLE alltypes (
	id int PRIMARY KEY, b bool, i2 int2, i4 int4, i8 int8, f4 float4,
	f8 float8, n numeric(12, 3), nn numeric, m money, t text, vc varchar(10),
	c char(3), by bytea, bi bit(5), vb varbit, d date, tm time, ttz timetz,
	ts timestamp, tstz timestamptz, iv interval, u uuid, j json, jb jsonb,
	ia int[], ta text[], ja jsonb[], da date[], tsa timestamptz[],
	na numeric[], ba bool[], bya bytea[], e mood, ea mood[], pt point,
	bx box, bxa box[], r int4range, ip inet, o oid, dom posint,
	doma posint[], comp pair, compa pair[], x xml, i2v int2vector,
	secret text, c1 int);
CREATE TABLE toasty (id int PRIMARY KEY, k text, big text, other int);
CREATE TABLE toasty_full (id int, big text, other int);
ALTER TABLE toasty_full REPLICA IDENTITY FULL;
CREATE TABLE byindex (a int NOT NULL, b text NOT NULL, c text);
CREATE UNIQUE INDEX byindex_ab ON byindex (a, b);
ALTER TABLE byindex REPLICA IDENTITY USING INDEX byindex_ab;
CREATE TABLE skipped_t (id int PRIMARY KEY, v text);
CREATE TABLE s1.t2 (id bigint PRIMARY KEY, secret text, v jsonb);
CREATE TABLE "odd.schema"."t*" ("col.1" int PRIMARY KEY, "Ünïcödé ""q""" text);
CREATE TABLE "odd.schema".other (id int PRIMARY KEY);
CREATE TABLE pgoutput_stream.streams (id int PRIMARY KEY, name text);
CREATE TABLE parent (id int, v text) PARTITION BY RANGE (id);
CREATE TABLE parent_1 PARTITION OF parent FOR VALUES FROM (0) TO (100);
ALTER TABLE parent_1 REPLICA IDENTITY FULL;
CREATE TABLE empty_cols ();

CREATE PUBLICATION p FOR ALL TABLES;
SELECT pg_create_logical_replication_slot('fz_v1', 'pgoutput');
SELECT pg_create_logical_replication_slot('fz_v2', 'pgoutput');
SELECT pg_create_logical_replication_slot('fz_bin', 'pgoutput');

-- ordinary and odd values of every type
INSERT INTO alltypes VALUES (1, true, 1, 2, 3, 1.5, 2.25, 123.456, 1e-20,
	12.34, 'plain', 'short', 'abc', '\x00ff10', B'10101', B'1', '2024-02-29',
	'12:34:56.789', '12:34:56+05:30', '2024-01-01 00:00:00.5',
	'2024-01-01 12:00:00+00', '1 year 2 mons 3 days 04:05:06.7',
	'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a": [1, 2.5, null], "b": "x"}',
	'{"z": 1, "a": {"n": true}}', '{1,NULL,3}', '{"a","b c","\"q\"",NULL}',
	ARRAY['{"k": 1}'::jsonb, 'null'], '{2024-01-01,infinity}',
	'{"2024-01-01 00:00:00+00"}', '{1.5,NaN,-0.001}', '{t,f,NULL}',
	ARRAY['\x00'::bytea, '\xdeadbeef'], 'happy', '{sad,ok}', '(1.5,-2)',
	'((0,0),(1,1))', '{(0,0),(1,1);(2,2),(3,3)}', '[1,10)', '192.168.0.1/24',
	4294967295, 7, '{1,2}', ROW(1, 'x'), ARRAY[ROW(2, 'y')::pair],
	'<a b="c">d</a>', '1 2 3', 'hidden', 10);
INSERT INTO alltypes VALUES (2, false, -32768, -2147483648,
	-9223372036854775808, 'NaN', '-Infinity', -0.001, 'NaN', -0.01,
	E'quote " backslash \\ newline \n tab \t bell \x07 é ☃ 𝄞', '', '  ',
	'\x', B'00000', B'', '4713-01-01 BC', '24:00:00', '00:00:00-15:59',
	'294276-12-31 23:59:59.999999', '-infinity',
	'-178000000 years -1 days -00:00:01', '00000000-0000-0000-0000-000000000000',
	'"just a string"', '[]', '{}', '{}', '{}', '{-infinity,"0001-01-01 BC"}',
	'{}', '{{1,2},{3,4}}', '{}', '{}', 'sad', '{}', '(0,0)', '((1,1),(1,1))',
	'{}', 'empty', '::1', 0, 2147483647, '{}', ROW(NULL, NULL), '{}', '<x/>',
	'', NULL, NULL);
INSERT INTO alltypes VALUES (3, NULL, 32767, 2147483647, 9223372036854775807,
	'Infinity', 1e308, 999999999.999, '-Infinity', 92233720368547758.07,
	repeat('x', 300), '1234567890', 'z', '\x0a0d5c22', B'11111', B'1010101010101',
	'infinity', '00:00:00', '23:59:59.999999+15:59', 'infinity', 'infinity',
	'-1 mons +1 days', 'ffffffff-ffff-ffff-ffff-ffffffffffff',
	'[1e400, -0.0, 1E+2, "\u00e9\ud83d\ude00"]', '{"deep": [[[[[[1]]]]]]}',
	'[0:2]={7,8,9}', '{{"a","b"},{"c",NULL}}', '{}', '{}', '{}',
	'{{{1}},{{2}}}', '{}', '{"\\x"}', 'ok', '{happy,NULL}', '(1e308,-1e-308)',
	'((-1,-1),(1,1))', '{}', '(,)', '10.0.0.0/8', 1, 1, '{3}', ROW(-1, 'a,b"c'),
	ARRAY[ROW(NULL, NULL)::pair, NULL], NULL, '0', 'hidden', 11);
INSERT INTO alltypes (id) VALUES (4);
UPDATE alltypes SET t = 'updated', n = 0 WHERE id = 1;
UPDATE alltypes SET id = 101 WHERE id = 2;
DELETE FROM alltypes WHERE id = 3;

-- TOAST: values stored out of line, then updates that leave them unchanged
INSERT INTO toasty SELECT 1, string_agg(md5(g::text), ''), string_agg(md5((g * 7)::text), ''), 0
	FROM generate_series(1, 150) g;
UPDATE toasty SET other = 1 WHERE id = 1;
UPDATE toasty SET id = 2 WHERE id = 1;
UPDATE toasty SET big = 'small now' WHERE id = 2;
DELETE FROM toasty WHERE id = 2;
INSERT INTO toasty_full SELECT 1, string_agg(md5(g::text), ''), 0 FROM generate_series(1, 150) g;
UPDATE toasty_full SET other = 2;
DELETE FROM toasty_full;

-- replica identity using an index, filtered tables and columns
BEGIN;
INSERT INTO byindex VALUES (1, 'a', 'x'), (2, 'b', NULL);
UPDATE byindex SET c = 'y' WHERE a = 1;
UPDATE byindex SET b = 'bb' WHERE a = 2;
DELETE FROM byindex WHERE a = 1;
INSERT INTO skipped_t VALUES (1, 'skip me');
INSERT INTO s1.t2 VALUES (1, 'pw', '{"x": [1, {"y": null}]}');
UPDATE s1.t2 SET v = '[]';
INSERT INTO "odd.schema"."t*" VALUES (1, 'weird names');
INSERT INTO "odd.schema".other VALUES (1);
INSERT INTO pgoutput_stream.streams VALUES (1, 'internal');
INSERT INTO parent VALUES (5, 'partition');
UPDATE parent SET v = 'partition 2';
INSERT INTO empty_cols DEFAULT VALUES;
COMMIT;

-- logical decoding messages: transactional or not, text, binary, empty
SELECT pg_logical_emit_message(false, 'plain', 'non-transactional');
SELECT pg_logical_emit_message(false, 'odd.prefix*>', '\x00ff80fe'::bytea);
BEGIN;
SELECT pg_logical_emit_message(true, 'tx', 'in a transaction');
SELECT pg_logical_emit_message(true, '', ''::bytea);
SELECT pg_logical_emit_message(true, 'utf8', 'é ☃');
INSERT INTO skipped_t VALUES (2, 'with messages');
COMMIT;

-- a transaction with a replication origin
SELECT pg_replication_origin_create('fz_origin');
SELECT pg_replication_origin_session_setup('fz_origin');
BEGIN;
SELECT pg_replication_origin_xact_setup('0/ABCDEF', '2024-01-01 00:00:00+00');
INSERT INTO s1.t2 VALUES (2, 'x', 'null');
COMMIT;
SELECT pg_replication_origin_session_reset();

-- schema changes: new relation messages in the same session
ALTER TABLE s1.t2 ADD COLUMN added numeric DEFAULT 1.5;
INSERT INTO s1.t2 VALUES (3, 'y', '1');
ALTER TABLE s1.t2 DROP COLUMN secret;
ALTER TABLE s1.t2 ALTER COLUMN added TYPE text;
UPDATE s1.t2 SET added = 'now text' WHERE id = 3;
INSERT INTO alltypes (id, e, ea) VALUES (5, 'ecstatic', '{ecstatic}');

-- TRUNCATE: several tables, CASCADE / RESTART IDENTITY
TRUNCATE byindex, skipped_t RESTART IDENTITY CASCADE;
TRUNCATE s1.t2;

-- many rows in one transaction
INSERT INTO toasty SELECT g, 'k' || g, 'v' || g, g FROM generate_series(10, 40) g;

-- a large transaction: streamed in chunks with proto_version 2 (fz_v2,
-- decoded with a small logical_decoding_work_mem)
INSERT INTO toasty SELECT g, 'k' || g, repeat('s', 200), g FROM generate_series(1000, 1600) g;
