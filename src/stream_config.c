/*-------------------------------------------------------------------------
 *
 * stream_config.c
 *		A stream's persistent configuration: validation and loading.
 *
 * Streams are rows of pgoutput_stream.streams.  The SQL functions validate
 * every field here before they write a row, and the worker loads its row
 * through the same code, so a row that exists is always valid.
 *
 * Copyright (c) 2026, pgoutput_stream developers
 *
 * IDENTIFICATION
 *		src/stream_config.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "catalog/pg_publication.h"
#include "executor/spi.h"
#include "commands/dbcommands.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"

#include "secrets.h"
#include "stream_config.h"

static void invalid_option_value(const char *key, const char *value,
								 const char *detail) pg_attribute_noreturn();

/*
 * Stream names become part of slot names, worker names and log lines, so
 * they are limited to what a replication slot name accepts.
 */
void
pgs_validate_stream_name(const char *name)
{
	const char *p;

	if (name[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_NAME),
				 errmsg("stream name must not be empty")));
	if (strlen(name) > PGS_MAX_STREAM_NAME)
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("stream name \"%s\" is too long", name),
				 errdetail("Stream names can have at most %d characters.",
						   PGS_MAX_STREAM_NAME)));
	for (p = name; *p; p++)
	{
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_NAME),
					 errmsg("stream name \"%s\" contains invalid character", name),
					 errhint("Stream names may only contain lower case letters, numbers, and the underscore character.")));
	}
}

/* The publication must exist in this database before the slot is created */
void
pgs_validate_publication(const char *pubname)
{
	if (pubname[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_NAME),
				 errmsg("publication name must not be empty")));
	if (strlen(pubname) >= NAMEDATALEN)
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("publication name \"%s\" is too long", pubname)));
	if (GetPublicationByName(pubname, true) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("publication \"%s\" does not exist", pubname),
				 errhint("Create the publication with CREATE PUBLICATION before the stream.")));
}

/*
 * Parse a text[] of target names into PGS_TARGET_* bits.
 */
int
pgs_parse_targets(ArrayType *targets)
{
	Datum	   *elems;
	bool	   *nulls;
	int			nelems;
	int			result = 0;
	int			i;

	if (ARR_NDIM(targets) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("targets must be a one-dimensional array")));
	deconstruct_array(targets, TEXTOID, -1, false, TYPALIGN_INT,
					  &elems, &nulls, &nelems);
	if (nelems == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a stream needs at least one target")));
	for (i = 0; i < nelems; i++)
	{
		char	   *name;
		int			bit = 0;

		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("target names must not be null")));
		name = TextDatumGetCString(elems[i]);
		if (strcmp(name, "log") == 0)
			bit = PGS_TARGET_LOG;
		else if (strcmp(name, "nats") == 0)
			bit = PGS_TARGET_NATS;
		else if (strcmp(name, "feldera") == 0)
			bit = PGS_TARGET_FELDERA;
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unrecognized target \"%s\"", name),
					 errhint("Valid targets are: %s.", "log, nats, feldera")));
		if (result & bit)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("target \"%s\" is listed more than once", name)));
		result |= bit;
	}
	return result;
}

PgsFormat
pgs_parse_format(const char *name)
{
	PgsFormat	format;

	if (!pgs_format_from_name(name, &format))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unrecognized format \"%s\"", name),
				 errhint("Valid formats are: %s.", "json, json-pretty, text, debezium, feldera")));
	return format;
}

void
pgs_config_defaults(PgsStreamConfig *config)
{
	config->fmt.format = PGS_FORMAT_JSON;
	config->fmt.value_mode = PGS_VALUES_TYPED;
	config->fmt.subject_prefix = "postgres";
	config->fmt.transaction_events = true;	/* debezium: see below */
	config->fmt.relation_events = true;
	config->fmt.stream_name = NULL;
	config->fmt.database = NULL;
	config->fmt.debezium_feldera = false;
	config->fmt.debezium = NULL;
	pgs_filter_defaults(&config->filter);
	config->nats.url = NULL;
	config->nats.stream = "postgres_replication";
	config->nats.memory_storage = false;
	config->nats.max_msgs = -1;
	config->nats.max_bytes = -1;
	config->nats.max_age = 0;
	config->nats.replicas = 1;
	config->nats.duplicate_window = 0;
	config->nats.shared = false;
	config->feldera.url = NULL;
	config->feldera.pipeline = NULL;
	config->feldera.naming = PGS_FELDERA_SCHEMA_TABLE;
	config->feldera.table_map = NULL;
	config->feldera.tables = NULL;
	config->feldera.truncate_skip = false;
	config->feldera.max_rows = 10000;
	config->feldera.max_bytes = 4 * 1024 * 1024;
	config->feldera.wait_completion = false;
	config->heartbeat_interval = 0;
}

