/*-------------------------------------------------------------------------
 *
 * worker.c
 *		The stream worker: decodes its slot and delivers every event.
 *
 * One worker serves one stream.  It connects to the stream's database,
 * loads the stream's row (before touching the slot: while it holds the
 * slot, the process is marked PROC_IN_LOGICAL_DECODING and must not read
 * user tables), claims the stream's entry in the shared registry (which is
 * what prevents two workers for one stream), acquires the slot and
 * decodes it for the rest of its life.
 *
 * Delivery rule (DESIGN.md §3): the slot is confirmed to a transaction's
 * commit end LSN only once every target acknowledged that transaction and
 * every earlier one; with nothing in flight, to the end of decoded WAL, so
 * an idle stream never pins WAL.
 *
 * Errors end the worker; the postmaster starts it again after
 * pgoutput_stream.restart_delay and decoding resumes from the slot.
 * Conditions that cannot heal by restarting (publication dropped, slot
 * invalidated, wal_level too low) put the stream in state "failed" and
 * end the worker with exit code 0, which is not restarted.
 *
 * Copyright (c) 2026, pgoutput_stream developers
 *
 * IDENTIFICATION
 *		src/worker.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/transam.h"
#include "access/xact.h"
#include "common/hashfn.h"
#include "access/xlog.h"
#include "catalog/pg_publication.h"
#include "commands/extension.h"
#include "lib/ilist.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "portability/instr_time.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "replication/slot.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "decoder.h"
#include "event_id.h"
#include "format.h"
#include "guc.h"
#include "shmem.h"
#include "sink.h"
#include "snapshot.h"
#include "stream_config.h"
#include "worker.h"

#define PGS_MAX_SINKS		4
#define PGS_RECORDS_PER_BATCH	4096
#define PGS_EVENTS_PER_CHECKPOINT	64

typedef struct PgsWorkerState
{
	PgsStreamConfig *config;
	PgsStreamSlot *entry;
	PgsSink    *sinks[PGS_MAX_SINKS];
	int			nsinks;

	MemoryContext cxt;			/* lives as long as the worker */
	MemoryContext pass_cxt;		/* reset at the start of every pass */
	MemoryContext event_cxt;	/* reset after every event */
	StringInfoData subject;
	StringInfoData payload;
	bool		needs_payload;	/* a target delivers formatted payloads */
	bool		waiting;		/* a target reported that it waits */
	bool		in_snapshot;	/* sending the initial snapshot */
	bool		stop_deferred;	/* its Commit sent: stop once delivered */

	/*
	 * The decoder, once the slot is acquired; in_pass while it decodes,
	 * and the end LSN of the last transaction handed whole to every target
	 * (see safe_position())
	 */
	PgsDecoder *decoder;
	bool		in_pass;
	XLogRecPtr	emitted_lsn;
	uint32		events_since_checkpoint;

	/*
	 * End LSN and commit time of transactions not yet confirmed, oldest
	 * first: a queue, appended at every commit and consumed from its head
	 * as the slot is confirmed, in constant time however many transactions
	 * are in flight.  Its context is emptied whenever the queue is.
	 */
	MemoryContext unconfirmed_cxt;
	dlist_head	unconfirmed;
	TimestampTz confirmed_commit_time;
	TimestampTz last_wal_warning;
	TimestampTz last_heartbeat;

	/* counters not yet published to the registry */
	uint64		transactions;
	uint64		events;
	uint64		bytes;
} PgsWorkerState;

/* A decoded transaction whose end is not yet confirmed */
typedef struct PgsCommitTime
{
	dlist_node	node;			/* in worker.unconfirmed */
	XLogRecPtr	end_lsn;
	TimestampTz commit_time;
} PgsCommitTime;

static PgsWorkerState worker;
static bool worker_failed = false;
static bool skip_exit_handlers = false;

/*
 * The C library's exit handlers include OpenSSL's cleanup, which cnats's
 * TLS connections leave in a state where it crashes now and then at exit
 * (SIGSEGV in OPENSSL_cleanup, which makes the postmaster restart the whole
 * server).  A worker that used cnats therefore ends with _exit() once
 * PostgreSQL's own exit callbacks have run: this callback is registered
 * first, so it runs last.  Nothing else of the process needs the C exit
 * handlers: the server log is written unbuffered.
 */
static void
worker_exit_now(int code, Datum arg pg_attribute_unused())
{
	if (skip_exit_handlers)
		_exit(code);
}

void
pgs_worker_skip_exit_handlers(void)
{
	skip_exit_handlers = true;
}

/*
 * Runs last among the exit callbacks (it is registered before the
 * connection is made), after the transaction was aborted and the slot
 * released, so that a worker claiming the entry next finds the slot free.
 */
static void
worker_on_exit(int code pg_attribute_unused(), Datum arg pg_attribute_unused())
{
	int			i;

	for (i = 0; i < worker.nsinks; i++)
		worker.sinks[i]->shutdown(worker.sinks[i]);
	if (worker.entry != NULL)
		pgs_shmem_release(worker.entry, worker_failed);
}

/*
 * End the worker because the stream cannot continue without the operator:
 * record why, and exit with code 0 so that it is not restarted.
 */
void
pgs_worker_fail(const char *message, const char *hint)
{
	ereport(LOG,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("stream \"%s\" failed: %s", worker.config->name, message),
			 hint ? errhint("%s", hint) : 0));
	if (worker.entry != NULL)
		pgs_shmem_set_error(worker.entry, message);
	worker_failed = true;
	proc_exit(0);
}

/*
 * pgoutput renders values with this process's settings; fix them so that
 * payloads do not depend on postgresql.conf (reference pg-decoding.md §5.4).
 */
