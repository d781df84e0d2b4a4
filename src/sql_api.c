/*-------------------------------------------------------------------------
 *
 * sql_api.c
 *		The SQL functions that manage streams.
 *
 * create_stream, start_stream, stop_stream, alter_stream and drop_stream
 * change the stream's row and start or stop its worker.  Starting and
 * stopping follow the transaction: a worker registered here waits for the
 * calling transaction and leaves if it rolls back, and stop requests are
 * delivered at commit.  Replication slots are not transactional, so a
 * slot created here is dropped again if the transaction aborts.
 *
 * Only superusers manage streams: a stream reads every table of its
 * publication and its worker runs as the bootstrap superuser, so the right
 * to create one is the right to read those tables.  The functions check
 * this themselves, so that a GRANT EXECUTE cannot hand the right on.
 *
 * Copyright (c) 2026, pgoutput_stream developers
 *
 * IDENTIFICATION
 *		src/sql_api.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "replication/logical.h"
#include "replication/slot.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/pg_lsn.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "decoder.h"
#include "guc.h"
#include "shmem.h"
#include "sql_api.h"
#include "stream_config.h"
#include "worker.h"

PG_FUNCTION_INFO_V1(pgoutput_stream_create_stream);
PG_FUNCTION_INFO_V1(pgoutput_stream_start_stream);
PG_FUNCTION_INFO_V1(pgoutput_stream_stop_stream);
PG_FUNCTION_INFO_V1(pgoutput_stream_alter_stream);
PG_FUNCTION_INFO_V1(pgoutput_stream_drop_stream);
PG_FUNCTION_INFO_V1(pgoutput_stream_worker_status);

/* Work to do when the current transaction ends */
typedef enum PgsPendingKind
{
	PGS_PENDING_STOP,			/* at commit: stop the stream's worker */
	PGS_PENDING_FORGET,			/* at commit: free the registry entry */
	PGS_PENDING_DROP_SLOT,		/* at abort: drop a slot created here */
	PGS_PENDING_DROP_SLOT_AT_COMMIT,	/* before commit: drop a dropped
										 * stream's slot */
	PGS_PENDING_RESTART			/* at abort: start a worker stopped here */
} PgsPendingKind;

typedef struct PgsPending
{
	PgsPendingKind kind;
	SubTransactionId subid;		/* subtransaction that queued it */
	Oid			dboid;
	int32		stream_id;
	char		name[NAMEDATALEN];
} PgsPending;

static List *pending_actions = NIL;
static bool xact_callback_registered = false;

/*
 * Carry out one action whose transaction (or subtransaction) ended.
 */
static void
run_action(PgsPending *action, bool commit)
{
	if (commit && action->kind == PGS_PENDING_STOP)
		(void) pgs_shmem_request_stop(action->dboid, action->stream_id);
	else if (commit && action->kind == PGS_PENDING_FORGET)
		pgs_shmem_forget(action->dboid, action->stream_id);
	else if (!commit && action->kind == PGS_PENDING_RESTART)
		(void) pgs_worker_register(action->dboid, action->stream_id,
								   action->name, InvalidTransactionId);
	else if (!commit && action->kind == PGS_PENDING_DROP_SLOT)
	{
		/* an error here must not turn the abort into a PANIC */
		PG_TRY();
		{
			/* a slot creation that failed half-way still holds its slot */
			if (MyReplicationSlot != NULL)
				ReplicationSlotRelease();
			if (SearchNamedReplicationSlot(action->name, true) != NULL)
				ReplicationSlotDrop(action->name, true);
		}
		PG_CATCH();
		{
			FlushErrorState();
			ereport(WARNING,
					(errmsg("could not drop replication slot \"%s\" created by the aborted transaction",
							action->name),
					 errhint("Drop it with pg_drop_replication_slot().")));
		}
		PG_END_TRY();
	}
}

