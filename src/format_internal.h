/*-------------------------------------------------------------------------
 *
 * format_internal.h
 *		Payload renderers shared by the format modules; not for other code.
 *
 * format.c dispatches on the stream's format to one of these renderers.
 * A renderer appends the payload to buf in the *database* encoding;
 * pgs_format_payload converts what was appended to UTF-8 afterwards, so the
 * renderers never have to care about encodings.
 *
 * Copyright (c) 2026, pgoutput_stream developers
 *
 * IDENTIFICATION
 *		src/format_internal.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGS_FORMAT_INTERNAL_H
#define PGS_FORMAT_INTERNAL_H

#include "fmgr.h"
#include "lib/stringinfo.h"

#include "event.h"
#include "format.h"
#include "value_text.h"

/*
 * How a column type's text form becomes JSON in typed value mode.  This
 * follows json_categorize_type() in utils/adt/json.c, which is static in
 * the releases we support, except that a cast to json is never looked for:
 * such a cast is a function a type's owner wrote (see value_text.h).
 * DATETIME and COMPOSITE differ from STRING only inside arrays and
 * composites, where they are written the way array_to_json() writes them.
 */
typedef enum PgsJsonCategory
{
	PGS_JSON_STRING,			/* anything else: a JSON string */
	PGS_JSON_BOOL,				/* 't' / 'f' become true / false */
	PGS_JSON_NUMBER,			/* the text itself, if it is a JSON number */
	PGS_JSON_RAW,				/* json, jsonb: already JSON */
	PGS_JSON_ARRAY,				/* a JSON array of its elements */
	PGS_JSON_DATETIME,			/* date, timestamp, timestamptz */
	PGS_JSON_COMPOSITE			/* a JSON object of its fields */
} PgsJsonCategory;

/*
 * What the renderers need to know about a column type, looked up once per
 * type: catalog lookups would otherwise run for every value.  Nothing here
 * is a function to call: values are rendered from their text alone.
 */
typedef struct PgsTypeCacheEntry
{
	Oid			typid;			/* hash key: the column's type, maybe a
								 * domain */
	Oid			base;			/* domains resolved */
	PgsJsonCategory category;
	/* PGS_JSON_ARRAY only: */
	Oid			elemtype;		/* the element type, maybe a domain */
	Oid			elembase;		/* the element type with domains resolved */
	char		elemdelim;		/* what array_out separates elements with */
	bool		is_vector;		/* int2vector, oidvector: space-separated */
} PgsTypeCacheEntry;

/* The cached entry of a type; needs a transaction on first use */
extern PgsTypeCacheEntry *pgs_type_cache_lookup(Oid typid);

/*
 * Append an array value, given as its text, as a JSON array of its
 * elements, each non-NULL one appended by element() from its own text
 * (see value_text.h).  Text that is not array_out's is appended as a JSON
 * string instead.
 */
extern void pgs_append_json_array(StringInfo buf, PgsTypeCacheEntry *type,
								  const char *text, PgsArrayElementFn element,
								  void *arg);

/*
 * The value of column i of old, for a column whose new value is an
 * unchanged TOASTed one, or NULL if old does not have it (format.c).
 */
extern const StringInfoData *pgs_unchanged_from_old(const PgsRelation *rel, int i,
													const LogicalRepTupleData *old,
													bool old_is_key);

/*
 * Each renderer appends the payload of ev to buf and returns true, or
 * returns false (and may leave partial output, which the caller discards)
 * when the format has nothing to say about this kind of event.
 */
extern bool pgs_render_json(StringInfo buf, const PgsFormatOptions *opts,
							const PgsEvent *ev);
extern bool pgs_render_json_pretty(StringInfo buf, const PgsFormatOptions *opts,
								   const PgsEvent *ev);
extern bool pgs_render_text(StringInfo buf, const PgsFormatOptions *opts,
							const PgsEvent *ev);

extern bool pgs_render_debezium(StringInfo buf, const PgsFormatOptions *opts,
								const PgsEvent *ev);
extern bool pgs_render_feldera(StringInfo buf, const PgsFormatOptions *opts,
							   const PgsEvent *ev);

#endif							/* PGS_FORMAT_INTERNAL_H */
