/*-------------------------------------------------------------------------
 *
 * sink_log.c
 *		The "log" target: every event written to the server log.
 *
 * The in-server counterpart of the original tool's stdout target.  Each
 * event becomes one LOG message "stream "NAME" event SUBJECT: PAYLOAD".
 * Writing to the log is synchronous, so a transaction is acknowledged as
 * soon as its last event is written.
 *
 * Copyright (c) 2026, pgoutput_stream developers
 *
 * IDENTIFICATION
 *		src/sink_log.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/timestamp.h"

#include "sink.h"

typedef struct PgsLogSink
{
	PgsSink		base;
	XLogRecPtr	acked;
} PgsLogSink;

static void
log_send(PgsSink *sink, const PgsOutput *out)
{
	sink->sent++;
	ereport(LOG,
			(errmsg("stream \"%s\" event %s: %s",
					sink->config->name, out->subject, out->payload),
			 errhidestmt(true),
			 errhidecontext(true)));
}

static void
log_end_transaction(PgsSink *sink, XLogRecPtr end_lsn)
{
	((PgsLogSink *) sink)->acked = end_lsn;
	sink->last_ack_at = GetCurrentTimestamp();
}

static void
log_poll(PgsSink *sink pg_attribute_unused())
{
}

static XLogRecPtr
log_acked_lsn(PgsSink *sink)
{
	return ((PgsLogSink *) sink)->acked;
}

static bool
log_idle(PgsSink *sink pg_attribute_unused())
{
	return true;
}

static void
log_shutdown(PgsSink *sink pg_attribute_unused())
{
}

/*
 * Create the target.  Allocated in the caller's (long-lived) context.
 */
PgsSink *
pgs_sink_log_create(const PgsStreamConfig *config)
{
	PgsLogSink *sink = palloc0(sizeof(PgsLogSink));

	sink->base.name = "log";
	sink->base.config = config;
	sink->base.uses_payload = true;
	sink->base.target_index = 0;
	sink->base.send = log_send;
	sink->base.end_transaction = log_end_transaction;
	sink->base.poll = log_poll;
	sink->base.acked_lsn = log_acked_lsn;
	sink->base.idle = log_idle;
	sink->base.shutdown = log_shutdown;
	sink->acked = InvalidXLogRecPtr;
	return &sink->base;
}
