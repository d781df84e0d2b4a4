/*-------------------------------------------------------------------------
 *
 * format_json.c
 *		The json, json-pretty and text payload renderers.
 *
 * json keeps the original tool's externally tagged shape
 * ({"Insert":{"relation_id":...,"schema":...,"table":...,"new_tuple":{...}}})
 * with its keys in a fixed order, and adds what the original lost or got
 * wrong: columns in table order instead of hash order, typed values, the
 * commit's end LSN and xid, unchanged TOAST values reported as such
 * instead of as null, key-only old tuples reduced to their key columns,
 * TRUNCATE and logical messages.  json-pretty is the same document laid
 * out like serde_json's to_string_pretty.  text is the original's
 * human-readable form with the same fixes.
 *
 * All renderers append in the database encoding; pgs_format_payload
 * converts the result to UTF-8 (see format.c).
 *
 * Copyright (c) 2026, pgoutput_stream developers
 *
 * IDENTIFICATION
 *		src/format_json.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/transam.h"
#include "catalog/pg_type.h"
#include "common/base64.h"
#include "common/jsonapi.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/pg_list.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"

#include "event.h"
#include "format.h"
#include "format_internal.h"

/*
 * XXX: entries are never invalidated.  Only user-defined types can change
 * category (a domain can't be re-based; a dropped type's OID could be
 * reused by a new type with a different base), so this is good enough for
 * now, but a syscache callback on TYPEOID that drops the table would be
 * the proper fix.
 */
static MemoryContext type_cache_cxt = NULL;
static HTAB *type_cache = NULL;

static bool render_json_event(StringInfo buf, const PgsFormatOptions *opts,
							  const PgsEvent *ev);
static void json_append_lsn(StringInfo buf, XLogRecPtr lsn);
static void json_append_time(StringInfo buf, TimestampTz ts);
static void json_append_rel_head(StringInfo buf, const char *tag,
								 const PgsRelation *rel);
static void json_append_tuple(StringInfo buf, const PgsFormatOptions *opts,
							  const PgsRelation *rel,
							  const LogicalRepTupleData *tup, bool key_only,
							  const LogicalRepTupleData *old, bool old_is_key,
							  const char *toast_key);
static void json_append_value(StringInfo buf, PgsValueMode mode, Oid typid,
							  const StringInfoData *val);
static void json_append_typed(StringInfo buf, PgsTypeCacheEntry *entry,
							  const char *text, int len, bool nested);
static void json_append_element(StringInfo buf, const char *text, void *arg);
static void json_append_datetime(StringInfo buf, Oid base, const char *text);
static void json_append_composite(StringInfo buf, Oid base, const char *text);
static void json_append_message(StringInfo buf, const PgsEvent *ev);
static void json_append_minified(StringInfo buf, const char *json, int len);
static void json_prettify(StringInfo buf, const char *json, int len);
static void append_newline_indent(StringInfo buf, int depth);
static const char *column_name(const PgsRelation *rel, int i);
static Oid	column_type(const PgsRelation *rel, int i);
static bool column_wanted(const PgsRelation *rel, int i, bool key_only);
static bool message_content_is_text(const PgsEvent *ev);
static char *message_content_base64(const PgsEvent *ev);
static void text_append_tuple(StringInfo buf, const char *title,
							  const PgsRelation *rel,
							  const LogicalRepTupleData *tup, bool key_only,
							  const LogicalRepTupleData *old, bool old_is_key);


/* ----------------------------------------------------------------------
 * json
 * ----------------------------------------------------------------------
 */

/*
 * Render ev as one line of JSON.
 */
bool
pgs_render_json(StringInfo buf, const PgsFormatOptions *opts,
				const PgsEvent *ev)
{
	return render_json_event(buf, opts, ev);
}

/*
 * Render ev as JSON laid out like serde_json's to_string_pretty: two
 * spaces of indentation, one member or element per line, "key": value,
 * "{}" and "[]" for empty containers, no trailing newline.
 *
 * Rendering compact JSON first and re-indenting it keeps a single
 * definition of the document.  jsonb_pretty() is no alternative: jsonb
 * would reorder the keys.
 */
bool
pgs_render_json_pretty(StringInfo buf, const PgsFormatOptions *opts,
					   const PgsEvent *ev)
{
	StringInfoData compact;

	initStringInfo(&compact);
	if (!render_json_event(&compact, opts, ev))
	{
		pfree(compact.data);
		return false;
	}
	json_prettify(buf, compact.data, compact.len);
	pfree(compact.data);
	return true;
}

