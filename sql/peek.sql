-- peek: pending events exactly as targets would receive them, not consumed
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgoutput_stream;
RESET client_min_messages;
SET synchronous_commit = on;

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

CREATE TABLE peek_t (id int PRIMARY KEY, v text);
CREATE TABLE peek_other (id int PRIMARY KEY);
CREATE PUBLICATION peek_pub FOR TABLE peek_t;
SELECT pgoutput_stream.create_stream('peek_s', 'peek_pub', start => false);

-- nothing pending yet
SELECT count(*) FROM pgoutput_stream.peek('peek_s', 10);

INSERT INTO peek_t VALUES (1, 'a');
INSERT INTO peek_other VALUES (1);		-- not published
BEGIN;
INSERT INTO peek_t VALUES (2, 'b');
INSERT INTO peek_t VALUES (3, 'c');
COMMIT;
BEGIN;
INSERT INTO peek_t VALUES (99, 'rolled back');
ROLLBACK;

SELECT subject, masked(payload) FROM pgoutput_stream.peek('peek_s', 100);
-- peeking again shows the same events: nothing was consumed
SELECT count(*) FROM pgoutput_stream.peek('peek_s', 100);
-- n limits the number of events
SELECT subject FROM pgoutput_stream.peek('peek_s', 2);
SELECT count(*) FROM pgoutput_stream.peek('peek_s', 0);
-- xids group the events of a transaction; lsns never go back
SELECT count(DISTINCT xid::text) AS transactions,
       bool_and(lsn IS NOT NULL) AS all_have_lsn
FROM pgoutput_stream.peek('peek_s', 100);
-- the temporary copy of the slot is gone, the stream's slot did not move
SELECT count(*) AS temporary_slots FROM pg_replication_slots WHERE temporary;

-- the other formats
SELECT pgoutput_stream.alter_stream('peek_s', format => 'json-pretty');
SELECT subject, masked(payload) FROM pgoutput_stream.peek('peek_s', 3);
SELECT pgoutput_stream.alter_stream('peek_s', format => 'text');
SELECT subject, regexp_replace(regexp_replace(payload, '[0-9A-F]+/[0-9A-F]+', 'LSN', 'g'), '(XID|ID|Time): [0-9]+', '\1: N', 'g') AS payload
FROM pgoutput_stream.peek('peek_s', 100);
SELECT pgoutput_stream.alter_stream('peek_s', format => 'json',
	options => '{"subject_prefix": "app.cdc"}');
SELECT DISTINCT subject FROM pgoutput_stream.peek('peek_s', 100) ORDER BY 1;

-- a running stream: peek shows what is not yet confirmed (nothing, once caught up)
SELECT pgoutput_stream.start_stream('peek_s');
CREATE FUNCTION wait_until_caught_up(stream text) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
	target pg_lsn := pg_current_wal_flush_lsn();
BEGIN
	FOR i IN 1 .. 600 LOOP
		IF (SELECT confirmed_lsn >= target FROM pgoutput_stream.stream_status WHERE name = stream) THEN
			RETURN true;
		END IF;
		PERFORM pg_sleep(0.05);
	END LOOP;
	RETURN false;
END
$$;
SELECT wait_until_caught_up('peek_s');
SELECT count(*) FROM pgoutput_stream.peek('peek_s', 100);
SELECT state FROM pgoutput_stream.stream_status WHERE name = 'peek_s';
SELECT pgoutput_stream.drop_stream('peek_s');
