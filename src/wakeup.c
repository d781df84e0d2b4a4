/*-------------------------------------------------------------------------
 *
 * wakeup.c
 *		Waking stream workers when a transaction commits.
 *
 * The library is preloaded, so every backend carries this commit
 * callback.  When a transaction that wrote a commit record ends, the
 * callback sets the latches of the stream workers of its database, which
 * then decode the new WAL at once instead of waiting for their timeout.
 *
 * XactLastCommitEnd is the only reliable sign that this transaction wrote
 * a commit record: XactLastRecEnd is already reset when the callback runs.
 * The highest commit end seen is also published, so that a worker woken
 * before an asynchronous commit is flushed knows to look again soon.
 *
 * Copyright (c) 2026, pgoutput_stream developers
 *
 * IDENTIFICATION
 *		src/wakeup.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "miscadmin.h"

#include "shmem.h"
#include "wakeup.h"

static XLogRecPtr last_seen_commit_end = InvalidXLogRecPtr;

static void
publish_commit_end(XLogRecPtr commit_end)
{
	uint64		current = pg_atomic_read_u64(&pgs_shared->latest_commit_end);

	while (current < commit_end)
	{
		if (pg_atomic_compare_exchange_u64(&pgs_shared->latest_commit_end,
										   &current, commit_end))
			break;
	}
}

static void
pgs_xact_callback(XactEvent event, void *arg pg_attribute_unused())
{
	if (event != XACT_EVENT_COMMIT && event != XACT_EVENT_PARALLEL_COMMIT)
		return;
	if (pgs_shared == NULL || XactLastCommitEnd == last_seen_commit_end)
		return;
	last_seen_commit_end = XactLastCommitEnd;

	if (pg_atomic_read_u32(&pgs_shared->running) == 0)
		return;
	publish_commit_end(XactLastCommitEnd);
	pgs_shmem_wake_database(MyDatabaseId);
}

/*
 * Register the callback.  Called from _PG_init in the postmaster, so every
 * backend it starts inherits the registration.
 */
void
pgs_wakeup_init(void)
{
	RegisterXactCallback(pgs_xact_callback, NULL);
}