/*
 * The compact JSON document for ev.  Keys are written in a fixed order: the
 * original tool's keys first, in its order, then the ones we added.
 */
static bool
render_json_event(StringInfo buf, const PgsFormatOptions *opts,
				  const PgsEvent *ev)
{
	switch (ev->kind)
	{
		case PGS_EVENT_BEGIN:
			appendStringInfoString(buf, "{\"Begin\":{\"lsn\":");
			json_append_lsn(buf, ev->final_lsn);
			/* the original printed pgoutput's raw commit timestamp */
			appendStringInfo(buf, ",\"timestamp\":" INT64_FORMAT ",\"xid\":%u,\"commit_time\":",
							 (int64) ev->commit_time, ev->xid);
			json_append_time(buf, ev->commit_time);
			appendStringInfoString(buf, "}}");
			break;

		case PGS_EVENT_COMMIT:
			appendStringInfoString(buf, "{\"Commit\":{\"lsn\":");
			json_append_lsn(buf, ev->final_lsn);
			appendStringInfoString(buf, ",\"end_lsn\":");
			json_append_lsn(buf, ev->end_lsn);
			appendStringInfo(buf, ",\"timestamp\":" INT64_FORMAT ",\"commit_time\":",
							 (int64) ev->commit_time);
			json_append_time(buf, ev->commit_time);
			appendStringInfo(buf, ",\"xid\":%u}}", ev->xid);
			break;

		case PGS_EVENT_RELATION:
			{
				const PgsRelation *rel = ev->rel;
				char		ident[2];
				int			i;

				json_append_rel_head(buf, "Relation", rel);
				ident[0] = rel->replident;
				ident[1] = '\0';
				appendStringInfoString(buf, ",\"replica_identity\":");
				escape_json(buf, ident);
				appendStringInfoString(buf, ",\"columns\":[");
				for (i = 0; i < rel->natts; i++)
				{
					if (i > 0)
						appendStringInfoChar(buf, ',');
					appendStringInfoString(buf, "{\"name\":");
					escape_json(buf, rel->attnames[i]);
					appendStringInfo(buf, ",\"type_id\":%u,\"flags\":%d}",
									 rel->atttyps[i],
									 bms_is_member(i, rel->attkeys) ? 1 : 0);
				}
				appendStringInfoString(buf, "]}}");
			}
			break;

		case PGS_EVENT_INSERT:
			json_append_rel_head(buf, "Insert", ev->rel);
			/* a row of the initial snapshot, not a change */
			if (ev->snapshot)
				appendStringInfoString(buf, ",\"snapshot\":true");
			appendStringInfoString(buf, ",\"new_tuple\":");
			json_append_tuple(buf, opts, ev->rel, ev->newtup, false,
							  NULL, false, "unchanged_toast");
			appendStringInfoString(buf, "}}");
			break;

		case PGS_EVENT_UPDATE:
			json_append_rel_head(buf, "Update", ev->rel);
			appendStringInfoString(buf, ",\"old_tuple\":");
			if (ev->oldtup != NULL)
				json_append_tuple(buf, opts, ev->rel, ev->oldtup,
								  ev->old_is_key, NULL, false,
								  "unchanged_toast_old");
			else
				appendStringInfoString(buf, "null");
			appendStringInfoString(buf, ",\"new_tuple\":");
			/* an unchanged TOASTed value comes from the old row if it has it */
			json_append_tuple(buf, opts, ev->rel, ev->newtup, false,
							  ev->oldtup, ev->old_is_key, "unchanged_toast");
			appendStringInfoString(buf, "}}");
			break;

		case PGS_EVENT_DELETE:
			json_append_rel_head(buf, "Delete", ev->rel);
			appendStringInfoString(buf, ",\"old_tuple\":");
			if (ev->oldtup != NULL)
				json_append_tuple(buf, opts, ev->rel, ev->oldtup,
								  ev->old_is_key, NULL, false,
								  "unchanged_toast_old");
			else
				appendStringInfoString(buf, "null");
			appendStringInfoString(buf, "}}");
			break;

		case PGS_EVENT_TRUNCATE:
			json_append_rel_head(buf, "Truncate", ev->rel);
			appendStringInfo(buf, ",\"cascade\":%s,\"restart_identity\":%s}}",
							 ev->truncate_cascade ? "true" : "false",
							 ev->truncate_restart_seqs ? "true" : "false");
			break;

		case PGS_EVENT_MESSAGE:
			json_append_message(buf, ev);
			break;

		default:
			elog(ERROR, "unrecognized event kind: %d", (int) ev->kind);
	}

	return true;
}

