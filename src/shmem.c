/*-------------------------------------------------------------------------
 *
 * shmem.c
 *		Shared registry of running streams.
 *
 * Streams persist in the table pgoutput_stream.streams of their database;
 * this registry holds what only exists while the server runs: which
 * worker serves which stream, its state, positions, counters and last
 * error.  It is sized by pgoutput_stream.max_streams and rebuilt from
 * nothing at every server start and crash-restart.
 *
 * Copyright (c) 2026, pgoutput_stream developers
 *
 * IDENTIFICATION
 *		src/shmem.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/timestamp.h"

#include "guc.h"
#include "secrets.h"
#include "shmem.h"

#define PGS_TRANCHE_NAME	"pgoutput_stream"

PgsSharedState *pgs_shared = NULL;

const char *const pgs_target_names[PGS_NUM_TARGETS] = {"log", "nats", "feldera"};

#if PG_VERSION_NUM >= 150000
static shmem_request_hook_type prev_shmem_request_hook = NULL;
#endif
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static Size
pgs_shmem_size(void)
{
	return add_size(offsetof(PgsSharedState, streams),
					mul_size(pgs_max_streams, sizeof(PgsStreamSlot)));
}

static void
pgs_shmem_request(void)
{
#if PG_VERSION_NUM >= 150000
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
#endif
	RequestAddinShmemSpace(pgs_shmem_size());
	RequestNamedLWLockTranche(PGS_TRANCHE_NAME, 1);
}

static void
pgs_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	pgs_shared = ShmemInitStruct("pgoutput_stream", pgs_shmem_size(), &found);
	if (!found)
	{
		int			i;

		memset(pgs_shared, 0, pgs_shmem_size());
		pgs_shared->lock = &(GetNamedLWLockTranche(PGS_TRANCHE_NAME))->lock;
		pg_atomic_init_u32(&pgs_shared->running, 0);
		pg_atomic_init_u64(&pgs_shared->latest_commit_end, 0);
		pgs_shared->max_streams = pgs_max_streams;
		for (i = 0; i < pgs_max_streams; i++)
			SpinLockInit(&pgs_shared->streams[i].mutex);
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * Install the shared memory hooks.  Called from _PG_init.
 */
void
pgs_shmem_init(void)
{
#if PG_VERSION_NUM >= 150000
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = pgs_shmem_request;
#else
	pgs_shmem_request();
#endif
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = pgs_shmem_startup;
}

/* Find the entry of a stream; caller holds the lock */
static PgsStreamSlot *
find_entry(Oid dboid, int32 stream_id)
{
	int			i;

	for (i = 0; i < pgs_shared->max_streams; i++)
	{
		PgsStreamSlot *entry = &pgs_shared->streams[i];

		if (entry->in_use && entry->dboid == dboid &&
			entry->stream_id == stream_id)
			return entry;
	}
	return NULL;
}

/* Find a free entry; caller holds the lock exclusively */
static PgsStreamSlot *
free_entry(void)
{
	int			i;

	for (i = 0; i < pgs_shared->max_streams; i++)
	{
		if (!pgs_shared->streams[i].in_use)
			return &pgs_shared->streams[i];
	}

	/*
	 * No never-used entry: recycle the entry of a stream that is stopped,
	 * so that streams stopped for good do not use up the registry.
	 */
	for (i = 0; i < pgs_shared->max_streams; i++)
	{
		PgsStreamSlot *entry = &pgs_shared->streams[i];

		if (entry->pid == 0 && entry->state == PGS_STATE_STOPPED)
			return entry;
	}
	return NULL;
}

/*
 * Claim the entry of a stream for the calling worker.
 *
 * Returns the entry, or NULL with *busy = true if another live worker holds
 * it (*holder_stopping tells whether that worker was asked to stop), or
 * NULL with *busy = false if the registry is full.
 */