static void
set_output_settings(void)
{
	SetConfigOption("DateStyle", "ISO", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("IntervalStyle", "postgres", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("TimeZone", "UTC", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("extra_float_digits", "3", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("bytea_output", "hex", PGC_SUSET, PGC_S_OVERRIDE);
	/*
	 * money prints per lc_monetary; reg* types schema-qualify per the
	 * search_path, which pgs_guc_override_database_settings() empties
	 */
	SetConfigOption("lc_monetary", "C", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("client_encoding", GetDatabaseEncodingName(),
					PGC_SUSET, PGC_S_OVERRIDE);
}

/*
 * The worker reads tables that other roles own with the bootstrap
 * superuser's rights, and it runs none of their code: values are rendered
 * from the text pgoutput wrote, never with a cast, a type's input function
 * or a domain's constraints (see "Trust boundary" in docs/reliability.md).
 * As a second line of defence, everything it does runs as a
 * security-restricted operation, as VACUUM runs index expressions: should
 * code of another role run after all, it cannot change the role, create
 * temporary objects that shadow the catalogs, or keep cursors.  Set outside
 * any transaction, this is what each transaction starts with and what an
 * aborted one returns to.  The search_path is empty
 * (pgs_guc_override_database_settings).
 */
static void
restrict_security_context(void)
{
	Oid			userid;
	int			sec_context;

	Assert(!IsTransactionState());
	GetUserIdAndSecContext(&userid, &sec_context);
	SetUserIdAndSecContext(userid, sec_context | SECURITY_RESTRICTED_OPERATION);
}

/*
 * The text of an error that stream_status keeps as last_error.  Roles that
 * may not read the published tables can read it, so it must hold no row
 * values.  PostgreSQL's own code quotes the value it failed on in data
 * exceptions (class 22, e.g. a row filter's make_date(): 'date field value
 * out of range: 4111-11-31') and in input functions' syntax errors (42601,
 * 'syntax error in tsquery: "..."'; a precaution, since PostgreSQL refuses
 * row filters that would call an input function).  For those only the
 * SQLSTATE is kept, and the server log has the whole error.  The
 * extension's own errors keep values out of their message (a value goes
 * to the detail), so their message is kept: they are told apart by the
 * reporting file, of which elog.c keeps the base name.  Of PostgreSQL's
 * files with the same names, guc.c, launcher.c, proto.c and worker.c, none
 * raises errors with row values in this process.
 */
static const char *
error_text_for_status(const ErrorData *edata)
{
	static const char *const own_files[] = {
		"pgoutput_stream.c", "guc.c", "shmem.c", "launcher.c", "worker.c",
		"decoder.c", "proto.c", "snapshot.c", "filter.c", "format.c",
		"value_text.c", "format_json.c", "format_debezium.c",
		"format_feldera.c", "subject.c", "sink_log.c", "stream_config.c",
		"sql_api.c", "peek.c", "wakeup.c", "ddl_guard.c", "nats_sink.c",
		"feldera_sink.c", "secrets.c", "event_id.c"
	};
	int			i;

	if (ERRCODE_TO_CATEGORY(edata->sqlerrcode) != ERRCODE_DATA_EXCEPTION &&
		edata->sqlerrcode != ERRCODE_SYNTAX_ERROR)
		return edata->message;
	for (i = 0; edata->filename != NULL && i < (int) lengthof(own_files); i++)
	{
		if (strcmp(edata->filename, own_files[i]) == 0)
			return edata->message;
	}
	return psprintf("a change could not be decoded or rendered: error %s (the server log has the error)",
					unpack_sql_state(edata->sqlerrcode));
}

/*
 * A worker registered by create_stream() or start_stream() starts before
 * that transaction ends; wait for it, and leave if it rolled back.
 */
static void
wait_for_starting_transaction(TransactionId xid)
{
	bool		committed;

	if (!TransactionIdIsValid(xid))
		return;

	StartTransactionCommand();
	XactLockTableWait(xid, NULL, NULL, XLTW_None);
	CommitTransactionCommand();

	/* a very old xid comes from a restart of a long-running worker */
	if (TransactionIdPrecedes(xid, pgs_oldest_clog_xid()))
		return;
	committed = TransactionIdDidCommit(xid);
	if (!committed)
		proc_exit(0);
}

static void report_counters(void);
static void wait_delivered(void);

/*
 * Hand one event to every target.  A large transaction is replayed at its
 * commit record, all of it inside one decoding pass, so every few events
 * this passes the checkpoint: a stop or a reload is honoured in the middle
 * of the replay, not only once the whole transaction was sent.
 */
static void
emit_event(const PgsEvent *ev, void *arg pg_attribute_unused())
{
	MemoryContext old;
	PgsOutput	out;
	bool		emitted = false;
	int			i;

	if (++worker.events_since_checkpoint >= PGS_EVENTS_PER_CHECKPOINT)
	{
		worker.events_since_checkpoint = 0;
		pgs_worker_checkpoint();
	}

	old = MemoryContextSwitchTo(worker.event_cxt);
	resetStringInfo(&worker.subject);
	resetStringInfo(&worker.payload);
	if (worker.needs_payload)
	{
		pgs_format_subject(&worker.subject, &worker.config->fmt, ev);
		emitted = pgs_format_payload(&worker.payload, &worker.config->fmt, ev);
	}

	out.event = ev;
	out.subject = worker.subject.data;
	out.payload = emitted ? worker.payload.data : NULL;
	out.payload_len = emitted ? worker.payload.len : 0;
	pgs_event_id_of(ev, &out.id);

	for (i = 0; i < worker.nsinks; i++)
	{
		PgsSink    *sink = worker.sinks[i];

		if (emitted || !sink->uses_payload)
			sink->send(sink, &out);
	}
	if (emitted)
	{
		worker.events++;
		worker.bytes += worker.payload.len;
	}
	else if (ev->kind == PGS_EVENT_INSERT || ev->kind == PGS_EVENT_UPDATE ||
			 ev->kind == PGS_EVENT_DELETE)
		worker.events++;
	pgs_buffer_trim(&worker.subject);
	pgs_buffer_trim(&worker.payload);

	MemoryContextSwitchTo(old);
	if (ev->kind == PGS_EVENT_COMMIT)
	{
		PgsCommitTime *commit;

		for (i = 0; i < worker.nsinks; i++)
			worker.sinks[i]->end_transaction(worker.sinks[i], ev->end_lsn);
		/* only now: end_transaction() may pass the checkpoint */
		worker.emitted_lsn = ev->end_lsn;
		worker.transactions++;

		/* decoding callbacks run in short-lived contexts */
		old = MemoryContextSwitchTo(worker.unconfirmed_cxt);
		commit = palloc(sizeof(PgsCommitTime));
		commit->end_lsn = ev->end_lsn;
		commit->commit_time = ev->commit_time;
		dlist_push_tail(&worker.unconfirmed, &commit->node);
		MemoryContextSwitchTo(old);
	}
	MemoryContextReset(worker.event_cxt);
}

/*
 * The position the slot may be confirmed to: the end of decoded WAL if no
 * target waits for an acknowledgement, else the oldest acknowledged end
 * LSN among the targets.
 */
static XLogRecPtr
deliverable_position(PgsDecoder *decoder)
{
	XLogRecPtr	result = pgs_decoder_position(decoder);
	int			i;

	for (i = 0; i < worker.nsinks; i++)
	{
		PgsSink    *sink = worker.sinks[i];

		sink->poll(sink);
		if (!sink->idle(sink))
		{
			XLogRecPtr	acked = sink->acked_lsn(sink);

			if (acked < result)
				result = acked;
		}
	}
	return result;
}

/*
 * The position the slot may be confirmed to now, wherever the worker is:
 * deliverable_position(), but during a decoding pass never past the last
 * transaction handed whole to the targets.  In a pass, the decoder has
 * read the commit record of the transaction it replays while the rest of
 * that transaction is still to be sent, and a target that is synchronous
 * (log, feldera) or has nothing in flight reports itself idle: the end of
 * decoded WAL would confirm events never sent.  Invalid before decoding
 * starts (the initial snapshot, connecting).
 *
 * deliverable_position() polls every target.  That is safe also from
 * inside a target's own wait (passing pgs_worker_checkpoint()): targets
 * pass the checkpoint only where their state is consistent, before a
 * message is queued or after a request completed.
 */
static XLogRecPtr
safe_position(void)
{
	XLogRecPtr	result;

	if (worker.decoder == NULL)
		return InvalidXLogRecPtr;
	result = deliverable_position(worker.decoder);
	if (worker.in_pass && result > worker.emitted_lsn)
		result = worker.emitted_lsn;
	return result;
}

/* Publish the counters and the targets' progress to the shared registry */
static void
report_counters(void)
{
	PgsStreamSlot *entry = worker.entry;
	uint32		inflight = 0;
	TimestampTz last_ack = 0;
	int			i;

	for (i = 0; i < worker.nsinks; i++)
	{
		inflight += worker.sinks[i]->inflight;
		last_ack = Max(last_ack, worker.sinks[i]->last_ack_at);
	}

	SpinLockAcquire(&entry->mutex);
	entry->transactions += worker.transactions;
	entry->events += worker.events;
	entry->bytes += worker.bytes;
	entry->inflight = inflight;
	if (last_ack != 0)
		entry->last_ack_at = last_ack;
	/* counters add up over the worker restarts since the server started */
	for (i = 0; i < worker.nsinks; i++)
	{
		PgsSink    *sink = worker.sinks[i];

		entry->target_sent[sink->target_index] += sink->sent - sink->reported;
		sink->reported = sink->sent;
	}
	SpinLockRelease(&entry->mutex);
	worker.transactions = worker.events = worker.bytes = 0;
}

/*
 * Wait until every target acknowledged everything sent (the initial
 * snapshot).  A stop request ends the worker (pgs_worker_checkpoint): the
 * snapshot is taken again when the stream starts.
 */
static void
wait_delivered(void)
{
	/*
	 * The snapshot's Commit is sent: stopping now would have the next
	 * worker take the snapshot and store it again.  Stop requests wait
	 * until it is delivered (nats_ack_timeout bounds that); SIGTERM does
	 * not.
	 */
	worker.stop_deferred = true;
	for (;;)
	{
		bool		idle = true;
		int			i;

		for (i = 0; i < worker.nsinks; i++)
		{
			worker.sinks[i]->poll(worker.sinks[i]);
			if (!worker.sinks[i]->idle(worker.sinks[i]))
				idle = false;
		}
		report_counters();
		if (idle)
			break;
		pgs_worker_sleep(10);
	}
	worker.stop_deferred = false;
}

/*
 * Whether the target stored the Commit of the snapshot's last attempt, and
 * the worker ended before it could record that (a crash, a kill, an error
 * in between): then the snapshot is recorded as delivered instead of being
 * taken and stored again.  Only with no target but nats and log: a Feldera
 * request of the snapshot's last rows is sent after the nats target
 * published the Commit, and may not have been.
 */
static bool
snapshot_already_stored(void)
{
	const PgsEventId *commit = NULL;
	int			i;

	if (worker.config->targets & PGS_TARGET_FELDERA)
		return false;
	for (i = 0; i < worker.nsinks; i++)
	{
		PgsSink    *sink = worker.sinks[i];

		if (sink->stored_snapshot != NULL)
			commit = sink->stored_snapshot(sink);
	}

	/*
	 * The Commit must be this slot's snapshot's, not one of an earlier
	 * stream with the same slot name: its LSN is the slot's start, which
	 * the confirmed position is while the snapshot is pending, on this
	 * timeline; and its attempt the last one begun.
	 */
	return commit != NULL &&
		commit->lsn == pgs_slot_replay_start(worker.config->slot_name) &&
		commit->tli == pgs_event_timeline(commit->lsn) &&
		pgs_snapshot_record_delivered(worker.config, commit->snapshot);
}

/* Publish progress to the shared registry */
static void
report_progress(PgsDecoder *decoder)
{
	PgsStreamSlot *entry = worker.entry;

	XLogRecPtr	confirmed = pgs_decoder_confirmed();
	XLogRecPtr	restart_lsn = MyReplicationSlot->data.restart_lsn;
	XLogRecPtr	wal_end = pgs_wal_end();
	uint64		retained = wal_end > restart_lsn ? wal_end - restart_lsn : 0;
	bool		warn = pgs_retained_wal_warning > 0 &&
		retained > (uint64) pgs_retained_wal_warning * 1024 * 1024;

	/* the commit time of the newest confirmed transaction: lag in time */
	while (!dlist_is_empty(&worker.unconfirmed))
	{
		PgsCommitTime *commit = dlist_head_element(PgsCommitTime, node,
												   &worker.unconfirmed);

		if (commit->end_lsn > confirmed)
			break;
		worker.confirmed_commit_time = commit->commit_time;
		dlist_delete(&commit->node);
		pfree(commit);
	}
	/* a burst of transactions in flight leaves no memory behind */
	if (dlist_is_empty(&worker.unconfirmed))
		MemoryContextReset(worker.unconfirmed_cxt);
	report_counters();

	SpinLockAcquire(&entry->mutex);
	entry->decoded_lsn = pgs_decoder_position(decoder);
	entry->confirmed_lsn = confirmed;
	if (worker.confirmed_commit_time != 0)
		entry->confirmed_commit_time = worker.confirmed_commit_time;
	entry->retained_wal = retained;
	entry->wal_warning = warn;
	SpinLockRelease(&entry->mutex);

	/* retained WAL is what fills the disk: say so, once a minute */
	if (warn && TimestampDifferenceExceeds(worker.last_wal_warning,
										   GetCurrentTimestamp(), 60 * 1000))
	{
		ereport(WARNING,
				(errmsg("replication slot \"%s\" of stream \"%s\" retains %llu MB of WAL",
						worker.config->slot_name, worker.config->name,
						(unsigned long long) (retained / (1024 * 1024))),
				 errdetail("The threshold \"pgoutput_stream.retained_wal_warning\" is %d MB.",
						   pgs_retained_wal_warning),
				 errhint("Check that the stream's targets accept events (see pgoutput_stream.stream_status), or stop and drop the stream.")));
		worker.last_wal_warning = GetCurrentTimestamp();
	}
}

/*
 * A digest of the settings the stream's network targets connect with.  A
 * reload that changes them restarts the worker, which reconnects and
 * resumes from the slot: nothing is lost, and the targets' resume rules
 * keep duplicates out.  A digest, not a copy: the settings include the
 * passwords and keys, and a copy would leave them in this process's memory
 * after every reload.
 */
static uint64 digest_setting(uint64 digest, const char *name);

static uint64
connection_settings_digest(void)
{
	const char *const nats_names[] = {
		"pgoutput_stream.nats_url", "pgoutput_stream.nats_user",
		"pgoutput_stream.nats_password", "pgoutput_stream.nats_token",
		"pgoutput_stream.nats_creds_file", "pgoutput_stream.nats_nkey_seed_file",
		"pgoutput_stream.nats_nkey", "pgoutput_stream.nats_tls_ca_file",
		"pgoutput_stream.nats_tls_cert_file", "pgoutput_stream.nats_tls_key_file",
		"pgoutput_stream.nats_connection_name", "pgoutput_stream.nats_connect_timeout",
		"pgoutput_stream.nats_ack_timeout", "pgoutput_stream.nats_max_pending"
	};
	const char *const feldera_names[] = {
		"pgoutput_stream.feldera_url", "pgoutput_stream.feldera_api_key",
		"pgoutput_stream.feldera_connect_timeout",
		"pgoutput_stream.feldera_request_timeout"
	};
	uint64		digest = 0;
	int			i;

	if (worker.config->targets & PGS_TARGET_NATS)
	{
		for (i = 0; i < (int) lengthof(nats_names); i++)
			digest = digest_setting(digest, nats_names[i]);
	}
	if (worker.config->targets & PGS_TARGET_FELDERA)
	{
		for (i = 0; i < (int) lengthof(feldera_names); i++)
			digest = digest_setting(digest, feldera_names[i]);
	}
	return digest;
}

/* digest, extended with the value of the setting name (NULL: unset) */
static uint64
digest_setting(uint64 digest, const char *name)
{
	const char *value = GetConfigOption(name, true, false);

	if (value == NULL)
		return hash_bytes_uint32_extended(0, digest + 1);
	return hash_bytes_extended((const unsigned char *) value, strlen(value),
							   digest);
}

/*
 * Apply a configuration reload.  If the stream has network targets and
 * their connection settings changed, hand over to a fresh worker.  Called
 * from the checkpoint, so also in the middle of a decoding pass or of a
 * target's wait: the hand-over confirms only safe_position().
 */
static void
reload_configuration(void)
{
	uint64		before;

	/* not yet serving the stream (waiting for the entry): nothing to hand over */
	if (worker.entry == NULL)
	{
		ProcessConfigFile(PGC_SIGHUP);
		return;
	}

	before = connection_settings_digest();
	ProcessConfigFile(PGC_SIGHUP);
	if (connection_settings_digest() == before)
		return;

	ereport(LOG,
			(errmsg("stream \"%s\" restarts to use its new connection settings",
					worker.config->name)));

	/*
	 * Stopping first: the new worker waits for a holder that is stopping,
	 * but leaves at once if the holder looks like it keeps running.
	 */
	SpinLockAcquire(&worker.entry->mutex);
	worker.entry->stop_requested = true;
	SpinLockRelease(&worker.entry->mutex);
	if (!pgs_worker_register(MyDatabaseId, worker.config->id, worker.config->name,
							 InvalidTransactionId))
	{
		/* no worker slot: end with an error, the postmaster restarts us */
		SpinLockAcquire(&worker.entry->mutex);
		worker.entry->stop_requested = false;
		SpinLockRelease(&worker.entry->mutex);
		proc_exit(1);
	}
	if (worker.decoder != NULL)
	{
		pgs_decoder_confirm(safe_position());
		pgs_decoder_save();
		report_progress(worker.decoder);
	}
	proc_exit(0);
}

/*
 * A target reports that it waits for its server: the stream shows state
 * "waiting for target" with the reason as last error.
 */
void
pgs_worker_report_waiting(const char *reason)
{
	if (worker.entry == NULL)
		return;
	worker.waiting = true;
	pgs_shmem_set_waiting(worker.entry, reason);
}

void
pgs_worker_report_streaming(void)
{
	worker.waiting = false;
	if (worker.entry != NULL)
		pgs_shmem_set_state(worker.entry, worker.in_snapshot ?
							PGS_STATE_SNAPSHOT : PGS_STATE_STREAMING);
}

/*
 * Leave because the stream was asked to stop: confirm what the targets
 * acknowledged, save the slot, log where the stream stopped, exit.  The
 * next worker resumes from the slot; what was sent beyond the confirmed
 * position is sent again, and the targets' resume rules keep it from
 * being stored twice.  An initial snapshot not yet delivered is taken
 * again by the next worker.
 */
static void
stop_now(void)
{
	if (worker.in_snapshot)
		ereport(LOG,
				(errmsg("stream \"%s\" stopped before its initial snapshot was delivered",
						worker.config->name)));
	else if (worker.decoder != NULL)
	{
		pgs_decoder_confirm(safe_position());
		pgs_decoder_save();
		report_progress(worker.decoder);
		ereport(LOG,
				(errmsg("stream \"%s\" stopped at %X/%X",
						worker.config->name,
						LSN_FORMAT_ARGS(pgs_decoder_confirmed()))));
	}
	else
		ereport(LOG,
				(errmsg("stream \"%s\" stopped before it started decoding",
						worker.config->name)));
	proc_exit(0);
}

/*
 * The worker's one checkpoint: everywhere it waits or works for long, it
 * passes here, so that interrupts (SIGTERM), configuration reloads and
 * stop requests (stop_stream, alter_stream, start_stream's hand-over) are
 * honoured within a bounded time.  That is the main loop between decoding
 * passes, every few events inside a pass (emit_event), the initial
 * snapshot, and the targets' waits: for room in the window of
 * unacknowledged messages, for acknowledgements, between connection
 * attempts, while connecting.  Does not return if the stream stops or
 * hands over to a new worker.
 *
 * Confirming the slot from inside a decoding callback is what the
 * walsender does too (it handles its client's replies while it writes).
 */
void
pgs_worker_checkpoint(void)
{
	CHECK_FOR_INTERRUPTS();
	if (worker.stop_deferred)
		return;
	if (ConfigReloadPending)
	{
		ConfigReloadPending = false;
		reload_configuration();
	}
	if (pgs_worker_stop_requested())
		stop_now();
}

/*
 * Sleep for ms milliseconds, passing the checkpoint meanwhile: returns
 * only if the stream goes on.
 */
void
pgs_worker_sleep(long ms)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), ms);

	for (;;)
	{
		long		left = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);

		pgs_worker_checkpoint();
		if (left <= 0)
			return;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 left, PGS_WAIT_TARGET);
		ResetLatch(MyLatch);
	}
}

