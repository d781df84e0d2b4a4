/*-------------------------------------------------------------------------
 *
 * format.c
 *		Format and value-mode names, and the payload entry point.
 *
 * pgs_format_payload picks the renderer for the stream's format (the
 * renderers live in format_json.c) and then converts the rendered payload
 * from the database encoding to UTF-8, which is what every sink expects.
 * Converting once, at the end, keeps the renderers encoding-agnostic: they
 * only ever escape ASCII bytes, and every server encoding is a superset of
 * ASCII, so escaping before converting is safe.
 *
 * Copyright (c) 2026, pgoutput_stream developers
 *
 * IDENTIFICATION
 *		src/format.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "utils/memutils.h"

#include "event.h"
#include "format.h"
#include "format_internal.h"

/* UTF-8 form of U+FFFD REPLACEMENT CHARACTER */
#define UTF8_REPLACEMENT_CHAR	"\xEF\xBF\xBD"

static void payload_to_utf8(StringInfo buf, int start);
static char *sanitize_utf8(const char *s, int len);

/*
 * Look up a format by its stream option name.  Names are matched exactly
 * (lower case), as the stream options are validated and stored as given.
 */
bool
pgs_format_from_name(const char *name, PgsFormat *format)
{
	if (name == NULL)
		return false;

	if (strcmp(name, "json") == 0)
		*format = PGS_FORMAT_JSON;
	else if (strcmp(name, "json-pretty") == 0)
		*format = PGS_FORMAT_JSON_PRETTY;
	else if (strcmp(name, "text") == 0)
		*format = PGS_FORMAT_TEXT;
	else if (strcmp(name, "debezium") == 0)
		*format = PGS_FORMAT_DEBEZIUM;
	else if (strcmp(name, "feldera") == 0)
		*format = PGS_FORMAT_FELDERA;
	else
		return false;

	return true;
}

/*
 * The stream option name of a format; the inverse of pgs_format_from_name.
 */
const char *
pgs_format_name(PgsFormat format)
{
	/* No default: let the compiler flag a format added without a name */
	switch (format)
	{
		case PGS_FORMAT_JSON:
			return "json";
		case PGS_FORMAT_JSON_PRETTY:
			return "json-pretty";
		case PGS_FORMAT_TEXT:
			return "text";
		case PGS_FORMAT_DEBEZIUM:
			return "debezium";
		case PGS_FORMAT_FELDERA:
			return "feldera";
	}

	elog(ERROR, "unrecognized stream format: %d", (int) format);
	return NULL;				/* keep compiler quiet */
}

/*
 * Look up a value mode ("typed" or "text") by its stream option name.
 */
bool
pgs_value_mode_from_name(const char *name, PgsValueMode *mode)
{
	if (name == NULL)
		return false;

	if (strcmp(name, "typed") == 0)
		*mode = PGS_VALUES_TYPED;
	else if (strcmp(name, "text") == 0)
		*mode = PGS_VALUES_TEXT;
	else
		return false;

	return true;
}

/*
 * The lower-case name of an event kind, as used in subjects, headers and
 * the text format.
 */
const char *
pgs_event_kind_name(PgsEventKind kind)
{
	/* No default: let the compiler flag a kind added without a name */
	switch (kind)
	{
		case PGS_EVENT_BEGIN:
			return "begin";
		case PGS_EVENT_COMMIT:
			return "commit";
		case PGS_EVENT_RELATION:
			return "relation";
		case PGS_EVENT_INSERT:
			return "insert";
		case PGS_EVENT_UPDATE:
			return "update";
		case PGS_EVENT_DELETE:
			return "delete";
		case PGS_EVENT_TRUNCATE:
			return "truncate";
		case PGS_EVENT_MESSAGE:
			return "message";
	}

	elog(ERROR, "unrecognized event kind: %d", (int) kind);
	return NULL;				/* keep compiler quiet */
}

/*
 * Empty buf, and give back its memory if it grew beyond
 * PGS_BUFFER_KEEP_BYTES: the buffer starts again at StringInfo's initial
 * size, in the memory context it was allocated in (not the current one,
 * which may be reset before the buffer's next use).
 */
void
pgs_buffer_trim(StringInfo buf)
{
	if (buf->maxlen > PGS_BUFFER_KEEP_BYTES)
	{
		MemoryContext cxt = GetMemoryChunkContext(buf->data);

		pfree(buf->data);
		buf->maxlen = 1024;
		buf->data = MemoryContextAlloc(cxt, buf->maxlen);
	}
	resetStringInfo(buf);
}

