/*-------------------------------------------------------------------------
 *
 * event_id.h
 *		The identity of an event, and the rule that decides what a target
 *		already stored (see event_id.c).
 *
 * Copyright (c) 2026, pgoutput_stream developers
 *
 * IDENTIFICATION
 *		src/event_id.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGS_EVENT_ID_H
#define PGS_EVENT_ID_H

#include "access/xlogdefs.h"

#include "event.h"

/* "<slot>:t<tli>s<attempt>:<hi>/<lo>:hb<time>:r<relid>" fits easily */
#define PGS_EVENT_ID_LEN	(NAMEDATALEN + 80)

/*
 * Everything that makes an event's id.  Two events with the same fields are
 * the same event, decoded twice; no two different events share them.
 */
typedef struct PgsEventId
{
	TimeLineID	tli;			/* the timeline on which lsn was written;
								 * 0 in an id of the format before timelines */
	int32		snapshot;		/* attempt of the initial snapshot the event
								 * belongs to; 0 for a decoded change */
	XLogRecPtr	lsn;			/* commit LSN of the event's transaction; a
								 * non-transactional message's own LSN; a
								 * heartbeat's confirmed LSN */
	int64		position;		/* place in the transaction (see event_id.c);
								 * a heartbeat's time */
	Oid			relid;			/* a Relation event's relation, else Invalid */
	bool		heartbeat;
} PgsEventId;

/* Where the previous life of a stream stopped in a target */
typedef struct PgsResumePoint
{
	bool		active;			/* events may still be skipped */
	bool		by_position;	/* skip up to last, by (LSN, position);
								 * else only transactions committed before
								 * stored_before */
	PgsEventId	last;			/* the last event the target stored */
	XLogRecPtr	stored_before;
	bool		relations_done; /* relation events at last.position seen up
								 * to last.relid */
} PgsResumePoint;

/* The last event a target stored, as the target read it back */
typedef struct PgsStoredEvent
{
	PgsEventId	id;
	TransactionId xid;			/* its transaction's; Invalid for a
								 * non-transactional message */
	bool		unchained;		/* published without the chain: events
								 * before it may be missing */
	bool		commit;			/* the Commit of its transaction */
} PgsStoredEvent;

/* What the last event of a target says about where to resume */
typedef enum PgsResumeVerdict
{
	PGS_RESUME_AFTER,			/* in this server's history: skip up to it */
	PGS_RESUME_OTHER_EPOCH,		/* written in a history this server left or
								 * never had, unchained, or in an id of the
								 * earlier format: skip what is provably
								 * stored, if anything */
	PGS_RESUME_NOT_IN_WAL		/* on this server's timeline, but this
								 * server's WAL does not have it: a copy of
								 * the server older than the target's
								 * contents (or a forged message); nothing is
								 * safe */
} PgsResumeVerdict;

extern void pgs_event_id_init(void);
extern void pgs_event_id_of(const PgsEvent *ev, PgsEventId *id);
extern TimeLineID pgs_event_timeline(XLogRecPtr lsn);
extern bool pgs_event_id_after(const PgsEventId *id, const PgsEventId *mark);
extern int	pgs_format_hex(char *buf, uint64 v);
extern int	pgs_format_lsn(char *buf, XLogRecPtr lsn);
extern void pgs_event_id_heartbeat(XLogRecPtr lsn, int64 time, PgsEventId *id);
extern int	pgs_event_id_format(char *buf, const char *slot, const PgsEventId *id);
extern bool pgs_event_id_parse(const char *text, const char *slot, PgsEventId *id);

extern PgsResumeVerdict pgs_resume_start(PgsResumePoint *r,
										 const PgsStoredEvent *last,
										 XLogRecPtr slot_confirmed);
extern bool pgs_resume_already_stored(PgsResumePoint *r, const PgsEventId *id);

#endif							/* PGS_EVENT_ID_H */
