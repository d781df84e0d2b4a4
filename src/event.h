/*-------------------------------------------------------------------------
 *
 * event.h
 *		The change events a stream produces from pgoutput messages.
 *
 * The protocol reader (proto.c) turns each pgoutput message into zero or
 * more PgsEvents; the formatters (format*.c) turn an event into a subject
 * and a payload; the sinks deliver them.  An event only points at data
 * owned by the reader: it is valid until the next message is read.
 *
 * Copyright (c) 2026, pgoutput_stream developers
 *
 * IDENTIFICATION
 *		src/event.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGS_EVENT_H
#define PGS_EVENT_H

#include "access/xlogdefs.h"
#include "datatype/timestamp.h"
#include "nodes/bitmapset.h"
#include "replication/logicalproto.h"

typedef enum PgsEventKind
{
	PGS_EVENT_BEGIN,
	PGS_EVENT_COMMIT,
	PGS_EVENT_RELATION,
	PGS_EVENT_INSERT,
	PGS_EVENT_UPDATE,
	PGS_EVENT_DELETE,
	PGS_EVENT_TRUNCATE,
	PGS_EVENT_MESSAGE
} PgsEventKind;

/*
 * A relation as announced by pgoutput's 'R' message.  Columns are the
 * published ones, in table (attnum) order.  Lives in the reader's relation
 * cache until the next 'R' for the same relid replaces it.
 */
typedef struct PgsRelation
{
	Oid			relid;
	char	   *nspname;		/* "" from pgoutput is turned into
								 * "pg_catalog" */
	char	   *relname;
	char		replident;		/* 'd'efault, 'n'othing, 'f'ull, 'i'ndex */
	int			natts;
	char	  **attnames;
	Oid		   *atttyps;
	Bitmapset  *attkeys;		/* replica identity columns, by index */
} PgsRelation;

/*
 * One event.  Which fields are set depends on kind:
 *
 * BEGIN:	xid, final_lsn (LSN of the commit record), commit_time
 * COMMIT:	xid, final_lsn (commit record LSN), end_lsn (end of the commit
 *			record: what the slot is confirmed to), commit_time, txn_empty
 *			(no event of the transaction passed the filters, and no Begin
 *			was passed on either: formats write nothing, but targets still
 *			see the commit to move the slot on)
 * RELATION: rel
 * INSERT:	rel, newtup, snapshot (a row of the stream's initial snapshot,
 *			not a change: its "transaction" is the snapshot, with the slot's
 *			start as commit LSN and no xid)
 * UPDATE:	rel, newtup, oldtup (NULL when pgoutput sent no old tuple),
 *			old_is_key (old tuple is key-only: 'K' rather than 'O')
 * DELETE:	rel, oldtup, old_is_key
 * TRUNCATE: rel (one event per truncated relation), truncate_cascade,
 *			truncate_restart_seqs
 * MESSAGE: msg_transactional, msg_prefix, msg_content/msg_len
 *
 * Every event: position, its place in the transaction, and
 * snapshot_attempt, the attempt of the initial snapshot it belongs to (0
 * for a decoded change); with the commit LSN they make the event's
 * identity (event_id.c).  Positions are numbered before the stream's own
 * filters, so that they do not change with the stream's options.
 *
 * lsn is the LSN the decoder reported with the message (change LSN for
 * changes, commit end for COMMIT); xid is the transaction (Invalid for a
 * non-transactional message).  Tuple column status follows pgoutput:
 * 'n' NULL, 'u' unchanged TOASTed value (not sent), 't' text.
 */
typedef struct PgsEvent
{
	PgsEventKind kind;
	XLogRecPtr	lsn;
	TransactionId xid;
	XLogRecPtr	final_lsn;
	XLogRecPtr	end_lsn;
	TimestampTz commit_time;
	int64		position;
	int32		snapshot_attempt;
	bool		txn_empty;

	PgsRelation *rel;
	bool		snapshot;
	LogicalRepTupleData *oldtup;
	LogicalRepTupleData *newtup;
	bool		old_is_key;

	bool		truncate_cascade;
	bool		truncate_restart_seqs;

	bool		msg_transactional;
	const char *msg_prefix;
	const char *msg_content;
	Size		msg_len;
} PgsEvent;

extern const char *pgs_event_kind_name(PgsEventKind kind);

#endif							/* PGS_EVENT_H */