static void
run_pending_actions(XactEvent event, void *arg pg_attribute_unused())
{
	ListCell   *lc;
	bool		commit;

	if (event == XACT_EVENT_PRE_COMMIT)
	{
		/*
		 * Slots of dropped streams go just before the commit, so that an
		 * error still aborts the transaction and a rollback keeps them.
		 */
		foreach(lc, pending_actions)
		{
			PgsPending *action = (PgsPending *) lfirst(lc);

			if (action->kind == PGS_PENDING_DROP_SLOT_AT_COMMIT &&
				SearchNamedReplicationSlot(action->name, true) != NULL)
			{
				pgs_decoder_wait_for_slot(action->name);
				ReplicationSlotDrop(action->name, false);
			}
		}
		return;
	}
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT)
		commit = true;
	else if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
		commit = false;
	else
		return;

	foreach(lc, pending_actions)
		run_action((PgsPending *) lfirst(lc), commit);
	list_free_deep(pending_actions);
	pending_actions = NIL;
}

/*
 * A subtransaction that aborts undoes its actions at once (a slot created
 * inside a failed savepoint or PL/pgSQL exception block must not survive
 * the top-level commit); one that commits hands them to its parent.
 */
static void
run_pending_subactions(SubXactEvent event, SubTransactionId mySubid,
					   SubTransactionId parentSubid,
					   void *arg pg_attribute_unused())
{
	ListCell   *lc;

	if (event == SUBXACT_EVENT_COMMIT_SUB)
	{
		foreach(lc, pending_actions)
		{
			PgsPending *action = (PgsPending *) lfirst(lc);

			if (action->subid == mySubid)
				action->subid = parentSubid;
		}
	}
	else if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		foreach(lc, pending_actions)
		{
			PgsPending *action = (PgsPending *) lfirst(lc);

			if (action->subid == mySubid)
			{
				run_action(action, false);
				pending_actions = foreach_delete_current(pending_actions, lc);
				pfree(action);
			}
		}
	}
}

static void
add_pending(PgsPendingKind kind, int32 stream_id, const char *name)
{
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
	PgsPending *action = palloc0(sizeof(PgsPending));

	action->kind = kind;
	action->subid = GetCurrentSubTransactionId();
	action->dboid = MyDatabaseId;
	action->stream_id = stream_id;
	strlcpy(action->name, name, NAMEDATALEN);
	pending_actions = lappend(pending_actions, action);
	MemoryContextSwitchTo(old);

	if (!xact_callback_registered)
	{
		RegisterXactCallback(run_pending_actions, NULL);
		RegisterSubXactCallback(run_pending_subactions, NULL);
		xact_callback_registered = true;
	}
}

/*
 * Callers must be superusers, and the library must be preloaded (the
 * shared registry exists only then).
 */
void
pgs_check_manager(void)
{
	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to manage streams"),
				 errdetail("Only superusers may manage streams.")));
	if (pgs_shared == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pgoutput_stream must be loaded via \"shared_preload_libraries\"")));
}

/* A text argument that must not be NULL */
static char *
text_arg(FunctionCallInfo fcinfo, int argno, const char *argname)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", argname)));
	return text_to_cstring(PG_GETARG_TEXT_PP(argno));
}

/* Load a stream of this database by name, or raise an error */
static PgsStreamConfig *
load_stream(const char *name)
{
	PgsStreamConfig *config = pgs_config_load_by_name(name);

	if (config == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("stream \"%s\" does not exist", name)));
	return config;
}

static void
spi_connect(void)
{
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
}

/* Run one statement with text/other parameters; returns SPI_processed */
static uint64
spi_run(const char *sql, int nargs, Oid *types, Datum *values, int expected)
{
	int			rc = SPI_execute_with_args(sql, nargs, types, values, NULL, false, 0);

	if (rc != expected)
		elog(ERROR, "unexpected SPI result %d for \"%s\"", rc, sql);
	return SPI_processed;
}

