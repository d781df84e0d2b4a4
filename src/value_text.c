/*-------------------------------------------------------------------------
 *
 * value_text.c
 *		Reading arrays and composites from their PostgreSQL text form.
 *
 * The worker runs as a superuser and renders the values of tables that
 * other roles own.  A type's input function can run their code: array_in
 * and record_in call the element and field types' input functions, and
 * domain_in evaluates the domain's CHECK constraints, which may call any
 * function the domain's owner wrote.  So structured values are never read
 * back into datums: the text that the output functions wrote (array_out,
 * record_out) is taken apart here, following their quoting rules exactly,
 * and nothing in this file calls a function through fmgr.
 *
 * The text comes from the output functions of this server, so it is
 * always well formed; should it not be, the functions return false and
 * the caller renders the whole value as a string instead of failing the
 * stream.
 *
 * Copyright (c) 2026, pgoutput_stream developers
 *
 * IDENTIFICATION
 *		src/value_text.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/array.h"

#include "value_text.h"

/* Where a reader of array_out's text stands */
typedef struct ArrayReader
{
	const char *p;				/* next character to read */
	char		delim;			/* the element type's typdelim */
	PgsArrayElementFn element;
	void	   *arg;
	StringInfoData elem;		/* the current element, unquoted */
} ArrayReader;

static bool read_dimension(ArrayReader *r, StringInfo buf, int depth);
static bool read_element(ArrayReader *r, StringInfo buf);

bool
pgs_array_text_to_json(StringInfo buf, const char *text, char delim,
					   PgsArrayElementFn element, void *arg)
{
	ArrayReader r;
	int			start = buf->len;
	bool		ok;

	r.p = text;
	r.delim = delim;
	r.element = element;
	r.arg = arg;
	initStringInfo(&r.elem);

	/*
	 * array_out writes the bounds, "[1:2][0:3]=", only when a lower bound
	 * is not 1; JSON arrays have none, so they are skipped.
	 */
	if (*r.p == '[')
	{
		while (*r.p == '[' || *r.p == ']' || *r.p == ':' || *r.p == '-' ||
			   (*r.p >= '0' && *r.p <= '9'))
			r.p++;
		if (*r.p != '=')
			r.p = "";			/* not array_out's text: fail below */
		else
			r.p++;
	}

	ok = (*r.p == '{') && read_dimension(&r, buf, 1) && *r.p == '\0';
	pfree(r.elem.data);
	if (!ok)
	{
		buf->len = start;
		buf->data[start] = '\0';
	}
	return ok;
}

/*
 * One brace-enclosed dimension, at its "{": its items, separated by the
 * delimiter, are the dimensions below it or, in the last dimension, the
 * elements.  array_out writes no white space around them.
 */
static bool
read_dimension(ArrayReader *r, StringInfo buf, int depth)
{
	/* array_in allows MAXDIM dimensions; deeper text is not its output */
	if (depth > MAXDIM)
		return false;

	r->p++;						/* the "{" */
	appendStringInfoChar(buf, '[');
	if (*r->p == '}')
	{
		/* an empty array: array_out writes "{}" for it */
		r->p++;
		appendStringInfoChar(buf, ']');
		return true;
	}
	for (;;)
	{
		if (*r->p == '{')
		{
			if (!read_dimension(r, buf, depth + 1))
				return false;
		}
		else if (!read_element(r, buf))
			return false;

		if (*r->p == r->delim)
		{
			r->p++;
			appendStringInfoChar(buf, ',');
		}
		else if (*r->p == '}')
		{
			r->p++;
			appendStringInfoChar(buf, ']');
			return true;
		}
		else
			return false;
	}
}

/*
 * One element.  array_out double-quotes an element that is empty, reads
 * NULL in any case, or contains a quote, a backslash, a brace, the
 * delimiter or white space, and escapes quotes and backslashes inside the
 * quotes with a backslash; an unquoted NULL is a NULL element.  Server
 * encodings never use ASCII bytes inside multibyte characters, so the text
 * can be read byte by byte.
 */
static bool
read_element(ArrayReader *r, StringInfo buf)
{
	const char *p = r->p;
	bool		quoted = false;

	resetStringInfo(&r->elem);
	if (*p == '"')
	{
		quoted = true;
		p++;
		while (*p != '"')
		{
			if (*p == '\\')
				p++;
			if (*p == '\0')
				return false;
			appendStringInfoChar(&r->elem, *p);
			p++;
		}
		p++;					/* the closing quote */
	}
	else
	{
		while (*p != r->delim && *p != '}')
		{
			if (*p == '\0' || *p == '{' || *p == '"' || *p == '\\')
				return false;
			appendStringInfoChar(&r->elem, *p);
			p++;
		}
		if (r->elem.len == 0)
			return false;
	}
	r->p = p;

	if (!quoted && pg_strcasecmp(r->elem.data, "NULL") == 0)
		appendStringInfoString(buf, "null");
	else
		r->element(buf, r->elem.data, r->arg);
	return true;
}

/*
 * int2vector and oidvector print their elements separated by single
 * spaces (int2vectorout, oidvectorout); they have no NULL elements.
 */
bool
pgs_vector_text_to_json(StringInfo buf, const char *text,
						PgsArrayElementFn element, void *arg)
{
	StringInfoData elem;
	const char *p = text;
	bool		first = true;

	initStringInfo(&elem);
	appendStringInfoChar(buf, '[');
	while (*p != '\0')
	{
		resetStringInfo(&elem);
		while (*p != ' ' && *p != '\0')
			appendStringInfoChar(&elem, *p++);
		if (elem.len > 0)
		{
			if (!first)
				appendStringInfoChar(buf, ',');
			first = false;
			element(buf, elem.data, arg);
		}
		if (*p == ' ')
			p++;
	}
	appendStringInfoChar(buf, ']');
	pfree(elem.data);
	return true;
}

/*
 * record_out writes "(" the fields separated by "," ")": nothing for a
 * NULL field, a field double-quoted if it is empty or contains a quote, a
 * backslash, a parenthesis, a comma or white space, with quotes and
 * backslashes doubled inside the quotes.  This reads it as record_in
 * does: a backslash takes the next character literally, inside or outside
 * quotes, and "" inside quotes is one quote.
 */
bool
pgs_record_text_split(const char *text, int nfields, char **fields)
{
	const char *p = text;
	int			i;

	if (*p++ != '(')
		return false;
	for (i = 0; i < nfields; i++)
	{
		StringInfoData field;
		bool		in_quotes = false;

		if (i > 0 && *p++ != ',')
			return false;
		if (*p == ',' || *p == ')')
		{
			fields[i] = NULL;
			continue;
		}
		initStringInfo(&field);
		while (in_quotes || (*p != ',' && *p != ')'))
		{
			char		c = *p++;

			if (c == '\0')
				return false;
			if (c == '\\')
			{
				if (*p == '\0')
					return false;
				appendStringInfoChar(&field, *p++);
			}
			else if (c == '"')
			{
				if (!in_quotes)
					in_quotes = true;
				else if (*p == '"')
					appendStringInfoChar(&field, *p++);
				else
					in_quotes = false;
			}
			else
				appendStringInfoChar(&field, c);
		}
		fields[i] = field.data;
	}
	return p[0] == ')' && p[1] == '\0';
}
