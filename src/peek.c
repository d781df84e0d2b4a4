/*-------------------------------------------------------------------------
 *
 * peek.c
 *		peek(stream, n): the events a stream's targets would receive next,
 *		without consuming them.
 *
 * A running worker holds the stream's slot, so peek decodes a temporary
 * copy of it (pg_copy_logical_replication_slot), made at the slot's
 * confirmed position, with the same pgoutput options, protocol reader and
 * formatter as the worker.  The copy is dropped afterwards, or at the end
 * of the session if peek fails.
 *
 * pgoutput renders values with the current session's settings, so peek
 * sets the worker's output settings for its own duration.  It runs in the
 * caller's session, as the caller, and like the worker it runs no code
 * that a table owner wrote.
 *
 * Copyright (c) 2026, pgoutput_stream developers
 *
 * IDENTIFICATION
 *		src/peek.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/pg_lsn.h"

#include "format.h"
#include "proto.h"
#include "sql_api.h"
#include "stream_config.h"

PG_FUNCTION_INFO_V1(pgoutput_stream_peek);

/* Rows of the decoding function's result read at a time */
#define PGS_PEEK_FETCH_ROWS		100

typedef struct PgsPeekState
{
	PgsStreamConfig *config;
	Tuplestorestate *tupstore;
	TupleDesc	tupdesc;
	int64		limit;
	int64		count;
	StringInfoData subject;
	StringInfoData payload;
} PgsPeekState;

static void
collect_event(const PgsEvent *ev, void *arg)
{
	PgsPeekState *state = (PgsPeekState *) arg;
	Datum		values[4];
	bool		nulls[4] = {false, false, false, false};
	char	   *payload;

	if (state->count >= state->limit)
		return;
	resetStringInfo(&state->subject);
	resetStringInfo(&state->payload);
	pgs_format_subject(&state->subject, &state->config->fmt, ev);
	if (!pgs_format_payload(&state->payload, &state->config->fmt, ev))
		return;

	/* payloads are UTF-8; a text result is in the database encoding */
	payload = pg_any_to_server(state->payload.data, state->payload.len, PG_UTF8);
	values[0] = LSNGetDatum(ev->lsn);
	values[1] = TransactionIdGetDatum(ev->xid);
	nulls[1] = !TransactionIdIsValid(ev->xid);
	values[2] = CStringGetTextDatum(pg_any_to_server(state->subject.data,
													 state->subject.len, PG_UTF8));
	values[3] = CStringGetTextDatum(payload);
	tuplestore_putvalues(state->tupstore, state->tupdesc, values, nulls);
	state->count++;
}

