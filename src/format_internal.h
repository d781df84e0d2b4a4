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

/*
 * How a column type's text form becomes JSON in typed value mode.  This
 * mirrors json_categorize_type() in utils/adt/json.c, which is static in
 * the releases we support, reduced to the cases pgoutput's text form
 * allows us to handle without re-parsing every value.
 */
typedef enum PgsJsonCategory
{
	PGS_JSON_STRING,			/* anything else: a JSON string */
	PGS_JSON_BOOL,				/* 't' / 'f' become true / false */
	PGS_JSON_NUMBER,			/* the text itself, if it is a JSON number */
	PGS_JSON_RAW,				/* json, jsonb: already JSON */
	PGS_JSON_ARRAY				/* parsed, then array_to_json() */
} PgsJsonCategory;

/*
 * What the renderers need to know about a column type, looked up once per
 * type (the lookups run for every value otherwise).  For arrays the input
 * function is kept ready to call, with its fn_extra cache (array_in keeps
 * element type data there) in the cache's own context, and so is what it
 * takes to output the elements one by one.
 *
 * Array elements are not always parsed as their own type: the text was
 * written by the element type's output function, and reading it back with
 * its input function can fail (overloaded regproc names, an enum label
 * renamed or a domain constraint added since), which would stop a stream
 * for good.  So elements whose JSON is their text anyway are parsed as
 * text, and domains as their base type: elemtype is the type the elements
 * are parsed as (and output with elemoutput), elembase the base type of
 * the array's real element type, which decides how a value is encoded.
 */
typedef struct PgsTypeCacheEntry
{
	Oid			typid;			/* hash key: the column's type, maybe a
								 * domain */
	Oid			base;			/* domains resolved */
	PgsJsonCategory category;
	Oid			typioparam;		/* PGS_JSON_ARRAY only, as below */
	FmgrInfo	typinput;
	Oid			elemtype;
	Oid			elembase;
	int16		elemlen;
	bool		elembyval;
	char		elemalign;
	FmgrInfo	elemoutput;
} PgsTypeCacheEntry;

/* The cached entry of a type; needs a transaction on first use */
extern PgsTypeCacheEntry *pgs_type_cache_lookup(Oid typid);

/* Append an array as a JSON array, each non-NULL element by element() */
typedef void (*PgsArrayElementFn) (StringInfo buf, const char *text, void *arg);
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
