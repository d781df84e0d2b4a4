/*-------------------------------------------------------------------------
 *
 * launcher.c
 *		Starting stream workers: the launcher, the database scanner, and
 *		worker registration.
 *
 * Dynamic background workers do not survive a server restart, so at every
 * start (and after every crash-restart, which restarts the launcher too)
 * the launcher lists the databases and runs one short-lived scanner in
 * each, one after the other.  A scanner looks for the extension in its
 * database and registers a worker for every enabled stream.
 *
 * Registering a worker twice for one stream is harmless: the workers
 * claim the stream's entry in the shared registry, and the loser leaves.
 *
 * Copyright (c) 2026, pgoutput_stream developers
 *
 * IDENTIFICATION
 *		src/launcher.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "compat.h"
#include "guc.h"
#include "worker.h"

#define PGS_LIBRARY_NAME	"pgoutput_stream"

/*
 * Register the launcher.  Called from _PG_init in the postmaster.
 */
void
pgs_launcher_register(void)
{
	BackgroundWorker bgw;

	memset(&bgw, 0, sizeof(bgw));
	bgw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	bgw.bgw_start_time = BgWorkerStart_RecoveryFinished;
	bgw.bgw_restart_time = 5;
	snprintf(bgw.bgw_library_name, sizeof(bgw.bgw_library_name), PGS_LIBRARY_NAME);
	snprintf(bgw.bgw_function_name, sizeof(bgw.bgw_function_name),
			 "pgoutput_stream_launcher_main");
	snprintf(bgw.bgw_name, sizeof(bgw.bgw_name), "pgoutput_stream launcher");
	snprintf(bgw.bgw_type, sizeof(bgw.bgw_type), "pgoutput_stream launcher");
	RegisterBackgroundWorker(&bgw);
}

/*
 * Register a worker for a stream.  wait_xid is the transaction that
 * enables the stream (the worker waits for it to end), or Invalid.
 * Returns false if no background worker slot is free.
 */
bool
pgs_worker_register(Oid dboid, int32 stream_id, const char *name,
					TransactionId wait_xid)
{
	BackgroundWorker bgw;
	PgsWorkerArgs args;

	memset(&bgw, 0, sizeof(bgw));
	bgw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	bgw.bgw_start_time = BgWorkerStart_RecoveryFinished;
	bgw.bgw_restart_time = pgs_restart_delay;
	snprintf(bgw.bgw_library_name, sizeof(bgw.bgw_library_name), PGS_LIBRARY_NAME);
	snprintf(bgw.bgw_function_name, sizeof(bgw.bgw_function_name),
			 "pgoutput_stream_worker_main");
	snprintf(bgw.bgw_name, sizeof(bgw.bgw_name), "pgoutput_stream worker %s", name);
	snprintf(bgw.bgw_type, sizeof(bgw.bgw_type), "pgoutput_stream worker");
	bgw.bgw_main_arg = Int32GetDatum(stream_id);
	args.dboid = dboid;
	args.wait_xid = wait_xid;
	memcpy(bgw.bgw_extra, &args, sizeof(args));
	bgw.bgw_notify_pid = 0;

	return RegisterDynamicBackgroundWorker(&bgw, NULL);
}

/* Databases a scanner should look at */
static List *
database_list(void)
{
	List	   *result = NIL;
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;
	MemoryContext caller_cxt = CurrentMemoryContext;

	StartTransactionCommand();
	(void) GetTransactionSnapshot();
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while (HeapTupleIsValid(tup = heap_getnext(scan, ForwardScanDirection)))
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tup);
		MemoryContext old;

		if (!db->datallowconn || db->datistemplate)
			continue;
		old = MemoryContextSwitchTo(caller_cxt);
		result = lappend_oid(result, db->oid);
		MemoryContextSwitchTo(old);
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	CommitTransactionCommand();
	return result;
}

/* Run the scanner of one database and wait for it to finish */
static bool
run_scanner(Oid dboid)
{
	BackgroundWorker bgw;
	BackgroundWorkerHandle *handle;
	PgsWorkerArgs args;

	memset(&bgw, 0, sizeof(bgw));
	bgw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	bgw.bgw_start_time = BgWorkerStart_RecoveryFinished;
	bgw.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(bgw.bgw_library_name, sizeof(bgw.bgw_library_name), PGS_LIBRARY_NAME);
	snprintf(bgw.bgw_function_name, sizeof(bgw.bgw_function_name),
			 "pgoutput_stream_scanner_main");
	snprintf(bgw.bgw_name, sizeof(bgw.bgw_name), "pgoutput_stream scanner %u", dboid);
	snprintf(bgw.bgw_type, sizeof(bgw.bgw_type), "pgoutput_stream scanner");
	args.dboid = dboid;
	args.wait_xid = InvalidTransactionId;
	memcpy(bgw.bgw_extra, &args, sizeof(args));
	bgw.bgw_notify_pid = MyProcPid;

	if (!RegisterDynamicBackgroundWorker(&bgw, &handle))
		return false;
	(void) WaitForBackgroundWorkerShutdown(handle);
	return true;
}

void
pgoutput_stream_launcher_main(Datum main_arg pg_attribute_unused())
{
	List	   *pending;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	/* shared catalogs only */
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	pgstat_report_appname("pgoutput_stream launcher");

	pending = database_list();
	for (;;)
	{
		long		timeout = -1;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		/* scan the remaining databases; retry later if workers are short */
		while (pending != NIL)
		{
			if (!run_scanner(linitial_oid(pending)))
			{
				ereport(WARNING,
						(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
						 errmsg("could not start a pgoutput_stream scanner: no background worker slot is free"),
						 errhint("Increase \"max_worker_processes\"; the launcher retries in one second.")));
				timeout = 1000;
				break;
			}
			pending = list_delete_first(pending);
		}

		(void) WaitLatch(MyLatch,
						 WL_LATCH_SET | (timeout >= 0 ? WL_TIMEOUT : 0) | WL_EXIT_ON_PM_DEATH,
						 timeout, PGS_WAIT_LAUNCHER);
		ResetLatch(MyLatch);
	}
}

/*
 * The scanner of one database: registers a worker for every enabled stream
 * if the extension is installed there.
 */
void
pgoutput_stream_scanner_main(Datum main_arg pg_attribute_unused())
{
	PgsWorkerArgs args;
	uint64		i;

	memcpy(&args, MyBgworkerEntry->bgw_extra, sizeof(args));
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(args.dboid, InvalidOid,
											  PGS_BGWORKER_BYPASS_FLAGS);
	/* as the workers: what the database's owner set does not apply */
	pgs_guc_override_database_settings();

	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	if (OidIsValid(get_extension_oid("pgoutput_stream", true)))
	{
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		if (SPI_execute("SELECT id, name FROM pgoutput_stream.streams WHERE enabled ORDER BY id",
						true, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not read the streams of database %u", args.dboid);
		for (i = 0; i < SPI_processed; i++)
		{
			bool		isnull;
			int32		id = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i],
														 SPI_tuptable->tupdesc, 1, &isnull));
			char	   *name = SPI_getvalue(SPI_tuptable->vals[i],
											SPI_tuptable->tupdesc, 2);

			if (!pgs_worker_register(args.dboid, id, name, InvalidTransactionId))
				ereport(WARNING,
						(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
						 errmsg("could not start the worker of stream \"%s\": no background worker slot is free",
								name),
						 errhint("Increase \"max_worker_processes\", then call pgoutput_stream.start_stream().")));
		}
		SPI_finish();
	}
	PopActiveSnapshot();
	CommitTransactionCommand();
	proc_exit(0);
}
