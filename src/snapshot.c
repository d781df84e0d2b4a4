/*-------------------------------------------------------------------------
 *
 * snapshot.c
 *		A stream's initial snapshot: the existing rows before the changes.
 *
 * A stream created with snapshot => true has no slot until its worker
 * starts.  The worker then does what the walsender does for
 * CREATE_REPLICATION_SLOT ... (SNAPSHOT 'use'): in one REPEATABLE READ
 * transaction it creates the slot, builds the decoding context with a full
 * snapshot, and makes the snapshot built at the slot's consistent point the
 * transaction's snapshot.  Every row that snapshot sees is sent as a
 * snapshot read; every change after it comes from the slot.  No change is
 * missed and none is sent twice, because both sides start at the same
 * point.
 *
 * The rows go out as one transaction whose commit LSN is the slot's start,
 * through the same targets as changes, and tables are read through a
 * cursor in batches, so memory does not grow with table size.  The
 * decoding context is created inside the transaction, so the worker's
 * transaction keeps its xmin and protects the rows it reads (a context
 * created outside a transaction would set PROC_IN_LOGICAL_DECODING, which
 * makes vacuum ignore our xmin).
 *
 * The slot is made persistent at once and is not confirmed past its start
 * until every target acknowledged the snapshot.  If the worker stops or
 * dies before, the next worker finds the slot and takes the snapshot again
 * with a fresh REPEATABLE READ snapshot, then delivers every change since
 * the slot's start, including changes that the fresh snapshot contains.
 * The first attempt is exact; a later one is convergent: a consumer that
 * applies events by key ends with the tables' rows (docs/snapshot.md).
 * Each attempt numbers its events from (attempt - 1) << 32, so that NATS
 * message ids of different attempts never collide.
 *
 * Copyright (c) 2026, pgoutput_stream developers
 *
 * IDENTIFICATION
 *		src/snapshot.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "access/xact.h"
#include "access/xlogutils.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "replication/logical.h"
#include "replication/slot.h"
#include "replication/snapbuild.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/snapmgr.h"

#include "compat.h"
#include "decoder.h"
#include "filter.h"
#include "snapshot.h"
#include "worker.h"

/* Rows fetched from a table's cursor at a time */
#define SNAPSHOT_BATCH_ROWS	1000

/* A published table, as pg_publication_tables lists it */
typedef struct SnapshotTable
{
	Oid			relid;
	char	   *nspname;
	char	   *relname;
	List	   *columns;		/* column list (names), NIL: all columns */
	char	   *rowfilter;		/* publication's WHERE clause, or NULL */
} SnapshotTable;

static List *publication_tables(const PgsStreamConfig *config);
static PgsRelation *describe_table(const SnapshotTable *table,
								   const PgsFilterConfig *filter);
static uint64 copy_table(const SnapshotTable *table, const PgsRelation *rel,
						 XLogRecPtr start_lsn, TimestampTz snapshot_time,
						 const PgsSnapshotHooks *hooks);
static void set_progress(PgsStreamSlot *entry, int tables_total,
						 int tables_done, uint64 rows);
static void stop_if_requested(const PgsSnapshotHooks *hooks);
static int	begin_attempt(const PgsStreamConfig *config);
static XLogRecPtr existing_slot_start(const PgsStreamConfig *config);

