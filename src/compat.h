/*-------------------------------------------------------------------------
 *
 * compat.h
 *		Every PostgreSQL version difference the extension depends on.
 *
 * The code base targets PostgreSQL 14 to 17.  Where a server function
 * changed its signature between those releases, the rest of the code calls
 * the pgs_ wrapper defined here, so that version checks stay in one place.
 *
 * Copyright (c) 2026, pgoutput_stream developers
 *
 * IDENTIFICATION
 *		src/compat.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGS_COMPAT_H
#define PGS_COMPAT_H

#include "access/transam.h"
#include "access/xlog.h"
#include "replication/logical.h"
#include "replication/slot.h"

#if PG_VERSION_NUM >= 150000
#include "access/xlogrecovery.h"
#endif

/* End of WAL that is safe to decode: flushed on a primary, replayed on a standby */
static inline XLogRecPtr
pgs_wal_end(void)
{
	if (RecoveryInProgress())
		return GetXLogReplayRecPtr(NULL);
#if PG_VERSION_NUM >= 150000
	return GetFlushRecPtr(NULL);
#else
	return GetFlushRecPtr();
#endif
}

static inline void
pgs_slot_acquire(const char *name)
{
#if PG_VERSION_NUM >= 180000
	ReplicationSlotAcquire(name, true, true);
#else
	ReplicationSlotAcquire(name, true);
#endif
}

/*
 * Create and acquire a logical slot of this database that is dropped on
 * release or at restart until ReplicationSlotPersist(); 17 added the
 * failover and synced flags.
 */
static inline void
pgs_slot_create_ephemeral(const char *name)
{
#if PG_VERSION_NUM >= 170000
	ReplicationSlotCreate(name, true, RS_EPHEMERAL, false, false, false);
#else
	ReplicationSlotCreate(name, true, RS_EPHEMERAL, false);
#endif
}

/*
 * Whether the acquired slot was invalidated (its WAL removed).  14 and 15
 * mark that by clearing restart_lsn; 16 added an explicit reason.
 */
static inline bool
pgs_slot_is_invalidated(ReplicationSlot *slot)
{
#if PG_VERSION_NUM >= 160000
	return slot->data.invalidated != RS_INVAL_NONE;
#else
	return XLogRecPtrIsInvalid(slot->data.restart_lsn);
#endif
}

/* Oldest transaction whose commit status can still be looked up */
static inline TransactionId
pgs_oldest_clog_xid(void)
{
#if PG_VERSION_NUM >= 170000
	return TransamVariables->oldestClogXid;
#else
	return ShmemVariableCache->oldestClogXid;
#endif
}

#if PG_VERSION_NUM >= 170000
#define PGS_BGWORKER_BYPASS_FLAGS	(BGWORKER_BYPASS_ALLOWCONN | BGWORKER_BYPASS_ROLELOGINCHECK)
#else
#define PGS_BGWORKER_BYPASS_FLAGS	BGWORKER_BYPASS_ALLOWCONN
#endif

/*
 * Map of the attributes of outdesc to those of indesc, matched by name; 16
 * added missing_ok (false keeps 14 and 15's behaviour: an error).
 */
#if PG_VERSION_NUM >= 160000
#define pgs_build_attrmap_by_name(indesc, outdesc) \
	build_attrmap_by_name(indesc, outdesc, false)
#else
#define pgs_build_attrmap_by_name(indesc, outdesc) \
	build_attrmap_by_name(indesc, outdesc)
#endif

#if PG_VERSION_NUM < 150000
#define MarkGUCPrefixReserved(prefix) EmitWarningsOnPlaceholders(prefix)
#endif

/*
 * Wait events: custom, named ones on 17+ (shown in pg_stat_activity as
 * wait_event "PgoutputStreamIdle" etc.), the generic "Extension" before.
 * WaitEventExtensionNew() returns the same id for the same name in every
 * process, so each process just asks once.
 */
#include "utils/wait_event.h"
#if PG_VERSION_NUM >= 170000
#define PGS_DEFINE_WAIT_EVENT(fn, name) \
static inline uint32 \
fn(void) \
{ \
	static uint32 id = 0; \
	if (id == 0) \
		id = WaitEventExtensionNew(name); \
	return id; \
}
#else
#define PGS_DEFINE_WAIT_EVENT(fn, name) \
static inline uint32 \
fn(void) \
{ \
	return PG_WAIT_EXTENSION; \
}
#endif

/* what a process of the extension waits for */
PGS_DEFINE_WAIT_EVENT(pgs_wait_idle, "PgoutputStreamIdle")
PGS_DEFINE_WAIT_EVENT(pgs_wait_target, "PgoutputStreamTarget")
PGS_DEFINE_WAIT_EVENT(pgs_wait_handover, "PgoutputStreamHandover")
PGS_DEFINE_WAIT_EVENT(pgs_wait_launcher, "PgoutputStreamLauncher")

#define PGS_WAIT_IDLE		pgs_wait_idle()
#define PGS_WAIT_TARGET		pgs_wait_target()
#define PGS_WAIT_HANDOVER	pgs_wait_handover()
#define PGS_WAIT_LAUNCHER	pgs_wait_launcher()

#endif							/* PGS_COMPAT_H */