PgsStreamSlot *
pgs_shmem_claim(Oid dboid, int32 stream_id, const char *name, bool *busy,
				bool *holder_stopping)
{
	PgsStreamSlot *entry;

	*busy = false;
	*holder_stopping = false;
	LWLockAcquire(pgs_shared->lock, LW_EXCLUSIVE);
	entry = find_entry(dboid, stream_id);
	if (entry != NULL && entry->pid != 0)
	{
		SpinLockAcquire(&entry->mutex);
		*holder_stopping = entry->stop_requested;
		SpinLockRelease(&entry->mutex);
		LWLockRelease(pgs_shared->lock);
		*busy = true;
		return NULL;
	}
	if (entry == NULL)
	{
		entry = free_entry();
		if (entry == NULL)
		{
			LWLockRelease(pgs_shared->lock);
			return NULL;
		}
		entry->in_use = true;
		entry->dboid = dboid;
		entry->stream_id = stream_id;
		SpinLockAcquire(&entry->mutex);
		entry->confirmed_lsn = InvalidXLogRecPtr;
		entry->decoded_lsn = InvalidXLogRecPtr;
		entry->transactions = 0;
		entry->events = 0;
		entry->bytes = 0;
		entry->last_error[0] = '\0';
		entry->last_error_at = 0;
		entry->confirmed_commit_time = 0;
		entry->last_ack_at = 0;
		entry->retries = 0;
		memset(entry->target_sent, 0, sizeof(entry->target_sent));
		SpinLockRelease(&entry->mutex);
	}
	entry->pid = MyProcPid;
	entry->latch = MyLatch;
	entry->has_nats_target = false;
	SpinLockAcquire(&entry->mutex);
	strlcpy(entry->name, name, NAMEDATALEN);
	entry->stop_requested = false;
	entry->state = PGS_STATE_STARTING;
	entry->wait_reason[0] = '\0';
	entry->inflight = 0;
	entry->retained_wal = 0;
	entry->wal_warning = false;
	entry->snapshot_tables_total = 0;
	entry->snapshot_tables_done = 0;
	entry->snapshot_rows = 0;
	entry->started_at = GetCurrentTimestamp();
	SpinLockRelease(&entry->mutex);
	pg_atomic_fetch_add_u32(&pgs_shared->running, 1);
	LWLockRelease(pgs_shared->lock);

	return entry;
}

/*
 * Give up the entry as the worker ends.  The state records why: stopped on
 * request, failed for good, or about to be restarted after an error.
 */
void
pgs_shmem_release(PgsStreamSlot *entry, bool failed)
{
	LWLockAcquire(pgs_shared->lock, LW_EXCLUSIVE);
	if (entry->pid == MyProcPid)
	{
		SpinLockAcquire(&entry->mutex);
		if (failed)
			entry->state = PGS_STATE_FAILED;
		else if (entry->state != PGS_STATE_FAILED)
			entry->state = entry->stop_requested ? PGS_STATE_STOPPED : PGS_STATE_RESTARTING;
		SpinLockRelease(&entry->mutex);
		entry->pid = 0;
		entry->latch = NULL;
		entry->has_nats_target = false;
		pg_atomic_fetch_sub_u32(&pgs_shared->running, 1);
	}
	LWLockRelease(pgs_shared->lock);
}

/*
 * Ask the worker of a stream to stop.  Returns false if no worker runs.
 */
bool
pgs_shmem_request_stop(Oid dboid, int32 stream_id)
{
	PgsStreamSlot *entry;
	bool		running = false;

	LWLockAcquire(pgs_shared->lock, LW_SHARED);
	entry = find_entry(dboid, stream_id);
	if (entry != NULL && entry->pid != 0)
	{
		SpinLockAcquire(&entry->mutex);
		entry->stop_requested = true;
		entry->state = PGS_STATE_STOPPING;
		SpinLockRelease(&entry->mutex);
		SetLatch(entry->latch);
		running = true;
	}
	LWLockRelease(pgs_shared->lock);
	return running;
}

/* PID of the worker serving a stream, 0 if none */
pid_t
pgs_shmem_worker_pid(Oid dboid, int32 stream_id)
{
	PgsStreamSlot *entry;
	pid_t		pid = 0;

	LWLockAcquire(pgs_shared->lock, LW_SHARED);
	entry = find_entry(dboid, stream_id);
	if (entry != NULL)
		pid = entry->pid;
	LWLockRelease(pgs_shared->lock);
	return pid;
}

/* Free the entry of a dropped stream, if no worker holds it */
void
pgs_shmem_forget(Oid dboid, int32 stream_id)
{
	PgsStreamSlot *entry;

	LWLockAcquire(pgs_shared->lock, LW_EXCLUSIVE);
	entry = find_entry(dboid, stream_id);
	if (entry != NULL && entry->pid == 0)
		entry->in_use = false;
	LWLockRelease(pgs_shared->lock);
}

/*
 * Whether a worker for the stream could claim an entry now.
 */
bool
pgs_shmem_has_free_entry(Oid dboid, int32 stream_id)
{
	bool		result;

	LWLockAcquire(pgs_shared->lock, LW_SHARED);
	result = find_entry(dboid, stream_id) != NULL || free_entry() != NULL;
	LWLockRelease(pgs_shared->lock);
	return result;
}

void
pgs_shmem_set_state(PgsStreamSlot *entry, PgsStreamState state)
{
	SpinLockAcquire(&entry->mutex);
	/* a stop request wins over progress reports */
	if (!(entry->stop_requested &&
		  (state == PGS_STATE_STREAMING || state == PGS_STATE_WAITING ||
		   state == PGS_STATE_CATCHING_UP || state == PGS_STATE_SNAPSHOT)))
		entry->state = state;
	if (state != PGS_STATE_WAITING)
		entry->wait_reason[0] = '\0';
	SpinLockRelease(&entry->mutex);
}