void
pgs_snapshot_take(const PgsStreamConfig *config, const PgsSnapshotHooks *hooks)
{
	XLogRecPtr	start_lsn;
	TimestampTz snapshot_time;
	int			attempt;
	List	   *tables;
	ListCell   *lc;
	PgsEvent	ev;
	int			done = 0;
	uint64		rows = 0;

	/* a slot that cannot be ours fails the stream before it counts */
	start_lsn = existing_slot_start(config);
	attempt = begin_attempt(config);

	StartTransactionCommand();
	/* the snapshot must be this transaction's first, and stay */
	XactIsoLevel = XACT_REPEATABLE_READ;
	if (XLogRecPtrIsInvalid(start_lsn))
	{
		LogicalDecodingContext *ctx;
		Snapshot	snap;

		/*
		 * The slot is made here, and the snapshot built with it becomes the
		 * transaction's: the rows and the changes meet exactly.  The slot is
		 * made persistent at once, so that an attempt that fails keeps the
		 * slot's start for the next one (see the file header).
		 */
		CheckLogicalDecodingRequirements();
		pgs_slot_create_ephemeral(config->slot_name);
		ctx = CreateInitDecodingContext("pgoutput", NIL, true, InvalidXLogRecPtr,
										XL_ROUTINE(.page_read = read_local_xlog_page,
												   .segment_open = wal_segment_open,
												   .segment_close = wal_segment_close),
										NULL, NULL, NULL);
		DecodingContextFindStartpoint(ctx);
		snap = SnapBuildInitialSnapshot(ctx->snapshot_builder);
		RestoreTransactionSnapshot(snap, MyProc);
		start_lsn = MyReplicationSlot->data.confirmed_flush;
		FreeDecodingContext(ctx);
		ReplicationSlotPersist();
		ReplicationSlotRelease();
		ereport(LOG,
				(errmsg("stream \"%s\" takes its initial snapshot at %X/%X",
						config->name, LSN_FORMAT_ARGS(start_lsn))));
	}
	else if (attempt > 1)
		ereport(LOG,
				(errmsg("stream \"%s\" takes its initial snapshot again (attempt %d); the changes since %X/%X follow it",
						config->name, attempt, LSN_FORMAT_ARGS(start_lsn))));
	else
		ereport(LOG,
				(errmsg("stream \"%s\" takes its initial snapshot from the existing replication slot \"%s\"; the changes since %X/%X follow it",
						config->name, config->slot_name, LSN_FORMAT_ARGS(start_lsn))));
	snapshot_time = GetCurrentTimestamp();

	PushActiveSnapshot(GetTransactionSnapshot());
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	tables = publication_tables(config);
	set_progress(hooks->entry, list_length(tables), 0, 0);

	/*
	 * One transaction, committed at the slot's start.  Each attempt numbers
	 * its events after those of the earlier ones, so that targets that
	 * recognise events they stored before (NATS message ids) do not take a
	 * row of this attempt for one of an earlier attempt.
	 */
	memset(&ev, 0, sizeof(ev));
	ev.kind = PGS_EVENT_BEGIN;
	ev.seq_base = (int64) (attempt - 1) << 32;
	ev.lsn = start_lsn;
	ev.final_lsn = start_lsn;
	ev.commit_time = snapshot_time;
	hooks->emit(&ev, hooks->emit_arg);

	foreach(lc, tables)
	{
		SnapshotTable *table = (SnapshotTable *) lfirst(lc);
		PgsRelation *rel = describe_table(table, &config->filter);

		if (rel != NULL)
			rows += copy_table(table, rel, start_lsn, snapshot_time, hooks);
		set_progress(hooks->entry, list_length(tables), ++done, rows);
	}

	/* a snapshot whose Commit was sent must not be abandoned: last chance */
	stop_if_requested(hooks);

	memset(&ev, 0, sizeof(ev));
	ev.kind = PGS_EVENT_COMMIT;
	ev.lsn = start_lsn;
	ev.final_lsn = start_lsn;
	ev.end_lsn = start_lsn;
	ev.commit_time = snapshot_time;
	hooks->emit(&ev, hooks->emit_arg);

	hooks->wait_delivered();

	/* delivered */
	{
		Oid			types[1] = {INT4OID};
		Datum		values[1] = {Int32GetDatum(config->id)};

		if (SPI_execute_with_args("UPDATE pgoutput_stream.streams SET snapshot = 'done' WHERE id = $1",
								  1, types, values, NULL, false, 0) != SPI_OK_UPDATE)
			elog(ERROR, "could not record the snapshot of stream \"%s\"", config->name);
	}
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();

	ereport(LOG,
			(errmsg("stream \"%s\" sent its initial snapshot: " UINT64_FORMAT " rows of %d tables",
					config->name, rows, list_length(tables))));
}