bool
pgs_worker_stop_requested(void)
{
	bool		result;

	if (worker.entry == NULL)
		return false;
	SpinLockAcquire(&worker.entry->mutex);
	result = worker.entry->stop_requested;
	SpinLockRelease(&worker.entry->mutex);
	return result;
}

/*
 * Under a stream of small transactions, a pass per commit costs more in
 * wake-ups of this process, of the targets' threads and of the receiving
 * server than in decoding: the worker woke three times per transaction
 * (commit, flush, acknowledgement).  So once a pass decoded three
 * transactions or more (commits come faster than the worker wakes up), the
 * next pass waits until batch_delay after this one started, and takes all
 * the commits of that time at once.  Under a light load a pass rarely finds
 * more than one or two, and each commit is decoded at once: with 200
 * commits per second, two more arrive during a pass in well under 1 in 1000
 * passes.  pg_usleep() ends early on a signal, so a stop or a reload is not
 * held up.
 */
static void
pace_passes(const instr_time *pass_start, uint64 pass_transactions)
{
	instr_time	elapsed;
	int64		remaining_us;

	if (pgs_batch_delay <= 0 || pass_transactions < 3)
		return;
	INSTR_TIME_SET_CURRENT(elapsed);
	INSTR_TIME_SUBTRACT(elapsed, *pass_start);
	remaining_us = (int64) pgs_batch_delay * 1000 - (int64) INSTR_TIME_GET_MICROSEC(elapsed);
	if (remaining_us > 0)
		pg_usleep((long) remaining_us);
}

