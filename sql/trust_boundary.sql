-- Rendering runs no code that a table owner wrote (docs/reliability.md,
-- "Trust boundary").  Every trap below raises a WARNING naming the role it
-- runs as, so a trap that fires shows up in this file's output:
--   casts to json, jsonb and text from an enum and from a composite,
--   which array_to_json() would use for elements of those types;
--   domains whose CHECK constraint calls a function, inside arrays and
--   composites, which array_in, record_in and domain_in would evaluate;
--   a range over such a domain, and its multirange.
-- The values must still arrive, rendered from the text pgoutput wrote: a
-- user type's value is a string of its text, arrays and composites are
-- taken apart by the extension's own reading of array_out's and
-- record_out's text.  Every format and both value modes.
--
-- The second half checks that reading against PostgreSQL's own quoting:
-- elements and fields that need quotes, backslashes, the word NULL, empty
-- strings, bounds that do not start at 1, box's ";" delimiter, dropped
-- attributes, nesting.
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgoutput_stream;
SET synchronous_commit = on;

CREATE SCHEMA tb;
CREATE FUNCTION tb.trap(v anyelement) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
	RAISE WARNING 'user code ran as % on %', current_user, v;
	RETURN true;
END $$;
CREATE FUNCTION tb.trap_json(v anyelement) RETURNS json LANGUAGE plpgsql AS $$
BEGIN
	RAISE WARNING 'user cast ran as %', current_user;
	RETURN '"from the cast"'::json;
END $$;
CREATE FUNCTION tb.trap_jsonb(v anyelement) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
	RAISE WARNING 'user cast ran as %', current_user;
	RETURN '"from the cast"'::jsonb;
END $$;
CREATE FUNCTION tb.trap_text(v anyelement) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	RAISE WARNING 'user cast ran as %', current_user;
	RETURN 'from the cast';
END $$;

CREATE TYPE tb.mood AS ENUM ('sad', 'ok', 'it''s "quoted"');
CREATE FUNCTION tb.mood_json(tb.mood) RETURNS json LANGUAGE sql
	AS 'SELECT tb.trap_json($1)';
CREATE FUNCTION tb.mood_jsonb(tb.mood) RETURNS jsonb LANGUAGE sql
	AS 'SELECT tb.trap_jsonb($1)';
CREATE FUNCTION tb.mood_text(tb.mood) RETURNS text LANGUAGE sql
	AS 'SELECT tb.trap_text($1)';
CREATE CAST (tb.mood AS json) WITH FUNCTION tb.mood_json(tb.mood);
CREATE CAST (tb.mood AS jsonb) WITH FUNCTION tb.mood_jsonb(tb.mood);
CREATE CAST (tb.mood AS text) WITH FUNCTION tb.mood_text(tb.mood);

CREATE DOMAIN tb.checked AS integer CHECK (tb.trap(VALUE));
CREATE TYPE tb.item AS (m tb.mood, n tb.checked, note text);
CREATE FUNCTION tb.item_json(tb.item) RETURNS json LANGUAGE sql
	AS 'SELECT tb.trap_json($1)';
CREATE CAST (tb.item AS json) WITH FUNCTION tb.item_json(tb.item);
CREATE TYPE tb.box AS (inner_item tb.item, items tb.item[], moods tb.mood[]);
CREATE TYPE tb.checkedrange AS RANGE (subtype = tb.checked);

CREATE TABLE tb.t (
	id int PRIMARY KEY,
	mood tb.mood, moods tb.mood[],
	n tb.checked, ns tb.checked[],
	item tb.item, items tb.item[],
	box tb.box, boxes tb.box[],
	r tb.checkedrange, rs tb.checkedrange[],
	mr tb.checkedmultirange, mrs tb.checkedmultirange[]);
CREATE PUBLICATION tb_pub FOR TABLE tb.t;
SELECT pgoutput_stream.create_stream('tb_json', 'tb_pub', start => false);
SELECT pgoutput_stream.create_stream('tb_json_text', 'tb_pub', start => false,
	options => '{"value_mode": "text"}');
SELECT pgoutput_stream.create_stream('tb_pretty', 'tb_pub', start => false,
	format => 'json-pretty');
SELECT pgoutput_stream.create_stream('tb_text', 'tb_pub', start => false,
	format => 'text');
SELECT pgoutput_stream.create_stream('tb_debezium', 'tb_pub', start => false,
	format => 'debezium');
SELECT pgoutput_stream.create_stream('tb_feldera', 'tb_pub', start => false,
	format => 'feldera');