/* The NATS target config's worker will claim (see nats_sink.c) */
static void
nats_target_of(const PgsStreamConfig *config, PgsNatsTarget *target)
{
	pgs_nats_target_init(target, config->nats.url ? config->nats.url : pgs_nats_url,
						 config->fmt.subject_prefix, config->nats.stream,
						 config->nats.shared, get_database_name(MyDatabaseId));
}

/*
 * Two streams of this database must not write the same JetStream stream or
 * overlapping subjects on one NATS server, unless both set
 * nats_shared_stream: each must be the only writer of its messages for
 * exactly-once delivery (and JetStream refuses streams with overlapping
 * subjects).  Every stream of the database counts, running or not; those
 * of other databases are checked against the registry when a stream starts
 * (check_nats_running).  Caller is connected to SPI.
 */
static void
check_nats_exclusive(const PgsStreamConfig *config, int32 exclude_id,
					 const char *name)
{
	Oid			types[1] = {INT4OID};
	Datum		values[1];
	PgsNatsTarget target;
	uint64		i;

	if (!(config->targets & PGS_TARGET_NATS))
		return;
	nats_target_of(config, &target);
	values[0] = Int32GetDatum(exclude_id);
	if (SPI_execute_with_args("SELECT name, options FROM pgoutput_stream.streams"
							  " WHERE id <> $1 AND 'nats' = ANY (targets) ORDER BY id",
							  1, types, values, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read streams");
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[i];
		PgsStreamConfig other;
		PgsNatsTarget other_target;
		bool		isnull;
		bool		same_stream;

		pgs_config_defaults(&other);
		pgs_apply_options(&other, DatumGetJsonbP(SPI_getbinval(tuple, SPI_tuptable->tupdesc,
															   2, &isnull)));
		nats_target_of(&other, &other_target);
		if (pgs_nats_targets_collide(&target, &other_target, &same_stream))
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_OBJECT),
					 errmsg("stream \"%s\" would share NATS subjects or JetStream stream with stream \"%s\"",
							name, SPI_getvalue(tuple, SPI_tuptable->tupdesc, 1)),
					 errdetail("Each stream must be the only writer of its JetStream stream and subjects."),
					 errhint("Set the stream options subject_prefix and nats_stream to values of its own.")));
	}
}

/*
 * A stream about to start must not write where a running stream of any
 * database of the cluster writes.  The registry shows only running
 * streams, and a worker starting meanwhile is not seen: the worker checks
 * again, and claims its target, when it starts.
 */
static void
check_nats_running(const PgsStreamConfig *config, int32 stream_id,
				   const char *name)
{
	PgsNatsTarget target;
	PgsNatsConflict conflict;

	if (!(config->targets & PGS_TARGET_NATS))
		return;
	nats_target_of(config, &target);
	if (!pgs_shmem_find_nats_conflict(MyDatabaseId, stream_id, &target, &conflict))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_DUPLICATE_OBJECT),
			 errmsg("stream \"%s\" would share NATS subjects or JetStream stream with stream \"%s\" of database \"%s\"",
					name, conflict.name, conflict.database),
			 conflict.same_stream ?
			 errdetail("Stream \"%s\" is running and writes to JetStream stream \"%s\" on the same NATS server.",
					   conflict.name, target.stream) :
			 errdetail("Stream \"%s\" is running and writes the subjects \"%s.>\" on the same NATS server, which overlap with \"%s.>\".",
					   conflict.name, conflict.prefix, target.prefix),
			 errhint("Set the stream options subject_prefix and nats_stream to values of its own.")));
}

static void
register_worker_or_fail(int32 stream_id, const char *name)
{
	if (!pgs_worker_register(MyDatabaseId, stream_id, name, GetTopTransactionId()))
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("could not start the worker of stream \"%s\"", name),
				 errdetail("No background worker slot is free."),
				 errhint("Increase \"max_worker_processes\".")));
}

static void
check_registry_has_room(int32 stream_id, const char *name)
{
	if (!pgs_shmem_has_free_entry(MyDatabaseId, stream_id))
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("could not start stream \"%s\": too many streams are running", name),
				 errhint("Increase \"pgoutput_stream.max_streams\" or stop another stream.")));
}

