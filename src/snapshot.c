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
 * through the same targets as changes, and tables are read with sequential
 * scans, not queries (see copy_table), so memory does not grow with table
 * size.  The
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

#include "access/attmap.h"
#include "access/relation.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "access/xlogutils.h"
#include "catalog/pg_index.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "nodes/readfuncs.h"
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
#include "utils/syscache.h"

#include "compat.h"
#include "decoder.h"
#include "filter.h"
#include "snapshot.h"
#include "worker.h"

/* Rows read between two progress reports and checks for a stop request */
#define SNAPSHOT_BATCH_ROWS	1000
/* Memory the text of the rows sent may take before it is freed */
#define SNAPSHOT_ROW_BYTES	(8 * 1024 * 1024)

/*
 * A published table, as pg_get_publication_tables() lists it: by OID, with
 * the column list as attribute numbers and the row filter as the stored
 * expression, so that nothing is looked up again by name.  The relation is
 * locked from the moment it is listed until the transaction ends.
 */
typedef struct SnapshotTable
{
	Oid			relid;
	char	   *nspname;		/* from the locked relation */
	char	   *relname;
	Bitmapset  *columns;		/* column list (attnums), NULL: all columns */
	Expr	   *rowfilter;		/* publication's WHERE clause, or NULL */
	AttrNumber *attnums;		/* attnum of each column of the PgsRelation */
} SnapshotTable;

static List *publication_tables(const PgsStreamConfig *config);
static PgsRelation *describe_table(SnapshotTable *table,
								   const PgsFilterConfig *filter);
static SnapshotTable *listed_table(const PgsStreamConfig *config,
									HeapTuple tuple, TupleDesc desc);
static int	table_name_cmp(const ListCell *a, const ListCell *b);
static uint64 copy_table(const SnapshotTable *table, const PgsRelation *rel,
						 XLogRecPtr start_lsn, TimestampTz snapshot_time,
						 const PgsSnapshotHooks *hooks);
static bool row_passes_filter(ExprState *filter, ExprContext *econtext,
							  TupleTableSlot *rootslot, TupleTableSlot *slot,
							  const AttrMap *map);
static void row_to_text(LogicalRepTupleData *tuple, const AttrNumber *attnums,
						FmgrInfo *outputs, TupleTableSlot *slot,
						const AttrMap *map);
static void snapshot_event(PgsEvent *ev, PgsEventKind kind,
						   XLogRecPtr start_lsn, TimestampTz snapshot_time);
static void set_progress(PgsStreamSlot *entry, int tables_total,
						 int tables_done, uint64 rows);
static void stop_if_requested(const PgsSnapshotHooks *hooks);
static int	begin_attempt(const PgsStreamConfig *config);
static XLogRecPtr existing_slot_start(const PgsStreamConfig *config);

/* the identity of the snapshot's events (event_id.c) */
static int32 snapshot_attempt = 0;
static int64 snapshot_position = 0;	/* of the last row sent */

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
	 * One transaction, committed at the slot's start.  Its events belong to
	 * this attempt (event_id.c): a row of this attempt is never taken for
	 * one of an earlier attempt, nor for a change decoded at the slot's
	 * start.
	 */
	snapshot_attempt = attempt;
	snapshot_position = 0;
	snapshot_event(&ev, PGS_EVENT_BEGIN, start_lsn, snapshot_time);
	hooks->emit(&ev, hooks->emit_arg);

	foreach(lc, tables)
	{
		SnapshotTable *table = (SnapshotTable *) lfirst(lc);
		PgsRelation *rel = describe_table(table, &config->filter);

		rows += copy_table(table, rel, start_lsn, snapshot_time, hooks);
		set_progress(hooks->entry, list_length(tables), ++done, rows);
	}

	/* a snapshot whose Commit was sent must not be abandoned: last chance */
	stop_if_requested(hooks);

	snapshot_event(&ev, PGS_EVENT_COMMIT, start_lsn, snapshot_time);
	ev.end_lsn = start_lsn;
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
 * Record the snapshot as delivered without taking it, because a target
 * holds the Commit of its attempt number attempt, and that is the last
 * attempt begun (a later one would have been taken over an earlier
 * attempt's Commit only if its worker had not seen it).  Returns whether
 * it was recorded.
 */
bool
pgs_snapshot_record_delivered(const PgsStreamConfig *config, int32 attempt)
{
	Oid			types[2] = {INT4OID, INT4OID};
	Datum		values[2] = {Int32GetDatum(config->id), Int32GetDatum(attempt)};
	bool		recorded;

	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("UPDATE pgoutput_stream.streams SET snapshot = 'done'"
							  " WHERE id = $1 AND snapshot = 'pending' AND snapshot_attempts = $2",
							  2, types, values, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not record the snapshot of stream \"%s\"", config->name);
	recorded = SPI_processed == 1;
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	if (recorded)
		ereport(LOG,
				(errmsg("stream \"%s\" does not take its initial snapshot again: the target stored the Commit of attempt %d",
						config->name, attempt)));
	return recorded;
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

	if (pgs_slot_lookup(config->slot_name, &usable, &start, NULL) && !usable)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("replication slot \"%s\" cannot be used by stream \"%s\"",
						config->slot_name, config->name),
				 errdetail("The slot must be a logical slot of this database using the plugin \"pgoutput\".")));
	return start;
}