/*
 * Count an attempt at the snapshot, in its own transaction so that the
 * count survives a crash; returns this attempt's number, from 1.
 */
static int
begin_attempt(const PgsStreamConfig *config)
{
	Oid			types[1] = {INT4OID};
	Datum		values[1] = {Int32GetDatum(config->id)};
	bool		isnull;
	int			attempt;

	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("UPDATE pgoutput_stream.streams"
							  " SET snapshot_attempts = snapshot_attempts + 1"
							  " WHERE id = $1 RETURNING snapshot_attempts",
							  1, types, values, NULL, false, 0) != SPI_OK_UPDATE_RETURNING ||
		SPI_processed != 1)
		elog(ERROR, "could not count the snapshot of stream \"%s\"", config->name);
	attempt = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0],
										  SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	return attempt;
}

/*
 * The start of the stream's slot if it exists (an earlier attempt made
 * it), else InvalidXLogRecPtr.  Its start has not moved: nothing is
 * confirmed before the snapshot is delivered.  A slot of another kind
 * with the stream's name is an error, never dropped.
 */
static XLogRecPtr
existing_slot_start(const PgsStreamConfig *config)
{
	XLogRecPtr	start = InvalidXLogRecPtr;
	bool		usable;

	if (pgs_slot_lookup(config->slot_name, &usable, &start) && !usable)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("replication slot \"%s\" cannot be used by stream \"%s\"",
						config->slot_name, config->name),
				 errdetail("The slot must be a logical slot of this database using the plugin \"pgoutput\".")));
	return start;
}

/*
 * The tables the publication publishes and the stream's filters keep, with
 * their column lists and row filters (PostgreSQL 15 and later).
 */
static List *
publication_tables(const PgsStreamConfig *config)
{
	List	   *tables = NIL;
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(config->publication)};
	MemoryContext caller = CurrentMemoryContext;
	uint64		i;

	if (SPI_execute_with_args("SELECT c.oid, t.schemaname::text, t.tablename::text,"
#if PG_VERSION_NUM >= 150000
							  " t.attnames::text[], t.rowfilter"
#else
							  " NULL::text[], NULL::text"
#endif
							  " FROM pg_catalog.pg_publication_tables t"
							  " JOIN pg_catalog.pg_namespace n ON n.nspname = t.schemaname"
							  " JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = t.tablename"
							  " WHERE t.pubname = $1 ORDER BY 2, 3",
							  1, types, values, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not list the tables of publication \"%s\"",
			 config->publication);

	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		MemoryContext spi = MemoryContextSwitchTo(caller);
		SnapshotTable *table = palloc0(sizeof(SnapshotTable));
		bool		isnull;
		Datum		attnames;

		table->relid = DatumGetObjectId(SPI_getbinval(tuple, desc, 1, &isnull));
		table->nspname = SPI_getvalue(tuple, desc, 2);
		table->relname = SPI_getvalue(tuple, desc, 3);
		attnames = SPI_getbinval(tuple, desc, 4, &isnull);
		if (!isnull)
		{
			Datum	   *elems;
			int			nelems;
			int			e;

			deconstruct_array(DatumGetArrayTypeP(attnames), TEXTOID, -1, false,
							  TYPALIGN_INT, &elems, NULL, &nelems);
			for (e = 0; e < nelems; e++)
				table->columns = lappend(table->columns, TextDatumGetCString(elems[e]));
		}
		table->rowfilter = SPI_getvalue(tuple, desc, 5);
		MemoryContextSwitchTo(spi);

		/* the extension's own table is never streamed */
		if (strcmp(table->nspname, "pgoutput_stream") == 0 ||
			!pgs_filter_keeps_table(&config->filter, table->nspname, table->relname))
			continue;
		MemoryContextSwitchTo(caller);
		tables = lappend(tables, table);
		MemoryContextSwitchTo(spi);
	}
	return tables;
}

