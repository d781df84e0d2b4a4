/*-------------------------------------------------------------------------
 *
 * snapshot.h
 *		A stream's initial snapshot: the existing rows before the changes.
 *
 * Copyright (c) 2026, pgoutput_stream developers
 *
 * IDENTIFICATION
 *		src/snapshot.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGS_SNAPSHOT_H
#define PGS_SNAPSHOT_H

#include "proto.h"
#include "shmem.h"
#include "stream_config.h"

/*
 * What the snapshot needs from the worker: a way to hand events to the
 * targets, and to wait until the targets acknowledged everything sent.
 */
typedef struct PgsSnapshotHooks
{
	PgsEventCallback emit;
	void	   *emit_arg;
	void		(*wait_delivered) (void);
	PgsStreamSlot *entry;		/* progress shows in stream_status */
} PgsSnapshotHooks;

/*
 * Create the stream's slot and send every row of its publication's tables
 * as they are at the slot's start, then record the snapshot as done.  Runs
 * its own transaction; leaves no slot behind if it fails.
 */
extern void pgs_snapshot_take(const PgsStreamConfig *config,
							  const PgsSnapshotHooks *hooks);
extern bool pgs_snapshot_record_delivered(const PgsStreamConfig *config,
										  int32 attempt);

#endif							/* PGS_SNAPSHOT_H */
