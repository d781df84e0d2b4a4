/*-------------------------------------------------------------------------
 *
 * sink.h
 *		The interface every target implements.
 *
 * A worker hands each event to every target of its stream, marks the end
 * of each transaction, and confirms the slot only up to the end LSN that
 * every target reports as acknowledged (DESIGN.md §3).  Targets that
 * deliver synchronously acknowledge at end_transaction; asynchronous ones
 * report their progress from poll().
 *
 * Copyright (c) 2026, pgoutput_stream developers
 *
 * IDENTIFICATION
 *		src/sink.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGS_SINK_H
#define PGS_SINK_H

#include "access/xlogdefs.h"
#include "datatype/timestamp.h"
#include "lib/stringinfo.h"

#include "event.h"
#include "event_id.h"
#include "stream_config.h"

typedef struct PgsSink PgsSink;

/* What a target receives for one event */
typedef struct PgsOutput
{
	const PgsEvent *event;
	const char *subject;
	const char *payload;		/* NULL if the format emits nothing */
	int			payload_len;
	PgsEventId	id;				/* the event's identity (event_id.c) */
} PgsOutput;

struct PgsSink
{
	const char *name;
	const PgsStreamConfig *config;

	/*
	 * Whether the target delivers the payload in the stream's format (log,
	 * nats); such targets get only events that have one.  Others (feldera)
	 * render what they need from the event and get every event, with a
	 * NULL payload unless another target needed it.
	 */
	bool		uses_payload;

	/* progress, kept by the target for stream_status (main thread only) */
	int			target_index;	/* in pgs_target_names */
	uint64		sent;			/* messages, rows or log lines */
	uint64		reported;		/* part of sent already in stream_status */
	int			inflight;		/* sent, not yet acknowledged */
	TimestampTz last_ack_at;

	/* deliver one event (may queue it) */
	void		(*send) (PgsSink *sink, const PgsOutput *out);

	/* all events of the transaction ending at end_lsn have been sent */
	void		(*end_transaction) (PgsSink *sink, XLogRecPtr end_lsn);

	/* make progress on queued work without blocking */
	void		(*poll) (PgsSink *sink);

	/*
	 * End LSN of the newest transaction acknowledged together with all
	 * earlier ones, and whether nothing is waiting for acknowledgement.
	 */
	XLogRecPtr	(*acked_lsn) (PgsSink *sink);
	bool		(*idle) (PgsSink *sink);

	void		(*shutdown) (PgsSink *sink);

	/* optional: tell consumers the confirmed position while idle */
	void		(*heartbeat) (PgsSink *sink, XLogRecPtr confirmed);

	/*
	 * optional: the id of the initial snapshot's Commit, if that is the
	 * last event the target stored before this life; else NULL
	 */
	const PgsEventId *(*stored_snapshot) (PgsSink *sink);
};

extern PgsSink *pgs_sink_log_create(const PgsStreamConfig *config);
extern PgsSink *pgs_sink_nats_create(const PgsStreamConfig *config);
extern PgsSink *pgs_sink_feldera_create(const PgsStreamConfig *config);

#endif							/* PGS_SINK_H */