/*
 * The tables the publication publishes and the stream's filters keep, with
 * their column lists and row filters, in schema and table name order.
 *
 * Every table is locked here, by OID, and its names are taken from the
 * locked relation: a name looked up before the lock could by then belong
 * to another relation (a table renamed and a view created in its place).
 * A relation that is no longer a table is skipped: its owner could have
 * turned it into a view in PostgreSQL 15 (CREATE RULE "_RETURN" on an
 * empty table), and pgoutput publishes nothing of a view.
 */
static List *
publication_tables(const PgsStreamConfig *config)
{
	List	   *tables = NIL;
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(config->publication)};
	MemoryContext caller = CurrentMemoryContext;
	uint64		i;

	/* a built-in function: its relids, column lists and row filters */
	if (SPI_execute_with_args("SELECT relid, attrs, qual"
							  " FROM pg_catalog.pg_get_publication_tables($1)",
							  1, types, values, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not list the tables of publication \"%s\"",
			 config->publication);

	for (i = 0; i < SPI_processed; i++)
	{
		MemoryContext spi = MemoryContextSwitchTo(caller);
		SnapshotTable *table = listed_table(config, SPI_tuptable->vals[i],
											SPI_tuptable->tupdesc);

		if (table != NULL)
			tables = lappend(tables, table);
		MemoryContextSwitchTo(spi);
	}
	list_sort(tables, table_name_cmp);
	return tables;
}

/*
 * The table of one row of pg_get_publication_tables(), locked, or NULL if
 * the snapshot leaves it out: dropped since it was listed, no longer a
 * table, the extension's own, or not kept by the stream's filters.
 */
static SnapshotTable *
listed_table(const PgsStreamConfig *config, HeapTuple tuple, TupleDesc desc)
{
	SnapshotTable *table;
	Relation	relation;
	bool		isnull;
	Datum		attrs;
	Datum		qual;

	relation = try_relation_open(DatumGetObjectId(SPI_getbinval(tuple, desc, 1, &isnull)),
								 AccessShareLock);
	if (relation == NULL)
		return NULL;
	if (relation->rd_rel->relkind != RELKIND_RELATION &&
		relation->rd_rel->relkind != RELKIND_PARTITIONED_TABLE)
	{
		ereport(LOG,
				(errmsg("initial snapshot skips relation \"%s\", which is not a table",
						RelationGetRelationName(relation))));
		relation_close(relation, NoLock);
		return NULL;
	}

	table = palloc0(sizeof(SnapshotTable));
	table->relid = RelationGetRelid(relation);
	table->nspname = get_namespace_name(RelationGetNamespace(relation));
	table->relname = pstrdup(RelationGetRelationName(relation));
	/* the lock is kept until the snapshot's transaction ends */
	relation_close(relation, NoLock);

	/* the extension's own table is never streamed */
	if (strcmp(table->nspname, "pgoutput_stream") == 0 ||
		!pgs_filter_keeps_table(&config->filter, table->nspname, table->relname))
		return NULL;

	attrs = SPI_getbinval(tuple, desc, 2, &isnull);
	if (!isnull)
	{
		int2vector *attnums = (int2vector *) DatumGetPointer(attrs);
		int			a;

		for (a = 0; a < attnums->dim1; a++)
			table->columns = bms_add_member(table->columns, attnums->values[a]);
	}
	qual = SPI_getbinval(tuple, desc, 3, &isnull);
	if (!isnull)
		table->rowfilter = (Expr *) stringToNode(TextDatumGetCString(qual));
	return table;
}

