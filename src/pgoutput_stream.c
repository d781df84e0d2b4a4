/*-------------------------------------------------------------------------
 *
 * pgoutput_stream.c
 *		Module entry point.
 *
 * The library must be loaded through shared_preload_libraries: it needs
 * shared memory, a launcher worker, and a commit callback in every
 * backend.  Loaded any other way (for example by CREATE EXTENSION without
 * the preload), it refuses with an error.
 *
 * Copyright (c) 2026, pgoutput_stream developers
 *
 * IDENTIFICATION
 *		src/pgoutput_stream.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"

#include "ddl_guard.h"
#include "guc.h"
#include "shmem.h"
#include "wakeup.h"
#include "worker.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

void
_PG_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pgoutput_stream must be loaded via \"shared_preload_libraries\""),
				 errhint("Add pgoutput_stream to \"shared_preload_libraries\" in postgresql.conf and restart the server.")));

	pgs_guc_init();
	pgs_shmem_init();
	pgs_wakeup_init();
	pgs_launcher_register();
	pgs_ddl_guard_init();
}
