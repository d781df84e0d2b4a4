-- The json format renders every built-in type exactly, in both value modes,
-- and never reports an unchanged TOASTed value as NULL.
--
-- Values reach the renderer as the text that pgoutput wrote while decoding.
-- peek decodes in this session, but first sets the worker's fixed output
-- settings for its own duration (src/peek.c; the worker sets the same ones
-- in src/worker.c): DateStyle = ISO, IntervalStyle = postgres,
-- TimeZone = UTC, extra_float_digits = 3, bytea_output = hex.  So the
-- session below deliberately uses other values for all five, and the
-- output must not change: timestamptz values come out in UTC ("+00"),
-- dates in ISO order, intervals in postgres style, floats shortest-exact,
-- bytea in hex.  peek restores the session's settings when it returns.
--
-- Two output settings are NOT fixed by peek or the worker, so the values
-- of these types depend on the decoding session:
--   lc_monetary  money ("$1,000.00" under 'C'), set explicitly below;
--   search_path  regclass, regtype, ... print the names of objects on the
--                path unqualified; this test keeps the default path.
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgoutput_stream;
RESET client_min_messages;
SET synchronous_commit = on;

SET TimeZone = 'Asia/Kathmandu';	-- +05:45
SET DateStyle = 'SQL, DMY';
SET IntervalStyle = 'sql_standard';
SET extra_float_digits = 0;
SET bytea_output = 'escape';
SET lc_monetary = 'C';

-- One table per type: id, a label c for the case, and the value v
CREATE SCHEMA ft;
CREATE TYPE ft.mood AS ENUM ('sad', 'ok', 'happy', 'it''s "quoted"');
CREATE TYPE ft.pair AS (a int, b text);
CREATE TYPE ft.nest AS (p ft.pair, ts timestamptz, tags text[]);
CREATE DOMAIN ft.posint AS integer CHECK (VALUE > 0);
CREATE DOMAIN ft.label AS text CHECK (VALUE <> '');
CREATE DOMAIN ft.intlist AS integer[] CHECK (cardinality(VALUE) < 10);
CREATE DOMAIN ft.price AS numeric(10,2);
CREATE DOMAIN ft.flag AS boolean;
CREATE DOMAIN ft.doc AS jsonb;

DO $$
DECLARE
	t text[];
BEGIN
	FOREACH t SLICE 1 IN ARRAY ARRAY[
		['int2', 'smallint'], ['int4', 'integer'], ['int8', 'bigint'],
		['numeric', 'numeric'], ['numeric_2', 'numeric(10,2)'],
		['float4', 'real'], ['float8', 'double precision'], ['money', 'money'],
		['text', 'text'], ['varchar', 'varchar(10)'], ['bpchar', 'char(5)'],
		['name', 'name'], ['char', '"char"'], ['bytea', 'bytea'], ['bool', 'boolean'],
		['date', 'date'], ['time', 'time'], ['timetz', 'timetz'],
		['timestamp', 'timestamp'], ['timestamptz', 'timestamptz'],
		['interval', 'interval'], ['uuid', 'uuid'],
		['inet', 'inet'], ['cidr', 'cidr'], ['macaddr', 'macaddr'], ['macaddr8', 'macaddr8'],
		['json', 'json'], ['jsonb', 'jsonb'], ['xml', 'xml'],
		['bit', 'bit(4)'], ['varbit', 'varbit'],
		['oid', 'oid'], ['regclass', 'regclass'], ['regtype', 'regtype'],
		['tsvector', 'tsvector'], ['tsquery', 'tsquery'], ['pg_lsn', 'pg_lsn'],
		['point', 'point'], ['line', 'line'], ['lseg', 'lseg'], ['box', 'box'],
		['path', 'path'], ['polygon', 'polygon'], ['circle', 'circle'],
		['int4_arr', 'integer[]'], ['text_arr', 'text[]'], ['json_arr', 'json[]'],
		['jsonb_arr', 'jsonb[]'], ['numeric_arr', 'numeric[]'],
		['float8_arr', 'float8[]'], ['bool_arr', 'boolean[]'],
		['ts_arr', 'timestamp[]'], ['tstz_arr', 'timestamptz[]'],
		['date_arr', 'date[]'], ['bytea_arr', 'bytea[]'], ['other_arr', 'interval[]'],
		['bpchar_arr', 'char(3)[]'], ['money_arr', 'money[]'], ['uuid_arr', 'uuid[]'],
		['box_arr', 'box[]'], ['int2vector', 'int2vector'], ['oidvector', 'oidvector'],
		['composite', 'ft.pair'], ['nested_composite', 'ft.nest'],
		['composite_arr', 'ft.pair[]'],
		['domain_int', 'ft.posint'], ['domain_text', 'ft.label'],
		['domain_arr', 'ft.intlist'], ['domain_numeric', 'ft.price'],
		['domain_bool', 'ft.flag'], ['domain_jsonb', 'ft.doc'],
		['domain_elem_arr', 'ft.posint[]'], ['domain_arr_arr', 'ft.intlist[]'],
		['enum', 'ft.mood'], ['enum_arr', 'ft.mood[]'],
		['int4range', 'int4range'], ['int8range', 'int8range'],
		['numrange', 'numrange'], ['tsrange', 'tsrange'], ['tstzrange', 'tstzrange'],
		['daterange', 'daterange'], ['int4multirange', 'int4multirange'],
		['datemultirange', 'datemultirange'], ['range_arr', 'int4range[]']]
	LOOP
		EXECUTE format('CREATE TABLE ft.%I (id serial PRIMARY KEY, c text NOT NULL, v %s)',
					   t[1], t[2]);
	END LOOP;