/* Set a setting until the end of the GUC nest level */
static void
set_local(const char *name, const char *value)
{
	(void) set_config_option(name, value, PGC_SUSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
}

Datum
pgoutput_stream_peek(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	PgsPeekState state;
	MemoryContext old;
	MemoryContext per_call;
	char	   *name;
	char	   *copy_name;
	PgsProtoState *proto;
	int			nestlevel;
	Oid			save_userid;
	int			save_sec_context;
	uint64		i;

	pgs_check_manager();
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("stream name must not be null")));
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("number of events must not be null")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	memset(&state, 0, sizeof(state));
	state.limit = PG_GETARG_INT32(1);
	if (state.limit < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("number of events must not be negative")));

	if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo) ||
		!(rsinfo->allowedModes & SFRM_Materialize))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("set-valued function called in context that cannot accept a set")));
	if (get_call_result_type(fcinfo, NULL, &state.tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	old = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
	state.tupdesc = CreateTupleDescCopy(state.tupdesc);
	state.tupstore = tuplestore_begin_heap(true, false, work_mem);
	rsinfo->returnMode = SFRM_Materialize;
	rsinfo->setResult = state.tupstore;
	rsinfo->setDesc = state.tupdesc;
	state.config = pgs_config_load_by_name(name);
	if (state.config == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("stream \"%s\" does not exist", name)));
	if (state.config->snapshot_pending)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("stream \"%s\" has not sent its initial snapshot yet", name),
				 errdetail("Its replication slot is created when its worker takes the snapshot.")));
	initStringInfo(&state.subject);
	initStringInfo(&state.payload);
	MemoryContextSwitchTo(old);

	if (state.limit == 0)
		return (Datum) 0;

	/*
	 * Decoding and rendering run no code that a table owner wrote (see
	 * "Trust boundary" in docs/reliability.md); as a second line of defence
	 * they run as a security-restricted operation, like VACUUM's calls of
	 * index expressions, with the empty search_path below.  An error
	 * restores the security context with the transaction's abort.
	 */
	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(save_userid,
						   save_sec_context | SECURITY_RESTRICTED_OPERATION);
	nestlevel = NewGUCNestLevel();
	set_local("DateStyle", "ISO");
	set_local("IntervalStyle", "postgres");
	set_local("TimeZone", "UTC");
	set_local("extra_float_digits", "3");
	set_local("bytea_output", "hex");
	set_local("lc_monetary", "C");
	set_local("search_path", "");
	set_local("client_encoding", GetDatabaseEncodingName());

	proto = pgs_proto_create(CurrentMemoryContext, &state.config->filter,
							  collect_event, &state);
	per_call = AllocSetContextCreate(CurrentMemoryContext,
									 "pgoutput_stream peek",
									 ALLOCSET_DEFAULT_SIZES);
	copy_name = psprintf("pgs_peek_%d", MyProcPid);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	{
		Oid			types[2] = {TEXTOID, TEXTOID};
		Datum		values[2] = {CStringGetTextDatum(state.config->slot_name),
		CStringGetTextDatum(copy_name)};

		if (SPI_execute_with_args("SELECT pg_catalog.pg_copy_logical_replication_slot($1::pg_catalog.name, $2::pg_catalog.name, true)",
								  2, types, values, NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not copy replication slot \"%s\"", state.config->slot_name);
	}
	{
		Oid			types[3] = {TEXTOID, INT4OID, TEXTOID};
		Datum		values[3] = {CStringGetTextDatum(copy_name),
			Int32GetDatum((int32) state.limit),
		CStringGetTextDatum(pgs_publication_option(state.config->publication))};
		Portal		portal;

		/*
		 * upto_nchanges counts pgoutput messages; every message is at most
		 * one event except TRUNCATE, so this reads at least limit events.
		 * The function still returns a whole transaction (it decodes whole
		 * transactions), into a tuplestore that spills to disk beyond
		 * work_mem; a cursor takes its rows a few at a time and stops after
		 * limit events, so that peek's memory does not grow with the size
		 * of the transaction.
		 */
		portal = SPI_cursor_open_with_args(NULL,
										   "SELECT lsn, xid, data FROM pg_catalog.pg_logical_slot_peek_binary_changes("
										   "$1::pg_catalog.name, NULL, $2,"
										   " 'proto_version', '1', 'publication_names', $3, 'messages', 'true')",
										   3, types, values, NULL, true, 0);
		while (state.count < state.limit)
		{
			SPI_cursor_fetch(portal, true, PGS_PEEK_FETCH_ROWS);
			if (SPI_processed == 0)
				break;
			for (i = 0; i < SPI_processed && state.count < state.limit; i++)
			{
				HeapTuple	tuple = SPI_tuptable->vals[i];
				TupleDesc	desc = SPI_tuptable->tupdesc;
				bool		isnull;
				XLogRecPtr	lsn = DatumGetLSN(SPI_getbinval(tuple, desc, 1, &isnull));
				TransactionId xid = DatumGetTransactionId(SPI_getbinval(tuple, desc, 2, &isnull));
				bytea	   *data = DatumGetByteaPP(SPI_getbinval(tuple, desc, 3, &isnull));
				int			len = VARSIZE_ANY_EXHDR(data);
				char	   *msg;

				old = MemoryContextSwitchTo(per_call);
				/* the reader needs a NUL byte after the message (see proto.c) */
				msg = palloc(len + 1);
				memcpy(msg, VARDATA_ANY(data), len);
				msg[len] = '\0';
				pgs_proto_read(proto, lsn, xid, msg, len);
				MemoryContextSwitchTo(old);
				MemoryContextReset(per_call);
			}
			SPI_freetuptable(SPI_tuptable);
		}
		SPI_cursor_close(portal);
	}
	{
		Oid			types[1] = {TEXTOID};
		Datum		values[1] = {CStringGetTextDatum(copy_name)};

		if (SPI_execute_with_args("SELECT pg_catalog.pg_drop_replication_slot($1::pg_catalog.name)",
								  1, types, values, NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not drop replication slot \"%s\"", copy_name);
	}
	SPI_finish();
	AtEOXact_GUC(true, nestlevel);
	SetUserIdAndSecContext(save_userid, save_sec_context);

	return (Datum) 0;
}
