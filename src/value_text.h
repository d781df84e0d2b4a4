/*-------------------------------------------------------------------------
 *
 * value_text.h
 *		Reading the structure of a value from its PostgreSQL text form.
 *
 * The renderers get every value as the text its type's output function
 * wrote (pgoutput and the snapshot read both call the output function).
 * Arrays and composites are taken apart here, by the extension's own
 * parsing of that text, never by a type's input function: array_in,
 * record_in and domain_in can run code that a table owner wrote (domain
 * CHECK constraints), and the worker runs as a superuser.  See "Trust
 * boundary" in docs/reliability.md.
 *
 * Copyright (c) 2026, pgoutput_stream developers
 *
 * IDENTIFICATION
 *		src/value_text.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGS_VALUE_TEXT_H
#define PGS_VALUE_TEXT_H

#include "lib/stringinfo.h"

/* Append one non-NULL element, given as its own type's output text */
typedef void (*PgsArrayElementFn) (StringInfo buf, const char *text, void *arg);

/*
 * Append the array written by array_out as text, with delimiter delim, as
 * a JSON array: dimensions nested, lower bounds dropped, NULL elements as
 * null, every other element appended by element().  Returns false, with
 * buf as it was, if text is not in array_out's form.
 */
extern bool pgs_array_text_to_json(StringInfo buf, const char *text, char delim,
								   PgsArrayElementFn element, void *arg);

/*
 * Likewise for int2vector and oidvector, whose output separates the
 * elements by single spaces and has no braces.
 */
extern bool pgs_vector_text_to_json(StringInfo buf, const char *text,
									PgsArrayElementFn element, void *arg);

/*
 * Split the text record_out wrote for a composite value of nfields fields
 * into fields[0..nfields): each palloc'd, or NULL for a NULL field.
 * Returns false if text is not in record_out's form or has another number
 * of fields.
 */
extern bool pgs_record_text_split(const char *text, int nfields, char **fields);

#endif							/* PGS_VALUE_TEXT_H */