END
$$;
CREATE PUBLICATION ft_pub FOR TABLES IN SCHEMA ft;

SELECT pgoutput_stream.create_stream('ft_typed', 'ft_pub', start => false);
SELECT pgoutput_stream.create_stream('ft_text', 'ft_pub', start => false,
	options => '{"value_mode": "text"}');

INSERT INTO ft.int2 (c, v) VALUES ('min', -32768), ('max', 32767), ('zero', 0), ('null', NULL);
INSERT INTO ft.int4 (c, v) VALUES ('min', -2147483648), ('max', 2147483647);
INSERT INTO ft.int8 (c, v) VALUES ('min', -9223372036854775808), ('max', 9223372036854775807);
INSERT INTO ft.numeric (c, v) VALUES
	('large', 123456789012345678901234567890.123456789),
	('scale', 1.10), ('tiny', 0.000000000000000000001), ('negative', -42.000),
	('exponent', 1e40), ('nan', 'NaN'), ('inf', 'Infinity'), ('-inf', '-Infinity');
INSERT INTO ft.numeric_2 (c, v) VALUES ('scale 2', 24.5), ('integral', 3);
INSERT INTO ft.float4 (c, v) VALUES
	('fraction', 0.1), ('max', 3.4e38), ('min', 1.4e-45), ('-0', '-0'),
	('nan', 'NaN'), ('inf', 'Infinity'), ('-inf', '-Infinity');
INSERT INTO ft.float8 (c, v) VALUES
	('fraction', 0.1), ('third', 1.0/3), ('tiny', 1e-300), ('large', 1.7976931348623157e308),
	('integral', 1e15), ('exponent', 1e16), ('-0', '-0'),
	('nan', 'NaN'), ('inf', 'Infinity'), ('-inf', '-Infinity');
INSERT INTO ft.money (c, v) VALUES ('positive', 1000), ('negative', -1.5);
INSERT INTO ft.text (c, v) VALUES
	('escapes', E'quote" backslash\\ slash/ nl\n cr\r tab\t bs\b ff\f'),
	('control', E'\x01\x1f\x7f'), ('unicode', 'ünïcödé ☃ 𝄞'), ('empty', ''),
	('null word', 'NULL'), ('spaces', '  padded  ');
