/*-------------------------------------------------------------------------
 *
 * event_id.c
 *		The identity of an event, and the rule that decides what a target
 *		already stored.
 *
 * "Every event exactly once in JetStream" rests on two things that must
 * agree: the id each message carries (JetStream drops a message whose id
 * it stored within its duplicate window), and the resume rule (after a
 * restart, the worker skips every event up to the last message the target
 * stored, however old).  Both are decided here and nowhere else.
 *
 * An event is identified by:
 *
 * - the commit LSN of its transaction (a non-transactional logical
 *   message: its own LSN).  Within one history of the server, transactions
 *   are decoded in the order of their commit LSN.
 * - its position in the transaction, numbered from the pgoutput messages
 *   of the transaction BEFORE the stream's own filters: Begin 0, every
 *   change (a row, a transactional message, each relation of a TRUNCATE)
 *   the next number, Commit the number after the last change.  A Relation
 *   event takes the position of the change it describes, told apart by its
 *   relation.  pgoutput's output for a transaction depends only on the WAL
 *   and on the publication as of that WAL (its caches are historic), so
 *   the positions are the same in every decoding session, whatever the
 *   stream's format, filters or transaction_events say: alter_stream does
 *   not renumber a replay.  (Numbering the events a stream emits, as the
 *   first versions did, let a replay after alter_stream skip events that
 *   were never stored.)
 * - the timeline on which its commit LSN was written.  LSNs are unique only
 *   within one history: after a point-in-time restore or the promotion of
 *   a standby, new transactions reuse LSNs that the abandoned timeline had
 *   given to others, whose messages may be in JetStream.  Both histories
 *   agree below the switch point, so the timeline of an LSN is looked up
 *   in this server's history: an event before the switch point has the
 *   same id on the old and the new server.
 * - the namespace: decoded changes, or the rows of one attempt of the
 *   initial snapshot.  The snapshot borrows the slot's start LSN as its
 *   commit LSN, and a transaction whose commit record starts at that very
 *   LSN is decoded too; each attempt of the snapshot reads other rows.
 *
 * Id text, in the Nats-Msg-Id header:
 *
 *	 <slot>:t<tli>:<commit LSN>:<position>[:r<relid>]			 a change
 *	 <slot>:t<tli>s<attempt>:<commit LSN>:<position>[:r<relid>]  a snapshot row
 *	 <slot>:t<tli>:<LSN>:hb<microseconds>						 a heartbeat
 *
 * The resume rule, given the last event the target stored (R; a heartbeat
 * stands for the event stored before it, which it names):
 *
 * - R is in this server's history (its timeline is this server's, or one
 *   this server came from and R's LSN is before the point where it left
 *   it): every event of R's namespace whose (commit LSN, position) is at
 *   or before R's was stored, because events are sent in that order and
 *   the target stores them in that order (the chain).  Nothing of another
 *   namespace is skipped.  If the replay can reach R (R is after the slot's
 *   confirmed position), R is first checked against this server's WAL:
 *   the commit record of R's transaction, with R's xid, must start at R's
 *   LSN (or R's non-transactional message end there).  A server restored from an older copy
 *   without a new timeline, or a message forged by someone who may publish
 *   to the stream's subjects, fails the check: LSNs alone cannot tell, as
 *   the copy's WAL may have grown past R's LSN with other transactions,
 *   which would then be skipped.  Nothing is safe then; the caller fails
 *   the stream.
 * - R is on a timeline this server left before R's LSN: the events of this
 *   server's history before the switch point were stored before R, since
 *   both histories agree there; those are skipped, nothing after.
 * - R is on a timeline this server never had, or was published unchained
 *   (without the chain, events before it may be missing): nothing is
 *   skipped.  What the replay sends again is either new (other ids) or
 *   dropped by the target's duplicate window.
 * - R has an id of the earlier format (positions counted differently):
 *   once checked against the WAL as above, the transactions committed
 *   before R's LSN are skipped.
 *
 * The formatting function runs on the NATS acknowledgement thread too, so
 * it uses no PostgreSQL memory or error functions.
 *
 * Copyright (c) 2026, pgoutput_stream developers
 *
 * IDENTIFICATION
 *		src/event_id.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/timeline.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "access/xlog_internal.h"
#include "access/xlogreader.h"
#include "access/xlogutils.h"
#include "miscadmin.h"
#include "replication/message.h"
#include "nodes/pg_list.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "event_id.h"

/* this server's timeline and its history, read once per worker */
static TimeLineID current_tli = 0;
static List *history = NIL;