/*
 * Append the payload of ev to buf, UTF-8 encoded.  Returns false, with buf
 * unchanged, if the format emits nothing for this event.
 *
 * Whatever the renderer allocates besides buf is left in the current
 * memory context; callers format in a per-event context that they reset.
 * In typed value mode the renderers look up types in the catalogs, so a
 * transaction must be open (the decoding callbacks always have one).
 */
bool
pgs_format_payload(StringInfo buf, const PgsFormatOptions *opts,
				   const PgsEvent *ev)
{
	int			start = buf->len;
	bool		emitted = false;

	/* Begin, Commit and Relation events can be turned off per stream */
	if (ev->kind == PGS_EVENT_COMMIT && ev->txn_empty)
		return false;
	if ((ev->kind == PGS_EVENT_BEGIN || ev->kind == PGS_EVENT_COMMIT) &&
		!opts->transaction_events && opts->format != PGS_FORMAT_DEBEZIUM)
		return false;
	if (ev->kind == PGS_EVENT_RELATION && !opts->relation_events)
		return false;

	switch (opts->format)
	{
		case PGS_FORMAT_JSON:
			emitted = pgs_render_json(buf, opts, ev);
			break;
		case PGS_FORMAT_JSON_PRETTY:
			emitted = pgs_render_json_pretty(buf, opts, ev);
			break;
		case PGS_FORMAT_TEXT:
			emitted = pgs_render_text(buf, opts, ev);
			break;
		case PGS_FORMAT_DEBEZIUM:
			/* it keeps transaction counts, so it sees every event */
			emitted = pgs_render_debezium(buf, opts, ev);
			break;
		case PGS_FORMAT_FELDERA:
			emitted = pgs_render_feldera(buf, opts, ev);
			break;
		default:
			elog(ERROR, "unrecognized stream format: %d", (int) opts->format);
	}

	if (!emitted)
	{
		buf->len = start;
		buf->data[start] = '\0';
		return false;
	}

	payload_to_utf8(buf, start);
	return true;
}

/*
 * The value of column i of old, for a column whose new value is an
 * unchanged TOASTed one, or NULL if old does not have it.
 *
 * A full old row ('O', REPLICA IDENTITY FULL) has every value: PostgreSQL
 * logs it with its TOASTed values inlined.  A key-only old row ('K') has
 * real values only in its replica identity columns; PostgreSQL logs it
 * when the key changed or when a key value is stored out of line, so an
 * unchanged, TOASTed key column is found there.  Its other columns are
 * NULL placeholders and must not be taken.
 */
const StringInfoData *
pgs_unchanged_from_old(const PgsRelation *rel, int i,
				   const LogicalRepTupleData *old, bool old_is_key)
{
	if (old == NULL || i >= old->ncols)
		return NULL;
	if (old_is_key && !bms_is_member(i, rel->attkeys))
		return NULL;
	if (old->colstatus[i] != LOGICALREP_COLUMN_TEXT)
		return NULL;
	return &old->colvalues[i];
}

/*
 * Convert buf->data[start..] from the database encoding to UTF-8 in place.
 */
static void
payload_to_utf8(StringInfo buf, int start)
{
	const char *src = buf->data + start;
	int			len = buf->len - start;
	char	   *conv;

	conv = pgs_server_to_utf8(src, len, NULL);
	if (conv == src)
		return;					/* already UTF-8 (or nothing to convert) */

	/* Payloads never contain NUL bytes, so strlen finds the whole result */
	buf->len = start;
	buf->data[start] = '\0';
	appendBinaryStringInfo(buf, conv, strlen(conv));
	pfree(conv);
}

/*
 * The conversion from the database encoding to UTF-8, looked up once per
 * process, in a transaction (the worker calls this when it starts), so
 * that converting needs no catalog access: non-transactional logical
 * messages are rendered outside any transaction.  The search_path is
 * empty in the worker and in peek, so only pg_catalog's built-in
 * conversions are found, never one that another role created.
 */
static FmgrInfo utf8_conversion;
static bool utf8_conversion_ready = false;

/* converted at a time: the output buffer holds a piece's worst case */
#define CONVERSION_CHUNK	(1024 * 1024)

