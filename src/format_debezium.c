/*-------------------------------------------------------------------------
 *
 * format_debezium.c
 *		The debezium format: Debezium's PostgreSQL connector envelope.
 *
 * Each data change becomes what the Debezium PostgreSQL connector would
 * have written through Kafka Connect's JSON converter:
 *
 *	{"payload":{"before":..,"after":..,"source":{..},"transaction":..,
 *				"op":"c|u|d|t","ts_ms":..,"ts_us":..,"ts_ns":..}}
 *
 * with the connector's value encodings for decimal.handling.mode=string,
 * time.precision.mode=connect, binary.handling.mode=bytes and
 * interval.handling.mode=numeric (docs/formats.md has the table).  The
 * "schema" half of the converter's envelope is not written: consumers
 * that read Debezium JSON without a schema registry, Feldera among them,
 * read only "payload".
 *
 * With transaction_events on, a transaction is framed by Debezium's
 * BEGIN and END transaction metadata events and every data event carries
 * the "transaction" block; that needs per-transaction counts, which are
 * kept in the stream's PgsDebeziumState.  Relation events have no
 * Debezium equivalent and are not written; logical messages become
 * Debezium's "m" events.
 *
 * Copyright (c) 2026, pgoutput_stream developers
 *
 * IDENTIFICATION
 *		src/format_debezium.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "common/base64.h"
#include "common/int.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/cash.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "event.h"
#include "format.h"
#include "format_internal.h"

/* What Debezium writes instead of a value it could not read */
#define DEBEZIUM_UNAVAILABLE	"__debezium_unavailable_value"

/* source.version: this extension's version, see pgoutput_stream.control */
#define DEBEZIUM_SOURCE_VERSION	"pgoutput_stream-1.0"

