/*-------------------------------------------------------------------------
 *
 * proto.c
 *		Reading pgoutput protocol messages into events.
 *
 * Messages are parsed with the server's own logicalrep_read_* functions
 * (replication/logical/proto.c), which check every length against the
 * message and raise an ERROR on truncated input.  The only message without
 * a reader in core is 'M' (logical decoding message), read here with the
 * same pq_getmsg* primitives.  A message must be consumed exactly.
 *
 * Relations announced by 'R' messages are cached for the lifetime of the
 * state, each in its own small memory context.  pgoutput announces a
 * relation again after DDL but also after mere cache invalidations
 * (VACUUM, ANALYZE, storage options); only an announcement that changes
 * what consumers see (names, columns, types, keys, replica identity)
 * becomes a new Relation event, so consumers get one per relation per
 * decoding session and one after each schema change.  The event is sent
 * just before the relation's next change that passes the filters, so a
 * table whose changes are all filtered out is never announced.
 *
 * The stream's filters apply here: changes of tables filtered out and of
 * filtered operations never become events, and excluded columns are
 * removed from the relation and from every tuple.  A Begin event is held
 * back until the transaction's first event that passes, so a transaction
 * with nothing left after filtering produces no Begin and only a Commit
 * marked txn_empty, which no format writes.
 *
 * Copyright (c) 2026, pgoutput_stream developers
 *
 * IDENTIFICATION
 *		src/proto.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "libpq/pqformat.h"
#include "replication/logicalproto.h"
#include "utils/memutils.h"

#include "proto.h"

typedef struct PgsRelationEntry
{
	Oid			relid;			/* hash key */
	MemoryContext cxt;
	PgsRelation *rel;
	bool		streamed;		/* false: the extension's own table, or
								 * filtered out */
	int			nremote;		/* columns pgoutput sends */
	bool	   *keep;			/* per remote column; NULL: keep all */
	bool		announce;		/* Relation event due before next change */
	XLogRecPtr	announce_lsn;	/* LSN of the 'R' message */
} PgsRelationEntry;

