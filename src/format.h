/*-------------------------------------------------------------------------
 *
 * format.h
 *		Turning change events into subjects and payloads.
 *
 * Copyright (c) 2026, pgoutput_stream developers
 *
 * IDENTIFICATION
 *		src/format.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGS_FORMAT_H
#define PGS_FORMAT_H

#include "lib/stringinfo.h"

#include "event.h"

typedef enum PgsFormat
{
	PGS_FORMAT_JSON,
	PGS_FORMAT_JSON_PRETTY,
	PGS_FORMAT_TEXT,
	PGS_FORMAT_DEBEZIUM,		/* Debezium PostgreSQL connector envelope */
	PGS_FORMAT_FELDERA			/* Feldera insert_delete rows */
} PgsFormat;

typedef enum PgsValueMode
{
	PGS_VALUES_TYPED,			/* numbers, booleans, json and arrays as JSON */
	PGS_VALUES_TEXT				/* every value as its PostgreSQL text form */
} PgsValueMode;

/* Per-transaction counts the debezium format keeps (format_debezium.c) */
typedef struct PgsDebeziumState PgsDebeziumState;

typedef struct PgsFormatOptions
{
	PgsFormat	format;
	PgsValueMode value_mode;
	const char *subject_prefix; /* first subject token(s), e.g. "postgres" */
	bool		transaction_events; /* Begin/Commit (with debezium: its
									 * transaction metadata) */
	bool		relation_events;	/* Relation events */
	const char *stream_name;	/* for formats that name their source */
	const char *database;		/* likewise: the stream's database */
	bool		debezium_feldera;	/* debezium_values "feldera" */
	PgsDebeziumState *debezium; /* debezium only: per-transaction counts */
} PgsFormatOptions;

/* Name lookups for stream options; return false if the name is unknown */
extern bool pgs_format_from_name(const char *name, PgsFormat *format);
extern const char *pgs_format_name(PgsFormat format);
extern bool pgs_value_mode_from_name(const char *name, PgsValueMode *mode);

/*
 * Append the subject of ev to buf (NATS subject syntax, names escaped).
 */
extern void pgs_format_subject(StringInfo buf, const PgsFormatOptions *opts,
							   const PgsEvent *ev);

/*
 * Append the payload of ev to buf, UTF-8 encoded.  Returns false if the
 * format emits nothing for this event (buf left unchanged).
 */
extern bool pgs_format_payload(StringInfo buf, const PgsFormatOptions *opts,
							   const PgsEvent *ev);

/*
 * Append a row in Feldera's JSON encodings; an unchanged TOASTed value is
 * taken from old (old_is_key: key columns only), or raises an error.
 */
extern void pgs_feldera_append_row(StringInfo buf, const PgsRelation *rel,
								   const LogicalRepTupleData *tuple,
								   const LogicalRepTupleData *old,
								   bool old_is_key, bool key_only);

/*
 * Text in the database encoding as UTF-8, with U+FFFD for what cannot be
 * converted (see format.c); _prepare looks the conversion up, in a
 * transaction, before the first use outside one.
 */
extern char *pgs_server_to_utf8(const char *src, int len, bool *lossless);
extern void pgs_server_to_utf8_prepare(void);

/* State the debezium format keeps per stream; see format_debezium.c */
extern PgsDebeziumState *pgs_debezium_state_create(void);

/*
 * Buffers that live as long as a worker (payloads, encoded messages,
 * request bodies) keep at most this much memory between uses: a huge row
 * must not pin its size for the rest of the worker's life.
 */
#define PGS_BUFFER_KEEP_BYTES	(1024 * 1024)

extern void pgs_buffer_trim(StringInfo buf);

/* Append name to buf as one NATS subject token (escaping rule in docs) */
extern void pgs_subject_append_token(StringInfo buf, const char *name);

#endif							/* PGS_FORMAT_H */