/* Order of the tables in the snapshot: by schema name, then table name */
static int
table_name_cmp(const ListCell *a, const ListCell *b)
{
	const SnapshotTable *ta = (const SnapshotTable *) lfirst(a);
	const SnapshotTable *tb = (const SnapshotTable *) lfirst(b);
	int			cmp = strcmp(ta->nspname, tb->nspname);

	return cmp != 0 ? cmp : strcmp(ta->relname, tb->relname);
}

/*
 * The table as pgoutput would announce it: published columns in attnum
 * order (no dropped or generated ones, only those of the column list),
 * replica identity columns as keys (all of them under REPLICA IDENTITY
 * FULL), then the stream's column filter.  See logicalrep_write_attrs().
 * Also fills table->attnums, where each column is found in a row.
 *
 * The key columns are read from the replica identity index's pg_index row
 * (such an index has no expressions and no predicate), not with
 * RelationGetIdentityKeyBitmap(), which is meant for decoding only.
 */
static PgsRelation *
describe_table(SnapshotTable *table, const PgsFilterConfig *filter)
{
	Relation	relation = relation_open(table->relid, NoLock);
	TupleDesc	desc = RelationGetDescr(relation);
	Bitmapset  *idattrs = NULL;
	PgsRelation *rel = palloc0(sizeof(PgsRelation));
	int			i;

	rel->relid = table->relid;
	rel->nspname = pstrdup(table->nspname);
	rel->relname = pstrdup(table->relname);
	rel->replident = relation->rd_rel->relreplident;
	rel->attnames = palloc(sizeof(char *) * Max(desc->natts, 1));
	rel->atttyps = palloc(sizeof(Oid) * Max(desc->natts, 1));
	table->attnums = palloc(sizeof(AttrNumber) * Max(desc->natts, 1));
	if (rel->replident != REPLICA_IDENTITY_FULL)
	{
		Oid			indexoid = RelationGetReplicaIndex(relation);

		if (OidIsValid(indexoid))
		{
			HeapTuple	indextup = SearchSysCache1(INDEXRELID,
												   ObjectIdGetDatum(indexoid));
			Form_pg_index index;
			int			k;

			if (!HeapTupleIsValid(indextup))
				elog(ERROR, "cache lookup failed for index %u", indexoid);
			index = (Form_pg_index) GETSTRUCT(indextup);
			for (k = 0; k < index->indnkeyatts; k++)
				idattrs = bms_add_member(idattrs, index->indkey.values[k]);
			ReleaseSysCache(indextup);
		}
	}

	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		char	   *name = NameStr(att->attname);

		if (att->attisdropped || att->attgenerated)
			continue;
		if ((table->columns != NULL && !bms_is_member(att->attnum, table->columns)) ||
			!pgs_filter_keeps_column(filter, table->nspname, table->relname, name))
			continue;

		if (rel->replident == REPLICA_IDENTITY_FULL ||
			bms_is_member(att->attnum, idattrs))
			rel->attkeys = bms_add_member(rel->attkeys, rel->natts);
		rel->attnames[rel->natts] = pstrdup(name);
		rel->atttyps[rel->natts] = att->atttypid;
		table->attnums[rel->natts] = att->attnum;
		rel->natts++;
	}

	relation_close(relation, NoLock);
	return rel;
}

/*
 * Send every row of table that the snapshot sees as a snapshot read,
 * preceded by the table's Relation event.  Returns the number of rows.
 *
 * The rows are read with a sequential scan of the table (of each of its
 * partitions, for a partitioned table), not with a query.  Planning a
 * query would run code of the table's owner as this superuser: the
 * planner evaluates index and partition key expressions, partial index
 * predicates, statistics expressions and, for constraint exclusion, CHECK
 * constraints, and any of them may call a function the owner wrote (see
 * "Trust boundary" in docs/reliability.md).  Here only three kinds of
 * function run: the heap access method, the column types' output
 * functions (as pgoutput calls them; only a superuser can create a type
 * with output functions of its own), and the publication's row filter,
 * which PostgreSQL allows to use only built-in immutable functions and
 * operators.
 */