/*
 * Options a target cannot work without.  Checked when a stream is created
 * or changed, so that a stream that exists can always start.
 */
void
pgs_validate_target_options(const PgsStreamConfig *config)
{
	if ((config->targets & PGS_TARGET_FELDERA) && config->feldera.pipeline == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("target \"feldera\" needs the stream option \"feldera_pipeline\"")));
}

/* A comma-separated list of names: no white space, no empty entry */
static void
validate_name_list(const char *key, const char *value)
{
	const char *p;
	bool		empty = true;

	for (p = value; *p; p++)
	{
		if (isspace((unsigned char) *p))
			invalid_option_value(key, value, "The list must not contain white space.");
		if (*p == ',')
		{
			if (empty)
				invalid_option_value(key, value, "The list must not contain empty entries.");
			empty = true;
		}
		else
			empty = false;
	}
	if (empty)
		invalid_option_value(key, value, "The list must not contain empty entries.");
}

/* "schema.table=name,..." : every entry has a dot before the "=" */
static void
validate_table_map(const char *key, const char *value)
{
	char	   *copy = pstrdup(value);
	char	   *save = NULL;
	char	   *entry;

	validate_name_list(key, value);
	for (entry = strtok_r(copy, ",", &save); entry != NULL; entry = strtok_r(NULL, ",", &save))
	{
		char	   *eq = strchr(entry, '=');

		if (eq == NULL || eq == entry || eq[1] == '\0' || memchr(entry, '.', eq - entry) == NULL)
			invalid_option_value(key, value,
								 "The value is a comma-separated list of schema.table=feldera_table entries.");
	}
}

static bool
bool_option(const char *key, const char *value)
{
	bool		result;

	if (!parse_bool(value, &result))
		invalid_option_value(key, value, "The value must be a Boolean (on or off).");
	return result;
}

static void
invalid_option_value(const char *key, const char *value, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid value for stream option \"%s\": \"%s\"", key, value),
			 errdetail("%s", detail)));
}

/* An integer option value within [min, max] */
static int64
int_option(const char *key, const char *value, int64 min, int64 max)
{
	char	   *end;
	long long	result;

	errno = 0;
	result = strtoll(value, &end, 10);
	/* strtoll skips leading white space; the value must be the number alone */
	if (errno != 0 || end == value || *end != '\0' || isspace((unsigned char) value[0]) ||
		result < min || result > max)
		invalid_option_value(key, value,
							 psprintf("The value must be an integer from " INT64_FORMAT " to " INT64_FORMAT ".",
									  min, max));
	return (int64) result;
}

/*
 * A JetStream stream name: no white space, ".", "*", ">", path separators
 * or control characters (NATS rules).
 */
static void
validate_nats_stream_name(const char *key, const char *value)
{
	const char *p;

	if (value[0] == '\0' || strlen(value) > 255)
		invalid_option_value(key, value, "A JetStream stream name has 1 to 255 characters.");
	for (p = value; *p; p++)
	{
		unsigned char c = (unsigned char) *p;

		if (c <= ' ' || c == '.' || c == '*' || c == '>' || c == '/' || c == '\\' || c == 0x7f)
			invalid_option_value(key, value,
								 "A JetStream stream name cannot contain white space, control characters, \".\", \"*\", \">\", \"/\" or \"\\\".");
	}
}

/* A Feldera pipeline name: not empty, no control characters */
static void
validate_pipeline_name(const char *key, const char *value)
{
	const char *p;

	if (value[0] == '\0')
		invalid_option_value(key, value, "The pipeline name must not be empty.");
	for (p = value; *p; p++)
	{
		if ((unsigned char) *p < ' ' || *p == 0x7f)
			invalid_option_value(key, value, "A pipeline name cannot contain control characters.");
	}
}

/*
 * A URL option: nats_url (a comma-separated list of server URLs) or
 * feldera_url.  It may hold credentials ("nats://user:password@host"), so
 * a refused value is shown as messages show URLs (secrets.c): user
 * information, an unparsable port and a query as "***".
 */
static void
validate_url(const char *key, const char *value, PgsUrlKind kind)
{
	const char *problem = pgs_url_problem(value, kind);

	if (problem != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for stream option \"%s\": \"%s\"",
						key, pgs_url_shown(value)),
				 errdetail("%s", problem)));
}

