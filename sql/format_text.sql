-- The json-pretty and text formats through peek: every kind of event, values
-- that look like JSON syntax, empty containers, NULL, unchanged TOAST.
-- json-pretty is the json document laid out like serde_json's
-- to_string_pretty; text is the original tool's human-readable form.
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgoutput_stream;
RESET client_min_messages;
SET synchronous_commit = on;

-- LSNs, xids, OIDs and times differ from run to run, in both layouts
CREATE FUNCTION fx_masked(payload text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
	SELECT regexp_replace(regexp_replace(regexp_replace(regexp_replace(regexp_replace(regexp_replace(
		regexp_replace(regexp_replace(regexp_replace(regexp_replace(regexp_replace(
		payload,
		'("type_id": ?)[0-9]{5,}', '\1OID', 'g'),
		'("(lsn|end_lsn)": ?)"[0-9A-F]+/[0-9A-F]+"', '\1"LSN"', 'g'),
		'("relation_id": ?)[0-9]+', '\1OID', 'g'),
		'("xid": ?)[0-9]+', '\1XID', 'g'),
		'("timestamp": ?)[0-9]+', '\1TS', 'g'),
		'("commit_time": ?)"[^"]+"', '\1"TIME"', 'g'),
		'(LSN: )[0-9A-F]+/[0-9A-F]+', '\1LSN', 'g'),
		'(XID: )[0-9]+', '\1XID', 'g'),
		'(Time: )[0-9]+', '\1TS', 'g'),
		'(\(ID: )[0-9]+\)', '\1OID)', 'g'),
		'(type_id: )[0-9]{5,}', '\1OID', 'g')
$$;

CREATE SCHEMA fx;
CREATE TABLE fx.t (id int PRIMARY KEY, s text, n numeric, f float8, ok boolean,
	arr int[], tags text[], doc jsonb, j json, big text);
ALTER TABLE fx.t ALTER COLUMN big SET STORAGE EXTERNAL;
CREATE TABLE fx.empty ();
CREATE TABLE fx."Odd ""name""" ("key:" int PRIMARY KEY, "a,b" text);
CREATE PUBLICATION fx_pub FOR TABLES IN SCHEMA fx;

SELECT pgoutput_stream.create_stream('fx_json', 'fx_pub', start => false);
SELECT pgoutput_stream.create_stream('fx_pretty', 'fx_pub', format => 'json-pretty', start => false);
SELECT pgoutput_stream.create_stream('fx_pretty_text', 'fx_pub', format => 'json-pretty',
	start => false, options => '{"value_mode": "text"}');
SELECT pgoutput_stream.create_stream('fx_text', 'fx_pub', format => 'text', start => false);

INSERT INTO fx.t VALUES (1, E'{"not": [json]}, a:b \\ "q"\nsecond line\ttab', 12.50, 'NaN', true,
	'{{1,2},{3,NULL}}', '{"a b",NULL,"{}"}',
	'{"k": {"nested": [1, {"x": []}, {}]}, "e": "", "u": "\u00e9"}',
	E'{ "layout" :\n [1 , 2] }', repeat('x', 3000));
INSERT INTO fx.t (id, s, arr, tags, doc) VALUES (2, '', '{}', '{}', '[]');
UPDATE fx.t SET s = 'changed' WHERE id = 2;			-- big is NULL, not TOAST
UPDATE fx.t SET id = 3, ok = false WHERE id = 1;	-- key changed, big unchanged
DELETE FROM fx.t WHERE id = 2;
INSERT INTO fx.empty DEFAULT VALUES;
INSERT INTO fx."Odd ""name""" VALUES (1, 'v');
TRUNCATE fx.empty, fx."Odd ""name""" RESTART IDENTITY CASCADE;
SELECT pg_logical_emit_message(true, 'outbox', E'{"order": 1}\nline 2') IS NOT NULL AS emitted;
SELECT pg_logical_emit_message(false, '', '') IS NOT NULL AS emitted;
SELECT pg_logical_emit_message(true, 'bin', '\x00ff'::bytea) IS NOT NULL AS emitted;

-- json-pretty: typed values (Begin and Commit of the first transaction only)
SELECT subject, regexp_replace(fx_masked(payload), '(x{250}){12}', '<3000 x>', 'g') AS payload
FROM pgoutput_stream.peek('fx_pretty', 1000) WITH ORDINALITY AS p(lsn, xid, subject, payload, n)
WHERE subject NOT LIKE '%.transactions.%' OR n <= 4;
-- json-pretty: text values
SELECT regexp_replace(fx_masked(payload), '(x{250}){12}', '<3000 x>', 'g') AS payload
FROM pgoutput_stream.peek('fx_pretty_text', 1000)
WHERE subject LIKE 'postgres.fx.t.%' AND subject NOT LIKE '%.relation';
-- text.  Values and names are printed as they are, as the original tool
-- did: a line break in a value continues on a new line, and an empty
-- string leaves nothing after "s: "
SELECT subject, regexp_replace(fx_masked(payload), '(x{250}){12}', '<3000 x>', 'g') AS payload
FROM pgoutput_stream.peek('fx_text', 1000);

-- json-pretty is the json document, re-indented: equal as JSON, event by
-- event; the same text once the layout white space is taken out; two
-- spaces per level; no trailing newline
CREATE FUNCTION fx_unpretty(payload text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
	-- outside strings, the layout adds only "\n" + indentation and ": ";
	-- escaped backslashes and quotes are hidden while splitting at quotes
	SELECT replace(replace(string_agg(CASE WHEN n % 2 = 1
							THEN replace(regexp_replace(part, '\n *', '', 'g'), ': ', ':')
							ELSE part END, '"' ORDER BY n),
				   chr(1), '\\'), chr(2), '\"')
	FROM regexp_split_to_table(replace(replace(payload, '\\', chr(1)), '\"', chr(2)), '"')
		 WITH ORDINALITY AS s(part, n)
$$;
SELECT count(*) AS events,
	   bool_and(p.payload::jsonb = j.payload::jsonb) AS same_json,
	   bool_and(fx_unpretty(p.payload) = j.payload) AS same_text,
	   bool_and(p.payload !~ '\n(  )* [^ ]') AS two_space_indent,
	   bool_and(p.payload !~ '\s$') AS no_trailing_white_space
FROM pgoutput_stream.peek('fx_pretty', 1000) WITH ORDINALITY AS p(lsn, xid, subject, payload, n)
JOIN pgoutput_stream.peek('fx_json', 1000) WITH ORDINALITY AS j(lsn, xid, subject, payload, n)
	USING (n);

SELECT pgoutput_stream.drop_stream('fx_json');
SELECT pgoutput_stream.drop_stream('fx_pretty');
SELECT pgoutput_stream.drop_stream('fx_pretty_text');
SELECT pgoutput_stream.drop_stream('fx_text');