-- the traps fire here, in this session, while the rows are written: that
-- is the table owner's own code in the owner's session, as intended
SET client_min_messages = error;
INSERT INTO tb.t VALUES (1,
	'it''s "quoted"', '{sad,NULL,"it''s \"quoted\""}',
	7, '{1,NULL,3}',
	'(ok,5,"a, (b)")', ARRAY['(sad,1,x)', NULL, '(,,)']::tb.item[],
	'("(ok,2,""q"")","{""(sad,3,)""}","{ok,NULL}")',
	ARRAY['("(ok,2,y)",{},{})']::tb.box[],
	'[1,5)', '{"[1,5)",empty,NULL}',
	'{[1,3),[7,9)}', ARRAY['{[1,3)}', '{}']::tb.checkedmultirange[]);
INSERT INTO tb.t (id) VALUES (2);
RESET client_min_messages;

-- from here on, a WARNING means the extension ran the owner's code
SELECT regexp_replace(payload, '"relation_id":\d+', '"relation_id":N') AS payload
FROM pgoutput_stream.peek('tb_json', 100) WHERE subject LIKE '%.insert';
SELECT regexp_replace(payload, '"relation_id":\d+', '"relation_id":N') AS payload
FROM pgoutput_stream.peek('tb_json_text', 100) WHERE subject LIKE '%.insert';
SELECT regexp_replace(payload, '"relation_id": \d+', '"relation_id": N') AS payload
FROM pgoutput_stream.peek('tb_pretty', 100) WHERE subject LIKE '%.insert' LIMIT 1;
SELECT regexp_replace(payload, '\(ID: \d+\)', '(ID: N)') AS payload
FROM pgoutput_stream.peek('tb_text', 100) WHERE subject LIKE '%.insert';
SELECT payload::jsonb -> 'payload' -> 'after' AS after
FROM pgoutput_stream.peek('tb_debezium', 100) WHERE subject LIKE '%.insert';
SELECT payload FROM pgoutput_stream.peek('tb_feldera', 100) WHERE subject LIKE '%.insert';

-- array_out's and record_out's quoting, read back exactly: typed mode must
-- give what array_to_json gives for built-in types (which have no cast to
-- json), computed here by PostgreSQL itself (in UTC, as the worker and
-- peek render)
SET TimeZone = 'UTC';
CREATE TYPE tb.pair AS (a text, b int, gone int, c text[]);
ALTER TYPE tb.pair DROP ATTRIBUTE gone;
CREATE TABLE tb.q (id int PRIMARY KEY, texts text[], grid int[], boxes box[],
	pairs tb.pair[], stamps timestamptz[], docs json[], vecs int2vector);
CREATE PUBLICATION tb_q_pub FOR TABLE tb.q;
SELECT pgoutput_stream.create_stream('tb_q', 'tb_q_pub', start => false);
INSERT INTO tb.q VALUES (1,
	ARRAY['', 'NULL', 'null', NULL, 'a b', 'a,b', '{x}', 'q"q', 'b\s', E'tab\there', 'ü'],
	'[0:1][-1:0]={{1,2},{3,4}}',
	ARRAY['(1,2),(0,0)', '(3,3),(-1,-2)']::box[],
	ARRAY[ROW('', 1, ARRAY['', NULL, 'x y'])::tb.pair, ROW(NULL, NULL, NULL)::tb.pair,
		ROW('a "(b)", c\d', -2, '{}')::tb.pair],
	ARRAY['2026-01-02 03:04:05.5+02', 'infinity']::timestamptz[],
	ARRAY['{"k": [1, "x"]}', 'null']::json[],
	'1 2 3');
SELECT (SELECT payload::jsonb -> 'Insert' -> 'new_tuple'
		FROM pgoutput_stream.peek('tb_q', 100) WHERE subject LIKE '%.insert') =
	(SELECT jsonb_build_object('id', id, 'texts', array_to_json(texts),
		'grid', array_to_json(grid), 'boxes', array_to_json(boxes),
		'pairs', array_to_json(pairs), 'stamps', array_to_json(stamps),
		'docs', array_to_json(docs), 'vecs', '[1,2,3]'::jsonb)
	 FROM tb.q) AS same_as_array_to_json;
SELECT payload::jsonb -> 'Insert' -> 'new_tuple' AS new_tuple
FROM pgoutput_stream.peek('tb_q', 100) WHERE subject LIKE '%.insert';

SELECT pgoutput_stream.drop_stream(name) FROM pgoutput_stream.streams
WHERE name LIKE 'tb\_%' ORDER BY name;
DROP PUBLICATION tb_pub;
DROP PUBLICATION tb_q_pub;
SET client_min_messages = warning;
DROP SCHEMA tb CASCADE;
RESET client_min_messages;
RESET TimeZone;