/*
 * Read this server's timeline history.  The worker runs on a primary only,
 * and a primary's timeline does not change while it runs.
 */
void
pgs_event_id_init(void)
{
	MemoryContext old;

	current_tli = GetWALInsertionTimeLine();
	old = MemoryContextSwitchTo(TopMemoryContext);
	list_free_deep(history);
	history = readTimeLineHistory(current_tli);
	MemoryContextSwitchTo(old);

	/*
	 * Without its history file (readTimeLineHistory() then assumes no
	 * parents), every event before the switch point would get this
	 * timeline in its id, and be stored a second time.
	 */
	if (current_tli > 1 && list_length(history) < 2)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the history file of timeline %u is missing", current_tli),
				 errdetail("Message ids name the timeline on which each change was written, which the history of the server's timelines says."),
				 errhint("Restore the file \"%08X.history\" into pg_wal from the WAL archive.",
						 current_tli)));
}

/* The timeline on which lsn was written, in this server's history */
TimeLineID
pgs_event_timeline(XLogRecPtr lsn)
{
	if (history == NIL)
		pgs_event_id_init();
	/* the newest timeline comes first, and holds almost every LSN we see */
	if (lsn >= ((TimeLineHistoryEntry *) linitial(history))->begin)
		return current_tli;
	return tliOfPointInHistory(lsn, history);
}

void
pgs_event_id_of(const PgsEvent *ev, PgsEventId *id)
{
	memset(id, 0, sizeof(PgsEventId));
	if (ev->kind == PGS_EVENT_MESSAGE && !ev->msg_transactional)
	{
		/*
		 * A unit of its own, outside transactions.  Its LSN is its record's
		 * end, which may be a switch point: the record was written on the
		 * timeline before it.
		 */
		id->lsn = ev->lsn;
		id->position = 0;
		id->tli = pgs_event_timeline(ev->lsn - 1);
	}
	else
	{
		id->lsn = ev->final_lsn;
		id->position = ev->position;
		id->snapshot = ev->snapshot_attempt;
		id->tli = pgs_event_timeline(id->lsn);
	}
	if (ev->kind == PGS_EVENT_RELATION)
		id->relid = ev->rel->relid;
}

/*
 * A heartbeat's id: lsn is the slot's confirmed position, shown to
 * consumers; time makes it unique.  It is no resume point of its own (see
 * the file header).
 */
void
pgs_event_id_heartbeat(XLogRecPtr lsn, int64 time, PgsEventId *id)
{
	memset(id, 0, sizeof(PgsEventId));
	id->heartbeat = true;
	id->lsn = lsn;
	id->position = time;
	id->tli = pgs_event_timeline(lsn);
}

/*
 * v in upper-case hexadecimal without leading zeros, as "%X" prints it,
 * NUL-terminated; returns the length.  Ids and LSN headers are formatted
 * several times per message, where snprintf's parsing of its format cost
 * more than the rest of the message's headers; no PostgreSQL memory or
 * error calls (the NATS acknowledgement thread formats ids too).
 */
int
pgs_format_hex(char *buf, uint64 v)
{
	static const char digits[] = "0123456789ABCDEF";
	char		reversed[16];
	int			n = 0;
	int			len = 0;

	do
	{
		reversed[n++] = digits[v & 0xF];
		v >>= 4;
	} while (v != 0);
	while (n > 0)
		buf[len++] = reversed[--n];
	buf[len] = '\0';
	return len;
}

/* An LSN as "%X/%X" prints it, NUL-terminated; returns the length */
int
pgs_format_lsn(char *buf, XLogRecPtr lsn)
{
	int			n = pgs_format_hex(buf, (uint32) (lsn >> 32));

	buf[n++] = '/';
	return n + pgs_format_hex(buf + n, (uint32) lsn);
}