INSERT INTO ft.varchar (c, v) VALUES ('short', 'abc'), ('full', '0123456789');
INSERT INTO ft.bpchar (c, v) VALUES ('padded', 'ab'), ('full', 'abcde'), ('empty', '');
INSERT INTO ft.name (c, v) VALUES ('name', 'Some "Name"');
INSERT INTO ft.char (c, v) VALUES ('letter', 'x'), ('quote', '"'), ('high byte', E'\\200');
INSERT INTO ft.bytea (c, v) VALUES ('bytes', '\x00ff10'), ('empty', ''), ('escaped', 'a\\b');
INSERT INTO ft.bool (c, v) VALUES ('true', true), ('false', false);
INSERT INTO ft.date (c, v) VALUES
	('date', '2026-01-02'), ('leap', '2024-02-29'), ('bc', '0044-03-15 BC'),
	('infinity', 'infinity'), ('-infinity', '-infinity'), ('far', '5874897-12-31');
INSERT INTO ft.time (c, v) VALUES ('time', '13:14:15.123456'), ('midnight', '24:00');
INSERT INTO ft.timetz (c, v) VALUES ('offset', '13:14:15+05:30'), ('negative', '01:02:03.5-08');
INSERT INTO ft.timestamp (c, v) VALUES
	('µs', '2026-01-02 03:04:05.123456'), ('bc', '0044-03-15 12:00 BC'),
	('infinity', 'infinity'), ('-infinity', '-infinity');
INSERT INTO ft.timestamptz (c, v) VALUES
	('offset +02', '2026-01-02 03:04:05+02'),
	('session zone', '2026-07-01 12:00:00'),	-- Asia/Kathmandu, +05:45
	('µs', '2026-01-02 03:04:05.000001Z'), ('bc', '0044-03-15 12:00 BC'),
	('infinity', 'infinity'), ('-infinity', '-infinity');
INSERT INTO ft.interval (c, v) VALUES
	('ymd', '1 year 2 months 3 days'), ('hms', '04:05:06.789'),
	('negative', '-1 year -2 days +03:00'), ('µs', '0.000001 seconds'),
	('mixed', '1 year -1 month 1 day -1 hour'), ('zero', '0'),
	('big', '178000000 years');
