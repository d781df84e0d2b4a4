/*-------------------------------------------------------------------------
 *
 * stream_config.h
 *		A stream's persistent configuration: validation and loading.
 *
 * Copyright (c) 2026, pgoutput_stream developers
 *
 * IDENTIFICATION
 *		src/stream_config.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGS_STREAM_CONFIG_H
#define PGS_STREAM_CONFIG_H

#include "utils/array.h"
#include "utils/jsonb.h"

#include "filter.h"
#include "format.h"

/* Longest stream name; leaves room for the "pgs_" slot name prefix */
#define PGS_MAX_STREAM_NAME	48

/* Targets, as bits */
#define PGS_TARGET_LOG		(1 << 0)
#define PGS_TARGET_NATS		(1 << 1)
#define PGS_TARGET_FELDERA	(1 << 2)

/* How PostgreSQL tables are named in the Feldera pipeline */
typedef enum PgsFelderaNaming
{
	PGS_FELDERA_SCHEMA_TABLE,	/* "schema_table", as the original tool */
	PGS_FELDERA_TABLE			/* the table name alone */
} PgsFelderaNaming;

typedef struct PgsFelderaConfig
{
	const char *url;			/* NULL: pgoutput_stream.feldera_url */
	const char *pipeline;		/* required for target feldera */
	PgsFelderaNaming naming;
	const char *table_map;		/* "schema.table=name,..." or NULL */
	const char *tables;			/* allow-list of Feldera names or NULL */
	bool		truncate_skip;	/* else a TRUNCATE fails the stream */
	int			max_rows;		/* rows per request */
	int			max_bytes;		/* bytes of rows held before a request */
	bool		wait_completion;	/* wait for /completion_status */
} PgsFelderaConfig;

/* Settings of the JetStream stream a nats target creates when missing */
typedef struct PgsNatsStreamConfig
{
	const char *url;			/* NULL: pgoutput_stream.nats_url */
	const char *stream;			/* JetStream stream name */
	bool		memory_storage;
	int64		max_msgs;		/* -1: unlimited */
	int64		max_bytes;		/* -1: unlimited */
	int64		max_age;		/* seconds, 0: unlimited */
	int64		replicas;
	int64		duplicate_window;	/* seconds, 0: server default */
	bool		shared;			/* nats_shared_stream: other writers are
								 * expected, publish unchained */
} PgsNatsStreamConfig;

typedef struct PgsStreamConfig
{
	int32		id;
	char	   *name;
	char	   *publication;
	char	   *slot_name;
	int			targets;		/* PGS_TARGET_* bits */
	PgsFormatOptions fmt;
	PgsFilterConfig filter;
	PgsNatsStreamConfig nats;
	PgsFelderaConfig feldera;
	int			heartbeat_interval;	/* seconds, 0: no heartbeats */
	bool		enabled;
	bool		snapshot_pending;	/* initial snapshot asked, not delivered */
} PgsStreamConfig;

extern void pgs_validate_stream_name(const char *name);
extern void pgs_validate_publication(const char *pubname);
extern int	pgs_parse_targets(ArrayType *targets);
extern PgsFormat pgs_parse_format(const char *name);
extern void pgs_apply_options(PgsStreamConfig *config, Jsonb *options);
extern void pgs_config_defaults(PgsStreamConfig *config);
extern void pgs_validate_target_options(const PgsStreamConfig *config);

extern PgsStreamConfig *pgs_config_load_by_id(int32 id);
extern PgsStreamConfig *pgs_config_load_by_name(const char *name);

extern char *pgs_publication_option(const char *pubname);

#endif							/* PGS_STREAM_CONFIG_H */