/*
 * Milliseconds between heartbeats, 0 for none.  The test-only GUC
 * pgoutput_stream.test_heartbeat_interval replaces the stream's interval,
 * which counts whole seconds.
 */
static long
heartbeat_interval_ms(void)
{
	if (worker.config->heartbeat_interval <= 0)
		return 0;
	if (pgs_test_heartbeat_interval > 0)
		return pgs_test_heartbeat_interval;
	return worker.config->heartbeat_interval * 1000L;
}

/*
 * Decode and deliver until asked to stop.
 */
static void
run_stream(void)
{
	PgsDecoder *decoder;
	TimestampTz last_save = GetCurrentTimestamp();
	XLogRecPtr	start_confirmed = InvalidXLogRecPtr;
	bool		saved_progress = false;
	int			i;
	instr_time	pass_start;
	uint64		pass_transactions;

	/*
	 * Everything that lives as long as the worker is allocated in its
	 * context (transactions end in TopMemoryContext), everything made for
	 * one pass in pass_cxt, so that a worker running for days holds no more
	 * memory than after its first passes.
	 */
	MemoryContextSwitchTo(worker.cxt);
	worker.pass_cxt = AllocSetContextCreate(worker.cxt,
											"pgoutput_stream pass",
											ALLOCSET_DEFAULT_SIZES);
	worker.event_cxt = AllocSetContextCreate(worker.cxt,
											 "pgoutput_stream event",
											 ALLOCSET_DEFAULT_SIZES);
	worker.unconfirmed_cxt = AllocSetContextCreate(worker.cxt,
												   "pgoutput_stream unconfirmed",
												   ALLOCSET_SMALL_SIZES);
	dlist_init(&worker.unconfirmed);
	initStringInfo(&worker.subject);
	initStringInfo(&worker.payload);
	/*
	 * A target counts only once created: the exit callback shuts down the
	 * targets that exist, also when creating the next one fails.
	 */
	if (worker.config->targets & PGS_TARGET_LOG)
	{
		PgsSink    *sink = pgs_sink_log_create(worker.config);

		worker.sinks[worker.nsinks++] = sink;
	}
	if (worker.config->targets & PGS_TARGET_FELDERA)
	{
		PgsSink    *sink = pgs_sink_feldera_create(worker.config);

		worker.sinks[worker.nsinks++] = sink;
	}
	if (worker.config->targets & PGS_TARGET_NATS)
	{
		PgsSink    *sink = pgs_sink_nats_create(worker.config);

		worker.sinks[worker.nsinks++] = sink;
	}
	for (i = 0; i < worker.nsinks; i++)
		worker.needs_payload |= worker.sinks[i]->uses_payload;

	if (worker.config->snapshot_pending && snapshot_already_stored())
		worker.config->snapshot_pending = false;
	if (worker.config->snapshot_pending)
	{
		PgsSnapshotHooks hooks;

		hooks.emit = emit_event;
		hooks.emit_arg = NULL;
		hooks.wait_delivered = wait_delivered;
		hooks.entry = worker.entry;
		worker.in_snapshot = true;
		pgs_shmem_set_state(worker.entry, PGS_STATE_SNAPSHOT);
		pgstat_report_activity(STATE_RUNNING, "sending the initial snapshot");
		pgs_snapshot_take(worker.config, &hooks);
		worker.in_snapshot = false;
		report_counters();
	}
	if (!pgs_decoder_slot_exists(worker.config))
		pgs_worker_fail(psprintf("replication slot \"%s\" does not exist",
								 worker.config->slot_name),
						psprintf("The slot was dropped, or this server was restored from a dump or upgraded without its slots: the changes since the stream last ran cannot be delivered. To stream from now on, create the slot with pg_create_logical_replication_slot('%s', 'pgoutput'), then call pgoutput_stream.start_stream().",
								 worker.config->slot_name));
	pgs_decoder_wait_for_slot(worker.config->slot_name);
	MemoryContextSwitchTo(worker.cxt);
	decoder = pgs_decoder_start(worker.config, emit_event, NULL);
	if (decoder == NULL)
		pgs_worker_fail(psprintf("replication slot \"%s\" was invalidated",
							 worker.config->slot_name),
					"The WAL the slot needed was removed, so events were lost. Drop the stream and create it again.");
	worker.decoder = decoder;

	pgs_shmem_set_state(worker.entry, PGS_STATE_STREAMING);
	pgstat_report_activity(STATE_RUNNING, "streaming");
	ereport(LOG,
			(errmsg("stream \"%s\" started streaming from replication slot \"%s\" at %X/%X",
					worker.config->name, worker.config->slot_name,
					LSN_FORMAT_ARGS(pgs_decoder_confirmed()))));

	for (;;)
	{
		XLogRecPtr	wal_end;
		XLogRecPtr	deliverable;
		bool		caught_up;

		/*
		 * What the previous pass allocated goes (heartbeats, progress
		 * reports, a reload).  Decoding itself runs in the worker's
		 * context: the WAL reader keeps buffers it allocates while reading
		 * (a record larger than its buffer) in the current context.
		 */
		MemoryContextSwitchTo(worker.cxt);
		MemoryContextReset(worker.pass_cxt);
		MemoryContextSwitchTo(worker.pass_cxt);
		pgs_worker_checkpoint();
		MemoryContextSwitchTo(worker.cxt);

		INSTR_TIME_SET_CURRENT(pass_start);
		wal_end = pgs_wal_end();
		worker.in_pass = true;
		caught_up = pgs_decoder_read(decoder, wal_end, PGS_RECORDS_PER_BATCH);
		worker.in_pass = false;
		/* counted since the last report_counters(): in this pass */
		pass_transactions = worker.transactions;
		MemoryContextSwitchTo(worker.pass_cxt);

		/*
		 * Counters first: a reader that sees the slot confirmed sees them,
		 * and last_ack_at of the acknowledgements that let it move.
		 */
		deliverable = deliverable_position(decoder);
		report_counters();
		pgs_decoder_confirm(deliverable);
		report_progress(decoder);

		/*
		 * Save the slot every slot_save_interval, and at once the first time
		 * it moves: a worker that keeps dying before its first interval
		 * would otherwise always restart from where the first one started.
		 */
		if (XLogRecPtrIsInvalid(start_confirmed))
			start_confirmed = pgs_decoder_confirmed();
		if ((!saved_progress && pgs_decoder_confirmed() > start_confirmed) ||
			TimestampDifferenceExceeds(last_save, GetCurrentTimestamp(),
									   pgs_slot_save_interval))
		{
			pgs_decoder_save();
			saved_progress |= pgs_decoder_confirmed() > start_confirmed;
			last_save = GetCurrentTimestamp();
		}

		if (!worker.waiting)
			pgs_shmem_set_state(worker.entry,
								caught_up ? PGS_STATE_STREAMING : PGS_STATE_CATCHING_UP);

		/*
		 * Heartbeats carry the confirmed position, so only while nothing is
		 * in flight: a heartbeat stored after an unacknowledged transaction
		 * would become the resume point and skip it on a restart.
		 */
		if (caught_up && heartbeat_interval_ms() > 0 &&
			deliverable_position(decoder) == pgs_decoder_position(decoder) &&
			pgs_decoder_confirmed() == pgs_decoder_position(decoder) &&
			TimestampDifferenceExceeds(worker.last_heartbeat, GetCurrentTimestamp(),
									   (int) heartbeat_interval_ms()))
		{
			for (i = 0; i < worker.nsinks; i++)
			{
				if (worker.sinks[i]->heartbeat)
					worker.sinks[i]->heartbeat(worker.sinks[i], pgs_decoder_confirmed());
			}
			worker.last_heartbeat = GetCurrentTimestamp();
		}

		if (caught_up)
		{
			long		timeout = pgs_wakeup_interval;

			if (heartbeat_interval_ms() > 0)
				timeout = Min(timeout, heartbeat_interval_ms());

			/*
			 * A commit that woke us may not be flushed yet (asynchronous
			 * commit); look again soon rather than after the full interval.
			 */
			if (pg_atomic_read_u64(&pgs_shared->latest_commit_end) > wal_end)
				timeout = Min(timeout, 10);

			pgstat_report_stat(false);
			(void) WaitLatch(MyLatch,
							 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 timeout, PGS_WAIT_IDLE);
			ResetLatch(MyLatch);
			pace_passes(&pass_start, pass_transactions);
		}
	}
}