/*
 * A subject prefix is one or more NATS subject tokens: no wildcards, no
 * white space, no empty token.
 */
static void
validate_subject_prefix(const char *prefix)
{
	const char *p;
	bool		token_empty = true;

	for (p = prefix; *p; p++)
	{
		unsigned char c = (unsigned char) *p;

		if (c == '.')
		{
			if (token_empty)
				break;
			token_empty = true;
			continue;
		}
		if (c <= ' ' || c == '*' || c == '>' || c >= 0x7f)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid value for stream option \"%s\": \"%s\"",
							"subject_prefix", prefix),
					 errdetail("A subject prefix cannot contain white space, control characters, non-ASCII characters, \"*\" or \">\".")));
		token_empty = false;
	}
	if (token_empty)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for stream option \"%s\": \"%s\"",
						"subject_prefix", prefix),
				 errdetail("A subject prefix is one or more non-empty tokens separated by \".\".")));
}

/* Options whose value is a list: a JSON array of strings, or one string */
static bool
is_list_option(const char *key)
{
	return strcmp(key, "include_tables") == 0 ||
		strcmp(key, "exclude_tables") == 0 ||
		strcmp(key, "exclude_columns") == 0 ||
		strcmp(key, "operations") == 0;
}

/*
 * The strings of a list option's value: the elements of a JSON array of
 * strings, or the comma-separated entries of a string.  Never empty.
 */
static List *
list_option_items(const char *key, JsonbValue *v)
{
	List	   *items = NIL;

	if (v->type == jbvString)
	{
		char	   *copy = pnstrdup(v->val.string.val, v->val.string.len);
		char	   *entry = copy;

		for (;;)
		{
			char	   *comma = strchr(entry, ',');

			if (comma != NULL)
				*comma = '\0';
			items = lappend(items, entry);
			if (comma == NULL)
				break;
			entry = comma + 1;
		}
	}
	else if (v->type == jbvBinary &&
			 JsonContainerIsArray(v->val.binary.data) &&
			 !JsonContainerIsScalar(v->val.binary.data))
	{
		JsonbIterator *it = JsonbIteratorInit(v->val.binary.data);
		JsonbValue	elem;
		JsonbIteratorToken tok;

		while ((tok = JsonbIteratorNext(&it, &elem, true)) != WJB_DONE)
		{
			if (tok != WJB_ELEM)
				continue;
			if (elem.type != jbvString)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("elements of stream option \"%s\" must be strings", key)));
			items = lappend(items, pnstrdup(elem.val.string.val, elem.val.string.len));
		}
	}
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("value of stream option \"%s\" must be an array of strings or a string", key)));

	if (items == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("stream option \"%s\" must not be an empty list", key),
				 errhint("Remove the option to turn the filter off.")));
	return items;
}

/* Apply a list option (filters) to config */
static void
apply_list_option(PgsStreamConfig *config, const char *key, List *items)
{
	ListCell   *lc;

	if (strcmp(key, "operations") == 0)
		config->filter.operations = 0;
	foreach(lc, items)
	{
		char	   *item = (char *) lfirst(lc);

		if (strcmp(key, "include_tables") == 0)
			config->filter.include_tables =
				lappend(config->filter.include_tables, pgs_pattern_parse(key, item, 2));
		else if (strcmp(key, "exclude_tables") == 0)
			config->filter.exclude_tables =
				lappend(config->filter.exclude_tables, pgs_pattern_parse(key, item, 2));
		else if (strcmp(key, "exclude_columns") == 0)
			config->filter.exclude_columns =
				lappend(config->filter.exclude_columns, pgs_pattern_parse(key, item, 3));
		else
		{
			int			op = pgs_operation_from_name(item);

			if (op == 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("invalid value for stream option \"%s\": \"%s\"", key, item),
						 errhint("Valid operations are: %s.", "insert, update, delete, truncate, message")));
			if (config->filter.operations & op)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("operation \"%s\" is listed more than once in stream option \"%s\"",
								item, key)));
			config->filter.operations |= op;
		}
	}
}

/*
 * Apply a jsonb object of stream options to config, rejecting unknown
 * options and invalid values.  Values are JSON strings, numbers or
 * Booleans; the filter options also take arrays of strings.
 */