/*
 * Write the id of an event of slot into buf (PGS_EVENT_ID_LEN bytes);
 * returns its length.  No PostgreSQL memory or error calls: the NATS
 * acknowledgement thread uses it too.
 */
int
pgs_event_id_format(char *buf, const char *slot, const PgsEventId *id)
{
	/* a slot name is shorter than NAMEDATALEN; the rest takes < 80 bytes */
	int			n = (int) strlcpy(buf, slot, NAMEDATALEN);

	buf[n++] = ':';
	buf[n++] = 't';
	n += pg_ultoa_n(id->tli, buf + n);
	if (id->snapshot > 0)
	{
		buf[n++] = 's';
		n += pg_ultoa_n((uint32) id->snapshot, buf + n);
	}
	buf[n++] = ':';
	n += pgs_format_lsn(buf + n, id->lsn);
	buf[n++] = ':';
	if (id->heartbeat)
	{
		buf[n++] = 'h';
		buf[n++] = 'b';
	}
	n += pg_lltoa(id->position, buf + n);
	if (!id->heartbeat && OidIsValid(id->relid))
	{
		buf[n++] = ':';
		buf[n++] = 'r';
		n += pg_ultoa_n(id->relid, buf + n);
	}
	buf[n] = '\0';
	return n;
}

/* Parse an unsigned decimal or (hex) hexadecimal number; advances *p */
static bool
parse_number(const char **p, bool hex, uint64 limit, uint64 *value)
{
	const char *s = *p;
	uint64		v = 0;

	if (!(hex ? isxdigit((unsigned char) *s) : isdigit((unsigned char) *s)))
		return false;
	while (hex ? isxdigit((unsigned char) *s) : isdigit((unsigned char) *s))
	{
		int			d = isdigit((unsigned char) *s) ? *s - '0' :
		(pg_ascii_toupper((unsigned char) *s) - 'A' + 10);

		if (v > (limit - d) / (hex ? 16 : 10))
			return false;
		v = v * (hex ? 16 : 10) + d;
		s++;
	}
	*p = s;
	*value = v;
	return true;
}

/*
 * Parse the id text of an event of slot.  Returns false if it is not an id
 * of this slot, in this format or the earlier one
 * ("<slot>:<commit LSN>:<position>[:r<relid>]", "<slot>:<LSN>:hb<time>"),
 * which is parsed with timeline 0.
 */
bool
pgs_event_id_parse(const char *text, const char *slot, PgsEventId *id)
{
	size_t		slot_len = strlen(slot);
	const char *p = text;
	uint64		hi;
	uint64		lo;
	uint64		v;

	memset(id, 0, sizeof(PgsEventId));
	if (strncmp(p, slot, slot_len) != 0 || p[slot_len] != ':')
		return false;
	p += slot_len + 1;
	if (*p == 't')
	{
		p++;
		if (!parse_number(&p, false, PG_UINT32_MAX, &v) || v == 0)
			return false;
		id->tli = (TimeLineID) v;
		if (*p == 's')
		{
			p++;
			if (!parse_number(&p, false, PG_INT32_MAX, &v) || v == 0)
				return false;
			id->snapshot = (int32) v;
		}
		if (*p++ != ':')
			return false;
	}
	if (!parse_number(&p, true, PG_UINT32_MAX, &hi) || *p++ != '/' ||
		!parse_number(&p, true, PG_UINT32_MAX, &lo) || *p++ != ':')
		return false;
	id->lsn = (hi << 32) | lo;
	if (p[0] == 'h' && p[1] == 'b')
	{
		p += 2;
		id->heartbeat = true;
	}
	if (!parse_number(&p, false, PG_INT64_MAX, &v))
		return false;
	id->position = (int64) v;
	if (!id->heartbeat && p[0] == ':' && p[1] == 'r')
	{
		p += 2;
		if (!parse_number(&p, false, PG_UINT32_MAX, &v) || v == 0)
			return false;
		id->relid = (Oid) v;
	}
	return *p == '\0';
}