/*
 * Whether an error of SQLSTATE 42704 (undefined object) means that the
 * stream's publication is gone.  Told by facts, not by the message, which
 * lc_messages may translate: the error was raised by PostgreSQL's lookup
 * of a publication by name, and the stream's publication is the only one
 * pgoutput looks up (this covers a publication dropped and created again,
 * which the decoded WAL does not see yet); or the publication is missing
 * from the catalogs now.  Called with no error in progress; aborts the
 * transaction the error interrupted.
 */
static bool
publication_lookup_failed(const ErrorData *edata)
{
	bool		exists;

	Assert(edata->sqlerrcode == ERRCODE_UNDEFINED_OBJECT);
	if (edata->funcname != NULL &&
		(strcmp(edata->funcname, "get_publication_oid") == 0 ||
		 strcmp(edata->funcname, "GetPublicationByName") == 0))
		return true;

	AbortOutOfAnyTransaction();
	StartTransactionCommand();
	exists = GetPublicationByName(worker.config->publication, true) != NULL;
	CommitTransactionCommand();
	MemoryContextSwitchTo(worker.cxt);
	return !exists;
}

/*
 * Read the stream's row and check what restarting cannot fix.  Returns
 * false if there is nothing to do: the extension or the stream was dropped,
 * or the stream was stopped.  Sets *publication_exists.
 */