void
pgs_server_to_utf8_prepare(void)
{
	int			encoding = GetDatabaseEncoding();
	Oid			proc;

	if (utf8_conversion_ready || encoding == PG_UTF8 || encoding == PG_SQL_ASCII)
		return;
	Assert(IsTransactionState());
	proc = FindDefaultConversionProc(encoding, PG_UTF8);
	/* MULE_INTERNAL has none: a stream of such a database cannot work */
	if (!OidIsValid(proc))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("default conversion function for encoding \"%s\" to \"%s\" does not exist",
						pg_encoding_to_char(encoding), "UTF8"),
				 errhint("Events are UTF-8: stream from a database whose encoding PostgreSQL can convert to UTF-8.")));
	fmgr_info_cxt(proc, &utf8_conversion, TopMemoryContext);
	utf8_conversion_ready = true;
}

/*
 * Text in the database encoding as UTF-8, never failing on a character:
 * src itself if it needs no conversion, else a palloc'd, NUL-terminated
 * copy (a result of more than 1 GB is an error, as for any payload).
 * src[0..len) holds no NUL byte.
 *
 * A character that has no Unicode equivalent (bytes 0x81, 0x8D, ... of
 * WIN1252, some characters of the multi-byte encodings) becomes U+FFFD,
 * as does every byte of a SQL_ASCII database that does not start a valid
 * UTF-8 sequence (SQL_ASCII declares no encoding at all).  Failing
 * instead would stop the stream for good on one such value.  *lossless,
 * if given, says whether nothing was replaced.
 */
char *
pgs_server_to_utf8(const char *src, int len, bool *lossless)
{
	int			encoding = GetDatabaseEncoding();
	StringInfoData out;
	int			i;

	if (lossless != NULL)
		*lossless = true;
	if (len == 0 || encoding == PG_UTF8)
		return unconstify(char *, src);
	if (encoding == PG_SQL_ASCII)
	{
		if (pg_verify_mbstr(PG_UTF8, src, len, true))
			return unconstify(char *, src);
		if (lossless != NULL)
			*lossless = false;
		return sanitize_utf8(src, len);
	}

	/* ASCII is the same in every server encoding and in UTF-8 */
	for (i = 0; i < len && !IS_HIGHBIT_SET(src[i]); i++)
		;
	if (i == len)
		return unconstify(char *, src);

	if (!utf8_conversion_ready)
		pgs_server_to_utf8_prepare();
	initStringInfo(&out);
	while (len > 0)
	{
		int			chunk = len;
		int			converted;
		int			skip;

		/*
		 * In pieces of at most 1 MB, cut between characters: the output
		 * buffer must hold the worst case of a piece's growth, which for the
		 * whole of a large value would pass the 1 GB allocation limit.
		 */
		if (chunk > CONVERSION_CHUNK)
			chunk = Max(pg_encoding_mbcliplen(encoding, src, len, CONVERSION_CHUNK), 1);
		enlargeStringInfo(&out, chunk * MAX_CONVERSION_GROWTH + 1);
		/* conversion functions convert until the first character they cannot */
		converted = DatumGetInt32(FunctionCall6(&utf8_conversion,
												Int32GetDatum(encoding),
												Int32GetDatum(PG_UTF8),
												CStringGetDatum(src),
												CStringGetDatum(out.data + out.len),
												Int32GetDatum(chunk),
												BoolGetDatum(true)));
		out.len += strlen(out.data + out.len);
		src += converted;
		len -= converted;
		if (converted == chunk)
			continue;

		appendStringInfoString(&out, UTF8_REPLACEMENT_CHAR);
		if (lossless != NULL)
			*lossless = false;
		skip = Min(Max(pg_encoding_mblen(encoding, src), 1), len);
		src += skip;
		len -= skip;
	}
	return out.data;
}

/*
 * Copy s, keeping valid UTF-8 sequences and replacing every byte that does
 * not start one with U+FFFD.  Returns a palloc'd, NUL-terminated string.
 */
static char *
sanitize_utf8(const char *s, int len)
{
	const unsigned char *p = (const unsigned char *) s;
	const unsigned char *end = p + len;
	StringInfoData out;

	initStringInfo(&out);
	while (p < end)
	{
		int			l;

		if (*p < 0x80)
		{
			appendStringInfoChar(&out, (char) *p);
			p++;
			continue;
		}

		l = pg_utf_mblen(p);
		if (l <= end - p && pg_utf8_islegal(p, l))
		{
			appendBinaryStringInfo(&out, (const char *) p, l);
			p += l;
		}
		else
		{
			appendStringInfoString(&out, UTF8_REPLACEMENT_CHAR);
			p++;
		}
	}

	return out.data;
}
