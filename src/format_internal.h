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

#include "lib/stringinfo.h"

#include "event.h"
#include "format.h"

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

extern bool pgs_render_feldera(StringInfo buf, const PgsFormatOptions *opts,
							   const PgsEvent *ev);

#endif							/* PGS_FORMAT_INTERNAL_H */