/* An LSN as the string "%X/%X", the form pg_lsn prints */
static void
json_append_lsn(StringInfo buf, XLogRecPtr lsn)
{
	appendStringInfo(buf, "\"%X/%X\"", LSN_FORMAT_ARGS(lsn));
}

/*
 * A timestamp as an RFC 3339 / ISO 8601 string in UTC with microseconds,
 * e.g. "2026-11-26T10:30:00.123456Z".  Formatted here, not with the
 * timestamptz output function, so that it doesn't depend on DateStyle or
 * TimeZone.  Commit times are always finite and well within years
 * 1..9999; anything else is written as a string or null rather than
 * failing the stream.
 */
static void
json_append_time(StringInfo buf, TimestampTz ts)
{
	struct pg_tm tm;
	fsec_t		fsec;

	if (TIMESTAMP_IS_NOBEGIN(ts))
		appendStringInfoString(buf, "\"-infinity\"");
	else if (TIMESTAMP_IS_NOEND(ts))
		appendStringInfoString(buf, "\"infinity\"");
	/* a NULL tzp asks timestamp2tm for no time zone conversion: UTC */
	else if (timestamp2tm(ts, NULL, &tm, &fsec, NULL, NULL) != 0)
		appendStringInfoString(buf, "null");
	else
		appendStringInfo(buf, "\"%04d-%02d-%02dT%02d:%02d:%02d.%06dZ\"",
						 tm.tm_year, tm.tm_mon, tm.tm_mday,
						 tm.tm_hour, tm.tm_min, tm.tm_sec, (int) fsec);
}

/*
 * Open {"Tag":{"relation_id":..,"schema":..,"table":.. -- the members
 * every relation-bound event starts with.
 */
static void
json_append_rel_head(StringInfo buf, const char *tag, const PgsRelation *rel)
{
	Assert(rel != NULL);

	appendStringInfo(buf, "{\"%s\":{\"relation_id\":%u,\"schema\":",
					 tag, rel->relid);
	escape_json(buf, rel->nspname);
	appendStringInfoString(buf, ",\"table\":");
	escape_json(buf, rel->relname);
}

/*
 * Append tup as a JSON object of column name to value, in table order.
 *
 * With key_only (pgoutput's 'K' old tuple, whose non-key columns are
 * NULL placeholders, not data) only replica identity columns are written.
 * An unchanged TOASTed value ('u') was not sent.  If old (the event's old
 * tuple, given for a new tuple only) holds the value, it is written from
 * there: the value is unchanged, so the old one is the new one.  Otherwise
 * its key is left out -- writing null would claim the column is NULL --
 * and, if there were any, the member toast_key lists those columns right
 * after the object.
 */
static void
json_append_tuple(StringInfo buf, const PgsFormatOptions *opts,
				  const PgsRelation *rel, const LogicalRepTupleData *tup,
				  bool key_only, const LogicalRepTupleData *old,
				  bool old_is_key, const char *toast_key)
{
	List	   *unchanged = NIL;
	bool		first = true;
	int			i;
	ListCell   *lc;
	const StringInfoData *value;
	char		status;

	Assert(tup != NULL);

	appendStringInfoChar(buf, '{');
	for (i = 0; i < tup->ncols; i++)
	{
		const char *name;

		if (!column_wanted(rel, i, key_only))
			continue;

		name = column_name(rel, i);
		value = &tup->colvalues[i];
		status = tup->colstatus[i];
		if (status == LOGICALREP_COLUMN_UNCHANGED)
		{
			value = pgs_unchanged_from_old(rel, i, old, old_is_key);
			if (value == NULL)
			{
				unchanged = lappend(unchanged, unconstify(char *, name));
				continue;
			}
			status = LOGICALREP_COLUMN_TEXT;
		}

		if (!first)
			appendStringInfoChar(buf, ',');
		first = false;
		escape_json(buf, name);
		appendStringInfoChar(buf, ':');

		switch (status)
		{
			case LOGICALREP_COLUMN_NULL:
				appendStringInfoString(buf, "null");
				break;
			case LOGICALREP_COLUMN_TEXT:
				json_append_value(buf, opts->value_mode, column_type(rel, i),
								  value);
				break;
			default:
				/* we never ask pgoutput for binary values */
				elog(ERROR, "unexpected column status '%c' in column \"%s\"",
					 status, name);
		}
	}
	appendStringInfoChar(buf, '}');

	if (unchanged != NIL)
	{
		appendStringInfo(buf, ",\"%s\":[", toast_key);
		foreach(lc, unchanged)
		{
			if (foreach_current_index(lc) > 0)
				appendStringInfoChar(buf, ',');
			escape_json(buf, (const char *) lfirst(lc));
		}
		appendStringInfoChar(buf, ']');
		list_free(unchanged);
	}
}