/*
 * Whether this server's WAL has the record that made the stored event: the
 * commit record of its transaction starting at its commit LSN, or its
 * non-transactional logical message ending at its LSN (logical decoding
 * gives a message the LSN of its record's end).  The WAL is read from
 * from, the slot's confirmed position, which is not before the slot's
 * restart position (the WAL from there is kept), up to the event; that is
 * the tail the replay would skip, short unless the server is not the one
 * that stored the event.
 */
static bool
wal_has_event(const PgsStoredEvent *last, XLogRecPtr from)
{
	XLogReaderState *reader;
	XLogRecPtr	start;
	XLogRecPtr	flushed = GetFlushRecPtr(NULL);
	char	   *errormsg = NULL;
	bool		match = false;

	ReadLocalXLogPageNoWaitPrivate no_wait = {0};

	/* a record beyond the flushed WAL ends the scan instead of a wait */
	reader = XLogReaderAllocate(wal_segment_size, NULL,
								XL_ROUTINE(.page_read = read_local_xlog_page_no_wait,
										   .segment_open = wal_segment_open,
										   .segment_close = wal_segment_close),
								&no_wait);
	if (reader == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory"),
				 errdetail("Failed while allocating a WAL reading processor.")));
	start = XLogFindNextRecord(reader, from);
	if (!XLogRecPtrIsInvalid(start))
	{
		XLogBeginRead(reader, start);
		for (;;)
		{
			RmgrId		rmid;
			uint8		info;

			CHECK_FOR_INTERRUPTS();
			if (XLogReadRecord(reader, &errormsg) == NULL)
			{
				if (errormsg != NULL)
					ereport(LOG,
							(errmsg("could not read WAL at %X/%X to check the last stored event: %s",
									LSN_FORMAT_ARGS(reader->EndRecPtr), errormsg)));
				break;
			}
			if (reader->ReadRecPtr > last->id.lsn)
				break;
			rmid = XLogRecGetRmid(reader);
			info = XLogRecGetInfo(reader) & ~XLR_INFO_MASK;
			if (TransactionIdIsValid(last->xid))
			{
				if (reader->ReadRecPtr == last->id.lsn && rmid == RM_XACT_ID &&
					((info & XLOG_XACT_OPMASK) == XLOG_XACT_COMMIT ||
					 (info & XLOG_XACT_OPMASK) == XLOG_XACT_COMMIT_PREPARED))
				{
					xl_xact_parsed_commit parsed;
					TransactionId xid;

					ParseCommitRecord(XLogRecGetInfo(reader),
									  (xl_xact_commit *) XLogRecGetData(reader),
									  &parsed);
					xid = (info & XLOG_XACT_OPMASK) == XLOG_XACT_COMMIT_PREPARED ?
						parsed.twophase_xid : XLogRecGetXid(reader);
					match = (xid == last->xid);
				}
				if (reader->ReadRecPtr == last->id.lsn)
					break;
			}
			else
			{
				if (reader->EndRecPtr == last->id.lsn &&
					rmid == RM_LOGICALMSG_ID && info == XLOG_LOGICAL_MESSAGE)
					match = !((xl_logical_message *) XLogRecGetData(reader))->transactional;
				if (reader->EndRecPtr >= last->id.lsn)
					break;
			}
			/* no further: read_local_xlog_page would wait for more WAL */
			if (reader->EndRecPtr >= flushed)
				break;
		}
	}
	XLogReaderFree(reader);
	return match;
}

/*
 * Whether the stored event is in this server's WAL, as far as it matters.
 * Only an event the replay can reach needs the check: the replay starts
 * at the slot's confirmed position, and every event it sends commits (or,
 * a non-transactional message, ends) after it.
 */
static bool
event_in_wal(const PgsStoredEvent *last, XLogRecPtr slot_confirmed)
{
	if (XLogRecPtrIsInvalid(slot_confirmed))
		return true;
	/* a commit record starting at the confirmed position is decoded */
	if (TransactionIdIsValid(last->xid) ? last->id.lsn < slot_confirmed :
		last->id.lsn <= slot_confirmed)
		return true;
	if (last->id.lsn > GetFlushRecPtr(NULL))
		return false;
	return wal_has_event(last, slot_confirmed);
}

