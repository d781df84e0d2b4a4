-- test/fuzz/types.sql
--     The user-defined types of the corpus workload.  make-corpus.sh and
--     run.sh create them in template0 first thing after initdb, so that
--     they get the same OIDs in both instances (a new cluster hands out
--     OIDs in a fixed order) and every database made from template0 has
--     them: the corpus's Relation messages name types by OID, and the
--     formatters look them up.
\set ON_ERROR_STOP 1
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy', 'ecstatic');
CREATE DOMAIN posint AS int CHECK (VALUE > 0);
CREATE TYPE pair AS (a int, b text);
