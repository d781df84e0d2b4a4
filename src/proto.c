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
 * state, each in its own small memory context, and replaced whenever
 * pgoutput announces the relation again (after DDL or cache invalidation).
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
} PgsRelationEntry;

PgsProtoState *
pgs_proto_create(MemoryContext parent, PgsEventCallback callback, void *arg)
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
	state->callback = callback;
	state->callback_arg = arg;
	state->xid = InvalidTransactionId;
	return state;
}

/* Store a relation announced by an 'R' message, replacing an older one */
static PgsRelation *
remember_relation(PgsProtoState *state, LogicalRepRelation *remote)
{
	PgsRelationEntry *entry;
	bool		found;
	MemoryContext old;
	PgsRelation *rel;
	int			i;

	entry = hash_search(state->relations, &remote->remoteid, HASH_ENTER, &found);
	if (found)
		MemoryContextDelete(entry->cxt);
	entry->cxt = AllocSetContextCreate(state->cache_cxt,
									   "pgoutput_stream relation",
									   ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(entry->cxt);
	rel = palloc0(sizeof(PgsRelation));
	rel->relid = remote->remoteid;
	/* pgoutput sends "" for pg_catalog */
	rel->nspname = pstrdup(remote->nspname[0] ? remote->nspname : "pg_catalog");
	rel->relname = pstrdup(remote->relname);
	rel->replident = remote->replident;
	rel->natts = remote->natts;
	rel->attnames = palloc(sizeof(char *) * Max(remote->natts, 1));
	rel->atttyps = palloc(sizeof(Oid) * Max(remote->natts, 1));
	for (i = 0; i < remote->natts; i++)
	{
		rel->attnames[i] = pstrdup(remote->attnames[i]);
		rel->atttyps[i] = remote->atttyps[i];
	}
	rel->attkeys = bms_copy(remote->attkeys);
	MemoryContextSwitchTo(old);
	entry->rel = rel;
	return rel;
}

/*
 * The extension's own table is never streamed: a publication FOR ALL
 * TABLES includes it, but its changes are the streams' configuration,
 * not application data.
 */
static bool
is_internal(const PgsRelation *rel)
{
	return strcmp(rel->nspname, "pgoutput_stream") == 0;
}

/* Pass an event on, unless it concerns the extension's own table */
static void
emit(PgsProtoState *state, const PgsEvent *ev)
{
	if (ev->rel == NULL || !is_internal(ev->rel))
		state->callback(ev, state->callback_arg);
}

static PgsRelation *
lookup_relation(PgsProtoState *state, LogicalRepRelId relid)
{
	PgsRelationEntry *entry;

	entry = hash_search(state->relations, &relid, HASH_FIND, NULL);
	if (entry == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("pgoutput sent a change for relation %u before describing it",
						relid)));
	return entry->rel;
}

/* A tuple must have as many columns as its relation */
static void
check_tuple(PgsRelation *rel, LogicalRepTupleData *tuple)
{
	if (tuple->ncols != rel->natts)
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("pgoutput sent %d columns for relation \"%s.%s\", which has %d",
						tuple->ncols, rel->nspname, rel->relname, rel->natts)));
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
				init_event(state, &ev, PGS_EVENT_BEGIN, lsn, begin.xid);
				emit(state, &ev);
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
				emit(state, &ev);
				state->xid = InvalidTransactionId;
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

				init_event(state, &ev, PGS_EVENT_RELATION, lsn, xid);
				ev.rel = remember_relation(state, remote);
				emit(state, &ev);
				break;
			}
		case LOGICAL_REP_MSG_INSERT:
			{
				LogicalRepTupleData newtup;
				LogicalRepRelId relid;

				relid = logicalrep_read_insert(&s, &newtup);
				init_event(state, &ev, PGS_EVENT_INSERT, lsn, xid);
				ev.rel = lookup_relation(state, relid);
				check_tuple(ev.rel, &newtup);
				ev.newtup = &newtup;
				emit(state, &ev);
				break;
			}
		case LOGICAL_REP_MSG_UPDATE:
			{
				LogicalRepTupleData oldtup;
				LogicalRepTupleData newtup;
				LogicalRepRelId relid;
				bool		has_oldtuple;
				char		kind = old_tuple_kind(&s);

				relid = logicalrep_read_update(&s, &has_oldtuple, &oldtup, &newtup);
				init_event(state, &ev, PGS_EVENT_UPDATE, lsn, xid);
				ev.rel = lookup_relation(state, relid);
				check_tuple(ev.rel, &newtup);
				ev.newtup = &newtup;
				if (has_oldtuple)
				{
					check_tuple(ev.rel, &oldtup);
					ev.oldtup = &oldtup;
					ev.old_is_key = (kind == 'K');
				}
				emit(state, &ev);
				break;
			}
		case LOGICAL_REP_MSG_DELETE:
			{
				LogicalRepTupleData oldtup;
				LogicalRepRelId relid;
				char		kind = old_tuple_kind(&s);

				relid = logicalrep_read_delete(&s, &oldtup);
				init_event(state, &ev, PGS_EVENT_DELETE, lsn, xid);
				ev.rel = lookup_relation(state, relid);
				check_tuple(ev.rel, &oldtup);
				ev.oldtup = &oldtup;
				ev.old_is_key = (kind == 'K');
				emit(state, &ev);
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
					init_event(state, &ev, PGS_EVENT_TRUNCATE, lsn, xid);
					ev.rel = lookup_relation(state, lfirst_oid(lc));
					ev.truncate_cascade = cascade;
					ev.truncate_restart_seqs = restart_seqs;
					emit(state, &ev);
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
				if (!ev.msg_transactional)
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