static uint64
copy_table(const SnapshotTable *table, const PgsRelation *rel,
		   XLogRecPtr start_lsn, TimestampTz snapshot_time,
		   const PgsSnapshotHooks *hooks)
{
	Relation	root = relation_open(table->relid, NoLock);
	TupleDesc	rootdesc = RelationGetDescr(root);
	MemoryContext row_cxt;
	MemoryContext old;
	EState	   *estate = CreateExecutorState();
	ExprContext *econtext = GetPerTupleExprContext(estate);
	ExprState  *filter = NULL;
	TupleTableSlot *rootslot = NULL;
	FmgrInfo   *outputs;
	List	   *leaves;
	ListCell   *lc;
	PgsEvent	ev;
	LogicalRepTupleData newtup;
	uint64		rows = 0;
	uint64		scanned = 0;
	uint64		reported = 0;
	int			i;

	snapshot_event(&ev, PGS_EVENT_RELATION, start_lsn, snapshot_time);
	ev.rel = unconstify(PgsRelation *, rel);
	hooks->emit(&ev, hooks->emit_arg);

	outputs = palloc(sizeof(FmgrInfo) * Max(rel->natts, 1));
	for (i = 0; i < rel->natts; i++)
	{
		Oid			typoutput;
		bool		varlena;

		getTypeOutputInfo(rel->atttyps[i], &typoutput, &varlena);
		fmgr_info(typoutput, &outputs[i]);
	}
	if (table->rowfilter != NULL)
	{
		/* built-in immutable functions only: checked by CREATE PUBLICATION */
		filter = ExecPrepareExpr(table->rowfilter, estate);
		rootslot = MakeSingleTupleTableSlot(rootdesc, &TTSOpsVirtual);
	}
	newtup.ncols = rel->natts;
	newtup.colvalues = palloc0(sizeof(StringInfoData) * Max(rel->natts, 1));
	newtup.colstatus = palloc(sizeof(char) * Max(rel->natts, 1));

	/* the same event for every row: only newtup's values change */
	snapshot_event(&ev, PGS_EVENT_INSERT, start_lsn, snapshot_time);
	ev.snapshot = true;
	ev.rel = unconstify(PgsRelation *, rel);
	ev.newtup = &newtup;

	/* a partitioned table's rows are in its leaf partitions */
	if (root->rd_rel->relkind == RELKIND_PARTITIONED_TABLE)
		leaves = find_all_inheritors(table->relid, AccessShareLock, NULL);
	else
		leaves = list_make1_oid(table->relid);

	row_cxt = AllocSetContextCreate(CurrentMemoryContext,
									"pgoutput_stream snapshot rows",
									ALLOCSET_DEFAULT_SIZES);
	foreach(lc, leaves)
	{
		Relation	leaf = relation_open(lfirst_oid(lc), NoLock);
		AttrMap    *map = NULL;
		TableScanDesc scan;
		TupleTableSlot *slot;

		/* partitioned children hold no rows; foreign tables are not in WAL */
		if (leaf->rd_rel->relkind != RELKIND_RELATION)
		{
			relation_close(leaf, NoLock);
			continue;
		}
		/* a partition's columns can be in another order than the root's */
		if (RelationGetRelid(leaf) != table->relid)
			map = pgs_build_attrmap_by_name(RelationGetDescr(leaf), rootdesc);

		slot = table_slot_create(leaf, NULL);
		scan = table_beginscan(leaf, GetActiveSnapshot(), 0, NULL);
		while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
		{
			CHECK_FOR_INTERRUPTS();
			/* between batches: report, maybe stop */
			if (scanned > 0 && scanned % SNAPSHOT_BATCH_ROWS == 0)
			{
				set_progress(hooks->entry, -1, -1,
							 hooks->entry->snapshot_rows + rows - reported);
				reported = rows;
				stop_if_requested(hooks);
			}
			scanned++;
			slot_getallattrs(slot);
			if (filter != NULL &&
				!row_passes_filter(filter, econtext, rootslot, slot, map))
				continue;

			old = MemoryContextSwitchTo(row_cxt);
			row_to_text(&newtup, table->attnums, outputs, slot, map);
			ev.position = ++snapshot_position;
			hooks->emit(&ev, hooks->emit_arg);
			MemoryContextSwitchTo(old);
			rows++;
			/* the rows' text, freed once it takes some room */
			if (MemoryContextMemAllocated(row_cxt, false) > SNAPSHOT_ROW_BYTES)
				MemoryContextReset(row_cxt);
		}
		table_endscan(scan);
		ExecDropSingleTupleTableSlot(slot);
		if (map != NULL)
			free_attrmap(map);
		relation_close(leaf, NoLock);
	}
	set_progress(hooks->entry, -1, -1,
				 hooks->entry->snapshot_rows + rows - reported);
	stop_if_requested(hooks);

	MemoryContextDelete(row_cxt);
	if (rootslot != NULL)
		ExecDropSingleTupleTableSlot(rootslot);
	FreeExecutorState(estate);
	relation_close(root, NoLock);
	return rows;
}

