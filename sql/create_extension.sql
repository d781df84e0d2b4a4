-- The extension installs into its own schema and grants nothing to PUBLIC
\set VERBOSITY terse
CREATE EXTENSION pgoutput_stream;

SELECT extname, extversion, extnamespace::regnamespace AS schema, extrelocatable
FROM pg_extension WHERE extname = 'pgoutput_stream';

-- every object of the extension
SELECT pg_describe_object(classid, objid, objsubid) AS object
FROM pg_depend
WHERE refclassid = 'pg_extension'::regclass
  AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pgoutput_stream')
  AND deptype = 'e'
ORDER BY 1;

-- the settings exist, with their defaults
SELECT name, setting, unit, context
FROM pg_settings WHERE name LIKE 'pgoutput_stream.%' ORDER BY name;

-- the prefix is reserved: a misspelt setting is refused
SET pgoutput_stream.no_such_setting = 1;

-- the launcher runs
SELECT count(*) AS launchers FROM pg_stat_activity
WHERE backend_type = 'pgoutput_stream launcher';

-- dropping and re-creating the extension works
DROP EXTENSION pgoutput_stream;
CREATE EXTENSION pgoutput_stream;
