/*-------------------------------------------------------------------------
 *
 * format_feldera.c
 *		Rows in Feldera's JSON encodings (insert_delete update format).
 *
 * An INSERT becomes {"insert": row}, a DELETE {"delete": row}, an UPDATE
 * {"delete": old, "insert": new} (Feldera applies delete before insert
 * within one object) or, without an old row, {"insert": new}, which is an
 * upsert for a Feldera table with a primary key.
 *
 * Values follow Feldera's default JSON flavour: booleans and integers as
 * JSON, floats as numbers, DECIMAL as an exact string, DATE, TIME and
 * TIMESTAMP as strings (timestamptz in UTC, microseconds), BYTEA as an
 * array of byte values, UUID as a string, arrays as JSON arrays, json and
 * jsonb embedded (VARIANT).  Values Feldera cannot represent (NaN,
 * infinities, dates before Christ) raise an error that names the table and
 * the column, so that nothing wrong is confirmed.  An unchanged TOASTed
 * value is taken from the old row (REPLICA IDENTITY FULL) or raises an
 * error: it must never reach Feldera as NULL.
 *
 * Copyright (c) 2026, pgoutput_stream developers
 *
 * IDENTIFICATION
 *		src/format_feldera.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "common/jsonapi.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/lsyscache.h"

#include "format.h"
#include "format_internal.h"

static void append_value(StringInfo buf, const PgsRelation *rel, int col,
						 Oid typid, const char *text);

/*
 * The value goes to the detail only: the message is kept as the stream's
 * last_error, which roles that may not read the table can see.
 */
static void
unrepresentable(const PgsRelation *rel, int col, const char *text)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_EXCEPTION),
			 errmsg("a value of column \"%s\" of table \"%s.%s\" cannot be represented in Feldera",
					rel->attnames[col], rel->nspname, rel->relname),
			 errdetail("The value is \"%s\".", text),
			 errhint("Feldera has no encoding for NaN, infinite values or dates before Christ. Change such values or leave the table out (stream option feldera_tables); a change already logged must be skipped with pg_replication_slot_advance() before pgoutput_stream.start_stream(), and its rows sent again by hand.")));
}

/* Byte array from PostgreSQL's hex bytea output ("\x00ff") */
static void
append_bytea(StringInfo buf, const PgsRelation *rel, int col, const char *text)
{
	const char *p;
	bool		first = true;

	if (text[0] != '\\' || text[1] != 'x')
		unrepresentable(rel, col, "non-hex bytea");
	appendStringInfoChar(buf, '[');
	for (p = text + 2; p[0] && p[1]; p += 2)
	{
		char		hex[3] = {p[0], p[1], '\0'};

		if (!first)
			appendStringInfoChar(buf, ',');
		appendStringInfo(buf, "%ld", strtol(hex, NULL, 16));
		first = false;
	}
	appendStringInfoChar(buf, ']');
}

/* Dates and timestamps Feldera cannot hold */
static void
check_datetime(const PgsRelation *rel, int col, const char *text)
{
	size_t		len = strlen(text);

	if (strcmp(text, "infinity") == 0 || strcmp(text, "-infinity") == 0 ||
		(len > 3 && strcmp(text + len - 3, " BC") == 0))
		unrepresentable(rel, col, text);
}

/* Where an array element goes: the column it belongs to */
typedef struct FelderaElement
{
	const PgsRelation *rel;
	int			col;
	Oid			elembase;
} FelderaElement;

/* An array element, rendered like a column of the element type */
static void
append_element(StringInfo buf, const char *text, void *arg)
{
	FelderaElement *element = (FelderaElement *) arg;

	append_value(buf, element->rel, element->col, element->elembase, text);
}

/*
 * An array value, each element rendered like a column of the element type,
 * dimensions nested.  Lower bounds are not kept: Feldera arrays start at 1.
 */
static void
append_array(StringInfo buf, const PgsRelation *rel, int col,
			 PgsTypeCacheEntry *type, const char *text)
{
	FelderaElement element = {rel, col, type->elembase};

	pgs_append_json_array(buf, type, text, append_element, &element);
}