void
pgs_apply_options(PgsStreamConfig *config, Jsonb *options)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	char	   *key = NULL;
	bool		transaction_events_set = false;

	if (!JB_ROOT_IS_OBJECT(options))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("stream options must be a JSON object")));

	it = JsonbIteratorInit(&options->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		char	   *value;

		if (tok == WJB_KEY)
		{
			key = pnstrdup(v.val.string.val, v.val.string.len);
			continue;
		}
		if (tok != WJB_VALUE)
			continue;
		if (is_list_option(key))
		{
			apply_list_option(config, key, list_option_items(key, &v));
			continue;
		}
		if (v.type == jbvString)
			value = pnstrdup(v.val.string.val, v.val.string.len);
		else if (v.type == jbvNumeric)
			value = DatumGetCString(DirectFunctionCall1(numeric_out,
														NumericGetDatum(v.val.numeric)));
		else if (v.type == jbvBool)
			value = pstrdup(v.val.boolean ? "true" : "false");
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("value of stream option \"%s\" must be a string, a number or a Boolean", key)));

		if (strcmp(key, "value_mode") == 0)
		{
			if (!pgs_value_mode_from_name(value, &config->fmt.value_mode))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("invalid value for stream option \"%s\": \"%s\"",
								key, value),
						 errhint("Valid values are: %s.", "typed, text")));
		}
		else if (strcmp(key, "subject_prefix") == 0)
		{
			validate_subject_prefix(value);
			config->fmt.subject_prefix = value;
		}
		else if (strcmp(key, "nats_url") == 0)
		{
			validate_url(key, value, PGS_URL_NATS);
			config->nats.url = value;
		}
		else if (strcmp(key, "nats_stream") == 0)
		{
			validate_nats_stream_name(key, value);
			config->nats.stream = value;
		}
		else if (strcmp(key, "nats_storage") == 0)
		{
			if (strcmp(value, "file") == 0)
				config->nats.memory_storage = false;
			else if (strcmp(value, "memory") == 0)
				config->nats.memory_storage = true;
			else
				invalid_option_value(key, value, "Valid values are \"file\" and \"memory\".");
		}
		else if (strcmp(key, "nats_max_msgs") == 0)
			config->nats.max_msgs = int_option(key, value, -1, PG_INT64_MAX);
		else if (strcmp(key, "nats_max_bytes") == 0)
			config->nats.max_bytes = int_option(key, value, -1, PG_INT64_MAX);
		else if (strcmp(key, "nats_max_age") == 0)
			config->nats.max_age = int_option(key, value, 0, PG_INT64_MAX / 1000000000);
		else if (strcmp(key, "nats_replicas") == 0)
			config->nats.replicas = int_option(key, value, 1, 5);
		else if (strcmp(key, "nats_duplicate_window") == 0)
			config->nats.duplicate_window = int_option(key, value, 0, PG_INT64_MAX / 1000000000);
		else if (strcmp(key, "nats_shared_stream") == 0)
			config->nats.shared = bool_option(key, value);
		else if (strcmp(key, "transaction_events") == 0)
		{
			config->fmt.transaction_events = bool_option(key, value);
			transaction_events_set = true;
		}
		else if (strcmp(key, "debezium_values") == 0)
		{
			if (strcmp(value, "connect") == 0)
				config->fmt.debezium_feldera = false;
			else if (strcmp(value, "feldera") == 0)
				config->fmt.debezium_feldera = true;
			else
				invalid_option_value(key, value, "Valid values are \"connect\" and \"feldera\".");
		}
		else if (strcmp(key, "relation_events") == 0)
			config->fmt.relation_events = bool_option(key, value);
		else if (strcmp(key, "heartbeat_interval") == 0)
			config->heartbeat_interval = (int) int_option(key, value, 0, 86400);
		else if (strcmp(key, "feldera_url") == 0)
		{
			validate_url(key, value, PGS_URL_FELDERA);
			config->feldera.url = value;
		}
		else if (strcmp(key, "feldera_pipeline") == 0)
		{
			validate_pipeline_name(key, value);
			config->feldera.pipeline = value;
		}
		else if (strcmp(key, "feldera_table_names") == 0)
		{
			if (strcmp(value, "schema_table") == 0)
				config->feldera.naming = PGS_FELDERA_SCHEMA_TABLE;
			else if (strcmp(value, "table") == 0)
				config->feldera.naming = PGS_FELDERA_TABLE;
			else
				invalid_option_value(key, value, "Valid values are \"schema_table\" and \"table\".");
		}
		else if (strcmp(key, "feldera_table_map") == 0)
		{
			validate_table_map(key, value);
			config->feldera.table_map = value;
		}
		else if (strcmp(key, "feldera_tables") == 0)
		{
			validate_name_list(key, value);
			config->feldera.tables = value;
		}
		else if (strcmp(key, "feldera_truncate") == 0)
		{
			if (strcmp(value, "fail") == 0)
				config->feldera.truncate_skip = false;
			else if (strcmp(value, "skip") == 0)
				config->feldera.truncate_skip = true;
			else
				invalid_option_value(key, value, "Valid values are \"fail\" and \"skip\".");
		}
		else if (strcmp(key, "feldera_max_rows") == 0)
			config->feldera.max_rows = (int) int_option(key, value, 1, 1000000);
		else if (strcmp(key, "feldera_max_bytes") == 0)
			config->feldera.max_bytes = (int) int_option(key, value, 1024,
														 256 * 1024 * 1024);
		else if (strcmp(key, "feldera_wait_completion") == 0)
			config->feldera.wait_completion = bool_option(key, value);
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unrecognized stream option \"%s\"", key),
					 errhint("Valid options are: %s.",
							 "subject_prefix, value_mode, transaction_events, relation_events, debezium_values, include_tables, exclude_tables, exclude_columns, operations, heartbeat_interval, nats_url, nats_stream, nats_storage, nats_max_msgs, nats_max_bytes, nats_max_age, nats_replicas, nats_duplicate_window, nats_shared_stream, feldera_url, feldera_pipeline, feldera_table_names, feldera_table_map, feldera_tables, feldera_truncate, feldera_max_rows, feldera_max_bytes, feldera_wait_completion")));
	}

	/* Debezium's transaction metadata is off unless asked for, as in Debezium */
	if (!transaction_events_set && config->fmt.format == PGS_FORMAT_DEBEZIUM)
		config->fmt.transaction_events = false;
}