/*
 * An existing slot may back a new stream only if it is a pgoutput slot of
 * this database that no process uses.
 */
static void
check_existing_slot(ReplicationSlot *slot, const char *slot_name)
{
	bool		usable;
	pid_t		active_pid;

	SpinLockAcquire(&slot->mutex);
	usable = slot->data.database == MyDatabaseId &&
		strcmp(NameStr(slot->data.plugin), "pgoutput") == 0;
	active_pid = slot->active_pid;
	SpinLockRelease(&slot->mutex);

	if (!usable)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("replication slot \"%s\" already exists", slot_name),
				 errdetail("An existing slot can only be used if it is a logical slot of this database using the plugin \"pgoutput\".")));
	if (active_pid != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_IN_USE),
				 errmsg("replication slot \"%s\" is active for PID %d",
						slot_name, (int) active_pid)));
}

/*
 * create_stream(name, publication, slot, targets, format, options, start,
 *				 snapshot)
 *
 * With snapshot, the slot is not created here: the worker creates it and
 * uses the snapshot built with it to send the existing rows first (see
 * snapshot.c).  A snapshot can only come from a new slot.
 */
Datum
pgoutput_stream_create_stream(PG_FUNCTION_ARGS)
{
	char	   *name;
	char	   *publication;
	char	   *slot_name;
	char	   *format_name;
	PgsStreamConfig config;
	Jsonb	   *options;
	bool		start;
	bool		snapshot;
	ReplicationSlot *slot;
	int32		stream_id;

	pgs_check_manager();
	name = text_arg(fcinfo, 0, "stream name");
	publication = text_arg(fcinfo, 1, "publication");
	pgs_validate_stream_name(name);
	slot_name = PG_ARGISNULL(2) ? psprintf("pgs_%s", name) : text_to_cstring(PG_GETARG_TEXT_PP(2));
	if (PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("targets must not be null")));
	format_name = text_arg(fcinfo, 4, "format");
	if (PG_ARGISNULL(5))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("options must not be null")));
	options = PG_GETARG_JSONB_P(5);
	if (PG_ARGISNULL(6))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("start must not be null")));
	start = PG_GETARG_BOOL(6);
	if (PG_ARGISNULL(7))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("snapshot must not be null")));
	snapshot = PG_GETARG_BOOL(7);

	/* everything that can be checked is checked before the slot exists */
	if (GetTopTransactionIdIfAny() != InvalidTransactionId)
		ereport(ERROR,
				(errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
				 errmsg("cannot create a stream in a transaction that has performed writes"),
				 errdetail("Creating the stream's replication slot requires a transaction without writes."),
				 errhint("Call create_stream() in its own transaction, or before any other change in the transaction.")));
	(void) ReplicationSlotValidateName(slot_name, ERROR);
	pgs_validate_publication(publication);
	pgs_config_defaults(&config);
	config.targets = pgs_parse_targets(PG_GETARG_ARRAYTYPE_P(3));
	config.fmt.format = pgs_parse_format(format_name);
	pgs_apply_options(&config, options);
	pgs_validate_target_options(&config);
	CheckLogicalDecodingRequirements();

	spi_connect();
	{
		Oid			types[2] = {TEXTOID, TEXTOID};
		Datum		values[2] = {CStringGetTextDatum(name), CStringGetTextDatum(slot_name)};

		if (spi_run("SELECT 1 FROM pgoutput_stream.streams WHERE name = $1",
					1, types, values, SPI_OK_SELECT) > 0)
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_OBJECT),
					 errmsg("stream \"%s\" already exists", name)));
		if (spi_run("SELECT 1 FROM pgoutput_stream.streams WHERE slot_name = $2::pg_catalog.name",
					2, types, values, SPI_OK_SELECT) > 0)
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_OBJECT),
					 errmsg("replication slot \"%s\" is already used by another stream",
							slot_name)));
	}
	check_nats_exclusive(&config, -1, name);
	if (start)
	{
		check_nats_running(&config, -1, name);
		check_registry_has_room(-1, name);
	}

	LWLockAcquire(ReplicationSlotControlLock, LW_SHARED);
	slot = SearchNamedReplicationSlot(slot_name, false);
	LWLockRelease(ReplicationSlotControlLock);
	if (slot != NULL && snapshot)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("replication slot \"%s\" already exists", slot_name),
				 errdetail("A stream with an initial snapshot needs a new replication slot: the snapshot is taken where the slot starts."),
				 errhint("Drop the slot, or give the stream another slot name.")));
	else if (slot != NULL)
		check_existing_slot(slot, slot_name);
	else if (!snapshot)
	{
		Oid			types[1] = {TEXTOID};
		Datum		values[1] = {CStringGetTextDatum(slot_name)};

		/* from here on, an abort must drop the slot again */
		add_pending(PGS_PENDING_DROP_SLOT, -1, slot_name);
		spi_run("SELECT pg_catalog.pg_create_logical_replication_slot($1::pg_catalog.name, 'pgoutput')",
				1, types, values, SPI_OK_SELECT);
	}

	{
		Oid			types[8] = {TEXTOID, TEXTOID, TEXTOID, TEXTARRAYOID, TEXTOID, JSONBOID, BOOLOID, TEXTOID};
		Datum		values[8];
		bool		isnull;

		values[0] = CStringGetTextDatum(name);
		values[1] = CStringGetTextDatum(publication);
		values[2] = CStringGetTextDatum(slot_name);
		values[3] = PG_GETARG_DATUM(3);
		values[4] = CStringGetTextDatum(format_name);
		values[5] = JsonbPGetDatum(options);
		values[6] = BoolGetDatum(start);
		values[7] = CStringGetTextDatum(snapshot ? "pending" : "none");
		spi_run("INSERT INTO pgoutput_stream.streams"
				" (name, publication, slot_name, targets, format, options, enabled, snapshot)"
				" VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
				8, types, values, SPI_OK_INSERT_RETURNING);
		stream_id = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0],
												SPI_tuptable->tupdesc, 1, &isnull));
	}
	SPI_finish();

	if (start)
		register_worker_or_fail(stream_id, name);

	PG_RETURN_VOID();
}