PgsProtoState *
pgs_proto_create(MemoryContext parent, const PgsFilterConfig *filter,
				 PgsEventCallback callback, void *arg)
{
	PgsProtoState *state;
	HASHCTL		ctl;

	state = MemoryContextAllocZero(parent, sizeof(PgsProtoState));
	state->cache_cxt = AllocSetContextCreate(parent,
											 "pgoutput_stream relations",
											 ALLOCSET_DEFAULT_SIZES);
	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(PgsRelationEntry);
	ctl.hcxt = state->cache_cxt;
	state->relations = hash_create("pgoutput_stream relations", 64, &ctl,
								   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	state->filter = filter;
	state->callback = callback;
	state->callback_arg = arg;
	state->xid = InvalidTransactionId;
	return state;
}

/* Do two relations look the same to a consumer? */
static bool
same_relation(const PgsRelation *a, const PgsRelation *b)
{
	int			i;

	if (strcmp(a->nspname, b->nspname) != 0 ||
		strcmp(a->relname, b->relname) != 0 ||
		a->replident != b->replident || a->natts != b->natts ||
		!bms_equal(a->attkeys, b->attkeys))
		return false;
	for (i = 0; i < a->natts; i++)
	{
		if (a->atttyps[i] != b->atttyps[i] ||
			strcmp(a->attnames[i], b->attnames[i]) != 0)
			return false;
	}
	return true;
}

/*
 * Store a relation announced by an 'R' message, with the stream's column
 * filter applied.  Returns the cached relation, or NULL if it is the same
 * as the one already cached (then nothing changed for consumers).
 */
static PgsRelation *
remember_relation(PgsProtoState *state, LogicalRepRelation *remote)
{
	PgsRelationEntry *entry;
	bool		found;
	MemoryContext cxt;
	MemoryContext old;
	PgsRelation *rel;
	const char *nspname;
	bool	   *keep = NULL;
	int			i;

	/* pgoutput sends "" for pg_catalog */
	nspname = remote->nspname[0] ? remote->nspname : "pg_catalog";

	cxt = AllocSetContextCreate(state->cache_cxt, "pgoutput_stream relation",
								ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(cxt);
	rel = palloc0(sizeof(PgsRelation));
	rel->relid = remote->remoteid;
	rel->nspname = pstrdup(nspname);
	rel->relname = pstrdup(remote->relname);
	rel->replident = remote->replident;
	rel->attnames = palloc(sizeof(char *) * Max(remote->natts, 1));
	rel->atttyps = palloc(sizeof(Oid) * Max(remote->natts, 1));
	if (state->filter->exclude_columns != NIL)
		keep = palloc(sizeof(bool) * Max(remote->natts, 1));
	for (i = 0; i < remote->natts; i++)
	{
		if (keep != NULL)
		{
			keep[i] = pgs_filter_keeps_column(state->filter, nspname,
											  remote->relname,
											  remote->attnames[i]);
			if (!keep[i])
				continue;
		}
		if (bms_is_member(i, remote->attkeys))
			rel->attkeys = bms_add_member(rel->attkeys, rel->natts);
		rel->attnames[rel->natts] = pstrdup(remote->attnames[i]);
		rel->atttyps[rel->natts] = remote->atttyps[i];
		rel->natts++;
	}
	MemoryContextSwitchTo(old);

	entry = hash_search(state->relations, &remote->remoteid, HASH_ENTER, &found);
	if (found)
	{
		if (entry->nremote == remote->natts && same_relation(entry->rel, rel))
		{
			MemoryContextDelete(cxt);
			return NULL;
		}
		MemoryContextDelete(entry->cxt);
	}
	entry->cxt = cxt;
	entry->rel = rel;
	entry->nremote = remote->natts;
	entry->keep = keep;
	entry->announce = false;
	/*
	 * Decided once per relation, not per change.  The extension's own table
	 * is never streamed: a publication FOR ALL TABLES includes it, but its
	 * changes are the streams' configuration, not application data.
	 */
	entry->streamed = strcmp(nspname, "pgoutput_stream") != 0 &&
		pgs_filter_keeps_table(state->filter, nspname, remote->relname);
	return rel;
}

static void init_event(PgsProtoState *state, PgsEvent *ev, PgsEventKind kind,
					   XLogRecPtr lsn, TransactionId xid);

/*
 * Pass an event on, preceded by the transaction's Begin if it is the
 * transaction's first event that passes the filters.
 */
static void
pass_on(PgsProtoState *state, const PgsEvent *ev)
{
	if (state->begin_pending && ev->kind != PGS_EVENT_COMMIT &&
		!(ev->kind == PGS_EVENT_MESSAGE && !ev->msg_transactional))
	{
		PgsEvent	begin;

		init_event(state, &begin, PGS_EVENT_BEGIN, state->begin_lsn,
				   state->xid);
		state->begin_pending = false;
		state->callback(&begin, state->callback_arg);
	}
	state->callback(ev, state->callback_arg);
}

/* Pass an event on, unless the stream's filters leave it out */
static void
emit(PgsProtoState *state, const PgsEvent *ev)
{
	if (pgs_filter_keeps_event(state->filter, ev->kind))
		pass_on(state, ev);
}

/*
 * Pass on a change of the relation in entry, unless the relation is not
 * streamed or the operation filtered out, preceded by the relation's
 * Relation event if that is due.
 */
static void
emit_change(PgsProtoState *state, PgsRelationEntry *entry, const PgsEvent *ev)
{
	if (!entry->streamed ||
		!pgs_filter_keeps_event(state->filter, ev->kind))
		return;
	if (entry->announce)
	{
		PgsEvent	relation;

		init_event(state, &relation, PGS_EVENT_RELATION, entry->announce_lsn,
				   ev->xid);
		relation.rel = entry->rel;
		relation.position = ev->position;
		entry->announce = false;
		pass_on(state, &relation);
	}
	pass_on(state, ev);
}

static PgsRelationEntry *
lookup_relation(PgsProtoState *state, LogicalRepRelId relid)
{
	PgsRelationEntry *entry;

	entry = hash_search(state->relations, &relid, HASH_FIND, NULL);
	if (entry == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("pgoutput sent a change for relation %u before describing it",
						relid)));
	return entry;
}

/*
 * A tuple must have as many columns as pgoutput described for its
 * relation; excluded columns are then dropped from it, in place.
 */
static void
check_tuple(PgsRelationEntry *entry, LogicalRepTupleData *tuple)
{
	int			i;
	int			n = 0;

	if (tuple->ncols != entry->nremote)
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("pgoutput sent %d columns for relation \"%s.%s\", which has %d",
						tuple->ncols, entry->rel->nspname, entry->rel->relname,
						entry->nremote)));
	if (entry->keep == NULL)
		return;
	for (i = 0; i < tuple->ncols; i++)
	{
		if (!entry->keep[i])
			continue;
		tuple->colvalues[n] = tuple->colvalues[i];
		tuple->colstatus[n] = tuple->colstatus[i];
		n++;
	}
	tuple->ncols = n;
}