/*
 * Append one non-NULL value, given in its PostgreSQL text form (val->data
 * is NUL-terminated, as logicalrep_read_tuple leaves it), as JSON.
 *
 * In text mode every value is a string, as the original tool wrote it.
 * In typed mode, see json_append_typed().
 */
static void
json_append_value(StringInfo buf, PgsValueMode mode, Oid typid,
				  const StringInfoData *val)
{
	if (mode == PGS_VALUES_TEXT)
		escape_json(buf, val->data);
	else
		json_append_typed(buf, pgs_type_cache_lookup(typid), val->data,
						  val->len, false);
}

/*
 * A non-NULL value of the type of entry, given as its text[0..len), in
 * typed mode: booleans and numbers as JSON (numeric keeps its exact digits:
 * the text is copied, never parsed into a double; NaN and the infinities
 * stay strings), json and jsonb embedded, arrays as JSON arrays, the rest
 * as strings of their text.
 *
 * nested is true inside an array or a composite.  There values are written
 * the way datum_to_json() in utils/adt/json.c writes them for
 * array_to_json(): dates and timestamps in ISO 8601, composites as
 * objects.  Unlike datum_to_json(), a user-defined cast to json is never
 * used: it is a function the type's owner wrote.
 */
static void
json_append_typed(StringInfo buf, PgsTypeCacheEntry *entry, const char *text,
				  int len, bool nested)
{
	/* types nest only as deep as their definitions, but stay safe */
	check_stack_depth();

	switch (entry->category)
	{
		case PGS_JSON_BOOL:
			if (strcmp(text, "t") == 0)
				appendStringInfoString(buf, "true");
			else if (strcmp(text, "f") == 0)
				appendStringInfoString(buf, "false");
			else
				escape_json(buf, text);
			break;
		case PGS_JSON_NUMBER:
			if (IsValidJsonNumber(text, len))
				appendBinaryStringInfo(buf, text, len);
			else
				escape_json(buf, text);
			break;
		case PGS_JSON_RAW:
			json_append_minified(buf, text, len);
			break;
		case PGS_JSON_ARRAY:
			pgs_append_json_array(buf, entry, text, json_append_element,
								  pgs_type_cache_lookup(entry->elemtype));
			break;
		case PGS_JSON_DATETIME:
			if (nested)
				json_append_datetime(buf, entry->base, text);
			else
				escape_json(buf, text);
			break;
		case PGS_JSON_COMPOSITE:
			if (nested)
				json_append_composite(buf, entry->base, text);
			else
				escape_json(buf, text);
			break;
		case PGS_JSON_STRING:
			escape_json(buf, text);
			break;
	}
}

/* An element of an array; arg is the element type's cache entry */
static void
json_append_element(StringInfo buf, const char *text, void *arg)
{
	json_append_typed(buf, (PgsTypeCacheEntry *) arg, text, strlen(text), true);
}

/*
 * A date or timestamp inside an array or composite, in ISO 8601 as
 * array_to_json() writes it (JsonEncodeDateTime).
 *
 * Trust: date_in, timestamp_in and timestamptz_in are built-in functions
 * of built-in types (base is never a domain here, so no constraint is
 * checked), and they run no other code.  They read back the text that the
 * matching output function wrote with this session's settings, so they
 * cannot fail.
 */
static void
json_append_datetime(StringInfo buf, Oid base, const char *text)
{
	char		iso[MAXDATELEN + 1];
	Datum		value;

	switch (base)
	{
		case DATEOID:
			value = DirectFunctionCall1(date_in, CStringGetDatum(text));
			break;
		case TIMESTAMPOID:
			value = DirectFunctionCall3(timestamp_in, CStringGetDatum(text),
										ObjectIdGetDatum(InvalidOid),
										Int32GetDatum(-1));
			break;
		case TIMESTAMPTZOID:
			value = DirectFunctionCall3(timestamptz_in, CStringGetDatum(text),
										ObjectIdGetDatum(InvalidOid),
										Int32GetDatum(-1));
			break;
		default:
			escape_json(buf, text);
			return;
	}
	JsonEncodeDateTime(iso, value, base, NULL);
	appendStringInfo(buf, "\"%s\"", iso);
}