/* Microseconds between 1970-01-01 and PostgreSQL's epoch, 2000-01-01 */
#define UNIX_TO_PG_EPOCH_USECS \
	((int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY)

/* Debezium's MicroDuration counts a month as 365.25 / 12 days */
#define DEBEZIUM_USECS_PER_MONTH	INT64CONST(2629800000000)

/*
 * The latest time Feldera can hold, 262142-12-31 23:59:59.999 (its date
 * library's range), in milliseconds since 1970; PostgreSQL's earliest,
 * 4713 BC, is well within the range.
 */
#define FELDERA_MAX_MILLIS	INT64CONST(8210266876799999)

/* Events of one table within the current transaction */
typedef struct DebeziumTableCount
{
	Oid			relid;
	char	   *name;			/* "schema.table", Debezium's data_collection */
	int64		count;
} DebeziumTableCount;

struct PgsDebeziumState
{
	MemoryContext cxt;			/* the counts live here, reset per txn */
	int64		total;			/* events of the transaction so far */
	int			ntables;
	int			maxtables;
	DebeziumTableCount *tables;
	XLogRecPtr	last_commit_lsn;	/* for source.sequence; 0: unknown */
};

/* How a type's values are written */
typedef enum DebeziumEncoding
{
	DBZ_STRING,					/* the text form as a JSON string */
	DBZ_BOOL,
	DBZ_INTEGER,				/* the text form, a JSON number */
	DBZ_FLOAT,					/* a JSON number, "NaN", "Infinity" */
	DBZ_DECIMAL,				/* numeric: the text form as a string */
	DBZ_MONEY,					/* the amount as a decimal string */
	DBZ_BYTES,					/* bytea: base64 */
	DBZ_BITS,					/* bit strings: base64 of the bits */
	DBZ_DATE,					/* days since 1970-01-01 */
	DBZ_TIME,					/* milliseconds since midnight */
	DBZ_TIMETZ,					/* "HH:MM:SS[.ffffff]Z" in UTC */
	DBZ_TIMESTAMP,				/* milliseconds since 1970-01-01 */
	DBZ_TIMESTAMPTZ,			/* ISO 8601 in UTC */
	DBZ_INTERVAL				/* microseconds */
} DebeziumEncoding;

static PgsDebeziumState *debezium_state(const PgsFormatOptions *opts);
static void count_event(PgsDebeziumState *state, const PgsRelation *rel,
						int64 *total_order, int64 *collection_order);
static void append_transaction_id(StringInfo buf, const PgsEvent *ev);
static void append_source(StringInfo buf, const PgsFormatOptions *opts,
						  PgsDebeziumState *state, const PgsEvent *ev,
						  const PgsRelation *rel);
static void append_row(StringInfo buf, const PgsRelation *rel,
					   const LogicalRepTupleData *tuple,
					   const LogicalRepTupleData *old, bool old_is_key,
					   bool key_only, bool feldera);
static void append_value(StringInfo buf, Oid typid, const char *text,
						 bool feldera);
static DebeziumEncoding encoding_of(Oid base);
static int64 epoch_millis(Timestamp ts);
static void append_scalar(StringInfo buf, DebeziumEncoding enc,
						  const char *text, bool feldera);
static Interval *read_interval(const char *text);
static void append_array(StringInfo buf, PgsTypeCacheEntry *type,
						 const char *text, bool feldera);
static void append_unavailable(StringInfo buf, Oid typid);
static void append_base64(StringInfo buf, const char *data, int len);
static void append_iso_time(StringInfo buf, int64 usecs_of_day,
							bool six_digits);
static void append_timestamps(StringInfo buf, TimestampTz ts);

/*
 * Render ev.  Begin and Commit become BEGIN / END events when transaction
 * events are on; Relation events are never written.
 */
bool
pgs_render_debezium(StringInfo buf, const PgsFormatOptions *opts,
					const PgsEvent *ev)
{
	PgsDebeziumState *state = debezium_state(opts);

	/* the initial snapshot is no transaction to Debezium: no metadata */
	bool		tx_events = opts->transaction_events &&
		TransactionIdIsValid(ev->xid);
	const char *op;
	int			i;

	switch (ev->kind)
	{
		case PGS_EVENT_BEGIN:
			MemoryContextReset(state->cxt);
			state->total = 0;
			state->ntables = 0;
			state->maxtables = 0;
			state->tables = NULL;
			if (!tx_events)
				return false;
			appendStringInfoString(buf, "{\"schema\":null,\"payload\":{\"status\":\"BEGIN\",\"id\":");
			append_transaction_id(buf, ev);
			appendStringInfo(buf, ",\"event_count\":null,\"data_collections\":null,\"ts_ms\":" INT64_FORMAT "}}",
							 (ev->commit_time + UNIX_TO_PG_EPOCH_USECS) / 1000);
			return true;

		case PGS_EVENT_COMMIT:
			state->last_commit_lsn = ev->final_lsn;
			if (!tx_events)
				return false;
			appendStringInfoString(buf, "{\"schema\":null,\"payload\":{\"status\":\"END\",\"id\":");
			append_transaction_id(buf, ev);
			appendStringInfo(buf, ",\"event_count\":" INT64_FORMAT ",\"data_collections\":[",
							 state->total);
			for (i = 0; i < state->ntables; i++)
			{
				if (i > 0)
					appendStringInfoChar(buf, ',');
				appendStringInfoString(buf, "{\"data_collection\":");
				escape_json(buf, state->tables[i].name);
				appendStringInfo(buf, ",\"event_count\":" INT64_FORMAT "}",
								 state->tables[i].count);
			}
			appendStringInfo(buf, "],\"ts_ms\":" INT64_FORMAT "}}",
							 (ev->commit_time + UNIX_TO_PG_EPOCH_USECS) / 1000);
			return true;

		case PGS_EVENT_RELATION:
			return false;

		case PGS_EVENT_INSERT:
			/* Debezium's snapshot reads are "r" */
			op = ev->snapshot ? "r" : "c";
			break;
		case PGS_EVENT_UPDATE:
			op = "u";
			break;
		case PGS_EVENT_DELETE:
			op = "d";
			break;
		case PGS_EVENT_TRUNCATE:
			op = "t";
			break;
		case PGS_EVENT_MESSAGE:
			op = "m";
			break;
		default:
			elog(ERROR, "unrecognized event kind: %d", (int) ev->kind);
			return false;		/* keep compiler quiet */
	}

	appendStringInfoString(buf, "{\"schema\":null,\"payload\":{");
	if (ev->kind == PGS_EVENT_MESSAGE)
	{
		/* Debezium's message events have no before, after or transaction */
		appendStringInfo(buf, "\"op\":\"m\",\"ts_ms\":" INT64_FORMAT,
						 (GetCurrentTimestamp() + UNIX_TO_PG_EPOCH_USECS) / 1000);
		appendStringInfoString(buf, ",\"source\":");
		append_source(buf, opts, state, ev, NULL);
		appendStringInfoString(buf, ",\"message\":{\"prefix\":");
		escape_json(buf, ev->msg_prefix);
		appendStringInfoString(buf, ",\"content\":");
		append_base64(buf, ev->msg_content, (int) ev->msg_len);
		appendStringInfoString(buf, "}}}");
		return true;
	}

	appendStringInfoString(buf, "\"before\":");
	if (ev->oldtup != NULL)
		append_row(buf, ev->rel, ev->oldtup, NULL, false, ev->old_is_key,
				   opts->debezium_feldera);
	else
		appendStringInfoString(buf, "null");
	appendStringInfoString(buf, ",\"after\":");
	if (ev->newtup != NULL)
		append_row(buf, ev->rel, ev->newtup, ev->oldtup, ev->old_is_key,
				   false, opts->debezium_feldera);
	else
		appendStringInfoString(buf, "null");
	appendStringInfoString(buf, ",\"source\":");
	append_source(buf, opts, state, ev, ev->rel);

	appendStringInfoString(buf, ",\"transaction\":");
	if (tx_events)
	{
		int64		total_order;
		int64		collection_order;

		count_event(state, ev->rel, &total_order, &collection_order);
		appendStringInfoString(buf, "{\"id\":");
		append_transaction_id(buf, ev);
		appendStringInfo(buf, ",\"total_order\":" INT64_FORMAT ",\"data_collection_order\":" INT64_FORMAT "}",
						 total_order, collection_order);
	}
	else
		appendStringInfoString(buf, "null");

	appendStringInfo(buf, ",\"op\":\"%s\",", op);
	append_timestamps(buf, GetCurrentTimestamp());
	appendStringInfoString(buf, "}}");
	return true;
}

static PgsDebeziumState *
debezium_state(const PgsFormatOptions *opts)
{
	if (opts->debezium == NULL)
		elog(ERROR, "debezium format used without its state");
	return opts->debezium;
}

/*
 * A new, empty state, allocated in the current memory context: it lives
 * as long as the stream configuration that holds it.
 */
PgsDebeziumState *
pgs_debezium_state_create(void)
{
	PgsDebeziumState *state = palloc0(sizeof(PgsDebeziumState));

	state->cxt = AllocSetContextCreate(CurrentMemoryContext,
									   "pgoutput_stream debezium transaction",
									   ALLOCSET_SMALL_SIZES);
	return state;
}

/*
 * Count a data event of the transaction: its position among all events
 * (total_order) and among those of its table (data_collection_order),
 * both from 1 as in Debezium.  Transactions usually touch few tables, so
 * a linear search is the cheapest lookup.
 */
static void
count_event(PgsDebeziumState *state, const PgsRelation *rel,
			int64 *total_order, int64 *collection_order)
{
	int			i;

	*total_order = ++state->total;
	for (i = 0; i < state->ntables; i++)
	{
		if (state->tables[i].relid == rel->relid)
		{
			*collection_order = ++state->tables[i].count;
			return;
		}
	}

	if (state->ntables == state->maxtables)
	{
		state->maxtables = Max(8, state->maxtables * 2);
		if (state->tables == NULL)
			state->tables = MemoryContextAlloc(state->cxt,
											   sizeof(DebeziumTableCount) * state->maxtables);
		else
			state->tables = repalloc(state->tables,
									 sizeof(DebeziumTableCount) * state->maxtables);
	}
	state->tables[i].relid = rel->relid;
	state->tables[i].name = MemoryContextStrdup(state->cxt,
												psprintf("%s.%s", rel->nspname, rel->relname));
	state->tables[i].count = 1;
	state->ntables++;
	*collection_order = 1;
}

/*
 * Debezium's PostgreSQL transaction id, "<xid>:<LSN>", with the LSN of
 * the transaction's commit record as a decimal number.
 */
static void
append_transaction_id(StringInfo buf, const PgsEvent *ev)
{
	appendStringInfo(buf, "\"%u:" UINT64_FORMAT "\"", ev->xid,
					 (uint64) ev->final_lsn);
}

/* The "source" block of a data or message event */
static void
append_source(StringInfo buf, const PgsFormatOptions *opts,
			  PgsDebeziumState *state, const PgsEvent *ev,
			  const PgsRelation *rel)
{
	int64		commit_usecs;

	/* a non-transactional message has no commit: use the time it is read */
	if (ev->kind == PGS_EVENT_MESSAGE && !ev->msg_transactional)
		commit_usecs = GetCurrentTimestamp() + UNIX_TO_PG_EPOCH_USECS;
	else
		commit_usecs = ev->commit_time + UNIX_TO_PG_EPOCH_USECS;

	appendStringInfoString(buf, "{\"version\":\"" DEBEZIUM_SOURCE_VERSION "\",\"connector\":\"postgresql\",\"name\":");
	escape_json(buf, opts->stream_name ? opts->stream_name : "");
	appendStringInfo(buf, ",\"ts_ms\":" INT64_FORMAT ",\"snapshot\":\"%s\",\"db\":",
					 commit_usecs / 1000, ev->snapshot ? "true" : "false");
	escape_json(buf, opts->database ? opts->database : "");

	/*
	 * A JSON array in a string: last commit LSN, this event's LSN, both
	 * decimal strings; written already escaped (only the quotes need it).
	 */
	if (state->last_commit_lsn != InvalidXLogRecPtr)
		appendStringInfo(buf, ",\"sequence\":\"[\\\"" UINT64_FORMAT "\\\",\\\"" UINT64_FORMAT "\\\"]\"",
						 (uint64) state->last_commit_lsn, (uint64) ev->lsn);
	else
		appendStringInfo(buf, ",\"sequence\":\"[null,\\\"" UINT64_FORMAT "\\\"]\"",
						 (uint64) ev->lsn);
	appendStringInfo(buf, ",\"ts_us\":" INT64_FORMAT ",\"ts_ns\":" INT64_FORMAT ",\"schema\":",
					 commit_usecs, commit_usecs * 1000);
	escape_json(buf, rel ? rel->nspname : "");
	appendStringInfoString(buf, ",\"table\":");
	escape_json(buf, rel ? rel->relname : "");
	if (TransactionIdIsValid(ev->xid))
		appendStringInfo(buf, ",\"txId\":%u", ev->xid);
	else
		appendStringInfoString(buf, ",\"txId\":null");
	appendStringInfo(buf, ",\"lsn\":" UINT64_FORMAT ",\"xmin\":null}",
					 (uint64) ev->lsn);
}

/* "ts_ms":..,"ts_us":..,"ts_ns":.. of a time given as a PostgreSQL timestamp */
static void
append_timestamps(StringInfo buf, TimestampTz ts)
{
	int64		usecs = ts + UNIX_TO_PG_EPOCH_USECS;

	appendStringInfo(buf, "\"ts_ms\":" INT64_FORMAT ",\"ts_us\":" INT64_FORMAT ",\"ts_ns\":" INT64_FORMAT,
					 usecs / 1000, usecs, usecs * 1000);
}

/*
 * A row as a JSON object, every published column in table order.  An
 * unchanged TOASTed value is taken from the old row when it has it (all
 * of a full row, the key columns of a key-only one), else written as
 * Debezium's placeholder.  A key-only row has
 * null for the columns it does not carry, as Debezium writes "before" of
 * a table with REPLICA IDENTITY DEFAULT.
 */
static void
append_row(StringInfo buf, const PgsRelation *rel,
		   const LogicalRepTupleData *tuple, const LogicalRepTupleData *old,
		   bool old_is_key, bool key_only, bool feldera)
{
	int			i;

	appendStringInfoChar(buf, '{');
	for (i = 0; i < tuple->ncols && i < rel->natts; i++)
	{
		const LogicalRepTupleData *source = tuple;
		const StringInfoData *value;
		char		status;

		if (i > 0)
			appendStringInfoChar(buf, ',');
		escape_json(buf, rel->attnames[i]);
		appendStringInfoChar(buf, ':');

		if (key_only && !bms_is_member(i, rel->attkeys))
		{
			appendStringInfoString(buf, "null");
			continue;
		}
		status = source->colstatus[i];
		value = &source->colvalues[i];
		if (status == LOGICALREP_COLUMN_UNCHANGED)
		{
			const StringInfoData *old_value;

			old_value = pgs_unchanged_from_old(rel, i, old, old_is_key);
			if (old_value != NULL)
			{
				status = LOGICALREP_COLUMN_TEXT;
				value = old_value;
			}
		}

		switch (status)
		{
			case LOGICALREP_COLUMN_NULL:
				appendStringInfoString(buf, "null");
				break;
			case LOGICALREP_COLUMN_UNCHANGED:
				append_unavailable(buf, rel->atttyps[i]);
				break;
			case LOGICALREP_COLUMN_TEXT:
				append_value(buf, rel->atttyps[i], value->data, feldera);
				break;
			default:
				ereport(ERROR,
						(errcode(ERRCODE_PROTOCOL_VIOLATION),
						 errmsg("unexpected column status \"%c\" in pgoutput tuple",
								status)));
		}
	}
	appendStringInfoChar(buf, '}');
}

/* One value, given as its PostgreSQL text form */
static void
append_value(StringInfo buf, Oid typid, const char *text, bool feldera)
{
	PgsTypeCacheEntry *type = pgs_type_cache_lookup(typid);

	if (type->category == PGS_JSON_ARRAY)
		append_array(buf, type, text, feldera);
	else
		append_scalar(buf, encoding_of(type->base), text, feldera);
}

/* Debezium's encoding for a (non-domain) type */
static DebeziumEncoding
encoding_of(Oid base)
{
	switch (base)
	{
		case BOOLOID:
			return DBZ_BOOL;
		case INT2OID:
		case INT4OID:
		case INT8OID:
		case OIDOID:
			return DBZ_INTEGER;
		case FLOAT4OID:
		case FLOAT8OID:
			return DBZ_FLOAT;
		case NUMERICOID:
			return DBZ_DECIMAL;
		case CASHOID:
			return DBZ_MONEY;
		case BYTEAOID:
			return DBZ_BYTES;
		case BITOID:
		case VARBITOID:
			return DBZ_BITS;
		case DATEOID:
			return DBZ_DATE;
		case TIMEOID:
			return DBZ_TIME;
		case TIMETZOID:
			return DBZ_TIMETZ;
		case TIMESTAMPOID:
			return DBZ_TIMESTAMP;
		case TIMESTAMPTZOID:
			return DBZ_TIMESTAMPTZ;
		case INTERVALOID:
			return DBZ_INTERVAL;
		default:
			return DBZ_STRING;
	}
}

/*
 * Milliseconds since 1970 of a finite PostgreSQL timestamp, rounded down
 * (towards -infinity, as Java's Instant.toEpochMilli does).  Divided
 * before the epochs are shifted: the microseconds since 1970 of the
 * latest timestamps do not fit in 64 bits.
 */
static int64
epoch_millis(Timestamp ts)
{
	int64		millis = ts >= 0 ? ts / 1000 : -((-ts + 999) / 1000);

	return millis + UNIX_TO_PG_EPOCH_USECS / 1000;
}

/*
 * A scalar value in Debezium's encoding; with feldera, in the encoding
 * Feldera's debezium_postgres JSON flavour reads where the two differ
 * (docs/formats.md): TIME in microseconds, timestamptz in milliseconds,
 * bytea as an array of bytes, and null for the non-finite numbers Feldera
 * cannot store.
 */
static void
append_scalar(StringInfo buf, DebeziumEncoding enc, const char *text,
			  bool feldera)
{
	switch (enc)
	{
		case DBZ_STRING:
			escape_json(buf, text);
			break;

		case DBZ_BOOL:
			appendStringInfoString(buf, text[0] == 't' ? "true" : "false");
			break;

		case DBZ_INTEGER:
			appendStringInfoString(buf, text);
			break;

		case DBZ_FLOAT:
			/* Jackson writes non-finite doubles as strings */
			if (strcmp(text, "NaN") == 0 || strcmp(text, "Infinity") == 0 ||
				strcmp(text, "-Infinity") == 0)
			{
				if (feldera)
					appendStringInfoString(buf, "null");
				else
					escape_json(buf, text);
			}
			else
				appendStringInfoString(buf, text);
			break;

		case DBZ_DECIMAL:
			/* the text has the column's scale; special values by name */
			if (strcmp(text, "NaN") == 0)
				appendStringInfoString(buf, feldera ? "null" : "\"NAN\"");
			else if (strcmp(text, "Infinity") == 0)
				appendStringInfoString(buf, feldera ? "null" : "\"POSITIVE_INFINITY\"");
			else if (strcmp(text, "-Infinity") == 0)
				appendStringInfoString(buf, feldera ? "null" : "\"NEGATIVE_INFINITY\"");
			else
				escape_json(buf, text);
			break;

		case DBZ_MONEY:
			{
				/* parse with the locale that printed it, then print plainly */
				Datum		cash = DirectFunctionCall1(cash_in, CStringGetDatum(text));
				Datum		num = DirectFunctionCall1(cash_numeric, cash);

				escape_json(buf, DatumGetCString(DirectFunctionCall1(numeric_out, num)));
			}
			break;

		case DBZ_BYTES:
			{
				bytea	   *bytes = DatumGetByteaPP(DirectFunctionCall1(byteain,
																		CStringGetDatum(text)));
				const unsigned char *data = (const unsigned char *) VARDATA_ANY(bytes);
				int			len = VARSIZE_ANY_EXHDR(bytes);
				int			i;

				if (!feldera)
				{
					append_base64(buf, (const char *) data, len);
					break;
				}
				appendStringInfoChar(buf, '[');
				for (i = 0; i < len; i++)
					appendStringInfo(buf, i > 0 ? ",%u" : "%u", data[i]);
				appendStringInfoChar(buf, ']');
			}
			break;

		case DBZ_BITS:
			{
				/*
				 * Debezium's Bits: the bit string as a number, rightmost bit
				 * least significant, in little-endian bytes, as many as the
				 * highest set bit needs (none for all zeros).
				 */
				int			nbits = strlen(text);
				char	   *bytes = palloc0(nbits / 8 + 1);
				int			nbytes = 0;
				int			i;

				for (i = 0; i < nbits; i++)
				{
					if (text[nbits - 1 - i] == '1')
					{
						bytes[i / 8] |= (char) (1 << (i % 8));
						nbytes = i / 8 + 1;
					}
				}
				append_base64(buf, bytes, nbytes);
				pfree(bytes);
			}
			break;

		case DBZ_DATE:
			{
				DateADT		date = DatumGetDateADT(DirectFunctionCall1(date_in,
																	   CStringGetDatum(text)));

				/* Debezium's sentinel days for infinite dates */
				if (DATE_IS_NOEND(date))
					appendStringInfoString(buf, feldera ? "null" : "-2147472692");
				else if (DATE_IS_NOBEGIN(date))
					appendStringInfoString(buf, feldera ? "null" : "-2147472691");
				else
					appendStringInfo(buf, "%d",
									 (int) (date + POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE));
			}
			break;

		case DBZ_TIME:
			{
				TimeADT		time = DatumGetTimeADT(DirectFunctionCall3(time_in,
																	   CStringGetDatum(text),
																	   ObjectIdGetDatum(InvalidOid),
																	   Int32GetDatum(-1)));

				/* Feldera cannot print 24:00:00, the end of the day */
				if (feldera && time >= USECS_PER_DAY)
					appendStringInfoString(buf, "null");
				else
					appendStringInfo(buf, INT64_FORMAT,
									 feldera ? (int64) time : (int64) time / 1000);
			}
			break;

		case DBZ_TIMETZ:
			{
				TimeTzADT  *timetz = DatumGetTimeTzADTP(DirectFunctionCall3(timetz_in,
																			CStringGetDatum(text),
																			ObjectIdGetDatum(InvalidOid),
																			Int32GetDatum(-1)));
				int64		utc = timetz->time + (int64) timetz->zone * USECS_PER_SEC;

				/* zone is seconds west of UTC; wrap into one day */
				utc %= USECS_PER_DAY;
				if (utc < 0)
					utc += USECS_PER_DAY;
				appendStringInfoChar(buf, '"');
				append_iso_time(buf, utc, false);
				appendStringInfoString(buf, "Z\"");
			}
			break;

		case DBZ_TIMESTAMP:
			{
				Timestamp	ts = DatumGetTimestamp(DirectFunctionCall3(timestamp_in,
																	   CStringGetDatum(text),
																	   ObjectIdGetDatum(InvalidOid),
																	   Int32GetDatum(-1)));

				/* Debezium's sentinel milliseconds for infinite timestamps */
				if (TIMESTAMP_IS_NOEND(ts))
					appendStringInfoString(buf, feldera ? "null" : "9223372036825200");
				else if (TIMESTAMP_IS_NOBEGIN(ts))
					appendStringInfoString(buf, feldera ? "null" : "-9223372036832400");
				else if (feldera && epoch_millis(ts) > FELDERA_MAX_MILLIS)
					appendStringInfoString(buf, "null");
				else
					appendStringInfo(buf, INT64_FORMAT, epoch_millis(ts));
			}
			break;

		case DBZ_TIMESTAMPTZ:
			{
				TimestampTz ts = DatumGetTimestampTz(DirectFunctionCall3(timestamptz_in,
																		 CStringGetDatum(text),
																		 ObjectIdGetDatum(InvalidOid),
																		 Int32GetDatum(-1)));
				struct pg_tm tm;
				fsec_t		fsec;
				int			year;

				if (TIMESTAMP_NOT_FINITE(ts))
				{
					if (feldera)
						appendStringInfoString(buf, "null");
					else
						escape_json(buf, TIMESTAMP_IS_NOEND(ts) ? "infinity" : "-infinity");
					break;
				}
				if (feldera)
				{
					if (epoch_millis(ts) > FELDERA_MAX_MILLIS)
						appendStringInfoString(buf, "null");
					else
						appendStringInfo(buf, INT64_FORMAT, epoch_millis(ts));
					break;
				}
				/* a NULL time zone asks timestamp2tm for UTC */
				if (timestamp2tm(ts, NULL, &tm, &fsec, NULL, NULL) != 0)
					ereport(ERROR,
							(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
							 errmsg("timestamp out of range"),
							 errdetail("The value is \"%s\".", text)));

				/*
				 * tm_year counts astronomically (1 BC is year 0), as ISO 8601
				 * and Java do; years beyond 9999 take a sign
				 */
				year = tm.tm_year;
				if (year > 9999)
					appendStringInfo(buf, "\"+%d", year);
				else if (year < 0)
					appendStringInfo(buf, "\"-%04d", -year);
				else
					appendStringInfo(buf, "\"%04d", year);
				appendStringInfo(buf, "-%02d-%02dT", tm.tm_mon, tm.tm_mday);
				append_iso_time(buf, ((int64) tm.tm_hour * SECS_PER_HOUR +
									  (int64) tm.tm_min * SECS_PER_MINUTE + tm.tm_sec) *
								USECS_PER_SEC + fsec, true);
				appendStringInfoString(buf, "Z\"");
			}
			break;

		case DBZ_INTERVAL:
			{
				Interval   *iv = read_interval(text);

				int64		days_usecs;
				int64		months_usecs;
				int64		result;

				/*
				 * Debezium computes in double and casts to long, which
				 * saturates: so do we, exactly, where the sum overflows.
				 */
				if (pg_mul_s64_overflow((int64) iv->day, USECS_PER_DAY, &days_usecs) ||
					pg_mul_s64_overflow((int64) iv->month, DEBEZIUM_USECS_PER_MONTH,
										&months_usecs) ||
					pg_add_s64_overflow(iv->time, days_usecs, &result) ||
					pg_add_s64_overflow(result, months_usecs, &result))
				{
					double		approx = (double) iv->time +
						(double) iv->day * USECS_PER_DAY +
						(double) iv->month * DEBEZIUM_USECS_PER_MONTH;

					result = approx < 0 ? PG_INT64_MIN : PG_INT64_MAX;
				}
				appendStringInfo(buf, INT64_FORMAT, result);
			}
			break;
	}
}

/*
 * An interval from the text interval_out wrote.  interval_in of the
 * releases we support rejects one text that interval_out writes: a time
 * part of -2562047788:00:54.775808 (the smallest microsecond count), whose
 * magnitude it accumulates as a positive number.  That one is read one
 * microsecond closer to zero and corrected, so that no interval fails the
 * stream.
 *
 * Trust: interval_in is built in and runs no other code.
 */
static Interval *
read_interval(const char *text)
{
	static const char min_time[] = "-2562047788:00:54.775808";
	size_t		len = strlen(text);
	bool		is_min = len >= sizeof(min_time) - 1 &&
		strcmp(text + len - (sizeof(min_time) - 1), min_time) == 0;
	char	   *read = pstrdup(text);
	Interval   *iv;

	if (is_min)
		read[len - 1] = '7';
	iv = DatumGetIntervalP(DirectFunctionCall3(interval_in,
											   CStringGetDatum(read),
											   ObjectIdGetDatum(InvalidOid),
											   Int32GetDatum(-1)));
	if (is_min)
		iv->time -= 1;
	pfree(read);
	return iv;
}

/* How the elements of an array are encoded */
typedef struct DebeziumElement
{
	DebeziumEncoding enc;
	bool		feldera;
} DebeziumElement;

static void
append_element(StringInfo buf, const char *text, void *arg)
{
	DebeziumElement *element = (DebeziumElement *) arg;

	append_scalar(buf, element->enc, text, element->feldera);
}

/* An array as a JSON array of its elements' encodings, bounds dropped */
static void
append_array(StringInfo buf, PgsTypeCacheEntry *type, const char *text,
			 bool feldera)
{
	DebeziumElement element = {encoding_of(type->elembase), feldera};

	pgs_append_json_array(buf, type, text, append_element, &element);
}

/*
 * Debezium's placeholder for an unchanged TOASTed value it could not
 * read: the string for text-like types, its bytes in base64 for binary
 * types, and for arrays a one-element array of the placeholder, except
 * that arrays of integers and dates get the placeholder's bytes as
 * numbers, as Debezium writes them.
 */
static void
append_unavailable(StringInfo buf, Oid typid)
{
	PgsTypeCacheEntry *type = pgs_type_cache_lookup(typid);
	Oid			base = type->base;

	if (type->category == PGS_JSON_ARRAY)
	{
		Oid			elembase = type->elembase;

		if (elembase == INT2OID || elembase == INT4OID ||
			elembase == INT8OID || elembase == DATEOID)
		{
			const char *placeholder = DEBEZIUM_UNAVAILABLE;
			int			i;

			appendStringInfoChar(buf, '[');
			for (i = 0; placeholder[i] != '\0'; i++)
				appendStringInfo(buf, i > 0 ? ",%d" : "%d",
								 (int) (unsigned char) placeholder[i]);
			appendStringInfoChar(buf, ']');
			return;
		}
		appendStringInfoChar(buf, '[');
		append_unavailable(buf, elembase);
		appendStringInfoChar(buf, ']');
		return;
	}
	if (base == BYTEAOID)
		append_base64(buf, DEBEZIUM_UNAVAILABLE, strlen(DEBEZIUM_UNAVAILABLE));
	else
		escape_json(buf, DEBEZIUM_UNAVAILABLE);
}

static void
append_base64(StringInfo buf, const char *data, int len)
{
	int			enclen = pg_b64_enc_len(len);
	char	   *encoded = palloc(enclen + 1);
	int			n;

	n = pg_b64_encode(data, len, encoded, enclen);
	if (n < 0)
		elog(ERROR, "could not encode value as base64");
	encoded[n] = '\0';
	appendStringInfoChar(buf, '"');
	appendStringInfoString(buf, encoded);
	appendStringInfoChar(buf, '"');
	pfree(encoded);
}

/*
 * A time of day, HH:MM:SS and a fraction: always six digits (Debezium's
 * ZonedTimestamp pads to the column's precision, six for a column without
 * one), or only the digits up to the last non-zero one (ZonedTime).
 */
static void
append_iso_time(StringInfo buf, int64 usecs_of_day, bool six_digits)
{
	int64		secs = usecs_of_day / USECS_PER_SEC;
	int			frac = (int) (usecs_of_day % USECS_PER_SEC);
	char		digits[7];
	int			n = 6;

	appendStringInfo(buf, "%02d:%02d:%02d",
					 (int) (secs / SECS_PER_HOUR),
					 (int) (secs / SECS_PER_MINUTE % MINS_PER_HOUR),
					 (int) (secs % SECS_PER_MINUTE));
	snprintf(digits, sizeof(digits), "%06d", frac);
	if (!six_digits)
	{
		while (n > 0 && digits[n - 1] == '0')
			n--;
	}
	if (n > 0)
		appendStringInfo(buf, ".%.*s", n, digits);
}
