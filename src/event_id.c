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
 * The resume rule, given the last message the target stored (R):
 *
 * - R is in this server's history (its timeline is this server's or an
 *   ancestor's, and R's LSN is before the point where that timeline was
 *   left) and not beyond the flushed WAL: every event of R's namespace
 *   whose (commit LSN, position) is at or before R's was stored, because
 *   events are sent in that order and the target stores them in order (the
 *   chain).  Nothing of another namespace is skipped.
 * - R was written on a timeline this server left after R's LSN, or never
 *   had, or has an id of the earlier format: R tells nothing about this
 *   history, so nothing is skipped.  What the replay sends again is either
 *   new (other ids) or in the duplicate window.
 * - R is on this server's timeline but beyond the WAL it has: this server
 *   is an older copy of the one that wrote R (a file-level restore, which
 *   keeps the timeline).  Its new transactions would get the ids of R's
 *   predecessors, and JetStream would drop them as duplicates; the stream
 *   must not go on (the caller fails it).
 * - A heartbeat R says that every transaction committed before its LSN was
 *   stored, as the sink checks before it sends one (nats_sink.c).
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
#include "access/xlog.h"
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
}

/* The timeline on which lsn was written, in this server's history */
static TimeLineID
timeline_of(XLogRecPtr lsn)
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
		/* a unit of its own, outside transactions */
		id->lsn = ev->lsn;
		id->position = 0;
	}
	else
	{
		id->lsn = ev->final_lsn;
		id->position = ev->position;
		id->snapshot = ev->snapshot_attempt;
	}
	if (ev->kind == PGS_EVENT_RELATION)
		id->relid = ev->rel->relid;
	id->tli = timeline_of(id->lsn);
}

/*
 * A heartbeat's id.  stored_before: every transaction that committed
 * before it is stored in the target.
 */
void
pgs_event_id_heartbeat(XLogRecPtr stored_before, int64 time, PgsEventId *id)
{
	memset(id, 0, sizeof(PgsEventId));
	id->heartbeat = true;
	id->lsn = stored_before;
	id->position = time;
	id->tli = timeline_of(stored_before);
}

/* Upper-case hex of value, as "%X" prints it; returns the length */
static int
format_hex(char *buf, uint64 value)
{
	char		tmp[17];
	int			n = 0;
	int			i;

	do
	{
		tmp[n++] = "0123456789ABCDEF"[value & 0xF];
		value >>= 4;
	} while (value != 0);
	for (i = 0; i < n; i++)
		buf[i] = tmp[n - 1 - i];
	return n;
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
	n += format_hex(buf + n, (uint32) (id->lsn >> 32));
	buf[n++] = '/';
	n += format_hex(buf + n, (uint32) id->lsn);
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
 * Set up the resume point from the id of the last event the target
 * stored, and say what it means for this server (see the file header).
 */
PgsResumeVerdict
pgs_resume_start(PgsResumePoint *r, const PgsEventId *last)
{
	ListCell   *lc;
	bool		in_history = false;

	memset(r, 0, sizeof(PgsResumePoint));
	r->last = *last;
	if (history == NIL)
		pgs_event_id_init();
	if (last->tli == 0)
		return PGS_RESUME_OTHER_EPOCH;

	foreach(lc, history)
	{
		TimeLineHistoryEntry *tle = (TimeLineHistoryEntry *) lfirst(lc);

		if (tle->tli == last->tli)
		{
			/* end is where this server left the timeline; Invalid: never */
			in_history = XLogRecPtrIsInvalid(tle->end) || last->lsn < tle->end;
			break;
		}
	}
	if (!in_history)
		return PGS_RESUME_OTHER_EPOCH;

	/*
	 * What the target stored was decoded from WAL that this server flushed,
	 * and flushed WAL survives crashes: WAL beyond R's LSN was lost, as in
	 * a restore of an older copy of the data directory.
	 */
	if (last->tli == current_tli && last->lsn > GetFlushRecPtr(NULL))
		return PGS_RESUME_AHEAD_OF_WAL;

	r->active = true;
	return PGS_RESUME_AFTER;
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

	/* a heartbeat: every transaction committed before its LSN is stored */
	if (last->heartbeat)
	{
		if (id->snapshot == 0 && id->lsn < last->lsn)
			return true;
		r->active = false;
		return false;
	}

	/*
	 * The namespaces follow each other (a snapshot, then the changes), and
	 * a snapshot attempt is never sent twice: an event of another namespace
	 * than R's comes after everything stored.
	 */
	if (id->snapshot != last->snapshot || id->lsn > last->lsn)
	{
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