/*
 * A composite inside an array or composite, as composite_to_json() writes
 * it: an object of the fields that are not dropped, in attribute order,
 * each by json_append_typed().  The fields are taken from record_out's
 * text (value_text.c), never read with record_in.  Text that does not
 * split into the type's fields (it cannot happen) becomes a string.
 */
static void
json_append_composite(StringInfo buf, Oid base, const char *text)
{
	TupleDesc	desc = lookup_rowtype_tupdesc(base, -1);
	char	  **fields;
	int			nfields = 0;
	int			i;
	int			f;

	for (i = 0; i < desc->natts; i++)
	{
		if (!TupleDescAttr(desc, i)->attisdropped)
			nfields++;
	}
	fields = palloc(sizeof(char *) * Max(nfields, 1));
	if (!pgs_record_text_split(text, nfields, fields))
	{
		ReleaseTupleDesc(desc);
		escape_json(buf, text);
		return;
	}

	appendStringInfoChar(buf, '{');
	for (i = 0, f = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attisdropped)
			continue;
		if (f > 0)
			appendStringInfoChar(buf, ',');
		escape_json(buf, NameStr(att->attname));
		appendStringInfoChar(buf, ':');
		if (fields[f] == NULL)
			appendStringInfoString(buf, "null");
		else
			json_append_typed(buf, pgs_type_cache_lookup(att->atttypid),
							  fields[f], strlen(fields[f]), true);
		f++;
	}
	appendStringInfoChar(buf, '}');
	ReleaseTupleDesc(desc);
}

/*
 * A logical message (pg_logical_emit_message).  The content is arbitrary
 * bytes: it is written as the string "content" when it is valid text in
 * the database encoding, and as "content_base64" otherwise, so that binary
 * payloads arrive intact.
 */
static void
json_append_message(StringInfo buf, const PgsEvent *ev)
{
	appendStringInfoString(buf, "{\"Message\":{\"lsn\":");
	json_append_lsn(buf, ev->lsn);
	appendStringInfo(buf, ",\"transactional\":%s,\"prefix\":",
					 ev->msg_transactional ? "true" : "false");
	escape_json(buf, ev->msg_prefix ? ev->msg_prefix : "");

	if (message_content_is_text(ev))
	{
		char	   *content = pnstrdup(ev->msg_len > 0 ? ev->msg_content : "",
									   ev->msg_len);

		appendStringInfoString(buf, ",\"content\":");
		escape_json(buf, content);
		pfree(content);
	}
	else
	{
		char	   *b64 = message_content_base64(ev);

		/* base64 needs no escaping */
		appendStringInfo(buf, ",\"content_base64\":\"%s\"", b64);
		pfree(b64);
	}
	appendStringInfoString(buf, "}}");
}

/*
 * Append the JSON text json[0..len) without insignificant white space.
 *
 * json keeps its input's layout (newlines included) and jsonb prints
 * ", " and ": ", so embedded documents are squeezed to match the compact
 * rest of the payload and keep it on one line.  The input is known to be
 * valid JSON; only string boundaries matter.
 */
static void
json_append_minified(StringInfo buf, const char *json, int len)
{
	bool		in_string = false;
	int			i;

	enlargeStringInfo(buf, len);
	for (i = 0; i < len; i++)
	{
		char		c = json[i];

		if (in_string)
		{
			buf->data[buf->len++] = c;
			if (c == '\\' && i + 1 < len)
				buf->data[buf->len++] = json[++i];
			else if (c == '"')
				in_string = false;
		}
		else if (c == ' ' || c == '\t' || c == '\n' || c == '\r')
			continue;
		else
		{
			buf->data[buf->len++] = c;
			if (c == '"')
				in_string = true;
		}
	}
	buf->data[buf->len] = '\0';
}

/*
 * Append the JSON text json[0..len), re-indented the way serde_json's
 * PrettyFormatter does it.  White space outside strings in the input is
 * dropped and regenerated.
 */