/* One non-NULL value of type typid, given as PostgreSQL text */
static void
append_value(StringInfo buf, const PgsRelation *rel, int col, Oid typid,
			 const char *text)
{
	PgsTypeCacheEntry *type = pgs_type_cache_lookup(typid);

	switch (type->base)
	{
		case BOOLOID:
			appendStringInfoString(buf, text[0] == 't' ? "true" : "false");
			return;
		case INT2OID:
		case INT4OID:
		case INT8OID:
			appendStringInfoString(buf, text);
			return;
		case FLOAT4OID:
		case FLOAT8OID:
			if (!IsValidJsonNumber(text, strlen(text)))
				unrepresentable(rel, col, text);
			appendStringInfoString(buf, text);
			return;
		case NUMERICOID:
			if (!IsValidJsonNumber(text, strlen(text)))
				unrepresentable(rel, col, text);
			escape_json(buf, text);
			return;
		case DATEOID:
		case TIMESTAMPOID:
			check_datetime(rel, col, text);
			escape_json(buf, text);
			return;
		case TIMESTAMPTZOID:
			{
				/* the decoder renders in UTC: drop the "+00" offset */
				size_t		len = strlen(text);
				char	   *utc = pstrdup(text);

				check_datetime(rel, col, text);
				if (len > 3 && strcmp(utc + len - 3, "+00") == 0)
					utc[len - 3] = '\0';
				escape_json(buf, utc);
				return;
			}
		case BYTEAOID:
			append_bytea(buf, rel, col, text);
			return;
		case JSONOID:
		case JSONBOID:
			appendStringInfoString(buf, text);
			return;
		default:
			if (type->category == PGS_JSON_ARRAY)
				append_array(buf, rel, col, type, text);
			else
				escape_json(buf, text);
			return;
	}
}

/*
 * Append one row as a JSON object.  With key_only, only the replica
 * identity columns (a 'K' old tuple).  An unchanged TOASTed value comes
 * from old (a full old row), or is an error.
 */
void
pgs_feldera_append_row(StringInfo buf, const PgsRelation *rel,
					   const LogicalRepTupleData *tuple,
					   const LogicalRepTupleData *old, bool old_is_key,
					   bool key_only)
{
	int			i;
	bool		first = true;

	appendStringInfoChar(buf, '{');
	for (i = 0; i < tuple->ncols && i < rel->natts; i++)
	{
		char		status = tuple->colstatus[i];
		const StringInfoData *value = &tuple->colvalues[i];

		if (key_only && !bms_is_member(i, rel->attkeys))
			continue;
		if (status == LOGICALREP_COLUMN_UNCHANGED)
		{
			const StringInfoData *old_value = pgs_unchanged_from_old(rel, i, old, old_is_key);

			if (old_value == NULL)
				ereport(ERROR,
						(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						 errmsg("unchanged TOASTed value of column \"%s\" of table \"%s.%s\" cannot be sent to Feldera",
								rel->attnames[i], rel->nspname, rel->relname),
						 errdetail("PostgreSQL does not log TOASTed values that an UPDATE left unchanged, and Feldera would store NULL."),
						 errhint("Run ALTER TABLE %s.%s REPLICA IDENTITY FULL so that old values are logged; a change already logged without them must be skipped with pg_replication_slot_advance() before pgoutput_stream.start_stream(), and its row sent again by hand.",
								 quote_identifier(rel->nspname), quote_identifier(rel->relname))));
			status = LOGICALREP_COLUMN_TEXT;
			value = old_value;
		}
		if (!first)
			appendStringInfoChar(buf, ',');
		first = false;
		escape_json(buf, rel->attnames[i]);
		appendStringInfoChar(buf, ':');
		if (status == LOGICALREP_COLUMN_NULL)
			appendStringInfoString(buf, "null");
		else
			append_value(buf, rel, i, rel->atttyps[i], value->data);
	}
	appendStringInfoChar(buf, '}');
}

/*
 * The feldera format: one insert_delete object per data event; nothing
 * for the other events.
 */
bool
pgs_render_feldera(StringInfo buf, const PgsFormatOptions *opts pg_attribute_unused(),
				   const PgsEvent *ev)
{
	switch (ev->kind)
	{
		case PGS_EVENT_INSERT:
			appendStringInfoString(buf, "{\"insert\":");
			pgs_feldera_append_row(buf, ev->rel, ev->newtup, NULL, false, false);
			appendStringInfoChar(buf, '}');
			return true;
		case PGS_EVENT_UPDATE:
			appendStringInfoChar(buf, '{');
			if (ev->oldtup != NULL)
			{
				appendStringInfoString(buf, "\"delete\":");
				pgs_feldera_append_row(buf, ev->rel, ev->oldtup, NULL, false,
									   ev->old_is_key);
				appendStringInfoChar(buf, ',');
			}
			appendStringInfoString(buf, "\"insert\":");
			pgs_feldera_append_row(buf, ev->rel, ev->newtup, ev->oldtup,
								   ev->old_is_key, false);
			appendStringInfoChar(buf, '}');
			return true;
		case PGS_EVENT_DELETE:
			appendStringInfoString(buf, "{\"delete\":");
			pgs_feldera_append_row(buf, ev->rel, ev->oldtup, NULL, false,
									   ev->old_is_key);
			appendStringInfoChar(buf, '}');
			return true;
		default:
			return false;
	}
}