static bool
load_stream(int32 stream_id, MemoryContext cxt, bool *publication_exists)
{
	MemoryContext old;
	PgsStreamConfig *config = NULL;

	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	if (OidIsValid(get_extension_oid("pgoutput_stream", true)))
	{
		old = MemoryContextSwitchTo(cxt);
		config = pgs_config_load_by_id(stream_id);
		MemoryContextSwitchTo(old);
	}
	*publication_exists = config != NULL &&
		GetPublicationByName(config->publication, true) != NULL;
	PopActiveSnapshot();
	CommitTransactionCommand();

	if (config == NULL || !config->enabled)
		return false;
	worker.config = config;
	return true;
}

/*
 * Claim the stream's registry entry.  A worker that is still stopping (a
 * restart by start_stream(), alter_stream() or a reload) is waited for, as
 * long as it takes: its stop is bounded (pgs_worker_checkpoint), and
 * giving up would leave an enabled stream without a worker.  A worker that
 * keeps serving the stream (this one is a duplicate registration, e.g. by
 * the launcher after a crash-restart) makes this one leave.
 *
 * The wait ends on SIGTERM and on postmaster death like any other; should
 * the holder hang all the same (a client library call that does not
 * return), it is logged once a minute.
 */
static void
claim_entry(Oid dboid, int32 stream_id)
{
	TimestampTz wait_start = 0;
	int			reports = 0;

	for (;;)
	{
		bool		busy;
		bool		holder_stopping;

		worker.entry = pgs_shmem_claim(dboid, stream_id, worker.config->name,
									   &busy, &holder_stopping);
		if (worker.entry != NULL)
		{
			if (reports > 0)
				ereport(LOG,
						(errmsg("stream \"%s\" took over from its previous worker",
								worker.config->name)));
			return;
		}
		if (!busy)
		{
			ereport(LOG,
					(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					 errmsg("stream \"%s\" cannot start: too many streams are running",
							worker.config->name),
					 errhint("Increase \"pgoutput_stream.max_streams\".")));
			proc_exit(0);
		}
		if (!holder_stopping)
		{
			ereport(DEBUG1,
					(errmsg("stream \"%s\" is served by another worker",
							worker.config->name)));
			proc_exit(0);
		}

		if (wait_start == 0)
			wait_start = GetCurrentTimestamp();
		else if (TimestampDifferenceExceeds(wait_start, GetCurrentTimestamp(),
											(reports + 1) * 60 * 1000))
		{
			reports++;
			ereport(LOG,
					(errmsg("stream \"%s\" is still waiting for its previous worker (PID %d) to stop",
							worker.config->name,
							(int) pgs_shmem_worker_pid(dboid, stream_id)),
					 errdetail("The new worker has waited %d seconds.", reports * 60)));
		}
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 20, PGS_WAIT_HANDOVER);
		ResetLatch(MyLatch);
		pgs_worker_checkpoint();
	}
}

