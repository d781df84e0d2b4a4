-- Per-stream filters: tables, operations, columns; Begin/Commit and
-- Relation events on or off; bad filter options
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgoutput_stream;
RESET client_min_messages;
SET synchronous_commit = on;

CREATE SCHEMA flt_app;
CREATE SCHEMA flt_audit;
CREATE TABLE flt_app.orders (id int PRIMARY KEY, item text, secret text, card_no text);
CREATE TABLE flt_app.order_lines (id int PRIMARY KEY, order_id int, qty int);
CREATE TABLE flt_app.customers (id int PRIMARY KEY, name text, secret text);
CREATE TABLE flt_audit.log (id int PRIMARY KEY, what text);
CREATE TABLE flt_app."odd.name*" (id int PRIMARY KEY);
CREATE PUBLICATION flt_pub FOR TABLE flt_app.orders, flt_app.order_lines,
	flt_app.customers, flt_audit.log, flt_app."odd.name*";

-- include by pattern, then exclude from what is included
SELECT pgoutput_stream.create_stream('flt_tables', 'flt_pub', start => false,
	options => '{"include_tables": ["flt_app.order*", "flt_app.odd\\.name\\*"],
				 "exclude_tables": "flt_app.order_lines",
				 "transaction_events": false, "relation_events": false}');
-- only deletes and truncates; columns excluded by pattern
SELECT pgoutput_stream.create_stream('flt_ops', 'flt_pub', start => false,
	options => '{"operations": ["delete", "truncate"],
				 "exclude_columns": ["flt_app.*.secret", "*.orders.card_?o"],
				 "relation_events": "off"}');
-- columns excluded, every event kept
SELECT pgoutput_stream.create_stream('flt_cols', 'flt_pub', start => false,
	options => '{"exclude_columns": "flt_app.*.secret,flt_app.orders.card_no"}');

BEGIN;
INSERT INTO flt_app.orders VALUES (1, 'book', 's1', '4111');
INSERT INTO flt_app.order_lines VALUES (1, 1, 2);
INSERT INTO flt_app.customers VALUES (1, 'ann', 's2');
INSERT INTO flt_audit.log VALUES (1, 'x');
INSERT INTO flt_app."odd.name*" VALUES (1);
COMMIT;
UPDATE flt_app.orders SET item = 'pen' WHERE id = 1;
DELETE FROM flt_app.customers WHERE id = 1;
DELETE FROM flt_app.orders WHERE id = 1;
TRUNCATE flt_audit.log;
SELECT pg_logical_emit_message(true, 'app', 'm1') IS NOT NULL AS emitted;

SELECT subject, regexp_replace(payload, '"(xid|relation_id|timestamp|lsn|end_lsn|commit_time)":("[^"]*"|[0-9]+)', '"\1":X', 'g') AS payload
FROM pgoutput_stream.peek('flt_tables', 100);
SELECT subject, regexp_replace(payload, '"(xid|relation_id|timestamp|lsn|end_lsn|commit_time)":("[^"]*"|[0-9]+)', '"\1":X', 'g') AS payload
FROM pgoutput_stream.peek('flt_ops', 100);
SELECT subject, regexp_replace(payload, '"(xid|relation_id|timestamp|lsn|end_lsn|commit_time|type_id)":("[^"]*"|[0-9]+)', '"\1":X', 'g') AS payload
FROM pgoutput_stream.peek('flt_cols', 100)
WHERE subject LIKE '%orders%' OR subject LIKE '%customers%';

-- the filters are shown by stream_status's options and can be changed
SELECT pgoutput_stream.alter_stream('flt_tables', options => '{"include_tables": null, "operations": "insert"}');
SELECT options FROM pgoutput_stream.streams WHERE name = 'flt_tables';
SELECT count(*) AS events, count(*) FILTER (WHERE subject LIKE '%.insert') AS inserts
FROM pgoutput_stream.peek('flt_tables', 100);

-- bad filter options: clear errors, nothing changed
SELECT pgoutput_stream.alter_stream('flt_ops', options => '{"include_tables": []}');
SELECT pgoutput_stream.alter_stream('flt_ops', options => '{"include_tables": "public"}');
SELECT pgoutput_stream.alter_stream('flt_ops', options => '{"include_tables": "a.b.c"}');
SELECT pgoutput_stream.alter_stream('flt_ops', options => '{"include_tables": ".t"}');
SELECT pgoutput_stream.alter_stream('flt_ops', options => '{"include_tables": "s.t\\"}');
SELECT pgoutput_stream.alter_stream('flt_ops', options => '{"include_tables": [1]}');
SELECT pgoutput_stream.alter_stream('flt_ops', options => '{"include_tables": {"a": 1}}');
SELECT pgoutput_stream.alter_stream('flt_ops', options => '{"exclude_columns": "s.t"}');
SELECT pgoutput_stream.alter_stream('flt_ops', options => '{"operations": "upsert"}');
SELECT pgoutput_stream.alter_stream('flt_ops', options => '{"operations": "insert,insert"}');
SELECT pgoutput_stream.alter_stream('flt_ops', options => '{"transaction_events": "maybe"}');
SELECT pgoutput_stream.alter_stream('flt_ops', options => '{"relation_events": [true]}');
SELECT options FROM pgoutput_stream.streams WHERE name = 'flt_ops';

SELECT pgoutput_stream.drop_stream('flt_tables');
SELECT pgoutput_stream.drop_stream('flt_ops');
SELECT pgoutput_stream.drop_stream('flt_cols');
DROP PUBLICATION flt_pub;