static void
json_prettify(StringInfo buf, const char *json, int len)
{
	int			depth = 0;
	int			i;

	for (i = 0; i < len; i++)
	{
		char		c = json[i];

		switch (c)
		{
			case '"':
				{
					/* copy the whole string, escapes included */
					int			j = i + 1;

					while (j < len && json[j] != '"')
						j += (json[j] == '\\') ? 2 : 1;
					if (j >= len)
						j = len - 1;	/* unterminated: can't happen */
					appendBinaryStringInfo(buf, json + i, j - i + 1);
					i = j;
				}
				break;

			case '{':
			case '[':
				{
					char		close = (c == '{') ? '}' : ']';
					int			j = i + 1;

					while (j < len && (json[j] == ' ' || json[j] == '\t' ||
									   json[j] == '\n' || json[j] == '\r'))
						j++;
					appendStringInfoChar(buf, c);
					if (j < len && json[j] == close)
					{
						/* empty container stays on one line: {} or [] */
						appendStringInfoChar(buf, close);
						i = j;
					}
					else
						append_newline_indent(buf, ++depth);
				}
				break;

			case '}':
			case ']':
				append_newline_indent(buf, --depth);
				appendStringInfoChar(buf, c);
				break;

			case ',':
				appendStringInfoChar(buf, ',');
				append_newline_indent(buf, depth);
				break;

			case ':':
				appendBinaryStringInfo(buf, ": ", 2);
				break;

			case ' ':
			case '\t':
			case '\n':
			case '\r':
				break;

			default:
				appendStringInfoChar(buf, c);
				break;
		}
	}
}

/* A newline followed by two spaces per level */
static void
append_newline_indent(StringInfo buf, int depth)
{
	int			i;

	appendStringInfoChar(buf, '\n');
	for (i = 0; i < depth; i++)
		appendBinaryStringInfo(buf, "  ", 2);
}

/*
 * The cached JSON category of a column type.
 *
 * This runs once per value, so the catalog lookups (domain base type,
 * element type and delimiter) are done once per type and kept in a small
 * hash table for the life of the process.  Lookups need a transaction,
 * which the decoding callbacks always have.  They read the catalogs only:
 * no function of the type is looked up, let alone called.
 */