/*
 * The kind of old tuple ('K' key only, 'O' full row) that follows the
 * relation id of an 'U' or 'D' message; logicalrep_read_update() and
 * logicalrep_read_delete() accept both without saying which it was.
 */
static char
old_tuple_kind(StringInfo s)
{
	if (s->cursor + 4 >= s->len)
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("pgoutput message is too short")));
	return s->data[s->cursor + 4];
}

static void
init_event(PgsProtoState *state, PgsEvent *ev, PgsEventKind kind,
		   XLogRecPtr lsn, TransactionId xid)
{
	memset(ev, 0, sizeof(PgsEvent));
	ev->kind = kind;
	ev->lsn = lsn;
	ev->xid = TransactionIdIsValid(xid) ? xid : state->xid;
	ev->final_lsn = state->final_lsn;
	ev->commit_time = state->commit_time;
}

/*
 * Read one pgoutput message and pass the events it describes to the
 * state's callback.  lsn and xid are what the decoder reported with the
 * message.  Allocations go to CurrentMemoryContext, which the caller
 * resets per message.
 *
 * data[len] must be a NUL byte, as in every StringInfo: pq_getmsgstring()
 * finds the end of a string with strlen() before checking it against len,
 * so a malformed message whose last string is not terminated would
 * otherwise be read past its end.
 */
