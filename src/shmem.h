/*-------------------------------------------------------------------------
 *
 * shmem.h
 *		Shared registry of running streams.
 *
 * Copyright (c) 2026, pgoutput_stream developers
 *
 * IDENTIFICATION
 *		src/shmem.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGS_SHMEM_H
#define PGS_SHMEM_H

#include "access/xlogdefs.h"
#include "datatype/timestamp.h"
#include "port/atomics.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/spin.h"

#define PGS_ERROR_LEN	512

/* Sizes of the parts of a NATS target identity (PgsNatsTarget) */
#define PGS_NATS_SERVERS_LEN	512
#define PGS_NATS_NAME_LEN		256

/* Targets, in the order of their per-target counters */
#define PGS_NUM_TARGETS		3
extern const char *const pgs_target_names[PGS_NUM_TARGETS];

typedef enum PgsStreamState
{
	PGS_STATE_STOPPED = 0,		/* worker ended on request */
	PGS_STATE_STARTING,			/* worker started, slot not yet decoding */
	PGS_STATE_STREAMING,		/* decoding and delivering */
	PGS_STATE_WAITING,			/* waiting for a target to come back */
	PGS_STATE_CATCHING_UP,		/* decoding a backlog of WAL */
	PGS_STATE_STOPPING,			/* stop requested, worker still running */
	PGS_STATE_RESTARTING,		/* worker ended with an error, will restart */
	PGS_STATE_FAILED,			/* cannot continue without operator action */
	PGS_STATE_SNAPSHOT			/* sending the initial snapshot */
} PgsStreamState;

/*
 * Where a stream's nats target writes: the NATS servers (normalised by
 * pgs_nats_server_list), the subject prefix and the JetStream stream.  Two
 * streams of a cluster must not write the same JetStream stream or
 * overlapping subjects on one server, unless both set nats_shared_stream.
 * A text too long for its field is cut at a boundary that keeps the
 * comparison conservative (see pgs_nats_target_init).
 */
typedef struct PgsNatsTarget
{
	char		servers[PGS_NATS_SERVERS_LEN];
	char		prefix[PGS_NATS_NAME_LEN];
	char		stream[PGS_NATS_NAME_LEN];
	bool		shared;			/* nats_shared_stream */
	char		database[NAMEDATALEN];	/* of the stream, for messages */
} PgsNatsTarget;

/* The running stream a NATS target collides with */
typedef struct PgsNatsConflict
{
	Oid			dboid;
	char		name[NAMEDATALEN];
	char		database[NAMEDATALEN];
	bool		same_stream;	/* the same JetStream stream, else only
								 * overlapping subjects */
	char		prefix[PGS_NATS_NAME_LEN];	/* its subject prefix */
} PgsNatsConflict;

/*
 * One stream's entry.
 *
 * The LWLock in PgsSharedState protects in_use, dboid, stream_id, pid,
 * latch, has_nats_target and nats_target: a worker claims its entry, and
 * then its NATS target, under the exclusive lock, which is what guarantees
 * one worker per stream and one writer per JetStream stream.  The remaining fields are written only
 * by the entry's worker (or, for stop_requested, by backends), and read by
 * stream_status; they are guarded by the entry's spinlock so that readers
 * see consistent values.
 */
typedef struct PgsStreamSlot
{
	bool		in_use;
	Oid			dboid;
	int32		stream_id;
	pid_t		pid;			/* worker holding the entry, 0 if none */
	Latch	   *latch;			/* that worker's latch */
	bool		has_nats_target;	/* that worker claimed nats_target */
	PgsNatsTarget nats_target;

	slock_t		mutex;
	bool		stop_requested;
	PgsStreamState state;
	char		name[NAMEDATALEN];
	XLogRecPtr	confirmed_lsn;
	XLogRecPtr	decoded_lsn;
	uint64		transactions;
	uint64		events;
	uint64		bytes;
	char		last_error[PGS_ERROR_LEN];
	TimestampTz last_error_at;
	TimestampTz started_at;
	char		wait_reason[PGS_ERROR_LEN];	/* what a waiting stream waits
											 * for */
	TimestampTz confirmed_commit_time;	/* commit time of the newest
										 * confirmed transaction */
	uint32		inflight;		/* messages sent, not yet acknowledged */
	TimestampTz last_ack_at;
	uint64		retries;
	uint64		target_sent[PGS_NUM_TARGETS];	/* messages, rows or log
												 * lines per target */
	uint64		retained_wal;	/* bytes of WAL the slot keeps */
	bool		wal_warning;	/* retained_wal above the threshold */
	int			snapshot_tables_total;	/* initial snapshot progress */
	int			snapshot_tables_done;
	uint64		snapshot_rows;
} PgsStreamSlot;

typedef struct PgsSharedState
{
	LWLock	   *lock;
	pg_atomic_uint32 running;	/* entries with a worker; commit callbacks
								 * skip all work when zero */
	pg_atomic_uint64 latest_commit_end; /* highest commit end LSN seen by
										 * the commit wake-up */
	int			max_streams;
	PgsStreamSlot streams[FLEXIBLE_ARRAY_MEMBER];
} PgsSharedState;

extern PgsSharedState *pgs_shared;

extern void pgs_shmem_init(void);

extern PgsStreamSlot *pgs_shmem_claim(Oid dboid, int32 stream_id,
									  const char *name, bool *busy,
									  bool *holder_stopping);
extern void pgs_shmem_release(PgsStreamSlot *entry, bool failed);
extern bool pgs_shmem_request_stop(Oid dboid, int32 stream_id);
extern pid_t pgs_shmem_worker_pid(Oid dboid, int32 stream_id);
extern void pgs_shmem_forget(Oid dboid, int32 stream_id);
extern bool pgs_shmem_has_free_entry(Oid dboid, int32 stream_id);
extern void pgs_shmem_set_state(PgsStreamSlot *entry, PgsStreamState state);
extern void pgs_shmem_set_error(PgsStreamSlot *entry, const char *message);
extern void pgs_shmem_set_waiting(PgsStreamSlot *entry, const char *reason);
extern const char *pgs_state_name(PgsStreamState state);
extern void pgs_shmem_wake_database(Oid dboid);

extern void pgs_nats_target_init(PgsNatsTarget *target, const char *urls,
								 const char *prefix, const char *stream,
								 bool shared, const char *database);
extern bool pgs_nats_targets_collide(const PgsNatsTarget *a,
									 const PgsNatsTarget *b,
									 bool *same_stream);
extern bool pgs_shmem_find_nats_conflict(Oid dboid, int32 stream_id,
										 const PgsNatsTarget *target,
										 PgsNatsConflict *conflict);
extern bool pgs_shmem_claim_nats_target(Oid dboid, int32 stream_id,
										const PgsNatsTarget *target,
										PgsNatsConflict *conflict);

#endif							/* PGS_SHMEM_H */