PgsTypeCacheEntry *
pgs_type_cache_lookup(Oid typid)
{
	PgsTypeCacheEntry *entry;
	PgsJsonCategory category;
	Oid			base;
	Oid			elemtype = InvalidOid;
	Oid			elembase = InvalidOid;
	char		elemdelim = ',';

	if (type_cache == NULL)
	{
		HASHCTL		ctl;

		type_cache_cxt = AllocSetContextCreate(TopMemoryContext,
											   "pgoutput_stream JSON type cache",
											   ALLOCSET_SMALL_SIZES);
		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(PgsTypeCacheEntry);
		ctl.hcxt = type_cache_cxt;
		type_cache = hash_create("pgoutput_stream JSON type cache", 64, &ctl,
								 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}

	entry = (PgsTypeCacheEntry *) hash_search(type_cache, &typid, HASH_FIND,
											  NULL);
	if (entry != NULL)
		return entry;

	/*
	 * Decide before entering the hash table, so that an error in a lookup
	 * can't leave a half-initialized entry behind.
	 */
	base = getBaseType(typid);
	switch (base)
	{
		case BOOLOID:
			category = PGS_JSON_BOOL;
			break;
		case INT2OID:
		case INT4OID:
		case INT8OID:
		case FLOAT4OID:
		case FLOAT8OID:
		case NUMERICOID:
			category = PGS_JSON_NUMBER;
			break;
		case JSONOID:
		case JSONBOID:
			category = PGS_JSON_RAW;
			break;
		case DATEOID:
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
			category = PGS_JSON_DATETIME;
			break;
		default:
			elemtype = get_element_type(base);
			if (OidIsValid(elemtype))
				category = PGS_JSON_ARRAY;
			else if (type_is_rowtype(base))
				category = PGS_JSON_COMPOSITE;
			else
				category = PGS_JSON_STRING;
			break;
	}

	if (category == PGS_JSON_ARRAY)
	{
		int16		typlen;
		bool		typbyval;
		char		typalign;
		Oid			typioparam;
		Oid			typoutput;

		elembase = getBaseType(elemtype);
		/* array_out separates elements by the element type's typdelim */
		get_type_io_data(elemtype, IOFunc_output, &typlen, &typbyval,
						 &typalign, &elemdelim, &typioparam, &typoutput);
	}

	entry = (PgsTypeCacheEntry *) hash_search(type_cache, &typid, HASH_ENTER,
											  NULL);
	entry->base = base;
	entry->category = category;
	entry->elemtype = elemtype;
	entry->elembase = elembase;
	entry->elemdelim = elemdelim;
	entry->is_vector = (base == INT2VECTOROID || base == OIDVECTOROID);

	return entry;
}

/*
 * Append an array value, given as its text, as a JSON array: dimensions
 * nested, lower bounds dropped, NULL elements as null, and every other
 * element appended by element() from its text.  The text is taken apart
 * by value_text.c, never read with array_in (see value_text.h).
 */
void
pgs_append_json_array(StringInfo buf, PgsTypeCacheEntry *type, const char *text,
					  PgsArrayElementFn element, void *arg)
{
	bool		ok;

	Assert(type->category == PGS_JSON_ARRAY);
	if (type->is_vector)
		ok = pgs_vector_text_to_json(buf, text, element, arg);
	else
		ok = pgs_array_text_to_json(buf, text, type->elemdelim, element, arg);
	if (!ok)
		escape_json(buf, text);
}

/*
 * Name, type and selection of column i.  pgoutput sends exactly the columns
 * its 'R' message announced, so i < rel->natts; should a tuple ever carry
 * more, the surplus columns are named column_<i> as the original tool did
 * and rendered as text, instead of failing the stream.
 */
static const char *
column_name(const PgsRelation *rel, int i)
{
	if (i < rel->natts)
		return rel->attnames[i];
	return psprintf("column_%d", i);
}

static Oid
column_type(const PgsRelation *rel, int i)
{
	if (i < rel->natts)
		return rel->atttyps[i];
	return TEXTOID;
}

static bool
column_wanted(const PgsRelation *rel, int i, bool key_only)
{
	return !key_only || bms_is_member(i, rel->attkeys);
}

/*
 * Whether the message content can be written as a string: valid in the
 * database encoding, free of NUL bytes (every encoding's verifier rejects
 * those), and convertible to UTF-8 without loss (WIN1252 accepts bytes
 * that have no Unicode equivalent).  A SQL_ASCII database accepts any
 * bytes, so there it must be valid UTF-8 itself.
 */
static bool
message_content_is_text(const PgsEvent *ev)
{
	int			encoding = GetDatabaseEncoding();

	/* the message came out of a 1 GB bytea, so its length fits an int */
	Assert(ev->msg_len <= (Size) MaxAllocSize);

	if (ev->msg_len == 0)
		return true;
	if (encoding == PG_SQL_ASCII)
		encoding = PG_UTF8;
	if (!pg_verify_mbstr(encoding, ev->msg_content, (int) ev->msg_len, true))
		return false;
	if (encoding != PG_UTF8)
	{
		bool		lossless;
		char	   *utf8 = pgs_server_to_utf8(ev->msg_content,
											  (int) ev->msg_len, &lossless);

		if (utf8 != ev->msg_content)
			pfree(utf8);
		return lossless;
	}
	return true;
}

/* The message content in base64, palloc'd and NUL-terminated */
static char *
message_content_base64(const PgsEvent *ev)
{
	int			srclen = (int) ev->msg_len;
	int			dstlen = pg_b64_enc_len(srclen);
	char	   *dst = palloc(dstlen + 1);
	int			n;

	n = pg_b64_encode(ev->msg_content, srclen, dst, dstlen);
	if (n < 0)
		elog(ERROR, "could not encode logical message content as base64");
	dst[n] = '\0';
	return dst;
}


/* ----------------------------------------------------------------------
 * text
 * ----------------------------------------------------------------------
 */

/*
 * Render ev in the original tool's text form: a header line, then indented
 * details, one event per payload, lines separated by '\n' with none at the
 * end.  Unlike the original, columns come in table order, an unchanged
 * TOAST value says so instead of printing NULL, and key-only old tuples
 * show only the key.  Values are printed as their PostgreSQL text.
 */
bool
pgs_render_text(StringInfo buf,
				const PgsFormatOptions *opts pg_attribute_unused(),
				const PgsEvent *ev)
{
	const PgsRelation *rel = ev->rel;
	int			i;

	switch (ev->kind)
	{
		case PGS_EVENT_BEGIN:
			appendStringInfo(buf, "BEGIN [LSN: %X/%X, XID: %u, Time: " INT64_FORMAT "]",
							 LSN_FORMAT_ARGS(ev->final_lsn), ev->xid,
							 (int64) ev->commit_time);
			break;

		case PGS_EVENT_COMMIT:
			appendStringInfo(buf, "COMMIT [LSN: %X/%X, End LSN: %X/%X, Time: " INT64_FORMAT "]",
							 LSN_FORMAT_ARGS(ev->final_lsn),
							 LSN_FORMAT_ARGS(ev->end_lsn),
							 (int64) ev->commit_time);
			break;

		case PGS_EVENT_RELATION:
			appendStringInfo(buf, "RELATION [%s.%s (ID: %u)]\n  Columns:",
							 rel->nspname, rel->relname, rel->relid);
			for (i = 0; i < rel->natts; i++)
				appendStringInfo(buf, "\n    - %s (type_id: %u, flags: %d)",
								 rel->attnames[i], rel->atttyps[i],
								 bms_is_member(i, rel->attkeys) ? 1 : 0);
			break;

		case PGS_EVENT_INSERT:
			appendStringInfo(buf, "%s into %s.%s (ID: %u)",
							 ev->snapshot ? "INSERT (snapshot)" : "INSERT",
							 rel->nspname, rel->relname, rel->relid);
			text_append_tuple(buf, "New values", rel, ev->newtup, false,
							  NULL, false);
			break;

		case PGS_EVENT_UPDATE:
			appendStringInfo(buf, "UPDATE %s.%s (ID: %u)",
							 rel->nspname, rel->relname, rel->relid);
			if (ev->oldtup != NULL)
				text_append_tuple(buf, "Old values", rel, ev->oldtup,
								  ev->old_is_key, NULL, false);
			text_append_tuple(buf, "New values", rel, ev->newtup, false,
							  ev->oldtup, ev->old_is_key);
			break;

		case PGS_EVENT_DELETE:
			appendStringInfo(buf, "DELETE from %s.%s (ID: %u)",
							 rel->nspname, rel->relname, rel->relid);
			if (ev->oldtup != NULL)
				text_append_tuple(buf, "Old values", rel, ev->oldtup,
								  ev->old_is_key, NULL, false);
			break;

		case PGS_EVENT_TRUNCATE:
			appendStringInfo(buf, "TRUNCATE %s.%s (ID: %u)",
							 rel->nspname, rel->relname, rel->relid);
			break;

		case PGS_EVENT_MESSAGE:
			appendStringInfo(buf, "MESSAGE [LSN: %X/%X, transactional: %s, prefix: %s]",
							 LSN_FORMAT_ARGS(ev->lsn),
							 ev->msg_transactional ? "true" : "false",
							 ev->msg_prefix ? ev->msg_prefix : "");
			if (message_content_is_text(ev))
			{
				appendStringInfoString(buf, "\n  Content: ");
				if (ev->msg_len > 0)
					appendBinaryStringInfo(buf, ev->msg_content,
										   (int) ev->msg_len);
			}
			else
			{
				char	   *b64 = message_content_base64(ev);

				appendStringInfo(buf, "\n  Content (base64): %s", b64);
				pfree(b64);
			}
			break;

		default:
			elog(ERROR, "unrecognized event kind: %d", (int) ev->kind);
	}

	return true;
}

/*
 * Append "\n  <title>:" and one "\n    name: value" line per column, in
 * table order, with the same key-only and unchanged TOAST rules as the
 * JSON formats.
 */
static void
text_append_tuple(StringInfo buf, const char *title, const PgsRelation *rel,
				  const LogicalRepTupleData *tup, bool key_only,
				  const LogicalRepTupleData *old, bool old_is_key)
{
	int			i;

	Assert(tup != NULL);

	appendStringInfo(buf, "\n  %s:", title);
	for (i = 0; i < tup->ncols; i++)
	{
		if (!column_wanted(rel, i, key_only))
			continue;

		appendStringInfo(buf, "\n    %s: ", column_name(rel, i));
		switch (tup->colstatus[i])
		{
			case LOGICALREP_COLUMN_NULL:
				appendStringInfoString(buf, "NULL");
				break;
			case LOGICALREP_COLUMN_UNCHANGED:
				{
					const StringInfoData *value;

					value = pgs_unchanged_from_old(rel, i, old, old_is_key);
					if (value != NULL)
						appendBinaryStringInfo(buf, value->data, value->len);
					else
						appendStringInfoString(buf, "(unchanged TOAST)");
				}
				break;
			case LOGICALREP_COLUMN_TEXT:
				appendBinaryStringInfo(buf, tup->colvalues[i].data,
									   tup->colvalues[i].len);
				break;
			default:
				/* we never ask pgoutput for binary values */
				elog(ERROR, "unexpected column status '%c'",
					 tup->colstatus[i]);
		}
	}
}