INSERT INTO ft.uuid (c, v) VALUES ('uuid', 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11');
INSERT INTO ft.inet (c, v) VALUES ('v4', '192.168.0.1/24'), ('host', '10.0.0.1'), ('v6', '::ffff:1.2.3.4');
INSERT INTO ft.cidr (c, v) VALUES ('v4', '192.168.0.0/16'), ('v6', '2001:db8::/32');
INSERT INTO ft.macaddr (c, v) VALUES ('mac', '08:00:2B:01:02:03');
INSERT INTO ft.macaddr8 (c, v) VALUES ('mac8', '08002b0102030405');
INSERT INTO ft.json (c, v) VALUES
	('nested', '{"a": {"b": [1, 2.50, {"c": null}]},  "d" : "x y"}'),
	('layout', E'{\n  "k": [\n    1,\n    true\n  ]\n}'),
	('unicode', '{"s": "ünï \u00e9 \ud834\udd1e", "e": "q\" b\\ n\n"}'),
	('duplicate keys', '{"a": 1, "a": 2}'),
	('scalar', '"just a string"'), ('number', '1e400'), ('null', 'null'),
	('empty', '[]');
INSERT INTO ft.jsonb (c, v) VALUES
	('nested', '{"a": {"b": [1, 2.50, {"c": null}]},  "d" : "x y"}'),
	('key order', '{"bbb": 1, "a": 2, "cc": 3}'),
	('unicode', '{"s": "ünï \u00e9 \ud834\udd1e", "e": "q\" b\\ n\n"}'),
	('scalar', '"just a string"'), ('number', '1e40'), ('null', 'null'),
	('empty', '{}');
INSERT INTO ft.xml (c, v) VALUES ('doc', '<a x="1">t &amp; "q"</a>'), ('fragment', 'text<b/>');
INSERT INTO ft.bit (c, v) VALUES ('bits', B'1010');
INSERT INTO ft.varbit (c, v) VALUES ('bits', B'101'), ('empty', B'');
INSERT INTO ft.oid (c, v) VALUES ('max', 4294967295);
INSERT INTO ft.regclass (c, v) VALUES ('catalog', 'pg_catalog.pg_class'), ('user', 'ft.int2');
INSERT INTO ft.regtype (c, v) VALUES ('type', 'int4[]'), ('user', 'ft.pair');
INSERT INTO ft.tsvector (c, v) VALUES ('vector', 'a fat:2 cat:3A ''it''''s''');
INSERT INTO ft.tsquery (c, v) VALUES ('query', 'fat & (rat | cat)');
INSERT INTO ft.pg_lsn (c, v) VALUES ('lsn', '16/B374D848');
INSERT INTO ft.point (c, v) VALUES ('point', '(1.5,-2)');
INSERT INTO ft.line (c, v) VALUES ('line', '{1,-1,0}');
INSERT INTO ft.lseg (c, v) VALUES ('lseg', '[(0,0),(1,1)]');
INSERT INTO ft.box (c, v) VALUES ('box', '(1,1),(0,0)');
INSERT INTO ft.path (c, v) VALUES ('open', '[(0,0),(1,1),(2,0)]'), ('closed', '((0,0),(1,1))');
INSERT INTO ft.polygon (c, v) VALUES ('polygon', '((0,0),(1,1),(1,0))');
INSERT INTO ft.circle (c, v) VALUES ('circle', '<(0,0),2.5>');
INSERT INTO ft.int4_arr (c, v) VALUES
	('simple', '{1,2,3}'), ('null elements', '{1,NULL,3}'), ('all null', '{NULL}'),
	('empty', '{}'), ('nested', '{{1,2},{3,4}}'), ('3 dims', '{{{1},{2}},{{3},{4}}}'),
	('lower bound', '[2:3]={1,2}'), ('nested bounds', '[0:1][-1:0]={{1,2},{3,4}}');
INSERT INTO ft.text_arr (c, v) VALUES
	('quotes', ARRAY['a b', 'c"d', 'e\f', 'g,h', '{i}', '']),
	('null string', ARRAY['NULL', NULL, 'null']), ('unicode', ARRAY['ü', '☃']),
	('nested', '{{a,b},{c,NULL}}');
INSERT INTO ft.json_arr (c, v) VALUES
	('json', ARRAY['{"a": [1, 2]}', ' "s" ', 'null', NULL, E'[\n1]']::json[]);
INSERT INTO ft.jsonb_arr (c, v) VALUES
	('jsonb', ARRAY['{"b": 1, "a": "x y"}', '[]', 'null', NULL]::jsonb[]);
INSERT INTO ft.numeric_arr (c, v) VALUES
	('special', '{1.50,NaN,Infinity,-Infinity,NULL,1e40}');
INSERT INTO ft.float8_arr (c, v) VALUES ('special', '{0.1,-0,NaN,Infinity,1e-300}');
INSERT INTO ft.bool_arr (c, v) VALUES ('bools', '{t,f,NULL}');
INSERT INTO ft.ts_arr (c, v) VALUES ('timestamps', '{"2026-01-02 03:04:05.5",infinity,"0044-03-15 BC"}');
INSERT INTO ft.tstz_arr (c, v) VALUES ('timestamps', '{"2026-01-02 03:04:05+02",-infinity}');
INSERT INTO ft.date_arr (c, v) VALUES ('dates', '{2026-01-02,infinity,"0044-03-15 BC"}');
INSERT INTO ft.bytea_arr (c, v) VALUES ('bytes', ARRAY['\x00ff'::bytea, NULL]);
INSERT INTO ft.other_arr (c, v) VALUES ('intervals', '{"1 day","-00:00:01"}');
INSERT INTO ft.bpchar_arr (c, v) VALUES ('padded', '{a,"b c",NULL}');
INSERT INTO ft.money_arr (c, v) VALUES ('money', '{1000,-1.5}');
INSERT INTO ft.uuid_arr (c, v) VALUES ('uuids', '{A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11,NULL}');
INSERT INTO ft.box_arr (c, v) VALUES ('; delimited', '{(1,1),(0,0);(3,3),(2,2)}');
INSERT INTO ft.int2vector (c, v) VALUES ('vector', '1 -2 3');
INSERT INTO ft.oidvector (c, v) VALUES ('vector', '23 25');
INSERT INTO ft.composite (c, v) VALUES
	('simple', ROW(1, 'x')), ('null field', ROW(NULL, 'a "b", c')), ('all null', ROW(NULL, NULL)),
	('empty string', ROW(2, ''));
INSERT INTO ft.nested_composite (c, v) VALUES
	('nested', ROW(ROW(1, 'x y'), '2026-01-02 03:04:05+02', ARRAY['a', NULL]));
INSERT INTO ft.composite_arr (c, v) VALUES
	('composites', ARRAY[ROW(1, 'x')::ft.pair, ROW(NULL, NULL)::ft.pair, NULL]);
INSERT INTO ft.domain_int (c, v) VALUES ('posint', 7);
INSERT INTO ft.domain_text (c, v) VALUES ('label', 'x"y');
INSERT INTO ft.domain_arr (c, v) VALUES ('intlist', '{1,NULL,3}'), ('bounds', '[5:6]={5,6}');
INSERT INTO ft.domain_numeric (c, v) VALUES ('price', 9.9);
INSERT INTO ft.domain_bool (c, v) VALUES ('flag', true);
INSERT INTO ft.domain_jsonb (c, v) VALUES ('doc', '{"k": [1, "v"]}');
INSERT INTO ft.domain_elem_arr (c, v) VALUES ('posints', '{1,2,NULL}');
INSERT INTO ft.domain_arr_arr (c, v) VALUES ('arrays', '{"{1,2}","{}",NULL}');
INSERT INTO ft.enum (c, v) VALUES ('plain', 'happy'), ('quoted', 'it''s "quoted"');
INSERT INTO ft.enum_arr (c, v) VALUES ('enums', ARRAY['sad', 'it''s "quoted"', NULL]::ft.mood[]);
INSERT INTO ft.int4range (c, v) VALUES
	('canonical', '[1,5]'), ('empty', 'empty'), ('unbounded', '(,)'), ('lower only', '[3,)');
INSERT INTO ft.int8range (c, v) VALUES ('max', '[0,9223372036854775806]');
INSERT INTO ft.numrange (c, v) VALUES ('numeric', '(1.5,2.50]'), ('upper only', '(,0)');
INSERT INTO ft.tsrange (c, v) VALUES ('infinite', '[2026-01-02 03:04:05,infinity)');
INSERT INTO ft.tstzrange (c, v) VALUES ('zones', '[2026-01-02 03:04:05+02,2026-01-03 00:00:00+00)');
INSERT INTO ft.daterange (c, v) VALUES ('canonical', '[2026-01-01,2026-01-02]'), ('empty', '(2026-01-01,2026-01-02)');
INSERT INTO ft.int4multirange (c, v) VALUES ('multi', '{[1,3),[5,7],[10,)}'), ('empty', '{}');
INSERT INTO ft.datemultirange (c, v) VALUES ('multi', '{[2026-01-01,2026-01-05),(,2025-01-01)}');
INSERT INTO ft.range_arr (c, v) VALUES ('ranges', ARRAY['[1,2)'::int4range, 'empty']);

-- The value v of each insert, as written in the payload, in both modes.
-- The payloads must be valid JSON (the ::jsonb casts would fail).
CREATE FUNCTION ft_raw_value(payload text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
	SELECT substring(payload FROM '"v":(.*)\}\}\}$')
$$;

-- What the docs promise for the value v of a row: in text mode its text
-- output; in typed mode to_jsonb(v) for numbers, booleans, json, jsonb and
-- arrays (domains resolved), its text output as a string otherwise; NULL
-- is null in both.  Typed values are compared as jsonb (1.50 = 1.5), so
-- the exact text is what the typed and text columns below show.
CREATE FUNCTION ft_expected(tbl text, label text, OUT typed jsonb, OUT text text)
LANGUAGE plpgsql
SET DateStyle = 'ISO' SET IntervalStyle = 'postgres' SET TimeZone = 'UTC'
SET extra_float_digits = 3 SET bytea_output = 'hex'
AS $$
DECLARE
	base regtype;
	as_json bool;
BEGIN
	WITH RECURSIVE b(t, depth) AS (
		SELECT atttypid, 0 FROM pg_attribute
		WHERE attrelid = format('ft.%I', tbl)::regclass AND attname = 'v'
		UNION ALL
		SELECT typbasetype, depth + 1 FROM pg_type JOIN b ON pg_type.oid = b.t
		WHERE typtype = 'd')
	SELECT t INTO base FROM b ORDER BY depth DESC LIMIT 1;
	SELECT base IN ('smallint', 'integer', 'bigint', 'real', 'double precision',
					'numeric', 'boolean', 'json', 'jsonb')
		   OR typsubscript = 'array_subscript_handler'::regproc
	INTO as_json FROM pg_type WHERE oid = base;
	-- format('%s') calls the output function (casts to text may differ);
	-- num_nonnulls, unlike IS NULL, takes a row of nulls for a value
	EXECUTE format('SELECT CASE WHEN $2 THEN to_jsonb(v) ELSE to_jsonb(format(''%%s'', v)) END,
						   CASE WHEN num_nonnulls(v) = 1 THEN format(''%%s'', v) END
					FROM ft.%I WHERE c = $1', tbl)
	INTO typed, text USING label, as_json;
	typed := coalesce(typed, 'null');
END
$$;

CREATE VIEW ft_values AS
SELECT split_part(t.subject, '.', 3) AS tbl,
	   t.payload::jsonb -> 'Insert' -> 'new_tuple' ->> 'c' AS c,
	   ft_raw_value(t.payload) AS typed,
	   ft_raw_value(x.payload) AS text,
	   t.payload::jsonb -> 'Insert' -> 'new_tuple' -> 'v' AS typed_v,
	   x.payload::jsonb -> 'Insert' -> 'new_tuple' ->> 'v' AS text_v,
	   t.ord
FROM pgoutput_stream.peek('ft_typed', 10000) WITH ORDINALITY AS t(lsn, xid, subject, payload, ord)
JOIN pgoutput_stream.peek('ft_text', 10000) WITH ORDINALITY AS x(lsn, xid, subject, payload, ord)
	USING (ord)
WHERE t.subject LIKE '%.insert';

SELECT tbl, c, typed, text,
	   CASE WHEN (ft_expected(tbl, c)).typed = typed_v
				 AND (ft_expected(tbl, c)).text IS NOT DISTINCT FROM text_v
			THEN 'ok' ELSE 'WRONG' END AS check
FROM ft_values ORDER BY ord;

-- typed mode: JSON types of the values; text mode: strings and nulls only
SELECT jsonb_typeof(typed_v) AS typed_type, count(*),
	   CASE WHEN jsonb_typeof(typed_v) <> 'string'
			THEN string_agg(DISTINCT tbl, ' ' ORDER BY tbl) END AS tables
FROM ft_values GROUP BY 1 ORDER BY 1;
SELECT jsonb_typeof(text::jsonb) AS text_type, count(*) FROM ft_values GROUP BY 1 ORDER BY 1;

-- peek left the session's settings alone
SHOW TimeZone;
SHOW DateStyle;
SHOW IntervalStyle;
SHOW extra_float_digits;
SHOW bytea_output;

SELECT pgoutput_stream.drop_stream('ft_typed');
SELECT pgoutput_stream.drop_stream('ft_text');
RESET TimeZone;
RESET DateStyle;
RESET IntervalStyle;
RESET extra_float_digits;
RESET bytea_output;
RESET lc_monetary;

-- Arrays whose text cannot be read back with the element type's input
-- function still render, in typed mode as in text mode: regproc and regoper
-- print overloaded names their input rejects; peek formats with the current
-- catalogs, where an enum label may have been renamed, or a domain may have
-- gained a NOT VALID constraint, since the change was made.
CREATE SCHEMA ftr;
CREATE TYPE ftr.color AS ENUM ('red', 'green');
CREATE DOMAIN ftr.small AS integer;
CREATE TABLE ftr.a (id int PRIMARY KEY, procs regproc[], opers regoper[],
	colors ftr.color[], smalls ftr.small[], color_list ftr.color[][]);
CREATE PUBLICATION ftr_pub FOR TABLE ftr.a;
SELECT pgoutput_stream.create_stream('ftr', 'ftr_pub', start => false);
INSERT INTO ftr.a VALUES (1,
	ARRAY['abs(integer)'::regprocedure::oid::regproc, 'pg_catalog.now'::regproc],
	ARRAY['+(integer,integer)'::regoperator::oid::regoper],
	'{red,green,NULL}', '{-1,1000}', '{{red},{green}}');
SELECT '{pg_catalog.abs}'::regproc[];	-- what pgoutput wrote cannot be read
ALTER TYPE ftr.color RENAME VALUE 'red' TO 'crimson';
ALTER DOMAIN ftr.small ADD CONSTRAINT small CHECK (VALUE BETWEEN 0 AND 100) NOT VALID;
SELECT substring(payload FROM '"new_tuple":(.*)\}\}$') AS new_tuple
FROM pgoutput_stream.peek('ftr', 100) WHERE subject LIKE '%.insert';
SELECT pgoutput_stream.alter_stream('ftr', options => '{"value_mode": "text"}');
SELECT substring(payload FROM '"new_tuple":(.*)\}\}$') AS new_tuple
FROM pgoutput_stream.peek('ftr', 100) WHERE subject LIKE '%.insert';
SELECT pgoutput_stream.drop_stream('ftr');

-- Unchanged TOAST under every replica identity.  big is stored out of line
-- (STORAGE EXTERNAL, 5000 bytes), so an UPDATE that leaves it alone logs no
-- value for it, only pgoutput's "unchanged" marker.  Such a value is never
-- written as null: it is taken from the old row when pgoutput sent one that
-- has it (REPLICA IDENTITY FULL, or a key column in a key-only old row),
-- otherwise it is left out of new_tuple and listed in "unchanged_toast".
-- Old rows never carry the marker: PostgreSQL logs key-only and full old
-- rows with their TOASTed values inlined, so "unchanged_toast_old" does
-- not appear.  The text format follows the same rules.
CREATE SCHEMA ftt;
CREATE TABLE ftt.dflt (id int PRIMARY KEY, v text, big text);
CREATE TABLE ftt.idx (id int NOT NULL, k int NOT NULL, v text, big text);
CREATE UNIQUE INDEX idx_k ON ftt.idx (k);
ALTER TABLE ftt.idx REPLICA IDENTITY USING INDEX idx_k;
CREATE TABLE ftt.full (id int PRIMARY KEY, v text, big text, big2 text);
ALTER TABLE ftt.full REPLICA IDENTITY FULL;
ALTER TABLE ftt.full ALTER COLUMN big2 SET STORAGE EXTERNAL;
CREATE TABLE ftt.nothing (id int PRIMARY KEY, v text, big text);
ALTER TABLE ftt.nothing REPLICA IDENTITY NOTHING;
-- a TOASTed key: PostgreSQL logs the key-only old row whenever a key value
-- is stored out of line, even if the key did not change
CREATE TABLE ftt.toastkey (k text PRIMARY KEY, v text);
ALTER TABLE ftt.toastkey ALTER COLUMN k SET STORAGE EXTERNAL;
DO $$
DECLARE
	t text;
BEGIN
	FOREACH t IN ARRAY ARRAY['dflt', 'idx', 'full', 'nothing'] LOOP
		EXECUTE format('ALTER TABLE ftt.%I ALTER COLUMN big SET STORAGE EXTERNAL', t);
	END LOOP;
END
$$;
CREATE PUBLICATION ftt_pub FOR TABLES IN SCHEMA ftt;

INSERT INTO ftt.dflt VALUES (1, 'a', repeat('x', 5000)), (2, 'a', repeat('x', 5000));
INSERT INTO ftt.idx VALUES (1, 10, 'a', repeat('x', 5000)), (2, 20, 'a', repeat('x', 5000));
INSERT INTO ftt.full VALUES (1, 'a', repeat('x', 5000), repeat('z', 5000)),
	(2, 'a', repeat('x', 5000), repeat('z', 5000));
INSERT INTO ftt.nothing VALUES (1, 'a', repeat('x', 5000));
INSERT INTO ftt.toastkey VALUES (repeat('k', 2500), 'a'), (repeat('k', 2500) || '2', 'a');

-- big values are shown as <5000 x> etc.; anything else would be unmasked
CREATE FUNCTION ftt_masked(payload text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
	SELECT regexp_replace(regexp_replace(regexp_replace(regexp_replace(regexp_replace(
		payload,
		'(x{250}){20}', '<5000 x>', 'g'),
		'(y{250}){20}', '<5000 y>', 'g'),
		'(z{250}){20}', '<5000 z>', 'g'),
		'(k{250}){10}', '<2500 k>', 'g'),
		'"relation_id":[0-9]+|\(ID: [0-9]+\)', '<relid>', 'g')
$$;

SELECT pgoutput_stream.create_stream('ftt_json', 'ftt_pub', start => false);
SELECT pgoutput_stream.create_stream('ftt_text', 'ftt_pub', format => 'text', start => false);

UPDATE ftt.dflt SET v = 'b' WHERE id = 1;			-- big unchanged
UPDATE ftt.dflt SET id = 3 WHERE id = 1;			-- key changed, big unchanged
UPDATE ftt.dflt SET big = big WHERE id = 3;			-- big set to itself
UPDATE ftt.dflt SET big = repeat('y', 5000) WHERE id = 3;
UPDATE ftt.dflt SET big = NULL WHERE id = 2;		-- a real NULL
DELETE FROM ftt.dflt;
UPDATE ftt.idx SET v = 'b' WHERE k = 10;
UPDATE ftt.idx SET id = 3 WHERE k = 10;				-- not the identity
UPDATE ftt.idx SET k = 30 WHERE k = 10;				-- identity changed
DELETE FROM ftt.idx;
UPDATE ftt.full SET v = 'b' WHERE id = 1;			-- both big unchanged
UPDATE ftt.full SET id = 3 WHERE id = 1;
UPDATE ftt.full SET big = repeat('y', 5000) WHERE id = 3;	-- big2 unchanged
UPDATE ftt.full SET big = NULL, v = NULL WHERE id = 2;
DELETE FROM ftt.full;
UPDATE ftt.toastkey SET v = 'b' WHERE k = repeat('k', 2500);	-- TOASTed key unchanged
UPDATE ftt.toastkey SET k = 'short' WHERE k = repeat('k', 2500);
DELETE FROM ftt.toastkey;
-- REPLICA IDENTITY NOTHING: PostgreSQL refuses to UPDATE or DELETE a table
-- whose updates and deletes are published, so there is no old row to show
UPDATE ftt.nothing SET v = 'b';
DELETE FROM ftt.nothing;

SELECT ftt_masked(payload) AS payload
FROM pgoutput_stream.peek('ftt_json', 1000)
WHERE subject NOT LIKE '%.transactions.%' AND subject NOT LIKE '%.relation';
SELECT ftt_masked(payload) AS payload
FROM pgoutput_stream.peek('ftt_text', 1000)
WHERE payload NOT LIKE 'BEGIN%' AND payload NOT LIKE 'COMMIT%' AND payload NOT LIKE 'RELATION%';

-- the contract, over all updates: every column of the table is either in
-- new_tuple or listed in unchanged_toast, and a value is null only where
-- the row really holds NULL (the updates that set big, v to NULL)
SELECT p -> 'Update' ->> 'table' AS tbl,
	   (SELECT count(*) FROM jsonb_object_keys(p -> 'Update' -> 'new_tuple')) +
	   jsonb_array_length(coalesce(p -> 'Update' -> 'unchanged_toast', '[]')) =
	   (SELECT count(*) FROM pg_attribute
		WHERE attrelid = format('ftt.%I', p -> 'Update' ->> 'table')::regclass
		  AND attnum > 0 AND NOT attisdropped) AS all_columns,
	   p -> 'Update' -> 'unchanged_toast' AS unchanged_toast,
	   (SELECT string_agg(key, ',') FROM jsonb_each(p -> 'Update' -> 'new_tuple')
		WHERE value = 'null') AS null_columns
FROM pgoutput_stream.peek('ftt_json', 1000), LATERAL (SELECT payload::jsonb AS p) AS j
WHERE p ? 'Update';

SELECT pgoutput_stream.drop_stream('ftt_json');
SELECT pgoutput_stream.drop_stream('ftt_text');