/* start_stream(name) */
Datum
pgoutput_stream_start_stream(PG_FUNCTION_ARGS)
{
	char	   *name;
	PgsStreamConfig *config;

	pgs_check_manager();
	name = text_arg(fcinfo, 0, "stream name");
	config = load_stream(name);

	if (config->enabled && pgs_shmem_worker_pid(MyDatabaseId, config->id) != 0)
	{
		ereport(NOTICE,
				(errmsg("stream \"%s\" is already running", name)));
		PG_RETURN_VOID();
	}
	check_nats_running(config, config->id, name);
	check_registry_has_room(config->id, name);

	spi_connect();
	{
		Oid			types[1] = {INT4OID};
		Datum		values[1] = {Int32GetDatum(config->id)};

		spi_run("UPDATE pgoutput_stream.streams SET enabled = true WHERE id = $1",
				1, types, values, SPI_OK_UPDATE);
	}
	SPI_finish();
	register_worker_or_fail(config->id, name);

	PG_RETURN_VOID();
}

/* stop_stream(name): the worker stops when the transaction commits */
Datum
pgoutput_stream_stop_stream(PG_FUNCTION_ARGS)
{
	char	   *name;
	PgsStreamConfig *config;

	pgs_check_manager();
	name = text_arg(fcinfo, 0, "stream name");
	config = load_stream(name);

	if (!config->enabled && pgs_shmem_worker_pid(MyDatabaseId, config->id) == 0)
	{
		ereport(NOTICE,
				(errmsg("stream \"%s\" is already stopped", name)));
		PG_RETURN_VOID();
	}

	spi_connect();
	{
		Oid			types[1] = {INT4OID};
		Datum		values[1] = {Int32GetDatum(config->id)};

		spi_run("UPDATE pgoutput_stream.streams SET enabled = false WHERE id = $1",
				1, types, values, SPI_OK_UPDATE);
	}
	SPI_finish();
	add_pending(PGS_PENDING_STOP, config->id, name);

	PG_RETURN_VOID();
}