/*
 * Set up the resume point from the last event the target stored, and say
 * what it means for this server (see the file header).  slot_confirmed:
 * the slot's confirmed position, where the replay starts; Invalid if the
 * slot does not exist yet.
 */
PgsResumeVerdict
pgs_resume_start(PgsResumePoint *r, const PgsStoredEvent *last,
				 XLogRecPtr slot_confirmed)
{
	const PgsEventId *id = &last->id;
	TimeLineHistoryEntry *tle = NULL;
	ListCell   *lc;

	memset(r, 0, sizeof(PgsResumePoint));
	r->last = *id;
	if (history == NIL)
		pgs_event_id_init();

	/* the earlier format: positions were numbered otherwise */
	if (id->tli == 0)
		return PGS_RESUME_OTHER_EPOCH;

	/*
	 * On this server's timeline, the event must be in its WAL, also if it
	 * skips nothing: else this server is an older copy of the one that
	 * stored it, whose new events would get ids the target already has.
	 * (A snapshot's Commit LSN is the slot's start, no record of its own.)
	 */
	if (id->tli == current_tli &&
		(id->snapshot > 0 ? id->lsn > GetFlushRecPtr(NULL) :
		 !event_in_wal(last, slot_confirmed)))
		return PGS_RESUME_NOT_IN_WAL;

	/* unchained, it may have been stored after one that was not */
	if (last->unchained)
		return PGS_RESUME_OTHER_EPOCH;

	foreach(lc, history)
	{
		if (((TimeLineHistoryEntry *) lfirst(lc))->tli == id->tli)
		{
			tle = (TimeLineHistoryEntry *) lfirst(lc);
			break;
		}
	}
	if (tle == NULL)
		return PGS_RESUME_OTHER_EPOCH;

	/* end is where this server left the timeline; Invalid: never */
	if (!XLogRecPtrIsInvalid(tle->end) && id->lsn >= tle->end)
	{
		r->active = (id->snapshot == 0);
		r->stored_before = tle->end;
		return PGS_RESUME_OTHER_EPOCH;
	}

	/* on an earlier timeline of this server's history */
	if (id->tli != current_tli && id->snapshot == 0 &&
		!event_in_wal(last, slot_confirmed))
		return PGS_RESUME_NOT_IN_WAL;

	r->active = true;
	r->by_position = true;
	return PGS_RESUME_AFTER;
}

/*
 * Whether the event with id id is sent after the one with id mark: a later
 * namespace or commit LSN, or a later position in the same transaction.
 */
bool
pgs_event_id_after(const PgsEventId *id, const PgsEventId *mark)
{
	return id->snapshot != mark->snapshot || id->lsn > mark->lsn ||
		(id->lsn == mark->lsn && id->position > mark->position);
}

/*
 * Whether the target stored the event with this id before the current
 * life of the stream began.  Called for the events in the order they are
 * sent.
 */
bool
pgs_resume_already_stored(PgsResumePoint *r, const PgsEventId *id)
{
	const PgsEventId *last = &r->last;

	if (!r->active)
		return false;

	/* only what committed before a point is known to be stored */
	if (!r->by_position)
	{
		/* a snapshot being taken comes before the changes, skips nothing */
		if (id->snapshot != 0)
			return false;
		if (id->lsn < r->stored_before)
			return true;
		r->active = false;
		return false;
	}

	/*
	 * The namespaces follow each other (a snapshot, then the changes), and
	 * a snapshot attempt is never sent twice: an event of another namespace
	 * than R's comes after everything stored.
	 */
	if (id->snapshot != last->snapshot || id->lsn > last->lsn ||
		(id->snapshot != 0 && id->lsn != last->lsn))
	{
		/* (another slot's snapshot has another start, even if numbered alike) */
		r->active = false;
		return false;
	}
	if (id->lsn < last->lsn || id->position < last->position)
		return true;
	if (id->position > last->position)
		return false;
	/* same position: relation events come before the change they describe */
	if (!OidIsValid(last->relid))
		return true;			/* the change itself was stored */
	if (!OidIsValid(id->relid))
		return false;
	/* several relation events (a TRUNCATE): stored up to last->relid */
	if (r->relations_done)
		return false;
	if (id->relid == last->relid)
		r->relations_done = true;
	return true;
}