void
pgs_proto_read(PgsProtoState *state, XLogRecPtr lsn, TransactionId xid,
			   const char *data, int len)
{
	StringInfoData s;
	PgsEvent	ev;
	char		action;

	s.data = unconstify(char *, data);
	s.len = len;
	s.maxlen = len;
	s.cursor = 0;

	action = pq_getmsgbyte(&s);
	switch (action)
	{
		case LOGICAL_REP_MSG_BEGIN:
			{
				LogicalRepBeginData begin;

				logicalrep_read_begin(&s, &begin);
				state->xid = begin.xid;
				state->final_lsn = begin.final_lsn;
				state->commit_time = begin.committime;
				state->begin_lsn = lsn;
				state->begin_pending = true;
				state->position = 0;
				break;
			}
		case LOGICAL_REP_MSG_COMMIT:
			{
				LogicalRepCommitData commit;

				logicalrep_read_commit(&s, &commit);
				init_event(state, &ev, PGS_EVENT_COMMIT, lsn, xid);
				ev.final_lsn = commit.commit_lsn;
				ev.end_lsn = commit.end_lsn;
				ev.commit_time = commit.committime;
				ev.txn_empty = state->begin_pending;
				ev.position = state->position + 1;
				emit(state, &ev);
				state->xid = InvalidTransactionId;
				state->begin_pending = false;
				break;
			}
		case LOGICAL_REP_MSG_ORIGIN:
			{
				XLogRecPtr	origin_lsn;

				(void) logicalrep_read_origin(&s, &origin_lsn);
				break;
			}
		case LOGICAL_REP_MSG_TYPE:
			{
				LogicalRepTyp typ;

				logicalrep_read_typ(&s, &typ);
				break;
			}
		case LOGICAL_REP_MSG_RELATION:
			{
				LogicalRepRelation *remote = logicalrep_read_rel(&s);

				if (remember_relation(state, remote) != NULL)
				{
					PgsRelationEntry *entry = lookup_relation(state, remote->remoteid);

					entry->announce = true;
					entry->announce_lsn = lsn;
				}
				break;
			}
		case LOGICAL_REP_MSG_INSERT:
			{
				LogicalRepTupleData newtup;
				LogicalRepRelId relid;

				PgsRelationEntry *entry;

				relid = logicalrep_read_insert(&s, &newtup);
				init_event(state, &ev, PGS_EVENT_INSERT, lsn, xid);
				ev.position = ++state->position;
				entry = lookup_relation(state, relid);
				check_tuple(entry, &newtup);
				ev.rel = entry->rel;
				ev.newtup = &newtup;
				emit_change(state, entry, &ev);
				break;
			}
		case LOGICAL_REP_MSG_UPDATE:
			{
				LogicalRepTupleData oldtup;
				LogicalRepTupleData newtup;
				LogicalRepRelId relid;
				bool		has_oldtuple;
				char		kind = old_tuple_kind(&s);
				PgsRelationEntry *entry;

				relid = logicalrep_read_update(&s, &has_oldtuple, &oldtup, &newtup);
				init_event(state, &ev, PGS_EVENT_UPDATE, lsn, xid);
				ev.position = ++state->position;
				entry = lookup_relation(state, relid);
				check_tuple(entry, &newtup);
				ev.rel = entry->rel;
				ev.newtup = &newtup;
				if (has_oldtuple)
				{
					check_tuple(entry, &oldtup);
					ev.oldtup = &oldtup;
					ev.old_is_key = (kind == 'K');
				}
				emit_change(state, entry, &ev);
				break;
			}
		case LOGICAL_REP_MSG_DELETE:
			{
				LogicalRepTupleData oldtup;
				LogicalRepRelId relid;
				char		kind = old_tuple_kind(&s);
				PgsRelationEntry *entry;

				relid = logicalrep_read_delete(&s, &oldtup);
				init_event(state, &ev, PGS_EVENT_DELETE, lsn, xid);
				ev.position = ++state->position;
				entry = lookup_relation(state, relid);
				check_tuple(entry, &oldtup);
				ev.rel = entry->rel;
				ev.oldtup = &oldtup;
				ev.old_is_key = (kind == 'K');
				emit_change(state, entry, &ev);
				break;
			}
		case LOGICAL_REP_MSG_TRUNCATE:
			{
				List	   *relids;
				ListCell   *lc;
				bool		cascade;
				bool		restart_seqs;

				relids = logicalrep_read_truncate(&s, &cascade, &restart_seqs);
				foreach(lc, relids)
				{
					PgsRelationEntry *entry;

					init_event(state, &ev, PGS_EVENT_TRUNCATE, lsn, xid);
					/* each relation a change of its own, in pgoutput's order */
					ev.position = ++state->position;
					entry = lookup_relation(state, lfirst_oid(lc));
					ev.rel = entry->rel;
					ev.truncate_cascade = cascade;
					ev.truncate_restart_seqs = restart_seqs;
					emit_change(state, entry, &ev);
				}
				break;
			}
		case LOGICAL_REP_MSG_MESSAGE:
			{
				uint8		flags = pq_getmsgbyte(&s);
				XLogRecPtr	message_lsn = pq_getmsgint64(&s);
				const char *prefix = pq_getmsgstring(&s);
				int			size = pq_getmsgint(&s, 4);

				if (size < 0 || size > s.len - s.cursor)
					ereport(ERROR,
							(errcode(ERRCODE_PROTOCOL_VIOLATION),
							 errmsg("pgoutput message content length %d is invalid", size)));
				init_event(state, &ev, PGS_EVENT_MESSAGE, message_lsn, xid);
				ev.msg_transactional = (flags & 1) != 0;
				if (ev.msg_transactional)
					ev.position = ++state->position;
				else
					ev.xid = InvalidTransactionId;
				ev.msg_prefix = prefix;
				ev.msg_content = pq_getmsgbytes(&s, size);
				ev.msg_len = size;
				emit(state, &ev);
				break;
			}
		default:
			ereport(ERROR,
					(errcode(ERRCODE_PROTOCOL_VIOLATION),
					 errmsg("unexpected pgoutput message type \"%c\"", action)));
	}
	pq_getmsgend(&s);
}