/*
 * alter_stream(name, targets, format, options): NULL leaves a setting as it
 * is; options are merged into the existing ones, and an option set to JSON
 * null is removed.  A running stream restarts with the new settings when
 * the transaction commits.
 */
Datum
pgoutput_stream_alter_stream(PG_FUNCTION_ARGS)
{
	char	   *name;
	PgsStreamConfig *config;
	PgsStreamConfig changed;
	Datum		targets;
	char	   *format_name;
	Jsonb	   *options;
	bool		running;

	pgs_check_manager();
	name = text_arg(fcinfo, 0, "stream name");
	config = load_stream(name);

	spi_connect();
	{
		Oid			types[4] = {INT4OID, TEXTARRAYOID, TEXTOID, JSONBOID};
		Datum		values[4];
		char		nulls[4] = {' ', ' ', ' ', ' '};
		bool		isnull;

		values[0] = Int32GetDatum(config->id);
		values[1] = PG_ARGISNULL(1) ? (Datum) 0 : PG_GETARG_DATUM(1);
		values[2] = PG_ARGISNULL(2) ? (Datum) 0 : PG_GETARG_DATUM(2);
		values[3] = PG_ARGISNULL(3) ? (Datum) 0 : PG_GETARG_DATUM(3);
		nulls[1] = PG_ARGISNULL(1) ? 'n' : ' ';
		nulls[2] = PG_ARGISNULL(2) ? 'n' : ' ';
		nulls[3] = PG_ARGISNULL(3) ? 'n' : ' ';
		if (SPI_execute_with_args("SELECT coalesce($2, targets), coalesce($3, format),"
								  " pg_catalog.jsonb_strip_nulls(options || coalesce($4, '{}'))"
								  " FROM pgoutput_stream.streams WHERE id = $1",
								  4, types, values, nulls, true, 1) != SPI_OK_SELECT ||
			SPI_processed != 1)
			elog(ERROR, "could not read stream \"%s\"", name);

		/* validate the result exactly as create_stream() would */
		pgs_config_defaults(&changed);
		targets = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		changed.targets = pgs_parse_targets(DatumGetArrayTypeP(targets));
		format_name = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
		changed.fmt.format = pgs_parse_format(format_name);
		options = DatumGetJsonbP(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull));
		pgs_apply_options(&changed, options);
		pgs_validate_target_options(&changed);
		check_nats_exclusive(&changed, config->id, name);
		/* a running stream restarts with the new settings at commit */
		if (config->enabled && pgs_shmem_worker_pid(MyDatabaseId, config->id) != 0)
			check_nats_running(&changed, config->id, name);

		values[1] = targets;
		values[2] = CStringGetTextDatum(format_name);
		values[3] = JsonbPGetDatum(options);
		spi_run("UPDATE pgoutput_stream.streams SET targets = $2, format = $3, options = $4 WHERE id = $1",
				4, types, values, SPI_OK_UPDATE);
	}
	SPI_finish();

	running = pgs_shmem_worker_pid(MyDatabaseId, config->id) != 0;
	if (config->enabled && running)
	{
		/* the old worker stops at commit; the new one waits for it */
		register_worker_or_fail(config->id, name);
		add_pending(PGS_PENDING_STOP, config->id, name);
	}

	PG_RETURN_VOID();
}

/*
 * Stop a stream's worker now and wait until it has released the slot.  If
 * the transaction aborts, the worker is started again.
 */
