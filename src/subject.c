/*-------------------------------------------------------------------------
 *
 * subject.c
 *		NATS subjects for change events.
 *
 * The subject layout is the original tool's:
 *
 *		{prefix}.{schema}.{table}.{insert|update|delete|truncate|relation}
 *		{prefix}.transactions.begin.event
 *		{prefix}.transactions.commit.event
 *		{prefix}.messages.{message prefix}
 *
 * The prefix is used verbatim; the stream options check that it is a valid
 * subject made of tokens.  Schema, table and message prefix are user data,
 * and in NATS a '.' separates tokens while '*' and '>' are wildcards, so
 * each of them is escaped into exactly one token.  That way a table can
 * never spill into another table's subject space (schema "a.b" with table
 * "c" and schema "a" with table "b.c" stay apart), and a subscriber can
 * recover the exact name from its token.
 *
 * Escaping rule (reversible), applied to the UTF-8 form of the name:
 *	- the bytes A-Z, a-z, 0-9, '_' and '-' are copied unchanged;
 *	- every other byte -- '.', '*', '>', '%', space and other white space,
 *	  quotes, control bytes, and each byte of a non-ASCII character -- is
 *	  written as '%' followed by two upper-case hex digits (".": "%2E",
 *	  "é": "%C3%A9");
 *	- the empty name, which would otherwise give an empty token (invalid
 *	  in NATS), is written as "%00".  A real name cannot contain a NUL
 *	  byte, so "%00" decodes unambiguously to the empty string.
 * Decoding is therefore plain percent-decoding of the token, followed by
 * reading the bytes as UTF-8.
 *
 * Copyright (c) 2026, pgoutput_stream developers
 *
 * IDENTIFICATION
 *		src/subject.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "mb/pg_wchar.h"

#include "event.h"
#include "format.h"

/*
 * Append the subject of ev to buf.
 */
void
pgs_format_subject(StringInfo buf, const PgsFormatOptions *opts,
				   const PgsEvent *ev)
{
	Assert(opts->subject_prefix != NULL && opts->subject_prefix[0] != '\0');

	appendStringInfoString(buf, opts->subject_prefix);

	switch (ev->kind)
	{
		case PGS_EVENT_BEGIN:
			appendStringInfoString(buf, ".transactions.begin.event");
			break;
		case PGS_EVENT_COMMIT:
			appendStringInfoString(buf, ".transactions.commit.event");
			break;
		case PGS_EVENT_MESSAGE:
			appendStringInfoString(buf, ".messages.");
			pgs_subject_append_token(buf, ev->msg_prefix ? ev->msg_prefix : "");
			break;
		case PGS_EVENT_RELATION:
		case PGS_EVENT_INSERT:
		case PGS_EVENT_UPDATE:
		case PGS_EVENT_DELETE:
		case PGS_EVENT_TRUNCATE:
			Assert(ev->rel != NULL);
			appendStringInfoChar(buf, '.');
			pgs_subject_append_token(buf, ev->rel->nspname);
			appendStringInfoChar(buf, '.');
			pgs_subject_append_token(buf, ev->rel->relname);
			appendStringInfoChar(buf, '.');
			appendStringInfoString(buf, pgs_event_kind_name(ev->kind));
			break;
	}
}

/*
 * Append name, given in the database encoding, to buf as one subject
 * token, escaped by the rule in the file header.
 *
 * In a SQL_ASCII database the bytes are escaped as they are: there is no
 * declared encoding to convert from, and the escaped token is plain ASCII
 * either way, so nothing is lost.
 */
void
pgs_subject_append_token(StringInfo buf, const char *name)
{
	static const char hexdigits[] = "0123456789ABCDEF";
	const char *utf8;
	int			len = strlen(name);
	int			i;

	if (len == 0)
	{
		appendStringInfoString(buf, "%00");
		return;
	}

	/* SQL_ASCII names are escaped byte for byte, as they are */
	if (GetDatabaseEncoding() == PG_SQL_ASCII)
		utf8 = name;
	else
		utf8 = pgs_server_to_utf8(name, len, NULL);

	/* Conversion may change the length; the result is NUL-terminated */
	if (utf8 != name)
		len = strlen(utf8);

	/* Reserve the worst case once rather than growing per byte */
	enlargeStringInfo(buf, len * 3);

	for (i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) utf8[i];

		if ((c >= 'A' && c <= 'Z') ||
			(c >= 'a' && c <= 'z') ||
			(c >= '0' && c <= '9') ||
			c == '_' || c == '-')
			buf->data[buf->len++] = (char) c;
		else
		{
			buf->data[buf->len++] = '%';
			buf->data[buf->len++] = hexdigits[c >> 4];
			buf->data[buf->len++] = hexdigits[c & 0x0F];
		}
	}
	buf->data[buf->len] = '\0';

	if (utf8 != name)
		pfree(unconstify(char *, utf8));
}
