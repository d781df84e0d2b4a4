/*-------------------------------------------------------------------------
 *
 * filter.c
 *		Per-stream filters: tables, operations and columns.
 *
 * Patterns are matched against the names pgoutput announces, exactly and
 * case-sensitively, as they are stored in the catalogs (not as SQL
 * identifiers: no quoting, no case folding).  Each part of a pattern is
 * kept with its backslash escapes and interpreted by glob_match(), so a
 * name containing ".", "*" or "?" can still be matched literally.
 *
 * Copyright (c) 2026, pgoutput_stream developers
 *
 * IDENTIFICATION
 *		src/filter.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "filter.h"

void
pgs_filter_defaults(PgsFilterConfig *filter)
{
	filter->include_tables = NIL;
	filter->exclude_tables = NIL;
	filter->exclude_columns = NIL;
	filter->operations = PGS_OP_ALL;
}

static void
invalid_pattern(const char *option, const char *text, int nparts)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid pattern for stream option \"%s\": \"%s\"", option, text),
			 errdetail(nparts == 2 ?
					   "A table pattern has the form schema.table; use \"*\" and \"?\" as wildcards and \"\\\" before a literal \".\", \"*\", \"?\" or \"\\\"." :
					   "A column pattern has the form schema.table.column; use \"*\" and \"?\" as wildcards and \"\\\" before a literal \".\", \"*\", \"?\" or \"\\\".")));
}

/*
 * Split text at its unescaped dots into exactly nparts non-empty parts.
 */
PgsNamePattern *
pgs_pattern_parse(const char *option, const char *text, int nparts)
{
	PgsNamePattern *pattern = palloc0(sizeof(PgsNamePattern));
	const char *start = text;
	const char *p;
	int			n = 0;

	Assert(nparts == 2 || nparts == 3);
	for (p = text;; p++)
	{
		if (*p == '\\')
		{
			if (p[1] == '\0')
				invalid_pattern(option, text, nparts);
			p++;
			continue;
		}
		if (*p == '.' || *p == '\0')
		{
			if (p == start || n == nparts)
				invalid_pattern(option, text, nparts);
			pattern->parts[n++] = pnstrdup(start, p - start);
			if (*p == '\0')
				break;
			start = p + 1;
		}
	}
	if (n != nparts)
		invalid_pattern(option, text, nparts);
	return pattern;
}

int
pgs_operation_from_name(const char *name)
{
	if (strcmp(name, "insert") == 0)
		return PGS_OP_INSERT;
	if (strcmp(name, "update") == 0)
		return PGS_OP_UPDATE;
	if (strcmp(name, "delete") == 0)
		return PGS_OP_DELETE;
	if (strcmp(name, "truncate") == 0)
		return PGS_OP_TRUNCATE;
	if (strcmp(name, "message") == 0)
		return PGS_OP_MESSAGE;
	return 0;
}

/*
 * Does the glob pattern match all of name?  "*" matches any run of
 * characters, "?" one byte, "\x" the character x.  Backtracks only to the
 * last "*", which is enough for globs and keeps it linear in practice.
 */
static bool
glob_match(const char *pattern, const char *name)
{
	const char *star = NULL;
	const char *resume = NULL;

	while (*name)
	{
		if (*pattern == '*')
		{
			star = ++pattern;
			resume = name;
			continue;
		}
		if (*pattern == '?' ||
			(*pattern == '\\' && pattern[1] == *name) ||
			(*pattern != '\\' && *pattern != '\0' && *pattern == *name))
		{
			pattern += (*pattern == '\\') ? 2 : 1;
			name++;
			continue;
		}
		if (star == NULL)
			return false;
		pattern = star;
		name = ++resume;
	}
	while (*pattern == '*')
		pattern++;
	return *pattern == '\0';
}

static bool
any_match(List *patterns, const char *nspname, const char *relname,
		  const char *attname)
{
	ListCell   *lc;

	foreach(lc, patterns)
	{
		PgsNamePattern *pattern = (PgsNamePattern *) lfirst(lc);

		if (glob_match(pattern->parts[0], nspname) &&
			glob_match(pattern->parts[1], relname) &&
			(attname == NULL || glob_match(pattern->parts[2], attname)))
			return true;
	}
	return false;
}

/*
 * A table is streamed if it matches an include pattern (or there are
 * none) and no exclude pattern.
 */
bool
pgs_filter_keeps_table(const PgsFilterConfig *filter, const char *nspname,
					   const char *relname)
{
	if (filter->include_tables != NIL &&
		!any_match(filter->include_tables, nspname, relname, NULL))
		return false;
	return !any_match(filter->exclude_tables, nspname, relname, NULL);
}

bool
pgs_filter_keeps_column(const PgsFilterConfig *filter, const char *nspname,
						const char *relname, const char *attname)
{
	return !any_match(filter->exclude_columns, nspname, relname, attname);
}

/*
 * Begin, Commit and Relation events are never filtered here: the
 * delivery bookkeeping needs the transaction boundaries, and whether they
 * are published is a matter of the format options.
 */
bool
pgs_filter_keeps_event(const PgsFilterConfig *filter, PgsEventKind kind)
{
	switch (kind)
	{
		case PGS_EVENT_INSERT:
			return (filter->operations & PGS_OP_INSERT) != 0;
		case PGS_EVENT_UPDATE:
			return (filter->operations & PGS_OP_UPDATE) != 0;
		case PGS_EVENT_DELETE:
			return (filter->operations & PGS_OP_DELETE) != 0;
		case PGS_EVENT_TRUNCATE:
			return (filter->operations & PGS_OP_TRUNCATE) != 0;
		case PGS_EVENT_MESSAGE:
			return (filter->operations & PGS_OP_MESSAGE) != 0;
		case PGS_EVENT_BEGIN:
		case PGS_EVENT_COMMIT:
		case PGS_EVENT_RELATION:
			return true;
	}
	return true;
}