static void
stop_and_wait(const PgsStreamConfig *config)
{
	int			waited_ms = 0;

	if (pgs_shmem_request_stop(MyDatabaseId, config->id) && config->enabled)
		add_pending(PGS_PENDING_RESTART, config->id, config->name);
	while (pgs_shmem_worker_pid(MyDatabaseId, config->id) != 0)
	{
		if (waited_ms >= 60000)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_IN_USE),
					 errmsg("could not stop the worker of stream \"%s\"", config->name),
					 errdetail("The worker did not stop within 60 seconds.")));
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 20, PGS_WAIT_HANDOVER);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		waited_ms += 20;
	}
	pgs_decoder_wait_for_slot(config->slot_name);
}

/*
 * Whether a slot by this name exists and could be a stream's: a logical
 * pgoutput slot of this database.  Any other slot by the stream's name
 * (a standby's physical slot, say, made while the stream had none yet) is
 * not the stream's to drop.
 */
static bool
slot_is_streams_kind(const char *slot_name)
{
	bool		usable;

	if (!pgs_slot_lookup(slot_name, &usable, NULL, NULL))
		return false;
	if (!usable)
		ereport(NOTICE,
				(errmsg("replication slot \"%s\" is not dropped: it is not a logical \"pgoutput\" slot of this database",
						slot_name)));
	return usable;
}

/*
 * Remove a stream: stop its worker now, delete its row, and drop its slot
 * (if drop_slot) just before the transaction commits.
 */
static void
remove_stream(const PgsStreamConfig *config, bool drop_slot)
{
	Oid			types[1] = {INT4OID};
	Datum		values[1] = {Int32GetDatum(config->id)};

	stop_and_wait(config);
	spi_connect();
	spi_run("DELETE FROM pgoutput_stream.streams WHERE id = $1",
			1, types, values, SPI_OK_DELETE);
	SPI_finish();
	if (drop_slot && slot_is_streams_kind(config->slot_name))
		add_pending(PGS_PENDING_DROP_SLOT_AT_COMMIT, config->id, config->slot_name);
	add_pending(PGS_PENDING_FORGET, config->id, config->name);
}

/*
 * drop_stream(name, drop_slot): stops the worker now (the slot cannot be
 * dropped while it is held), deletes the stream, and drops its slot when
 * the transaction commits; a rollback restores the stream and its worker.
 */
Datum
pgoutput_stream_drop_stream(PG_FUNCTION_ARGS)
{
	char	   *name;
	bool		drop_slot;

	pgs_check_manager();
	name = text_arg(fcinfo, 0, "stream name");
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("drop_slot must not be null")));
	drop_slot = PG_GETARG_BOOL(1);
	remove_stream(load_stream(name), drop_slot);

	PG_RETURN_VOID();
}

/*
 * Remove every stream of this database, with their slots.  Called when the
 * extension is dropped: its table goes, and slots nobody reads would keep
 * WAL forever.
 */
void
pgs_remove_all_streams(void)
{
	List	   *ids = NIL;
	ListCell   *lc;
	uint64		i;

	if (pgs_shared == NULL)
		return;
	spi_connect();
	spi_run("SELECT id FROM pgoutput_stream.streams ORDER BY id", 0, NULL, NULL, SPI_OK_SELECT);
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		MemoryContext old = MemoryContextSwitchTo(CurTransactionContext);

		ids = lappend_int(ids, DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i],
														  SPI_tuptable->tupdesc, 1, &isnull)));
		MemoryContextSwitchTo(old);
	}
	SPI_finish();

	foreach(lc, ids)
	{
		PgsStreamConfig *config = pgs_config_load_by_id(lfirst_int(lc));

		if (config != NULL)
			remove_stream(config, true);
	}
}

/*
 * worker_status(): the shared registry's entries for this database, for
 * the stream_status view.
 */