/* Build a config from the current SPI result row */
static PgsStreamConfig *
config_from_row(HeapTuple tuple, TupleDesc desc)
{
	PgsStreamConfig *config = palloc0(sizeof(PgsStreamConfig));
	bool		isnull;

	pgs_config_defaults(config);
	config->id = DatumGetInt32(SPI_getbinval(tuple, desc, 1, &isnull));
	config->name = SPI_getvalue(tuple, desc, 2);
	config->publication = SPI_getvalue(tuple, desc, 3);
	config->slot_name = SPI_getvalue(tuple, desc, 4);
	config->targets = pgs_parse_targets(DatumGetArrayTypeP(SPI_getbinval(tuple, desc, 5, &isnull)));
	config->fmt.format = pgs_parse_format(SPI_getvalue(tuple, desc, 6));
	pgs_apply_options(config, DatumGetJsonbP(SPI_getbinval(tuple, desc, 7, &isnull)));
	config->enabled = DatumGetBool(SPI_getbinval(tuple, desc, 8, &isnull));
	config->snapshot_pending = strcmp(SPI_getvalue(tuple, desc, 9), "pending") == 0;
	config->fmt.stream_name = config->name;
	config->fmt.database = get_database_name(MyDatabaseId);
	if (config->fmt.format == PGS_FORMAT_DEBEZIUM)
		config->fmt.debezium = pgs_debezium_state_create();
	return config;
}

static PgsStreamConfig *
config_load(const char *where, Oid argtype, Datum arg)
{
	PgsStreamConfig *config = NULL;
	MemoryContext caller_cxt = CurrentMemoryContext;
	char	   *query;

	query = psprintf("SELECT id, name, publication, slot_name, targets, format, options, enabled, snapshot"
					 " FROM pgoutput_stream.streams WHERE %s = $1", where);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args(query, 1, &argtype, &arg, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read stream configuration");
	if (SPI_processed == 1)
	{
		MemoryContext spi_cxt = MemoryContextSwitchTo(caller_cxt);

		config = config_from_row(SPI_tuptable->vals[0], SPI_tuptable->tupdesc);
		MemoryContextSwitchTo(spi_cxt);
	}
	SPI_finish();
	return config;
}

/*
 * Load a stream's configuration, or NULL if there is no such stream.  The
 * caller has a transaction and snapshot; the result is allocated in the
 * caller's memory context.
 */
PgsStreamConfig *
pgs_config_load_by_id(int32 id)
{
	return config_load("id", INT4OID, Int32GetDatum(id));
}

PgsStreamConfig *
pgs_config_load_by_name(const char *name)
{
	return config_load("name", TEXTOID, CStringGetTextDatum(name));
}

/*
 * The publication_names option of pgoutput is parsed as a list of
 * identifiers, so the name must be quoted as an identifier.
 */
char *
pgs_publication_option(const char *pubname)
{
	return pstrdup(quote_identifier(pubname));
}