/*
 * The table as pgoutput would announce it: published columns in attnum
 * order (no dropped or generated ones, only those of the column list),
 * replica identity columns as keys (all of them under REPLICA IDENTITY
 * FULL), then the stream's column filter.  See logicalrep_write_attrs().
 *
 * NULL if the relation is no longer a table.  Its owner could have turned
 * it into a view in PostgreSQL 15 (CREATE RULE "_RETURN" on an empty
 * table), and reading a view runs the view's query, with functions of the
 * owner's choosing, as this superuser.  The lock taken here keeps it a
 * table until the snapshot's transaction ends.
 */
static PgsRelation *
describe_table(const SnapshotTable *table, const PgsFilterConfig *filter)
{
	Relation	relation = relation_open(table->relid, AccessShareLock);
	TupleDesc	desc = RelationGetDescr(relation);
	Bitmapset  *idattrs = NULL;
	PgsRelation *rel;
	int			i;

	if (relation->rd_rel->relkind != RELKIND_RELATION &&
		relation->rd_rel->relkind != RELKIND_PARTITIONED_TABLE)
	{
		ereport(LOG,
				(errmsg("initial snapshot skips relation \"%s.%s\", which is not a table",
						table->nspname, table->relname)));
		relation_close(relation, NoLock);
		return NULL;
	}
	rel = palloc0(sizeof(PgsRelation));

	rel->relid = table->relid;
	rel->nspname = pstrdup(table->nspname);
	rel->relname = pstrdup(table->relname);
	rel->replident = relation->rd_rel->relreplident;
	rel->attnames = palloc(sizeof(char *) * Max(desc->natts, 1));
	rel->atttyps = palloc(sizeof(Oid) * Max(desc->natts, 1));
	if (rel->replident != REPLICA_IDENTITY_FULL)
		idattrs = RelationGetIdentityKeyBitmap(relation);

	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		char	   *name = NameStr(att->attname);
		ListCell   *lc;
		bool		listed = (table->columns == NIL);

		if (att->attisdropped || att->attgenerated)
			continue;
		foreach(lc, table->columns)
		{
			if (strcmp((char *) lfirst(lc), name) == 0)
				listed = true;
		}
		if (!listed ||
			!pgs_filter_keeps_column(filter, table->nspname, table->relname, name))
			continue;

		if (rel->replident == REPLICA_IDENTITY_FULL ||
			bms_is_member(att->attnum - FirstLowInvalidHeapAttributeNumber, idattrs))
			rel->attkeys = bms_add_member(rel->attkeys, rel->natts);
		rel->attnames[rel->natts] = pstrdup(name);
		rel->atttyps[rel->natts] = att->atttypid;
		rel->natts++;
	}

	/* the lock is kept until the snapshot's transaction ends */
	relation_close(relation, NoLock);
	return rel;
}

/*
 * Send every row of table that the snapshot sees as a snapshot read,
 * preceded by the table's Relation event.  Returns the number of rows.
 */