Datum
pgoutput_stream_worker_status(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	TupleDesc	tupdesc;
	Tuplestorestate *tupstore;
	MemoryContext old;
	int			i;

	if (pgs_shared == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pgoutput_stream must be loaded via \"shared_preload_libraries\"")));
	if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo) ||
		!(rsinfo->allowedModes & SFRM_Materialize))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("set-valued function called in context that cannot accept a set")));
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	old = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
	tupstore = tuplestore_begin_heap(true, false, work_mem);
	rsinfo->returnMode = SFRM_Materialize;
	rsinfo->setResult = tupstore;
	rsinfo->setDesc = tupdesc;
	MemoryContextSwitchTo(old);

	LWLockAcquire(pgs_shared->lock, LW_SHARED);
	for (i = 0; i < pgs_shared->max_streams; i++)
	{
		PgsStreamSlot *entry = &pgs_shared->streams[i];
		PgsStreamSlot copy;
		Datum		values[22];
		bool		nulls[22];
		StringInfoData sent;
		int			t;

		if (!entry->in_use || entry->dboid != MyDatabaseId)
			continue;
		SpinLockAcquire(&entry->mutex);
		memcpy(&copy, entry, sizeof(copy));
		SpinLockRelease(&entry->mutex);

		memset(nulls, 0, sizeof(nulls));
		values[0] = Int32GetDatum(copy.stream_id);
		values[1] = CStringGetTextDatum(pgs_state_name(copy.state));
		values[2] = Int32GetDatum((int32) copy.pid);
		nulls[2] = (copy.pid == 0);
		values[3] = LSNGetDatum(copy.decoded_lsn);
		nulls[3] = XLogRecPtrIsInvalid(copy.decoded_lsn);
		values[4] = LSNGetDatum(copy.confirmed_lsn);
		nulls[4] = XLogRecPtrIsInvalid(copy.confirmed_lsn);
		values[5] = Int64GetDatum((int64) copy.transactions);
		values[6] = Int64GetDatum((int64) copy.events);
		values[7] = Int64GetDatum((int64) copy.bytes);
		values[8] = CStringGetTextDatum(copy.last_error);
		nulls[8] = (copy.last_error[0] == '\0');
		values[9] = TimestampTzGetDatum(copy.last_error_at);
		nulls[9] = (copy.last_error_at == 0);
		values[10] = TimestampTzGetDatum(copy.started_at);
		nulls[10] = (copy.started_at == 0);
		values[11] = CStringGetTextDatum(copy.wait_reason);
		nulls[11] = (copy.wait_reason[0] == '\0');
		values[12] = TimestampTzGetDatum(copy.confirmed_commit_time);
		nulls[12] = (copy.confirmed_commit_time == 0);
		values[13] = Int64GetDatum((int64) copy.inflight);
		values[14] = TimestampTzGetDatum(copy.last_ack_at);
		nulls[14] = (copy.last_ack_at == 0);
		values[15] = Int64GetDatum((int64) copy.retries);
		initStringInfo(&sent);
		appendStringInfoChar(&sent, '{');
		for (t = 0; t < PGS_NUM_TARGETS; t++)
			appendStringInfo(&sent, "%s\"%s\": " UINT64_FORMAT, t > 0 ? ", " : "",
							 pgs_target_names[t], copy.target_sent[t]);
		appendStringInfoChar(&sent, '}');
		values[16] = DirectFunctionCall1(jsonb_in, CStringGetDatum(sent.data));
		values[17] = Int64GetDatum((int64) copy.retained_wal);
		values[18] = BoolGetDatum(copy.wal_warning);
		/* the snapshot's progress, while one is taken or was last taken */
		values[19] = Int32GetDatum(copy.snapshot_tables_total);
		values[20] = Int32GetDatum(copy.snapshot_tables_done);
		values[21] = Int64GetDatum((int64) copy.snapshot_rows);
		nulls[19] = nulls[20] = nulls[21] = (copy.snapshot_tables_total == 0 &&
											 copy.snapshot_rows == 0);
		tuplestore_putvalues(tupstore, tupdesc, values, nulls);
	}
	LWLockRelease(pgs_shared->lock);

	return (Datum) 0;
}