/*
 * The length of message that fits a PGS_ERROR_LEN buffer, cut at a
 * character boundary: a text cut inside a multibyte character would be
 * invalid in the database encoding, and so would stream_status.
 */
static int
error_len(const char *message)
{
	int			len = strlen(message);

	if (len < PGS_ERROR_LEN)
		return len;
	return pg_mbcliplen(message, len, PGS_ERROR_LEN - 1);
}

/* Copy the first len bytes of message (see error_len) into buf */
static void
copy_error(char *buf, const char *message, int len)
{
	memcpy(buf, message, len);
	buf[len] = '\0';
}

/*
 * Record a stream's last error.  Monitoring roles read it (stream_status,
 * worker_status()), so, whatever the caller passes, the text is redacted
 * first: URLs shown without user information or query, and the secret
 * settings and the secret parts of the URL settings replaced by "***"
 * (secrets.c).  The targets redact their own texts already, including the
 * URLs of stream options, which only they know; this is the net under
 * every error text that reaches the registry.  Row values must not reach
 * it at all: errors raised while a change is rendered or sent keep values
 * out of their primary message.
 */
void
pgs_shmem_set_error(PgsStreamSlot *entry, const char *message)
{
	TimestampTz now = GetCurrentTimestamp();
	char	   *shown = pgs_redact_text(message, NULL);
	int			len = error_len(shown);

	SpinLockAcquire(&entry->mutex);
	copy_error(entry->last_error, shown, len);
	entry->last_error_at = now;
	SpinLockRelease(&entry->mutex);
	pfree(shown);
}

/* Record what the stream waits for (also kept as its last error) */
void
pgs_shmem_set_waiting(PgsStreamSlot *entry, const char *reason)
{
	TimestampTz now = GetCurrentTimestamp();
	char	   *shown = pgs_redact_text(reason, NULL);
	int			len = error_len(shown);

	SpinLockAcquire(&entry->mutex);
	copy_error(entry->last_error, shown, len);
	entry->last_error_at = now;
	copy_error(entry->wait_reason, shown, len);
	if (!entry->stop_requested)
		entry->state = PGS_STATE_WAITING;
	entry->retries++;
	SpinLockRelease(&entry->mutex);
	pfree(shown);
}

const char *
pgs_state_name(PgsStreamState state)
{
	switch (state)
	{
		case PGS_STATE_STOPPED:
			return "stopped";
		case PGS_STATE_STARTING:
			return "starting";
		case PGS_STATE_STREAMING:
			return "streaming";
		case PGS_STATE_CATCHING_UP:
			return "catching up";
		case PGS_STATE_WAITING:
			return "waiting for target";
		case PGS_STATE_STOPPING:
			return "stopping";
		case PGS_STATE_RESTARTING:
			return "restarting";
		case PGS_STATE_FAILED:
			return "failed";
		case PGS_STATE_SNAPSHOT:
			return "snapshot";
	}
	return "unknown";
}

/*
 * Wake every stream worker of a database.
 *
 * Called from the commit callback of every backend, so it takes no lock:
 * a stale latch pointer belongs to a PGPROC, which stays valid shared
 * memory, and setting the latch of a process that has left is harmless.
 */
void
pgs_shmem_wake_database(Oid dboid)
{
	int			i;

	for (i = 0; i < pgs_shared->max_streams; i++)
	{
		PgsStreamSlot *entry = &pgs_shared->streams[i];
		Latch	   *latch = entry->latch;

		if (latch != NULL && entry->dboid == dboid)
			SetLatch(latch);
	}
}

/*
 * Fill a NATS target identity from a stream's effective settings: urls is
 * the nats_url option or else the GUC.  A subject prefix too long for its
 * field is cut after its last whole token that fits: the shorter prefix
 * overlaps every prefix the whole one overlaps, so the check may refuse
 * more, never less (a prefix of one token that long is cut anywhere).  A
 * server list too long keeps its first servers in sorted order.
 */
void
pgs_nats_target_init(PgsNatsTarget *target, const char *urls,
					 const char *prefix, const char *stream, bool shared,
					 const char *database)
{
	char	   *servers = pgs_nats_server_list(urls);

	memset(target, 0, sizeof(PgsNatsTarget));
	if (strlen(servers) >= PGS_NATS_SERVERS_LEN)
	{
		char	   *comma;

		servers[PGS_NATS_SERVERS_LEN - 1] = '\0';
		comma = strrchr(servers, ',');
		if (comma != NULL)
			*comma = '\0';
	}
	strlcpy(target->servers, servers, PGS_NATS_SERVERS_LEN);
	pfree(servers);

	strlcpy(target->prefix, prefix, PGS_NATS_NAME_LEN);
	if (strlen(prefix) >= PGS_NATS_NAME_LEN)
	{
		char	   *dot = strrchr(target->prefix, '.');

		if (dot != NULL)
			*dot = '\0';
	}
	strlcpy(target->stream, stream, PGS_NATS_NAME_LEN);
	target->shared = shared;
	strlcpy(target->database, database ? database : "", NAMEDATALEN);
}