void
pgoutput_stream_worker_main(Datum main_arg)
{
	int32		stream_id = DatumGetInt32(main_arg);
	PgsWorkerArgs args;
	MemoryContext worker_cxt;
	bool		publication_exists;
	char	   *decoding_work_mem;

	memcpy(&args, MyBgworkerEntry->bgw_extra, sizeof(args));
	on_proc_exit(worker_exit_now, (Datum) 0);
	before_shmem_exit(worker_on_exit, (Datum) 0);

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	/*
	 * logical_decoding_work_mem as postgresql.conf has it: a database's own
	 * setting, which its owner may choose, could let decoding hold a large
	 * transaction in memory until the server runs out of it.
	 */
	decoding_work_mem = pstrdup(GetConfigOption("logical_decoding_work_mem",
												false, false));
	BackgroundWorkerInitializeConnectionByOid(args.dboid, InvalidOid,
											  PGS_BGWORKER_BYPASS_FLAGS);
	pgs_guc_override_database_settings();
	if (strcmp(GetConfigOption("logical_decoding_work_mem", false, false),
			   decoding_work_mem) != 0)
	{
		ereport(LOG,
				(errmsg("stream worker ignores the setting of \"logical_decoding_work_mem\" made for its database or role")));
		SetConfigOption("logical_decoding_work_mem", decoding_work_mem,
						PGC_SUSET, PGC_S_OVERRIDE);
	}
	set_output_settings();
	restrict_security_context();

	worker_cxt = AllocSetContextCreate(TopMemoryContext,
									   "pgoutput_stream worker",
									   ALLOCSET_DEFAULT_SIZES);
	worker.cxt = worker_cxt;
	MemoryContextSwitchTo(worker_cxt);

	wait_for_starting_transaction(args.wait_xid);
	if (!load_stream(stream_id, worker_cxt, &publication_exists))
		proc_exit(0);
	claim_entry(args.dboid, stream_id);

	/*
	 * A stop_stream() may have committed while this worker waited for the
	 * entry: read the row again now that the entry is ours.
	 */
	if (!load_stream(stream_id, worker_cxt, &publication_exists))
	{
		SpinLockAcquire(&worker.entry->mutex);
		worker.entry->stop_requested = true;
		SpinLockRelease(&worker.entry->mutex);
		proc_exit(0);
	}

	{
		char		appname[NAMEDATALEN];

		snprintf(appname, sizeof(appname), "pgoutput_stream %s", worker.config->name);
		pgstat_report_appname(appname);
	}

	if (!publication_exists)
		pgs_worker_fail(psprintf("publication \"%s\" does not exist",
							 worker.config->publication),
					"Create the publication again; if changes were written while it was missing, advance the slot past them with pg_replication_slot_advance() (their events are lost); then call pgoutput_stream.start_stream().");
	if (wal_level < WAL_LEVEL_LOGICAL)
		pgs_worker_fail("logical decoding requires \"wal_level\" >= \"logical\"",
					"Set \"wal_level\" to \"logical\" and restart the server.");

	PG_TRY();
	{
		/* before decoding, which converts outside transactions too */
		StartTransactionCommand();
		pgs_server_to_utf8_prepare();
		CommitTransactionCommand();
		/* the timelines that event ids are made of */
		pgs_event_id_init();
		run_stream();
	}
	PG_CATCH();
	{
		ErrorData  *edata;
		const char *shown;

		/* keep the message for stream_status, then let the error end us */
		HOLD_INTERRUPTS();
		MemoryContextSwitchTo(worker_cxt);
		edata = CopyErrorData();
		shown = error_text_for_status(edata);
		pgs_shmem_set_error(worker.entry, shown);

		/*
		 * pgoutput looks up the publication as of the decoded WAL, so a
		 * publication dropped (and maybe created again) fails the same
		 * change after every restart: report it instead of looping.
		 */
		if (edata->sqlerrcode == ERRCODE_UNDEFINED_OBJECT)
		{
			EmitErrorReport();
			FlushErrorState();
			if (publication_lookup_failed(edata))
				pgs_worker_fail(psprintf("publication \"%s\" does not exist",
										 worker.config->publication),
								"The publication was dropped while the stream needed it. Create it again if needed, advance the slot past the changes made without it with pg_replication_slot_advance() (their events are lost), then call pgoutput_stream.start_stream().");
			/* another object is missing: end as the error would, logged above */
			proc_exit(1);
		}

		/*
		 * Data that cannot be delivered (class 22, e.g. a value a target
		 * cannot represent) or a setup that cannot work (55000, e.g. an
		 * unchanged TOASTed value without REPLICA IDENTITY FULL) fails the
		 * same change after every restart: report it instead of looping.
		 */
		if (ERRCODE_TO_CATEGORY(edata->sqlerrcode) == ERRCODE_DATA_EXCEPTION ||
			edata->sqlerrcode == ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE)
		{
			EmitErrorReport();
			FlushErrorState();
			pgs_worker_fail(shown,
							edata->hint ? edata->hint :
							"Fix the cause, then call pgoutput_stream.start_stream().");
		}
		RESUME_INTERRUPTS();
		PG_RE_THROW();
	}
	PG_END_TRY();
}
