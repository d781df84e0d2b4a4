/*-------------------------------------------------------------------------
 *
 * decoder.c
 *		In-process logical decoding of a stream's slot with pgoutput.
 *
 * The worker acquires its slot once and creates ONE decoding context for
 * its whole life, as the walsender does (walsender.c:
 * StartLogicalReplication): pgoutput keeps process-global caches, and every
 * new context would re-read WAL from the slot's restart_lsn.  WAL is read
 * with read_local_xlog_page, only up to the flush position taken by the
 * caller, so a read waits only for a record straddling that position.
 *
 * The context is created outside any transaction, in a long-lived memory
 * context; the reorder buffer opens (and aborts) its own transaction
 * around each replayed transaction, so the write callback may look up
 * catalogs as of the decoded WAL position.
 *
 * Copyright (c) 2026, pgoutput_stream developers
 *
 * IDENTIFICATION
 *		src/decoder.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlogutils.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "pgstat.h"
#include "replication/decode.h"
#include "replication/logical.h"
#include "replication/slot.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "compat.h"
#include "decoder.h"

/*
 * pgoutput options for a stream: protocol 1 (no streaming of in-progress
 * transactions, so every transaction is delivered whole at its commit),
 * the stream's publication, and logical decoding messages.
 */
List *
pgs_decoder_options(const PgsStreamConfig *config)
{
	List	   *options = NIL;

	options = lappend(options, makeDefElem("proto_version",
										   (Node *) makeString("1"), -1));
	options = lappend(options, makeDefElem("publication_names",
										   (Node *) makeString(pgs_publication_option(config->publication)), -1));
	options = lappend(options, makeDefElem("messages",
										   (Node *) makeString("true"), -1));
	return options;
}

/*
 * Whether a slot by this name exists; if so, *usable says whether it can be
 * a stream's (a logical pgoutput slot of this database) and *confirmed
 * (unless NULL) is its confirmed position.
 */
bool
pgs_slot_lookup(const char *slot_name, bool *usable, XLogRecPtr *confirmed,
				XLogRecPtr *restart)
{
	ReplicationSlot *slot;

	*usable = false;
	LWLockAcquire(ReplicationSlotControlLock, LW_SHARED);
	slot = SearchNamedReplicationSlot(slot_name, false);
	if (slot != NULL)
	{
		SpinLockAcquire(&slot->mutex);
		*usable = slot->data.database == MyDatabaseId &&
			strcmp(NameStr(slot->data.plugin), "pgoutput") == 0;
		if (confirmed != NULL)
			*confirmed = slot->data.confirmed_flush;
		if (restart != NULL)
			*restart = slot->data.restart_lsn;
		SpinLockRelease(&slot->mutex);
	}
	LWLockRelease(ReplicationSlotControlLock);
	return slot != NULL;
}

/*
 * Where a replay of the slot would start: its confirmed position, if the
 * slot exists, is a pgoutput slot of this database and still has its WAL
 * (not invalidated); else Invalid.
 */
XLogRecPtr
pgs_slot_replay_start(const char *slot_name)
{
	bool		usable;
	XLogRecPtr	confirmed;
	XLogRecPtr	restart;

	if (!pgs_slot_lookup(slot_name, &usable, &confirmed, &restart) || !usable ||
		XLogRecPtrIsInvalid(restart))
		return InvalidXLogRecPtr;
	return confirmed;
}

/*
 * Whether the stream's slot exists.  An existing slot must be a pgoutput
 * slot of this database.
 *
 * A missing slot is not created here: a slot made now would start at the
 * current position, and everything committed since the stream's slot was
 * lost would be skipped without a word.  The caller fails the stream.
 */
bool
pgs_decoder_slot_exists(const PgsStreamConfig *config)
{
	bool		usable;

	if (!pgs_slot_lookup(config->slot_name, &usable, NULL, NULL))
		return false;
	if (!usable)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("replication slot \"%s\" cannot be used by stream \"%s\"",
						config->slot_name, config->name),
				 errdetail("The slot must be a logical slot of this database using the plugin \"pgoutput\".")));
	return true;
}

/*
 * Wait until no other process holds the slot: a worker that just stopped
 * may still be releasing it.  Gives up after 30 seconds; the acquisition
 * that follows then reports who holds the slot.
 */
void
pgs_decoder_wait_for_slot(const char *slot_name)
{
	int			waited_ms = 0;

	while (waited_ms < 30000)
	{
		ReplicationSlot *slot;
		pid_t		active_pid = 0;

		LWLockAcquire(ReplicationSlotControlLock, LW_SHARED);
		slot = SearchNamedReplicationSlot(slot_name, false);
		if (slot != NULL)
		{
			SpinLockAcquire(&slot->mutex);
			active_pid = slot->active_pid;
			SpinLockRelease(&slot->mutex);
		}
		LWLockRelease(ReplicationSlotControlLock);
		if (active_pid == 0)
			return;

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 50, PGS_WAIT_HANDOVER);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		waited_ms += 50;
	}
}