/*
 * Whether the publication's row filter keeps the row in slot (a row of the
 * table, or of a partition whose attributes map maps to the root's, in
 * which the filter is written).
 */
static bool
row_passes_filter(ExprState *filter, ExprContext *econtext,
				  TupleTableSlot *rootslot, TupleTableSlot *slot,
				  const AttrMap *map)
{
	Datum		pass;
	bool		isnull;
	int			i;

	ResetExprContext(econtext);
	ExecClearTuple(rootslot);
	for (i = 0; i < rootslot->tts_tupleDescriptor->natts; i++)
	{
		AttrNumber	from = map ? map->attnums[i] : i + 1;

		rootslot->tts_isnull[i] = from == 0 || slot->tts_isnull[from - 1];
		rootslot->tts_values[i] = from == 0 ? (Datum) 0 : slot->tts_values[from - 1];
	}
	ExecStoreVirtualTuple(rootslot);
	econtext->ecxt_scantuple = rootslot;
	pass = ExecEvalExprSwitchContext(filter, econtext, &isnull);
	return !isnull && DatumGetBool(pass);
}

/*
 * Fill tuple with the text of the published columns of the row in slot:
 * column i is the root's attribute attnums[i], found in slot through map
 * for a partition.
 */
static void
row_to_text(LogicalRepTupleData *tuple, const AttrNumber *attnums,
			FmgrInfo *outputs, TupleTableSlot *slot, const AttrMap *map)
{
	int			i;

	for (i = 0; i < tuple->ncols; i++)
	{
		AttrNumber	attnum = map ? map->attnums[attnums[i] - 1] : attnums[i];

		if (attnum == 0 || slot->tts_isnull[attnum - 1])
			tuple->colstatus[i] = LOGICALREP_COLUMN_NULL;
		else
		{
			char	   *value = OutputFunctionCall(&outputs[i],
												   slot->tts_values[attnum - 1]);

			tuple->colstatus[i] = LOGICALREP_COLUMN_TEXT;
			tuple->colvalues[i].data = value;
			tuple->colvalues[i].len = strlen(value);
			tuple->colvalues[i].maxlen = tuple->colvalues[i].len + 1;
		}
	}
}

/*
 * An event of the snapshot's transaction, which commits at the slot's
 * start
 */
static void
snapshot_event(PgsEvent *ev, PgsEventKind kind, XLogRecPtr start_lsn,
			   TimestampTz snapshot_time)
{
	memset(ev, 0, sizeof(*ev));
	ev->kind = kind;
	ev->lsn = start_lsn;
	ev->final_lsn = start_lsn;
	ev->commit_time = snapshot_time;
	ev->snapshot_attempt = snapshot_attempt;
	/* Begin is 0; a Relation event takes the next row's, Commit the last */
	if (kind != PGS_EVENT_BEGIN)
		ev->position = snapshot_position + 1;
}

/*
 * A stop request (stop_stream(), drop_stream(), alter_stream()) ends the
 * worker between two batches, through the worker's checkpoint: the
 * snapshot is not delivered, and the next worker takes it again, as after
 * a failure.  Without this, the request would wait for the whole snapshot
 * to be read and sent, and drop_stream() gives up after 60 s.  (Every
 * event the snapshot emits passes the checkpoint too, now and then.)
 */
static void
stop_if_requested(const PgsSnapshotHooks *hooks pg_attribute_unused())
{
	pgs_worker_checkpoint();
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
