/*-------------------------------------------------------------------------
 *
 * proto.h
 *		Reading pgoutput protocol messages into events.
 *
 * Copyright (c) 2026, pgoutput_stream developers
 *
 * IDENTIFICATION
 *		src/proto.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGS_PROTO_H
#define PGS_PROTO_H

#include "utils/hsearch.h"

#include "event.h"
#include "filter.h"

typedef void (*PgsEventCallback) (const PgsEvent *event, void *arg);

typedef struct PgsProtoState
{
	MemoryContext cache_cxt;	/* parent of the relation entries */
	HTAB	   *relations;		/* relid -> PgsRelationEntry */

	/* the transaction being read */
	TransactionId xid;
	XLogRecPtr	final_lsn;
	TimestampTz commit_time;
	XLogRecPtr	begin_lsn;		/* LSN the decoder reported with 'B' */
	bool		begin_pending;	/* Begin not passed on yet */
	int64		position;		/* of the transaction's last change so far,
								 * counted before the filters (event_id.c) */

	const PgsFilterConfig *filter;	/* the stream's, lives longer than us */
	PgsEventCallback callback;
	void	   *callback_arg;
} PgsProtoState;

extern PgsProtoState *pgs_proto_create(MemoryContext parent,
									   const PgsFilterConfig *filter,
									   PgsEventCallback callback, void *arg);
extern void pgs_proto_read(PgsProtoState *state, XLogRecPtr lsn,
						   TransactionId xid, const char *data, int len);

#endif							/* PGS_PROTO_H */