/* Whether two server lists of pgs_nats_server_list name a server in common */
static bool
servers_meet(const char *a, const char *b)
{
	const char *pa = a;

	while (*pa)
	{
		size_t		la = strcspn(pa, ",");
		const char *pb = b;

		while (*pb)
		{
			size_t		lb = strcspn(pb, ",");

			if (la == lb && strncmp(pa, pb, la) == 0)
				return true;
			pb += lb + (pb[lb] == ',');
		}
		pa += la + (pa[la] == ',');
	}
	return false;
}

/* Whether the subjects <a>.> and <b>.> overlap: one prefix is the other's */
static bool
prefixes_overlap(const char *a, const char *b)
{
	size_t		la = strlen(a);
	size_t		lb = strlen(b);

	if (la > lb)
		return strncmp(a, b, lb) == 0 && a[lb] == '.';
	if (lb > la)
		return strncmp(a, b, la) == 0 && b[la] == '.';
	return strcmp(a, b) == 0;
}

/*
 * Whether two streams with these NATS targets would write the same
 * JetStream stream (*same_stream) or overlapping subjects on one server,
 * and have not both said that they share it (nats_shared_stream).
 */
bool
pgs_nats_targets_collide(const PgsNatsTarget *a, const PgsNatsTarget *b,
						 bool *same_stream)
{
	if ((a->shared && b->shared) || !servers_meet(a->servers, b->servers))
		return false;
	*same_stream = strcmp(a->stream, b->stream) == 0;
	return *same_stream || prefixes_overlap(a->prefix, b->prefix);
}

/*
 * The running stream other than (dboid, stream_id) whose NATS target
 * collides with target; caller holds the lock.
 */
static bool
find_nats_conflict(Oid dboid, int32 stream_id, const PgsNatsTarget *target,
				   PgsNatsConflict *conflict)
{
	int			i;

	for (i = 0; i < pgs_shared->max_streams; i++)
	{
		PgsStreamSlot *entry = &pgs_shared->streams[i];
		const PgsNatsTarget *other = &entry->nats_target;

		if (!entry->in_use || entry->pid == 0 || !entry->has_nats_target ||
			(entry->dboid == dboid && entry->stream_id == stream_id) ||
			!pgs_nats_targets_collide(target, other, &conflict->same_stream))
			continue;
		conflict->dboid = entry->dboid;
		SpinLockAcquire(&entry->mutex);
		strlcpy(conflict->name, entry->name, NAMEDATALEN);
		SpinLockRelease(&entry->mutex);
		strlcpy(conflict->database, other->database, NAMEDATALEN);
		strlcpy(conflict->prefix, other->prefix, PGS_NATS_NAME_LEN);
		return true;
	}
	return false;
}

/*
 * Whether a running stream other than (dboid, stream_id) writes where
 * target would: for the early checks of the SQL functions, which a worker
 * starting meanwhile can still pass (pgs_shmem_claim_nats_target decides).
 */
bool
pgs_shmem_find_nats_conflict(Oid dboid, int32 stream_id,
							 const PgsNatsTarget *target,
							 PgsNatsConflict *conflict)
{
	bool		found;

	LWLockAcquire(pgs_shared->lock, LW_SHARED);
	found = find_nats_conflict(dboid, stream_id, target, conflict);
	LWLockRelease(pgs_shared->lock);
	return found;
}

/*
 * Record target as the NATS target of the calling worker's entry, unless a
 * running stream of any database already writes there (then returns false
 * with *conflict).  The check and the claim are one step under the
 * exclusive lock, so of two workers starting at once only one passes.
 */
bool
pgs_shmem_claim_nats_target(Oid dboid, int32 stream_id,
							const PgsNatsTarget *target,
							PgsNatsConflict *conflict)
{
	PgsStreamSlot *entry;

	LWLockAcquire(pgs_shared->lock, LW_EXCLUSIVE);
	entry = find_entry(dboid, stream_id);
	if (entry == NULL || entry->pid != MyProcPid)
	{
		LWLockRelease(pgs_shared->lock);
		elog(ERROR, "registry entry of stream %d is not held by this process",
			 stream_id);
	}
	if (find_nats_conflict(dboid, stream_id, target, conflict))
	{
		LWLockRelease(pgs_shared->lock);
		return false;
	}
	entry->nats_target = *target;
	entry->has_nats_target = true;
	LWLockRelease(pgs_shared->lock);
	return true;
}