static void
pgs_prepare_write(LogicalDecodingContext *ctx,
				  XLogRecPtr lsn pg_attribute_unused(),
				  TransactionId xid pg_attribute_unused(),
				  bool last_write pg_attribute_unused())
{
	resetStringInfo(ctx->out);
}

/*
 * pgoutput wrote one message: read it into events, which go straight to
 * the callback (and from there to the targets).
 */
static void
pgs_write(LogicalDecodingContext *ctx, XLogRecPtr lsn, TransactionId xid,
		  bool last_write pg_attribute_unused())
{
	PgsDecoder *decoder = (PgsDecoder *) ctx->output_writer_private;
	MemoryContext old;

	old = MemoryContextSwitchTo(decoder->message_cxt);
	pgs_proto_read(decoder->proto, lsn, xid, ctx->out->data, ctx->out->len);
	MemoryContextSwitchTo(old);
	MemoryContextReset(decoder->message_cxt);

	/*
	 * pgoutput wrote the message into the decoding context's buffer, which
	 * it only appends to after pgs_prepare_write(): the buffer of a huge
	 * row need not be kept until the next one.
	 */
	pgs_buffer_trim(ctx->out);
}

/*
 * Acquire the stream's slot and create the decoding context.  Must be
 * called outside a transaction, in a memory context that lives as long as
 * the worker.  Returns NULL if the slot was invalidated (its WAL removed):
 * no restart can fix that.
 */
PgsDecoder *
pgs_decoder_start(const PgsStreamConfig *config, PgsEventCallback callback,
				  void *arg)
{
	PgsDecoder *decoder = palloc0(sizeof(PgsDecoder));

	pgs_slot_acquire(config->slot_name);
	if (pgs_slot_is_invalidated(MyReplicationSlot))
	{
		ReplicationSlotRelease();
		return NULL;
	}

	decoder->proto = pgs_proto_create(CurrentMemoryContext, &config->filter,
									  callback, arg);
	decoder->message_cxt = AllocSetContextCreate(CurrentMemoryContext,
												 "pgoutput_stream message",
												 ALLOCSET_DEFAULT_SIZES);
	decoder->ctx = CreateDecodingContext(InvalidXLogRecPtr,
										 pgs_decoder_options(config),
										 false,
										 XL_ROUTINE(.page_read = read_local_xlog_page,
													.segment_open = wal_segment_open,
													.segment_close = wal_segment_close),
										 pgs_prepare_write,
										 pgs_write,
										 NULL);
	decoder->ctx->output_writer_private = decoder;

	/* Decoding always restarts at restart_lsn; pgoutput skips what was confirmed */
	XLogBeginRead(decoder->ctx->reader, MyReplicationSlot->data.restart_lsn);

	/* Caches built before decoding started must not be used by it */
	InvalidateSystemCaches();

	return decoder;
}

/*
 * Decode WAL up to upto, or at most max_records records.  Returns true if
 * upto was reached.  Every transaction that commits in the decoded WAL has
 * been handed to the callback when this returns.
 */
bool
pgs_decoder_read(PgsDecoder *decoder, XLogRecPtr upto, int max_records)
{
	XLogReaderState *reader = decoder->ctx->reader;
	int			nrecords = 0;

	while (reader->EndRecPtr < upto)
	{
		XLogRecord *record;
		char	   *errm = NULL;

		record = XLogReadRecord(reader, &errm);
		if (errm)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("could not read WAL at %X/%X: %s",
							LSN_FORMAT_ARGS(reader->EndRecPtr), errm)));
		if (record != NULL)
			LogicalDecodingProcessRecord(decoder->ctx, reader);

		CHECK_FOR_INTERRUPTS();
		if (++nrecords >= max_records)
			return reader->EndRecPtr >= upto;
	}
	return true;
}

/* End of the last WAL record decoded */
XLogRecPtr
pgs_decoder_position(PgsDecoder *decoder)
{
	return decoder->ctx->reader->EndRecPtr;
}

/* The slot's confirmed position */
XLogRecPtr
pgs_decoder_confirmed(void)
{
	XLogRecPtr	result;

	SpinLockAcquire(&MyReplicationSlot->mutex);
	result = MyReplicationSlot->data.confirmed_flush;
	SpinLockRelease(&MyReplicationSlot->mutex);
	return result;
}

/*
 * Confirm the slot up to lsn: everything before it has been delivered.
 * Never moves backwards.  The slot is marked dirty so that the next
 * checkpoint or pgs_decoder_save() persists the new position.
 */
void
pgs_decoder_confirm(XLogRecPtr lsn)
{
	if (XLogRecPtrIsInvalid(lsn) || lsn <= pgs_decoder_confirmed())
		return;
	LogicalConfirmReceivedLocation(lsn);
	ReplicationSlotMarkDirty();
}

/* Write the slot's state to disk, bounding the replay after a crash */
void
pgs_decoder_save(void)
{
	ReplicationSlotSave();
}
