/*-------------------------------------------------------------------------
 *
 * filter.h
 *		Per-stream filters: tables, operations and columns.
 *
 * A stream publishes what its publication publishes; filters narrow that
 * down without touching the publication, which other subscribers may
 * share.  They are applied where pgoutput messages become events
 * (proto.c), so every target and format sees the same filtered stream.
 *
 * Copyright (c) 2026, pgoutput_stream developers
 *
 * IDENTIFICATION
 *		src/filter.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGS_FILTER_H
#define PGS_FILTER_H

#include "nodes/pg_list.h"

#include "event.h"

/* Operations, as bits of PgsFilterConfig.operations */
#define PGS_OP_INSERT		(1 << 0)
#define PGS_OP_UPDATE		(1 << 1)
#define PGS_OP_DELETE		(1 << 2)
#define PGS_OP_TRUNCATE		(1 << 3)
#define PGS_OP_MESSAGE		(1 << 4)
#define PGS_OP_ALL			(PGS_OP_INSERT | PGS_OP_UPDATE | PGS_OP_DELETE | \
							 PGS_OP_TRUNCATE | PGS_OP_MESSAGE)

/*
 * A name pattern: "schema.table" or "schema.table.column", each part a
 * glob where "*" matches any run of characters and "?" one character; a
 * backslash takes the next character literally (to match ".", "*", "?"
 * or "\" in a name).  Each part keeps its backslash escapes, which the
 * matcher in filter.c interprets.
 */
typedef struct PgsNamePattern
{
	char	   *parts[3];		/* schema, table, column (NULL if absent) */
} PgsNamePattern;

typedef struct PgsFilterConfig
{
	List	   *include_tables; /* of PgsNamePattern *; NIL: every table */
	List	   *exclude_tables; /* of PgsNamePattern * */
	List	   *exclude_columns;	/* of PgsNamePattern *, three parts */
	int			operations;		/* PGS_OP_* bits that are published */
} PgsFilterConfig;

extern void pgs_filter_defaults(PgsFilterConfig *filter);

/* Parse a pattern with nparts parts; raises an error naming option */
extern PgsNamePattern *pgs_pattern_parse(const char *option, const char *text,
										 int nparts);

/* Parse an operation name ("insert", ...) into its bit; 0 if unknown */
extern int	pgs_operation_from_name(const char *name);

extern bool pgs_filter_keeps_table(const PgsFilterConfig *filter,
								   const char *nspname, const char *relname);
extern bool pgs_filter_keeps_column(const PgsFilterConfig *filter,
									const char *nspname, const char *relname,
									const char *attname);
extern bool pgs_filter_keeps_event(const PgsFilterConfig *filter,
								   PgsEventKind kind);

#endif							/* PGS_FILTER_H */