static uint64
copy_table(const SnapshotTable *table, const PgsRelation *rel,
		   XLogRecPtr start_lsn, TimestampTz snapshot_time,
		   const PgsSnapshotHooks *hooks)
{
	MemoryContext batch_cxt;
	MemoryContext old;
	StringInfoData query;
	Portal		portal;
	PgsEvent	ev;
	uint64		rows = 0;
	int			i;

	memset(&ev, 0, sizeof(ev));
	ev.kind = PGS_EVENT_RELATION;
	ev.lsn = start_lsn;
	ev.final_lsn = start_lsn;
	ev.commit_time = snapshot_time;
	ev.rel = unconstify(PgsRelation *, rel);
	hooks->emit(&ev, hooks->emit_arg);

	/* partitioned tables are read with their partitions, others alone */
	initStringInfo(&query);
	appendStringInfoString(&query, "SELECT ");
	for (i = 0; i < rel->natts; i++)
		appendStringInfo(&query, "%s%s", i > 0 ? ", " : "",
						 quote_identifier(rel->attnames[i]));
	if (rel->natts == 0)
		appendStringInfoString(&query, "NULL");
	appendStringInfo(&query, " FROM %s%s",
					 get_rel_relkind(table->relid) == RELKIND_PARTITIONED_TABLE ? "" : "ONLY ",
					 quote_qualified_identifier(rel->nspname, rel->relname));
	if (table->rowfilter != NULL)
		appendStringInfo(&query, " WHERE %s", table->rowfilter);

	portal = SPI_cursor_open_with_args(NULL, query.data, 0, NULL, NULL, NULL,
									   true, 0);
	batch_cxt = AllocSetContextCreate(CurrentMemoryContext,
									  "pgoutput_stream snapshot batch",
									  ALLOCSET_DEFAULT_SIZES);
	for (;;)
	{
		uint64		n;

		SPI_cursor_fetch(portal, true, SNAPSHOT_BATCH_ROWS);
		if (SPI_processed == 0)
			break;
		old = MemoryContextSwitchTo(batch_cxt);
		for (n = 0; n < SPI_processed; n++)
		{
			HeapTuple	tuple = SPI_tuptable->vals[n];
			LogicalRepTupleData newtup;

			newtup.ncols = rel->natts;
			newtup.colvalues = palloc0(sizeof(StringInfoData) * Max(rel->natts, 1));
			newtup.colstatus = palloc(sizeof(char) * Max(rel->natts, 1));
			for (i = 0; i < rel->natts; i++)
			{
				char	   *value = SPI_getvalue(tuple, SPI_tuptable->tupdesc, i + 1);

				if (value == NULL)
					newtup.colstatus[i] = LOGICALREP_COLUMN_NULL;
				else
				{
					newtup.colstatus[i] = LOGICALREP_COLUMN_TEXT;
					newtup.colvalues[i].data = value;
					newtup.colvalues[i].len = strlen(value);
					newtup.colvalues[i].maxlen = newtup.colvalues[i].len + 1;
				}
			}

			memset(&ev, 0, sizeof(ev));
			ev.kind = PGS_EVENT_INSERT;
			ev.snapshot = true;
			ev.lsn = start_lsn;
			ev.final_lsn = start_lsn;
			ev.commit_time = snapshot_time;
			ev.rel = unconstify(PgsRelation *, rel);
			ev.newtup = &newtup;
			hooks->emit(&ev, hooks->emit_arg);
			rows++;
		}
		MemoryContextSwitchTo(old);
		MemoryContextReset(batch_cxt);
		SPI_freetuptable(SPI_tuptable);
		set_progress(hooks->entry, -1, -1, hooks->entry->snapshot_rows + n);
		CHECK_FOR_INTERRUPTS();
		stop_if_requested(hooks);
	}
	SPI_cursor_close(portal);
	MemoryContextDelete(batch_cxt);
	return rows;
}

/*
 * A stop request (stop_stream(), drop_stream(), alter_stream()) ends the
 * worker between two batches: the snapshot is not delivered, and the next
 * worker takes it again, as after a failure.  Without this, the request
 * would wait for the whole snapshot to be read and sent, and drop_stream()
 * gives up after 60 s.
 */
static void
stop_if_requested(const PgsSnapshotHooks *hooks)
{
	if (!pgs_worker_stop_requested())
		return;
	ereport(LOG,
			(errmsg("stream \"%s\" stopped in the middle of its initial snapshot",
					hooks->entry->name)));
	proc_exit(0);
}

/* Publish the snapshot's progress; -1 leaves a counter as it is */
static void
set_progress(PgsStreamSlot *entry, int tables_total, int tables_done,
			 uint64 rows)
{
	SpinLockAcquire(&entry->mutex);
	if (tables_total >= 0)
		entry->snapshot_tables_total = tables_total;
	if (tables_done >= 0)
		entry->snapshot_tables_done = tables_done;
	entry->snapshot_rows = rows;
	SpinLockRelease(&entry->mutex);
}
