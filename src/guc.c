/*-------------------------------------------------------------------------
 *
 * guc.c
 *		Definition of every pgoutput_stream.* configuration parameter.
 *
 * Parameters that size shared memory are PGC_POSTMASTER; the tuning knobs
 * can be changed with a reload.  Stream-specific settings are stream
 * options stored with the stream, not parameters.
 *
 * Copyright (c) 2026, pgoutput_stream developers
 *
 * IDENTIFICATION
 *		src/guc.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/guc.h"

#include "compat.h"
#include "guc.h"

int			pgs_max_streams = 16;
int			pgs_wakeup_interval = 1000;
int			pgs_restart_delay = 5;
int			pgs_slot_save_interval = 5000;

/*
 * Define the parameters.  Called from _PG_init while the postmaster loads
 * shared_preload_libraries.
 */
void
pgs_guc_init(void)
{
	DefineCustomIntVariable("pgoutput_stream.max_streams",
							gettext_noop("Maximum number of streams that can run at the same time in the cluster."),
							gettext_noop("Each running stream also uses one background worker process and one replication slot."),
							&pgs_max_streams,
							16, 1, 1024,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("pgoutput_stream.wakeup_interval",
							gettext_noop("Longest time a stream worker sleeps before it looks for new WAL."),
							gettext_noop("Commits wake the workers at once; this is the fallback, e.g. for asynchronous commits."),
							&pgs_wakeup_interval,
							1000, 1, 3600 * 1000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("pgoutput_stream.restart_delay",
							gettext_noop("Time before a stream worker that ended with an error is started again."),
							NULL,
							&pgs_restart_delay,
							5, 1, 3600,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("pgoutput_stream.slot_save_interval",
							gettext_noop("How often a stream worker writes its slot's confirmed position to disk."),
							gettext_noop("After a crash, delivery resumes from the last saved position, so events after it are delivered again."),
							&pgs_slot_save_interval,
							5000, 100, 3600 * 1000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	MarkGUCPrefixReserved("pgoutput_stream");
}
