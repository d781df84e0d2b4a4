/*-------------------------------------------------------------------------
 *
 * nats_sink.c
 *		The "nats" target: every event exactly once in a JetStream stream,
 *		in commit order.
 *
 * Events are published asynchronously with a bounded number in flight.
 * Every message carries a Nats-Msg-Id derived from the slot, the commit LSN
 * of its transaction and its position in the transaction, so a message
 * sent again after any restart is recognised by JetStream's duplicate
 * detection.  Beyond the duplicate window, the same ids make replays
 * exact: at start the target reads the last message this stream stored
 * and skips every event up to it, and it chains each message to its
 * predecessor with ExpectLastMsgId, so that JetStream refuses anything out
 * of order instead of storing it.
 *
 * The slot is confirmed to a transaction's end LSN only when JetStream
 * acknowledged all of its messages and all earlier ones (a duplicate
 * acknowledgement counts as stored).  Any failure to store a message ends
 * the worker with an error; it restarts, reconnects with a capped backoff,
 * and resumes after the last stored message.
 *
 * Threads: cnats runs its own (connection reader, flusher, timers), and
 * this file one more, which takes JetStream's acknowledgements off the
 * connection's reply subscription.  They are created while every signal is
 * blocked, so that PostgreSQL's signals reach the main thread only, and the
 * acknowledgement thread touches nothing but this file's state, through
 * atomics (no lock: see PgsNatsSink), and the process latch, whose
 * SetLatch is async-signal-safe.  Signals are blocked only around thread
 * creation, never while the main thread waits for NATS: see
 * try_connect().
 *
 * Headers: a row change carries eleven headers.  cnats' public header
 * functions keep them in a hash table, several allocations per header,
 * which cost more than everything else the worker does per message.  So
 * the worker encodes the header block itself ("NATS/1.0\r\nKey: value
 * ...") and hands it to the constructor cnats uses for received messages,
 * which keeps headers encoded until someone reads them.  That constructor
 * is exported but not declared in nats.h: it is looked up at run time,
 * checked once against the public accessors, and without it (or with
 * pgoutput_stream.nats_encode_headers off) the public functions are used.
 *
 * This is the only file that includes <nats/nats.h>.
 *
 * Copyright (c) 2026, pgoutput_stream developers
 *
 * IDENTIFICATION
 *		src/nats_sink.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <time.h>

#include <nats/nats.h>

#include "access/xlog.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "port/atomics.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "decoder.h"
#include "event_id.h"
#include "guc.h"
#include "secrets.h"
#include "shmem.h"
#include "sink.h"
#include "worker.h"


/* Hints of the refusals to share a JetStream stream */
#define PGS_NATS_TARGET_HINT \
	"Give the stream its own subject_prefix and nats_stream with pgoutput_stream.alter_stream(), then call pgoutput_stream.start_stream(). Streams that are meant to share a JetStream stream, unchained, both set the stream option nats_shared_stream."
#define PGS_NATS_WRITER_HINT \
	"Use a JetStream stream of its own (stream option nats_stream), or purge this one if its messages are no longer needed; or, to share it and publish unchained, set the stream option nats_shared_stream. Then call pgoutput_stream.start_stream()."

/*
 * A published message, in a ring in publish order, until the main thread
 * retires it.  The message itself is freed once it is written to the
 * connection; its reply subject ends in its position in the ring, so the
 * acknowledgement names the entry it settles.
 */
typedef struct NatsPending
{
	pg_atomic_uint32 state;		/* NATS_PENDING_* */
	PgsEventId	id;				/* what its Nats-Msg-Id is made of */
	XLogRecPtr	end_lsn;		/* the last message of a transaction: what
								 * the slot may be confirmed to once it and
								 * all before it are stored; else Invalid */
} NatsPending;

#define NATS_PENDING_IN_FLIGHT	0
#define NATS_PENDING_STORED		1
#define NATS_PENDING_REFUSED	2

/* One header of a message */
typedef struct NatsHeader
{
	const char *key;
	const char *value;
} NatsHeader;

#define PGS_NATS_MAX_HEADERS	12

/* cnats' constructor of a message whose headers are already encoded */
typedef natsStatus (*CreateEncodedMsgFn) (natsMsg **msg,
										  const char *subject, int subject_len,
										  const char *reply, int reply_len,
										  const char *buf, int buf_len,
										  int header_len);

/* cnats' destructor proper: frees a message at once, in the calling thread */
typedef void (*FreeMsgFn) (void *msg);

typedef struct PgsNatsSink
{
	PgsSink		base;

	natsOptions *opts;
	natsConnection *conn;
	jsCtx	   *js;
	char	   *stream;
	char	   *url;
	const char *slot_name;		/* in message ids */
	char	   *system_id;		/* this cluster's, in every message */
	XLogRecPtr	commit_time_lsn;	/* transaction commit_time belongs to */
	char		commit_time[MAXDATELEN + 1];	/* its Pg-Commit-Time header */

	PgsResumePoint resume;		/* where the previous life stopped */
	PgsStoredEvent last_event;	/* the last event stored or published, that a
								 * heartbeat names */
	bool		have_last_event;
	bool		rechain_pending;	/* unchained until past rechain_after */
	PgsEventId	rechain_after;
	char	   *refusal;		/* another writer found: fail, do not retry */
	bool		encode_headers; /* through create_encoded_msg */
	StringInfoData msgbuf;		/* headers and payload being encoded */
	bool		chain;			/* ExpectLastMsgId on every message */
	uint64		chain_seq;		/* first message after connecting: the
								 * stream sequence it must follow, or 0 */
	char		last_id[PGS_EVENT_ID_LEN];
	bool		unflushed;
	int64		flushed_at_us;	/* end of the last flush (monotonic_us) */
	bool		published_from_idle;	/* a message was published while
										 * nothing was in flight */
	/* acknowledgements: replies to <reply_prefix><ring position in hex> */
	natsSubscription *ack_sub;
	char		reply_prefix[64];
	int			reply_prefix_len;
	pthread_t	ack_thread;
	bool		ack_thread_running;
	pg_atomic_uint32 ack_stop;	/* the acknowledgement thread is to end */
	bool		disconnected;	/* reported as waiting in stream_status */
	XLogRecPtr	acked;			/* main thread only */

	/* main thread only */
	bool		txn_open;		/* a transaction's messages are being published */
	int64		txn_messages;	/* unretired messages other than heartbeats */

	/*
	 * Shared with the acknowledgement thread without a lock, because the
	 * two threads meet at every message and a lock holder preempted on a
	 * busy machine stalls the other for a scheduler tick.  The main thread
	 * fills entry pending_tail, then advances pending_tail; the
	 * acknowledgement thread sets the entry's state and advances
	 * ack_cursor past settled entries; the main thread retires settled
	 * entries from pending_head.  Entries in [pending_head, pending_tail)
	 * are never reused.
	 */
	NatsPending *pending;		/* ring of pending_cap entries */
	uint64		pending_cap;
	uint64		pending_head;	/* main thread only */
	pg_atomic_uint64 pending_tail;
	uint64		ack_cursor;		/* acknowledgement thread only */
	pg_atomic_uint32 inflight;	/* published, not yet acknowledged */
	pg_atomic_uint64 progress_ms;	/* last acknowledgement, or the publish
									 * that ended an idle period (monotonic
									 * clock) */
	pg_atomic_uint32 room_wanted;	/* main thread waits for inflight to
									 * drop */
	pg_atomic_uint32 failed;
	pthread_mutex_t error_mu;	/* for error, written once */
	char		error[256];

	/* Pg-Schema and Pg-Table of the last relation, escaped once */
	char	   *hdr_nspname;	/* raw names they were made from */
	char	   *hdr_relname;
	StringInfoData hdr_schema;
	StringInfoData hdr_table;
	MemoryContext cxt;			/* lives as long as the sink */
} PgsNatsSink;

static bool nats_opened = false;

/* found once per process by find_message_functions(), when cnats is opened */
static CreateEncodedMsgFn create_encoded_msg = NULL;
static FreeMsgFn free_msg_now = NULL;

static void release_msg(natsMsg *msg);

/*
 * Microseconds (and milliseconds, below) on the monotonic clock: plain
 * libc, so that both threads can use them.
 */
static int64
monotonic_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64
monotonic_ms(void)
{
	return monotonic_us() / 1000;
}

/* ----------------------------------------------------------------
 * Acknowledgement thread: no PostgreSQL calls below this line until the
 * end of the section.
 * ----------------------------------------------------------------
 */

/* Record the first failure; later ones are consequences of it */
static void
set_failed(PgsNatsSink *sink, const char *fmt,...) pg_attribute_printf(2, 3);

static void
set_failed(PgsNatsSink *sink, const char *fmt,...)
{
	pthread_mutex_lock(&sink->error_mu);
	if (pg_atomic_read_u32(&sink->failed) == 0)
	{
		va_list		args;

		va_start(args, fmt);
		vsnprintf(sink->error, sizeof(sink->error), fmt, args);
		va_end(args);
		pg_atomic_write_u32(&sink->failed, 1);
	}
	pthread_mutex_unlock(&sink->error_mu);
}

/*
 * The value of "key" in a JetStream reply, a flat JSON text: a number, or a
 * string copied without its quotes (escapes kept as they are; these values
 * are server messages, shown to people).  Returns false if it is missing.
 */
static bool
reply_field(const char *json, const char *key, char *value, size_t value_size)
{
	char		pattern[32];
	const char *p;
	size_t		n = 0;

	snprintf(pattern, sizeof(pattern), "\"%s\":", key);
	p = strstr(json, pattern);
	if (p == NULL || value_size == 0)
		return false;
	p += strlen(pattern);
	while (*p == ' ')
		p++;
	if (*p == '"')
	{
		for (p++; *p != '\0' && *p != '"'; p++)
		{
			if (*p == '\\' && p[1] != '\0')
			{
				if (n + 1 < value_size)
					value[n++] = *p;
				p++;
			}
			if (n + 1 < value_size)
				value[n++] = *p;
		}
	}
	else
	{
		for (; *p == '-' || (*p >= '0' && *p <= '9'); p++)
			if (n + 1 < value_size)
				value[n++] = *p;
	}
	value[n] = '\0';
	return n > 0;
}

/*
 * The ring entry a reply subject names ("<reply_prefix><position in hex>"),
 * if that message is in flight; else NULL.
 */
static NatsPending *
entry_for_reply(PgsNatsSink *sink, const char *subject)
{
	int			prefix_len = sink->reply_prefix_len;
	uint64		tail = pg_atomic_read_u64(&sink->pending_tail);
	uint64		position;
	char	   *end;
	NatsPending *p;

	if (subject == NULL || strncmp(subject, sink->reply_prefix, prefix_len) != 0 ||
		subject[prefix_len] == '\0')
		return NULL;
	errno = 0;
	position = strtoull(subject + prefix_len, &end, 16);
	if (errno != 0 || *end != '\0' || position < sink->ack_cursor || position >= tail)
		return NULL;
	/* the entry's fields were written before the tail moved past it */
	pg_read_barrier();
	p = &sink->pending[position % sink->pending_cap];
	if (pg_atomic_read_u32(&p->state) != NATS_PENDING_IN_FLIGHT)
		return NULL;
	return p;
}

/*
 * Settle the message a JetStream reply is for: stored (a duplicate counts
 * as stored) or refused, which fails the sink.
 */
static void
settle_message(PgsNatsSink *sink, natsMsg *reply)
{
	NatsPending *p = entry_for_reply(sink, natsMsg_GetSubject(reply));
	const char *json = natsMsg_GetData(reply);
	uint64		tail;
	uint32		inflight;
	bool		wake;

	if (p == NULL)
	{
		set_failed(sink, "acknowledgement for a message this stream did not publish");
		SetLatch(MyLatch);
		return;
	}
	/*
	 * nats-server writes the error member first ({"error":{...}}) and the
	 * stream's name before the sequence ({"stream":"…","seq":…}); a quote
	 * in a name comes escaped, so "seq": cannot come from the name, while
	 * "error" can (a JetStream stream may be called that).
	 */
	while (json != NULL && *json == ' ')
		json++;
	if (json != NULL && strncmp(json, "{\"error\":", 9) != 0 &&
		strstr(json, "\"seq\":") != NULL)
		pg_atomic_write_u32(&p->state, NATS_PENDING_STORED);
	else
	{
		char		id[PGS_EVENT_ID_LEN];
		char		description[160];
		char		err_code[16];

		pgs_event_id_format(id, sink->slot_name, &p->id);
		if (json != NULL &&
			reply_field(json, "description", description, sizeof(description)))
			set_failed(sink, "message %s was not stored: %s (JetStream error code %s)", id,
					   description,
					   reply_field(json, "err_code", err_code, sizeof(err_code)) ?
					   err_code : "unknown");
		else
			set_failed(sink, "message %s was not stored: unexpected reply \"%.100s\"",
					   id, json != NULL ? json : "");
		pg_atomic_write_u32(&p->state, NATS_PENDING_REFUSED);
	}

	/* past the settled entries, so that the next lookup starts there */
	tail = pg_atomic_read_u64(&sink->pending_tail);
	while (sink->ack_cursor < tail &&
		   pg_atomic_read_u32(&sink->pending[sink->ack_cursor % sink->pending_cap].state) !=
		   NATS_PENDING_IN_FLIGHT)
		sink->ack_cursor++;

	inflight = pg_atomic_sub_fetch_u32(&sink->inflight, 1);
	pg_atomic_write_u64(&sink->progress_ms, (uint64) monotonic_ms());

	/*
	 * Wake the main thread when everything published so far is settled
	 * (a transaction may be confirmed), when it waits for room and half
	 * of the window is free (not for every acknowledgement: one wake-up
	 * per message costs more than the publish itself), or on failure.
	 */
	wake = sink->ack_cursor == tail || pg_atomic_read_u32(&sink->failed) != 0 ||
		(inflight <= (uint32) pgs_nats_max_pending / 2 &&
		 pg_atomic_read_u32(&sink->room_wanted) != 0 &&
		 pg_atomic_exchange_u32(&sink->room_wanted, 0) != 0);

	/* async-signal-safe, and process-directed: wakes the main thread */
	if (wake)
		SetLatch(MyLatch);
}

/*
 * The acknowledgement thread: takes JetStream's replies off the
 * connection's reply subscription until it is told to stop or the
 * subscription ends.
 *
 * Not js_PublishMsgAsync and its acknowledgement callback: cnats keeps a
 * hash table of pending messages keyed by reply token, parses every reply
 * into allocated objects, and hands every message, published or received,
 * to its garbage collector thread instead of freeing it, waking that
 * thread each time.  That cost the client twice the CPU per message of
 * this loop.
 */
static void *
ack_thread_main(void *arg)
{
	PgsNatsSink *sink = (PgsNatsSink *) arg;

	while (pg_atomic_read_u32(&sink->ack_stop) == 0)
	{
		natsMsg    *reply = NULL;
		natsStatus	s = natsSubscription_NextMsg(&reply, sink->ack_sub, 100);

		if (s == NATS_TIMEOUT)
			continue;

		/*
		 * cnats takes a "no responders" status reply (nothing captures the
		 * subject: the JetStream stream is gone) for an error and frees it,
		 * subject and all.  Replies come in publish order, so it is the
		 * oldest message in flight.
		 */
		if (s == NATS_NO_RESPONDERS)
		{
			uint64		tail = pg_atomic_read_u64(&sink->pending_tail);
			char		id[PGS_EVENT_ID_LEN] = "";

			pg_read_barrier();
			if (sink->ack_cursor < tail)
				pgs_event_id_format(id, sink->slot_name,
									&sink->pending[sink->ack_cursor % sink->pending_cap].id);
			set_failed(sink, "message %s was not stored: no JetStream stream captures its subject (no responders)",
					   id);
			SetLatch(MyLatch);
			continue;
		}
		if (s != NATS_OK)
		{
			if (pg_atomic_read_u32(&sink->ack_stop) == 0)
			{
				set_failed(sink, "JetStream acknowledgements ended: %s", natsStatus_GetText(s));
				SetLatch(MyLatch);
			}
			break;
		}
		settle_message(sink, reply);
		release_msg(reply);
	}
	return NULL;
}

/* ---------------------------------------------------------------- */

/*
 * cnats' natsMsg_create and natsMsg_free, if this library has them and they
 * behave as expected: a message made of an encoded header block and a
 * payload must show its subject, headers and payload through the public
 * accessors.  Their signatures have not changed from cnats 2.2, which
 * brought headers, to 3.9; a later major version is not trusted with them.
 *
 * natsMsg_Destroy does not free a message: it hands it to cnats' garbage
 * collector thread, taking that thread's lock and waking it up, which cost
 * the main thread more than building the message.  natsMsg_free is what the
 * collector calls; the worker calls it itself once cnats is done with a
 * message.
 */
static void
find_message_functions(void)
{
	static const char block[] = "NATS/1.0\r\nPg-Check: a b\r\nPg-Other: c\r\n\r\npayload";
	const int	payload_len = 7;
	Dl_info		info;
	void	   *lib;
	CreateEncodedMsgFn create_fn;
	FreeMsgFn	free_fn;
	natsMsg    *msg = NULL;
	const char *value = NULL;
	bool		ok;

	if (nats_GetVersionNumber() < 0x020200 || nats_GetVersionNumber() >= 0x040000)
		return;
	if (dladdr((void *) natsMsg_Create, &info) == 0 || info.dli_fname == NULL)
		return;
	/* already loaded as our dependency: this only takes a reference */
	lib = dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD);
	if (lib == NULL)
		return;
	create_fn = (CreateEncodedMsgFn) dlsym(lib, "natsMsg_create");
	free_fn = (FreeMsgFn) dlsym(lib, "natsMsg_free");
	dlclose(lib);
	if (create_fn == NULL || free_fn == NULL)
		return;

	ok = create_fn(&msg, "pgs.check", 9, NULL, 0, block, (int) sizeof(block) - 1,
				   (int) sizeof(block) - 1 - payload_len) == NATS_OK &&
		strcmp(natsMsg_GetSubject(msg), "pgs.check") == 0 &&
		natsMsg_GetDataLength(msg) == payload_len &&
		memcmp(natsMsg_GetData(msg), "payload", payload_len) == 0 &&
		natsMsgHeader_Get(msg, "Pg-Other", &value) == NATS_OK &&
		strcmp(value, "c") == 0 &&
		natsMsgHeader_Get(msg, "Pg-Check", &value) == NATS_OK &&
		strcmp(value, "a b") == 0;
	natsMsg_Destroy(msg);
	if (ok)
	{
		create_encoded_msg = create_fn;
		free_msg_now = free_fn;
	}
}

/*
 * Free a message cnats no longer refers to: one written to the connection,
 * or a reply taken off the acknowledgement subscription.
 */
static void
release_msg(natsMsg *msg)
{
	if (free_msg_now != NULL)
		free_msg_now(msg);
	else
		natsMsg_Destroy(msg);
}

/*
 * Whether a stream's connection encodes headers itself.  The slower
 * fallback is logged, so that an operator can tell why.
 */
static bool
use_encoded_headers(const char *stream_name)
{
	if (pgs_nats_encode_headers && create_encoded_msg != NULL)
		return true;
	ereport(LOG,
			(errmsg("stream \"%s\" sets NATS message headers through the client library's header functions",
					stream_name),
			 !pgs_nats_encode_headers ?
			 errdetail("\"pgoutput_stream.nats_encode_headers\" is off.") :
			 errdetail("NATS client library %s has no usable constructor for messages with encoded headers.",
					   nats_GetVersion())));
	return false;
}

static void
report_nats_error(const char *what, natsStatus s)
{
	char		stack[512];

	stack[0] = '\0';
	(void) nats_GetLastErrorStack(stack, sizeof(stack));
	ereport(ERROR,
			(errcode(ERRCODE_CONNECTION_FAILURE),
			 errmsg("%s: %s", what, natsStatus_GetText(s)),
			 stack[0] ? errdetail("%s", stack) : 0));
}

/*
 * Text of a cnats error for status and logs: the last error of this thread,
 * or the text given (cnats keeps the text per thread).  cnats quotes parts
 * of a server URL it cannot parse ("invalid port '...'"), which may be a
 * password: the text is redacted against the sink's URLs and the secret
 * settings.
 */
static char *
nats_error_text_of(PgsNatsSink *sink, natsStatus s, const char *text)
{
	if (text != NULL && text[0] != '\0' && strcmp(text, natsStatus_GetText(s)) != 0)
	{
		char	   *raw = psprintf("%s (%s)", natsStatus_GetText(s), text);
		char	   *shown = pgs_redact_text(raw, sink->url);

		pgs_wipe_free(raw);
		return shown;
	}
	return pstrdup(natsStatus_GetText(s));
}

static char *
nats_error_text(PgsNatsSink *sink, natsStatus s)
{
	return nats_error_text_of(sink, s, nats_GetLastError(NULL));
}

/*
 * End the acknowledgement thread: unsubscribing wakes it up at once.
 */
static void
stop_ack_thread(PgsNatsSink *sink)
{
	if (sink->ack_thread_running)
	{
		pg_atomic_write_u32(&sink->ack_stop, 1);
		(void) natsSubscription_Unsubscribe(sink->ack_sub);
		pthread_join(sink->ack_thread, NULL);
		sink->ack_thread_running = false;
	}
	if (sink->ack_sub)
		natsSubscription_Destroy(sink->ack_sub);
	sink->ack_sub = NULL;
}

/*
 * Subscribe to the replies of this connection's messages and start the
 * thread that takes them, with every signal blocked (the thread inherits
 * the mask).  NATS_OK or the failing status.
 */
static natsStatus
start_ack_thread(PgsNatsSink *sink)
{
	natsInbox  *inbox = NULL;
	char		subject[sizeof(sink->reply_prefix) + 1];
	natsStatus	s;

	s = natsInbox_Create(&inbox);
	if (s != NATS_OK)
		return s;
	sink->reply_prefix_len = snprintf(sink->reply_prefix, sizeof(sink->reply_prefix),
									  "%s.", (const char *) inbox);
	natsInbox_Destroy(inbox);
	snprintf(subject, sizeof(subject), "%s*", sink->reply_prefix);
	s = natsConnection_SubscribeSync(&sink->ack_sub, sink->conn, subject);
	/* never drop a reply: the window bounds how many can wait */
	if (s == NATS_OK)
		s = natsSubscription_SetPendingLimits(sink->ack_sub, -1, -1);
	/* the server knows the subscription before the first message */
	if (s == NATS_OK)
		s = natsConnection_Flush(sink->conn);
	if (s == NATS_OK)
	{
		sigset_t	all;
		sigset_t	old;
		int			rc;

		pg_atomic_write_u32(&sink->ack_stop, 0);
		sigfillset(&all);
		pthread_sigmask(SIG_BLOCK, &all, &old);
		rc = pthread_create(&sink->ack_thread, NULL, ack_thread_main, sink);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (rc != 0)
			s = NATS_SYS_ERROR;
		else
			sink->ack_thread_running = true;
	}
	return s;
}

/*
 * Close the connection and free cnats' objects.  The options and the
 * connection hold cnats' copies of the server URLs and of the user,
 * password and token settings (and the CONNECT line it sent), which cnats
 * frees without wiping: memory the extension does not own.
 */
static void
destroy_connection(PgsNatsSink *sink)
{
	stop_ack_thread(sink);
	if (sink->js)
		jsCtx_Destroy(sink->js);
	if (sink->conn)
		natsConnection_Destroy(sink->conn);
	if (sink->opts)
		natsOptions_Destroy(sink->opts);
	sink->js = NULL;
	sink->conn = NULL;
	sink->opts = NULL;
}

/* Build cnats options from the settings; NATS_OK or the failing status */
static natsStatus
build_options(PgsNatsSink *sink, const char *stream_name)
{
	natsStatus	s;
	char	   *urls = pstrdup(sink->url);
	size_t		urls_len = strlen(urls);
	const char *servers[64];
	int			nservers = 0;
	char	   *tok;
	char	   *save = NULL;
	char		name[NAMEDATALEN + 32];
	bool		tls_url = false;

	for (tok = strtok_r(urls, ",", &save); tok != NULL && nservers < 64;
		 tok = strtok_r(NULL, ",", &save))
	{
		/*
		 * cnats ignores the scheme: a tls:// URL would connect in plain text
		 * and send the credentials in the clear.  It asks for TLS here.
		 */
		if (pg_strncasecmp(tok, "tls://", 6) == 0)
			tls_url = true;
		servers[nservers++] = tok;
	}

	if (pgs_nats_connection_name[0] != '\0')
		strlcpy(name, pgs_nats_connection_name, sizeof(name));
	else
		snprintf(name, sizeof(name), "pgoutput_stream %s", stream_name);
	s = natsOptions_Create(&sink->opts);
	if (s == NATS_OK)
		s = natsOptions_SetServers(sink->opts, servers, nservers);
	if (s == NATS_OK)
		s = natsOptions_SetName(sink->opts, name);
	if (s == NATS_OK)
		s = natsOptions_SetTimeout(sink->opts, pgs_nats_connect_timeout);
	/* short blips are ridden out by cnats; longer ones end in ack timeouts */
	if (s == NATS_OK)
		s = natsOptions_SetMaxReconnect(sink->opts, -1);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectWait(sink->opts, 500);
	if (s == NATS_OK)
		s = natsOptions_SetWriteDeadline(sink->opts, pgs_nats_ack_timeout);
	/*
	 * A write buffer of 256 kB rather than cnats' 32 kB: when it is full,
	 * the publishing thread writes it out itself, holding the connection's
	 * lock that cnats' reader and flusher threads need.
	 */
	if (s == NATS_OK)
		s = natsOptions_SetIOBufSize(sink->opts, 256 * 1024);

	/*
	 * Requests (the JetStream API calls of try_connect) each on a
	 * subscription of their own: the default shares one subscription
	 * whose callback runs in a thread cnats starts at the first request,
	 * from the calling thread, which would then have to block every
	 * signal for as long as the request waits (see try_connect).  These
	 * few requests at connection time cost one more round trip each.
	 */
	if (s == NATS_OK)
		s = natsOptions_UseOldRequestStyle(sink->opts, true);
	if (s == NATS_OK && pgs_nats_user[0] != '\0')
		s = natsOptions_SetUserInfo(sink->opts, pgs_nats_user, pgs_nats_password);
	if (s == NATS_OK && pgs_nats_token[0] != '\0')
		s = natsOptions_SetToken(sink->opts, pgs_nats_token);
	if (s == NATS_OK && pgs_nats_creds_file[0] != '\0')
		s = natsOptions_SetUserCredentialsFromFiles(sink->opts, pgs_nats_creds_file, NULL);
	if (s == NATS_OK && pgs_nats_nkey_seed_file[0] != '\0')
	{
		if (pgs_nats_nkey[0] == '\0')
			s = NATS_INVALID_ARG;	/* cnats needs the public key too */
		else
			s = natsOptions_SetNKeyFromSeed(sink->opts, pgs_nats_nkey,
											pgs_nats_nkey_seed_file);
	}
	if (s == NATS_OK && tls_url)
		s = natsOptions_SetSecure(sink->opts, true);
	if (s == NATS_OK && pgs_nats_tls_ca_file[0] != '\0')
	{
		s = natsOptions_SetSecure(sink->opts, true);
		if (s == NATS_OK)
			s = natsOptions_LoadCATrustedCertificates(sink->opts, pgs_nats_tls_ca_file);
	}
	if (s == NATS_OK && pgs_nats_tls_cert_file[0] != '\0')
	{
		s = natsOptions_SetSecure(sink->opts, true);
		if (s == NATS_OK)
			s = natsOptions_LoadCertificatesChain(sink->opts, pgs_nats_tls_cert_file,
												  pgs_nats_tls_key_file);
	}
	/*
	 * Our copy of the URLs is wiped; cnats keeps its own copies of them and
	 * of the credentials in the options, and frees them without wiping.
	 */
	explicit_bzero(urls, urls_len);	/* strtok_r cut it into pieces */
	pfree(urls);
	return s;
}

/*
 * Whether the subject pattern of a stream captures every subject below
 * prefix (prefix.>): literal tokens must match, "*" matches one token, and
 * a ">" must come at the latest right after the prefix.
 */
static bool
pattern_covers_prefix(const char *pattern, const char *prefix)
{
	char	   *p = pstrdup(pattern);
	char	   *q = pstrdup(prefix);
	char	   *psave = NULL;
	char	   *qsave = NULL;
	char	   *pt = strtok_r(p, ".", &psave);
	char	   *qt = strtok_r(q, ".", &qsave);

	while (pt != NULL)
	{
		if (strcmp(pt, ">") == 0)
			return true;
		if (qt == NULL)
			return false;
		if (strcmp(pt, "*") != 0 && strcmp(pt, qt) != 0)
			return false;
		pt = strtok_r(NULL, ".", &psave);
		qt = strtok_r(NULL, ".", &qsave);
	}
	return false;
}

/*
 * Use the JetStream stream if it captures the prefix; create it if
 * missing.  A user's stream is never altered or deleted.  Returns false
 * with the reason on failure: the stream waits and tries again, so fixing
 * the JetStream side is enough to resume.
 */
static bool
ensure_stream(PgsNatsSink *sink, const PgsStreamConfig *config, char **reason)
{
	jsStreamInfo *si = NULL;
	jsErrCode	jerr = 0;
	natsStatus	s;
	const char *prefix = config->fmt.subject_prefix;

	s = js_GetStreamInfo(&si, sink->js, sink->stream, NULL, &jerr);
	if (s == NATS_OK)
	{
		bool		covered = false;
		int			i;

		for (i = 0; i < si->Config->SubjectsLen && !covered; i++)
			covered = pattern_covers_prefix(si->Config->Subjects[i], prefix);
		jsStreamInfo_Destroy(si);
		if (!covered)
		{
			*reason = psprintf("JetStream stream \"%s\" does not capture the subjects \"%s.>\"; make its subjects include \"%s.>\" (replacing narrower patterns such as \"%s.*.*.*\"), or set the stream option nats_stream",
							   sink->stream, prefix, prefix, prefix);
			return false;
		}
		return true;
	}
	if (s != NATS_NOT_FOUND)
	{
		*reason = psprintf("could not look up JetStream stream \"%s\": %s",
						   sink->stream, nats_error_text(sink, s));
		return false;
	}

	{
		jsStreamConfig sc;
		const char *subjects[1];

		subjects[0] = psprintf("%s.>", prefix);
		jsStreamConfig_Init(&sc);
		sc.Name = sink->stream;
		sc.Subjects = subjects;
		sc.SubjectsLen = 1;
		sc.Storage = config->nats.memory_storage ? js_MemoryStorage : js_FileStorage;
		sc.Retention = js_LimitsPolicy;
		sc.Discard = js_DiscardOld;
		sc.MaxMsgs = config->nats.max_msgs;
		sc.MaxBytes = config->nats.max_bytes;
		sc.MaxAge = config->nats.max_age * INT64CONST(1000000000);
		sc.Replicas = config->nats.replicas;
		if (config->nats.duplicate_window > 0)
			sc.Duplicates = config->nats.duplicate_window * INT64CONST(1000000000);
		jerr = 0;
		s = js_AddStream(&si, sink->js, &sc, NULL, &jerr);
		if (s != NATS_OK)
		{
			*reason = psprintf("could not create JetStream stream \"%s\": %s (JetStream error code %d)",
							   sink->stream, nats_error_text(sink, s), (int) jerr);
			return false;
		}
		jsStreamInfo_Destroy(si);
		ereport(LOG,
				(errmsg("stream \"%s\" created JetStream stream \"%s\" for subjects \"%s\"",
						config->name, sink->stream, subjects[0])));
	}
	return true;
}

/*
 * The stream's last message is not ours: ExpectLastMsgId would fail, so
 * messages are not chained.  Without the chain, a message lost before a
 * later one was stored cannot be told apart from a stored one, so nothing
 * is skipped either: duplicates older than the duplicate window are
 * possible, losses are not.
 */
static void
unchained(PgsNatsSink *sink, const PgsStreamConfig *config)
{
	sink->chain = false;
	sink->chain_seq = 0;
	sink->resume.active = false;
	ereport(LOG,
			(errmsg("stream \"%s\" is not the only writer of JetStream stream \"%s\"; messages are not chained",
					config->name, sink->stream),
			 errdetail("Replayed events are removed by duplicate detection within the stream's duplicate window only."),
			 errhint("Give every pgoutput_stream stream its own JetStream stream (stream option nats_stream).")));
}

/*
 * Whether msg was written by this stream: its id starts with the slot name
 * and its Pg-System-Id is this cluster's.  Otherwise *what says what was
 * found, starting with where (which message it is).  Only the id's slot
 * part is looked at: the rest of its format is parse_msg_id's business.
 */
static bool
message_is_ours(PgsNatsSink *sink, natsMsg *msg, const char *where, char **what)
{
	const char *id = NULL;
	const char *sysid = NULL;
	size_t		slot_len = strlen(sink->slot_name);
	char	   *found = psprintf("%s (sequence " UINT64_FORMAT ", subject \"%.80s\")",
								 where, (uint64) natsMsg_GetSequence(msg),
								 natsMsg_GetSubject(msg));

	if (natsMsgHeader_Get(msg, "Nats-Msg-Id", &id) != NATS_OK)
		*what = psprintf("%s has no Nats-Msg-Id: another program wrote it (the original pgoutput-stream tool sets none)",
						 found);
	else if (strncmp(id, sink->slot_name, slot_len) != 0 || id[slot_len] != ':')
		*what = psprintf("%s has Nats-Msg-Id \"%.80s\", not one of replication slot \"%s\"",
						 found, id, sink->slot_name);
	else if (natsMsgHeader_Get(msg, "Pg-System-Id", &sysid) != NATS_OK)
		*what = psprintf("%s has Nats-Msg-Id \"%.80s\" but no Pg-System-Id", found, id);
	else if (strcmp(sysid, sink->system_id) != 0)
		*what = psprintf("%s was written by database cluster %.40s, not by this one (%s)",
						 found, sysid, sink->system_id);
	else
		return true;
	return false;
}

/*
 * The JetStream stream has another writer, described by what.  A stream
 * with the option nats_shared_stream goes on, unchained (the caller's
 * business); any other fails: unchained, a message lost before a later one
 * was stored stays lost, and a replay older than the duplicate window is
 * stored twice, so sharing must be the operator's choice.  Returns false
 * (and *reason) to refuse.
 */
static bool
another_writer(PgsNatsSink *sink, const PgsStreamConfig *config,
			   const char *what, char **reason)
{
	if (config->nats.shared)
		return true;
	sink->refusal = psprintf("JetStream stream \"%s\" has another writer: %s",
							 sink->stream, what);
	*reason = pstrdup(sink->refusal);
	return false;
}

/*
 * Whose is the JetStream stream's last message, when it is not the last
 * one under the prefix?  Nobody else's (returns true) if it is this
 * stream's too, e.g. written under a subject prefix that alter_stream
 * changed since, or if it is gone by now.
 */
static bool
check_stream_last_message(PgsNatsSink *sink, const PgsStreamConfig *config,
						  const char *where, char **reason)
{
	natsMsg    *last = NULL;
	jsErrCode	jerr = 0;
	natsStatus	s;
	char	   *what;
	bool		ours;

	s = js_GetLastMsg(&last, sink->js, sink->stream, ">", NULL, &jerr);
	if (s == NATS_NOT_FOUND)
		return true;
	if (s != NATS_OK)
	{
		*reason = psprintf("could not read the last message of JetStream stream \"%s\": %s",
						   sink->stream, nats_error_text(sink, s));
		return false;
	}
	ours = message_is_ours(sink, last, where, &what);
	natsMsg_Destroy(last);
	if (ours)
		return true;
	return another_writer(sink, config, what, reason);
}

/*
 * The last event this stream stored, from its last message in JetStream:
 * the message's own id, or for a heartbeat the event it names as the last
 * one stored before it (Pg-Last-Event-Id).  Returns false if there is none
 * (a heartbeat of a stream that had stored nothing) or its id is not
 * understood: then nothing is skipped.
 */
static bool
read_stored_event(PgsNatsSink *sink, const PgsStreamConfig *config,
				  natsMsg *msg, PgsStoredEvent *stored)
{
	const char *id = NULL;
	const char *value = NULL;
	bool		heartbeat;

	memset(stored, 0, sizeof(PgsStoredEvent));
	if (natsMsgHeader_Get(msg, "Nats-Msg-Id", &id) != NATS_OK ||
		!pgs_event_id_parse(id, config->slot_name, &stored->id))
	{
		ereport(LOG,
				(errmsg("stream \"%s\" skips nothing in JetStream stream \"%s\": the id of its last message is not understood",
						config->name, sink->stream)));
		return false;
	}
	heartbeat = stored->id.heartbeat;
	if (heartbeat)
	{
		/* a heartbeat of a stream that had stored nothing names nothing */
		if (natsMsgHeader_Get(msg, "Pg-Last-Event-Id", &id) != NATS_OK)
			return false;
		if (!pgs_event_id_parse(id, config->slot_name, &stored->id) ||
			stored->id.heartbeat)
		{
			ereport(LOG,
					(errmsg("stream \"%s\" skips nothing in JetStream stream \"%s\": the event its last heartbeat names is not understood",
							config->name, sink->stream)));
			return false;
		}
	}
	if (natsMsgHeader_Get(msg, heartbeat ? "Pg-Last-Event-Xid" : "Pg-Xid",
						  &value) == NATS_OK)
		stored->xid = (TransactionId) strtoul(value, NULL, 10);
	stored->unchained = natsMsgHeader_Get(msg, "Pg-Unchained", &value) == NATS_OK;
	stored->commit = !heartbeat &&
		natsMsgHeader_Get(msg, "Pg-Operation", &value) == NATS_OK &&
		strcmp(value, "commit") == 0;
	return true;
}

/*
 * Read the last message this stream stored: the resume point, and the id
 * to chain the next message to.  A last message of another writer fails
 * the stream (see another_writer); false with sink->refusal set says so.
 */
static bool
read_resume_point(PgsNatsSink *sink, const PgsStreamConfig *config, char **reason)
{
	natsMsg    *last = NULL;
	jsErrCode	jerr = 0;
	natsStatus	s;
	const char *id = NULL;
	jsStreamInfo *si = NULL;
	uint64		stream_last_seq = 0;
	uint64		stream_msgs = 0;
	char	   *filter = psprintf("%s.>", config->fmt.subject_prefix);
	PgsStoredEvent stored;
	char	   *what;

	memset(&sink->resume, 0, sizeof(sink->resume));
	sink->chain = true;
	sink->chain_seq = 0;
	sink->last_id[0] = '\0';

	s = js_GetStreamInfo(&si, sink->js, sink->stream, NULL, &jerr);
	if (s != NATS_OK)
	{
		*reason = psprintf("could not look up JetStream stream \"%s\": %s",
						   sink->stream, nats_error_text(sink, s));
		return false;
	}
	stream_last_seq = si->State.LastSeq;
	stream_msgs = si->State.Msgs;
	jsStreamInfo_Destroy(si);

	s = js_GetLastMsg(&last, sink->js, sink->stream, filter, NULL, &jerr);
	if (s == NATS_NOT_FOUND)
	{
		/*
		 * Nothing of ours yet.  An empty stream (new, purged, or with every
		 * message expired) is chained by its last sequence, which JetStream
		 * keeps; messages of someone else are another writer.
		 */
		if (stream_msgs == 0)
		{
			sink->chain_seq = stream_last_seq;
			return true;
		}
		if (!check_stream_last_message(sink, config,
									   psprintf("none of its " UINT64_FORMAT " messages is under \"%s\", and its last message",
												stream_msgs, filter),
									   reason))
			return false;
		unchained(sink, config);
		return true;
	}
	if (s != NATS_OK)
	{
		*reason = psprintf("could not read the last message of JetStream stream \"%s\": %s",
						   sink->stream, nats_error_text(sink, s));
		return false;
	}
	if (!message_is_ours(sink, last, psprintf("its last message under \"%s\"", filter), &what))
	{
		natsMsg_Destroy(last);
		if (!another_writer(sink, config, what, reason))
			return false;
		unchained(sink, config);
		return true;
	}

	/* this stream's: the resume point, if the rule of event_id.c says so */
	(void) natsMsgHeader_Get(last, "Nats-Msg-Id", &id);
	strlcpy(sink->last_id, id, sizeof(sink->last_id));
	if (read_stored_event(sink, config, last, &stored))
	{
		switch (pgs_resume_start(&sink->resume, &stored,
								 pgs_slot_replay_start(config->slot_name)))
		{
			case PGS_RESUME_AFTER:
				break;
			case PGS_RESUME_OTHER_EPOCH:
				if (sink->resume.active)
					ereport(LOG,
							(errmsg("stream \"%s\" skips only the events committed before %X/%X in JetStream stream \"%s\": its last message \"%s\" is not in this server's history",
									config->name, LSN_FORMAT_ARGS(sink->resume.stored_before),
									sink->stream, id),
							 errdetail("The message was written on a timeline this server left at that position (after a point-in-time restore or a promotion), or by an earlier version.")));
				else
					ereport(LOG,
							(errmsg("stream \"%s\" skips nothing in JetStream stream \"%s\": its last message \"%s\" is not in this server's history, or was published unchained",
									config->name, sink->stream, id),
							 errdetail("Events are sent again from the slot's position; JetStream drops those it stored within its duplicate window.")));
				break;
			case PGS_RESUME_NOT_IN_WAL:
				{
					char	   *message;

					message = psprintf("JetStream stream \"%s\" holds message \"%s\", which this server's WAL does not have",
									   sink->stream, id);
					natsMsg_Destroy(last);
					pgs_worker_fail(message,
									"This server is an older copy of the one that wrote the message, restored without a new timeline (or the message was forged): its new transactions would get ids that JetStream already holds, and be dropped as duplicates. Give the stream a new JetStream stream (stream options nats_stream and subject_prefix), or delete the JetStream stream, then call pgoutput_stream.start_stream().");
				}
		}
		sink->last_event = stored;
		sink->have_last_event = true;
	}

	/*
	 * Another writer stored the stream's last message after ours:
	 * ExpectLastMsgId would fail (see check_stream_last_message).
	 */
	if (natsMsg_GetSequence(last) != stream_last_seq)
		sink->chain = false;
	else
		sink->chain_seq = stream_last_seq;
	natsMsg_Destroy(last);
	if (!sink->chain &&
		!check_stream_last_message(sink, config,
								   psprintf("its last message, after the last one under \"%s\",", filter),
								   reason))
		return false;

	/*
	 * Published unchained, our last message may have been stored after one
	 * that JetStream refused, and chained messages could not fill that gap:
	 * JetStream would refuse the first of them, which follows another
	 * message than the stream's last, again and again.  So this life
	 * publishes unchained too, until it has sent again everything up to
	 * that message, and then chains (rechain()).
	 */
	if (stored.unchained && sink->chain && !config->nats.shared)
	{
		sink->chain = false;
		sink->chain_seq = 0;
		sink->rechain_pending = true;
		sink->rechain_after = stored.id;
		ereport(LOG,
				(errmsg("stream \"%s\" publishes unchained until it has sent again the events up to its last message in JetStream stream \"%s\", which was published unchained",
						config->name, sink->stream)));
	}
	else if (!sink->chain || stored.unchained)
		unchained(sink, config);
	return true;
}

/*
 * Wait for an acknowledgement or the timeout, then pass the worker's
 * checkpoint: a stop, a reload or SIGTERM is honoured while JetStream does
 * not answer, however long nats_ack_timeout is.
 */
static void
wait_for_acks(long timeout_ms)
{
	(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					 timeout_ms, PGS_WAIT_TARGET);
	ResetLatch(MyLatch);
	pgs_worker_checkpoint();
}

/*
 * One connection attempt, made by a thread of its own (connect_thread):
 * what it is given, and what it found.  Static: an attempt that the worker
 * abandons (it stops meanwhile) may still write here until the process
 * exits.
 */
typedef struct NatsConnectAttempt
{
	natsOptions *opts;
	natsConnection *conn;
	natsStatus	status;
	char		error[256];		/* cnats' text of the failure, if any */
	pg_atomic_uint32 done;
} NatsConnectAttempt;

static NatsConnectAttempt connect_attempt;

/*
 * natsConnection_Connect() in a thread of its own: no PostgreSQL calls
 * here, and SetLatch, which is async-signal-safe, wakes the main thread.
 */
static void *
connect_thread_main(void *arg)
{
	NatsConnectAttempt *a = (NatsConnectAttempt *) arg;

	a->status = natsConnection_Connect(&a->conn, a->opts);
	a->error[0] = '\0';
	if (a->status != NATS_OK)
	{
		/* cnats keeps its error text per thread */
		const char *text = nats_GetLastError(NULL);

		if (text != NULL)
			strlcpy(a->error, text, sizeof(a->error));
	}
	pg_write_barrier();
	pg_atomic_write_u32(&a->done, 1);
	SetLatch(MyLatch);
	return NULL;
}

/*
 * Connect to NATS, passing the worker's checkpoint while the attempt
 * lasts.  natsConnection_Connect() both waits for the server (for as long
 * as nats_connect_timeout when the server accepts the TCP connection but
 * does not answer) and starts the connection's reader and flusher
 * threads, which must not take PostgreSQL's signals.  So it runs in a
 * thread created with every signal blocked, whose threads inherit that
 * mask, while the main thread keeps its signals and waits on its latch: a
 * stop, a reload or SIGTERM ends the wait at once.  A worker that leaves
 * abandons the attempt; its process exit ends the thread.
 */
static natsStatus
connect_interruptibly(PgsNatsSink *sink, char *error, size_t error_size)
{
	NatsConnectAttempt *a = &connect_attempt;
	pthread_t	thread;
	sigset_t	all;
	sigset_t	old;
	int			rc;

	a->opts = sink->opts;
	a->conn = NULL;
	a->status = NATS_ERR;
	a->error[0] = '\0';
	pg_atomic_init_u32(&a->done, 0);

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	rc = pthread_create(&thread, NULL, connect_thread_main, a);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0)
	{
		strlcpy(error, "could not start a thread", error_size);
		return NATS_SYS_ERROR;
	}

	while (pg_atomic_read_u32(&a->done) == 0)
	{
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 100, PGS_WAIT_TARGET);
		ResetLatch(MyLatch);
		pgs_worker_checkpoint();
	}
	pthread_join(thread, NULL);
	sink->conn = a->conn;
	strlcpy(error, a->error, error_size);
	return a->status;
}

/*
 * Connect, with the JetStream stream in place and the resume point read.
 * Returns false (connection torn down, reason in *reason) on failure.
 *
 * Signals: every thread cnats starts must block PostgreSQL's signals, so
 * that they reach the main thread only (a handler running in another
 * thread would not interrupt the main thread's waits, and the latch's
 * wake-up signal would be lost).  A thread inherits the signal mask of the
 * thread that creates it, and cnats' own threads start theirs (reconnect)
 * with their mask.  The main thread has every signal blocked only while it
 * creates threads: nats_Open() (the library's timer, callback and garbage
 * collector threads) and the acknowledgement thread; the connection's
 * threads are started by the connecting thread (connect_interruptibly).
 * JetStream API requests start no thread with the old request style
 * (build_options).  Nothing else the worker calls in cnats starts a
 * thread: publishing, flushing and closing do not.  Everything else runs
 * with the signals unblocked, so SIGTERM and stop requests are seen while
 * NATS does not answer: a JetStream request returns after at most
 * nats_ack_timeout, and the checkpoint between the steps then ends the
 * worker.
 */
static bool
try_connect(PgsNatsSink *sink, const PgsStreamConfig *config, char **reason)
{
	natsStatus	s;
	bool		ok = false;
	char		connect_error[256];

	if (pgs_nats_nkey_seed_file[0] != '\0' && pgs_nats_nkey[0] == '\0')
	{
		*reason = pstrdup("\"pgoutput_stream.nats_nkey_seed_file\" is set but \"pgoutput_stream.nats_nkey\" is not");
		return false;
	}

	if (!nats_opened)
	{
		sigset_t	all;
		sigset_t	old;

		/* the library's threads inherit this mask */
		sigfillset(&all);
		pthread_sigmask(SIG_BLOCK, &all, &old);
		s = nats_Open(-1);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (s != NATS_OK)
			report_nats_error("could not initialise the NATS client library", s);
		find_message_functions();
		nats_opened = true;
		pgs_worker_skip_exit_handlers();
	}
	s = build_options(sink, config->name);
	if (s != NATS_OK)
		*reason = psprintf("invalid NATS connection settings: %s", nats_error_text(sink, s));
	else
	{
		s = connect_interruptibly(sink, connect_error, sizeof(connect_error));
		if (s != NATS_OK)
			*reason = psprintf("could not connect to NATS at %s: %s",
							   pgs_url_shown(sink->url),
							   nats_error_text_of(sink, s, connect_error));
	}
	if (s == NATS_OK)
	{
		jsOptions	jo;

		jsOptions_Init(&jo);
		jo.Wait = pgs_nats_ack_timeout;
		s = natsConnection_JetStream(&sink->js, sink->conn, &jo);
		if (s != NATS_OK)
			*reason = psprintf("could not use JetStream: %s", nats_error_text(sink, s));
	}
	if (s == NATS_OK)
	{
		pgs_worker_checkpoint();
		if (!ensure_stream(sink, config, reason))
			s = NATS_ERR;
	}
	if (s == NATS_OK)
	{
		pgs_worker_checkpoint();
		if (!read_resume_point(sink, config, reason))
			s = NATS_ERR;
	}
	if (s == NATS_OK)
	{
		pgs_worker_checkpoint();
		s = start_ack_thread(sink);
		if (s != NATS_OK)
			*reason = psprintf("could not subscribe to JetStream acknowledgements: %s",
							   nats_error_text(sink, s));
	}
	if (s == NATS_OK)
	{
		sink->encode_headers = use_encoded_headers(config->name);
		ok = true;
	}

	if (!ok)
		destroy_connection(sink);
	return ok;
}

/*
 * Show in stream_status while cnats is reconnecting: messages wait in its
 * buffer until the connection is back or their acknowledgement times out.
 */
static void
check_connection(PgsNatsSink *sink)
{
	bool		connected = sink->conn != NULL &&
		natsConnection_Status(sink->conn) == NATS_CONN_STATUS_CONNECTED;

	if (!connected && !sink->disconnected)
	{
		pgs_worker_report_waiting(psprintf("connection to NATS at %s lost; reconnecting",
										   pgs_url_shown(sink->url)));
		sink->disconnected = true;
	}
	else if (connected && sink->disconnected)
	{
		pgs_worker_report_streaming();
		sink->disconnected = false;
	}
}

/* Raise an error once a message failed, or acknowledgements stalled */
static void
check_failed(PgsNatsSink *sink)
{
	uint32		inflight = pg_atomic_read_u32(&sink->inflight);
	char		error[256];

	if (pg_atomic_read_u32(&sink->failed) == 0 && inflight > 0 &&
		monotonic_ms() - (int64) pg_atomic_read_u64(&sink->progress_ms) > pgs_nats_ack_timeout)
		set_failed(sink, "no acknowledgement from JetStream within %d ms (%u messages in flight)",
				   pgs_nats_ack_timeout, inflight);
	if (pg_atomic_read_u32(&sink->failed) == 0)
		return;

	pthread_mutex_lock(&sink->error_mu);
	memcpy(error, sink->error, sizeof(error));
	pthread_mutex_unlock(&sink->error_mu);
	ereport(ERROR,
			(errcode(ERRCODE_CONNECTION_FAILURE),
			 errmsg("could not store events in JetStream stream \"%s\"", sink->stream),
			 errdetail("%s", error),
			 errhint("The stream restarts and sends again from its last confirmed position; JetStream keeps every event once.")));
}

/*
 * Retire the acknowledged messages at the head of the ring, in publish
 * order; the last message of a transaction advances the acknowledged
 * position.  A refused message stops the walk: check_failed() raises its
 * error.
 */
static void
retire_messages(PgsNatsSink *sink)
{
	uint64		tail = pg_atomic_read_u64(&sink->pending_tail);
	bool		retired = false;

	while (sink->pending_head < tail)
	{
		NatsPending *p = &sink->pending[sink->pending_head % sink->pending_cap];

		if (pg_atomic_read_u32(&p->state) != NATS_PENDING_STORED)
			break;
		if (!p->id.heartbeat)
			sink->txn_messages--;
		if (!XLogRecPtrIsInvalid(p->end_lsn))
		{
			sink->acked = p->end_lsn;
			retired = true;
		}
		sink->pending_head++;
	}
	sink->base.inflight = (int) pg_atomic_read_u32(&sink->inflight);
	if (retired)
		sink->base.last_ack_at = GetCurrentTimestamp();
}

/* Whether one more message fits in the window and the ring */
static bool
have_room(PgsNatsSink *sink)
{
	return pg_atomic_read_u32(&sink->inflight) < (uint32) pgs_nats_max_pending &&
		pg_atomic_read_u64(&sink->pending_tail) - sink->pending_head < sink->pending_cap - 1;
}

static void
wait_for_room(PgsNatsSink *sink)
{
	for (;;)
	{
		check_failed(sink);

		retire_messages(sink);
		if (have_room(sink))
			return;

		/* announce the wait, then look again: an acknowledgement may have come */
		pg_atomic_write_u32(&sink->room_wanted, 1);
		pg_memory_barrier();
		if (have_room(sink))
		{
			pg_atomic_write_u32(&sink->room_wanted, 0);
			return;
		}
		check_connection(sink);
		if (sink->unflushed && sink->conn)
		{
			(void) natsConnection_FlushTimeout(sink->conn, 100);
			sink->unflushed = false;
		}
		wait_for_acks(10);
	}
}

/*
 * Append "key: value\r\n" to an encoded header block, which has room for
 * it.  CR and LF in a value become spaces, as cnats does (the values here
 * never have them).
 */
static void
append_header(StringInfo buf, const char *key, int key_len,
			  const char *value, int value_len)
{
	char	   *out = buf->data + buf->len;

	memcpy(out, key, key_len);
	out += key_len;
	*out++ = ':';
	*out++ = ' ';
	memcpy(out, value, value_len);
	if (strpbrk(value, "\r\n") != NULL)
	{
		int			i;

		for (i = 0; i < value_len; i++)
			if (out[i] == '\r' || out[i] == '\n')
				out[i] = ' ';
	}
	out += value_len;
	*out++ = '\r';
	*out++ = '\n';
	buf->len = out - buf->data;
}

/* A message with these headers and payload; raises an error on failure */
static natsMsg *
make_message(PgsNatsSink *sink, const char *subject, const char *reply,
			 int reply_len, const char *payload, int payload_len,
			 const NatsHeader *headers, int nheaders)
{
	natsMsg    *msg = NULL;
	natsStatus	s;
	int			i;

	if (sink->encode_headers)
	{
		StringInfo	buf = &sink->msgbuf;
		int			key_len[PGS_NATS_MAX_HEADERS + 2];
		int			value_len[PGS_NATS_MAX_HEADERS + 2];
		int			size = 10 + 2 + payload_len;
		int			header_len;

		Assert(nheaders <= PGS_NATS_MAX_HEADERS + 2);
		resetStringInfo(buf);
		for (i = 0; i < nheaders; i++)
		{
			key_len[i] = (int) strlen(headers[i].key);
			value_len[i] = (int) strlen(headers[i].value);
			size += key_len[i] + 2 + value_len[i] + 2;
		}
		enlargeStringInfo(buf, size);
		appendBinaryStringInfo(buf, "NATS/1.0\r\n", 10);
		for (i = 0; i < nheaders; i++)
			append_header(buf, headers[i].key, key_len[i], headers[i].value, value_len[i]);
		appendBinaryStringInfo(buf, "\r\n", 2);
		header_len = buf->len;
		appendBinaryStringInfo(buf, payload, payload_len);
		s = create_encoded_msg(&msg, subject, (int) strlen(subject),
							   reply, reply_len,
							   buf->data, buf->len, header_len);
		if (s != NATS_OK)
			report_nats_error("could not create NATS message", s);
		return msg;
	}

	s = natsMsg_Create(&msg, subject, reply, payload, payload_len);
	if (s != NATS_OK)
		report_nats_error("could not create NATS message", s);
	for (i = 0; i < nheaders; i++)
	{
		s = natsMsgHeader_Set(msg, headers[i].key, headers[i].value);
		if (s != NATS_OK)
		{
			natsMsg_Destroy(msg);
			report_nats_error("could not set NATS message header", s);
		}
	}
	return msg;
}

/*
 * Publish a message with its id, chained to the previous message, and
 * count it in flight first, because its acknowledgement may come at once.
 * standalone: a non-transactional logical message, which no
 * end_transaction() follows.  A refused publish fails the sink.
 */
static void
publish_chained(PgsNatsSink *sink, const char *subject, const char *payload,
				int payload_len, const NatsHeader *headers, int nheaders,
				const NatsPending *what, bool standalone)
{
	NatsHeader	all[PGS_NATS_MAX_HEADERS + 3];
	int			n = 0;
	char		id[PGS_EVENT_ID_LEN];
	char		seqbuf[32];
	char		reply[sizeof(sink->reply_prefix) + 17];
	int			reply_len;
	uint64		tail = pg_atomic_read_u64(&sink->pending_tail);
	NatsPending *p = &sink->pending[tail % sink->pending_cap];
	natsMsg    *msg;
	natsStatus	s;

	Assert(nheaders <= PGS_NATS_MAX_HEADERS);
	pgs_event_id_format(id, sink->slot_name, &what->id);
	all[n].key = "Nats-Msg-Id";
	all[n++].value = id;

	/*
	 * The first message after connecting is chained by sequence: JetStream
	 * forgets the last message id across a server restart when that
	 * message is older than the duplicate window, but not the sequence.
	 * The following ones are chained by id.
	 */
	if (sink->chain && sink->chain_seq > 0)
	{
		snprintf(seqbuf, sizeof(seqbuf), UINT64_FORMAT, (uint64) sink->chain_seq);
		all[n].key = "Nats-Expected-Last-Sequence";
		all[n++].value = seqbuf;
	}
	else if (sink->chain && sink->last_id[0] != '\0')
	{
		all[n].key = "Nats-Expected-Last-Msg-Id";
		all[n++].value = sink->last_id;
	}
	memcpy(&all[n], headers, sizeof(NatsHeader) * nheaders);
	n += nheaders;

	/*
	 * Unchained, JetStream may store a message after one it refused or
	 * lost: such a message is no proof that what came before it is stored,
	 * and the resume rule must know (event_id.c).
	 */
	if (!sink->chain)
	{
		all[n].key = "Pg-Unchained";
		all[n++].value = "true";
	}

	/* JetStream answers on the reply subject that names the ring entry */
	memcpy(reply, sink->reply_prefix, sink->reply_prefix_len);
	reply_len = sink->reply_prefix_len + pgs_format_hex(reply + sink->reply_prefix_len, tail);
	msg = make_message(sink, subject, reply, reply_len, payload, payload_len, all, n);

	/*
	 * The entry is in flight before the message is, because its
	 * acknowledgement may come at once.  A stall is detected by
	 * check_failed(): nothing acknowledged for nats_ack_timeout while
	 * messages are in flight.
	 */
	p->id = what->id;
	p->end_lsn = InvalidXLogRecPtr;
	pg_atomic_write_u32(&p->state, NATS_PENDING_IN_FLIGHT);
	if (!what->id.heartbeat)
		sink->txn_messages++;
	if (!what->id.heartbeat && !standalone)
		sink->txn_open = true;
	if (pg_atomic_fetch_add_u32(&sink->inflight, 1) == 0)
	{
		pg_atomic_write_u64(&sink->progress_ms, (uint64) monotonic_ms());
		sink->published_from_idle = true;
	}
	/* the entry is complete before the acknowledgement thread sees it */
	pg_write_barrier();
	pg_atomic_write_u64(&sink->pending_tail, tail + 1);

	/*
	 * A plain publish with a reply subject, which is all a JetStream
	 * publish is: cnats copies the message into its write buffer (or, while
	 * reconnecting, its reconnect buffer), so it is freed at once.
	 */
	s = natsConnection_PublishMsg(sink->conn, msg);
	release_msg(msg);
	/* a huge event's buffer is not kept for the small ones after it */
	pgs_buffer_trim(&sink->msgbuf);
	if (s != NATS_OK)
	{
		/* not sent, and no acknowledgement will come: the error ends the worker */
		set_failed(sink, "could not publish message %s: %s", id, nats_error_text(sink, s));
		check_failed(sink);
	}
	sink->chain_seq = 0;
	strlcpy(sink->last_id, id, sizeof(sink->last_id));
	sink->unflushed = true;
}

/*
 * Escape rel's schema and table names for the Pg-Schema and Pg-Table
 * headers (plain ASCII, like subject tokens), unless the last relation
 * had the same names: a transaction's changes mostly touch one table.
 */
static void
set_relation_headers(PgsNatsSink *sink, const PgsRelation *rel)
{
	MemoryContext old;

	if (sink->hdr_nspname != NULL &&
		strcmp(sink->hdr_nspname, rel->nspname) == 0 &&
		strcmp(sink->hdr_relname, rel->relname) == 0)
		return;

	old = MemoryContextSwitchTo(sink->cxt);
	if (sink->hdr_nspname == NULL)
	{
		initStringInfo(&sink->hdr_schema);
		initStringInfo(&sink->hdr_table);
	}
	else
	{
		pfree(sink->hdr_nspname);
		pfree(sink->hdr_relname);
	}
	sink->hdr_nspname = pstrdup(rel->nspname);
	sink->hdr_relname = pstrdup(rel->relname);
	resetStringInfo(&sink->hdr_schema);
	pgs_subject_append_token(&sink->hdr_schema, rel->nspname);
	resetStringInfo(&sink->hdr_table);
	pgs_subject_append_token(&sink->hdr_table, rel->relname);
	MemoryContextSwitchTo(old);
}

/*
 * Chain again, once the events up to the last message of a life that ran
 * unchained were sent again (see read_resume_point): when JetStream has
 * stored everything published so far, nothing before the next message is
 * missing, and the next message is chained to the stream's last sequence.
 */
static void
rechain(PgsNatsSink *sink)
{
	natsMsg    *last = NULL;
	const char *id = NULL;
	jsErrCode	jerr = 0;
	natsStatus	s;

	for (;;)
	{
		check_failed(sink);
		retire_messages(sink);
		if (sink->pending_head == pg_atomic_read_u64(&sink->pending_tail))
			break;
		check_connection(sink);
		if (sink->unflushed && sink->conn)
		{
			(void) natsConnection_FlushTimeout(sink->conn, 100);
			sink->unflushed = false;
		}
		wait_for_acks(10);
	}
	/*
	 * The stream's last message must be the last one published (or the
	 * stored original of it): anything else is another writer's, which
	 * read_resume_point() judges after a restart.
	 */
	s = js_GetLastMsg(&last, sink->js, sink->stream, ">", NULL, &jerr);
	if (s != NATS_OK)
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("could not read the last message of JetStream stream \"%s\": %s",
						sink->stream, nats_error_text(sink, s))));
	if (natsMsgHeader_Get(last, "Nats-Msg-Id", &id) != NATS_OK ||
		strcmp(id, sink->last_id) != 0)
	{
		natsMsg_Destroy(last);
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("could not chain the messages of JetStream stream \"%s\" again: its last message is not the one this stream published last",
						sink->stream)));
	}
	sink->chain_seq = natsMsg_GetSequence(last);
	natsMsg_Destroy(last);
	sink->chain = true;
	sink->rechain_pending = false;
	ereport(LOG,
			(errmsg("stream \"%s\" chains its messages again in JetStream stream \"%s\"",
					sink->base.config->name, sink->stream)));
}

static void
nats_send(PgsSink *base, const PgsOutput *out)
{
	PgsNatsSink *sink = (PgsNatsSink *) base;
	const PgsEvent *ev = out->event;
	bool		standalone = (ev->kind == PGS_EVENT_MESSAGE && !ev->msg_transactional);
	XLogRecPtr	txn_lsn = standalone ? ev->lsn : ev->final_lsn;
	NatsPending what;
	NatsHeader	headers[PGS_NATS_MAX_HEADERS];
	int			n = 0;
	char		lsn[32];
	char		commit_lsn[32];
	char		xid[16];

	if (pgs_resume_already_stored(&sink->resume, &out->id))
		return;
	if (sink->rechain_pending && pgs_event_id_after(&out->id, &sink->rechain_after))
		rechain(sink);
	wait_for_room(sink);

	memset(&what, 0, sizeof(what));
	what.id = out->id;

	pgs_format_lsn(lsn, ev->lsn);
	headers[n].key = "Pg-Lsn";
	headers[n++].value = lsn;
	pgs_format_lsn(commit_lsn, txn_lsn);
	headers[n].key = "Pg-Commit-Lsn";
	headers[n++].value = commit_lsn;
	if (TransactionIdIsValid(ev->xid))
	{
		xid[pg_ultoa_n(ev->xid, xid)] = '\0';
		headers[n].key = "Pg-Xid";
		headers[n++].value = xid;
	}
	if (!standalone && ev->commit_time != 0)
	{
		/* the same for every message of a transaction: format it once */
		if (sink->commit_time_lsn != txn_lsn)
		{
			strlcpy(sink->commit_time, timestamptz_to_str(ev->commit_time),
					sizeof(sink->commit_time));
			sink->commit_time_lsn = txn_lsn;
		}
		headers[n].key = "Pg-Commit-Time";
		headers[n++].value = sink->commit_time;
	}
	if (ev->rel != NULL)
	{
		set_relation_headers(sink, ev->rel);
		headers[n].key = "Pg-Schema";
		headers[n++].value = sink->hdr_schema.data;
		headers[n].key = "Pg-Table";
		headers[n++].value = sink->hdr_table.data;
	}
	headers[n].key = "Pg-Operation";
	headers[n++].value = pgs_event_kind_name(ev->kind);
	if (ev->snapshot)
	{
		headers[n].key = "Pg-Snapshot";
		headers[n++].value = "true";
	}
	headers[n].key = "Pg-System-Id";
	headers[n++].value = sink->system_id;

	publish_chained(sink, out->subject, out->payload, out->payload_len,
					headers, n, &what, standalone);
	base->sent++;

	/* what the next heartbeat names as stored before it */
	sink->last_event.id = what.id;
	sink->last_event.xid = standalone ? InvalidTransactionId : ev->xid;
	sink->last_event.unchained = !sink->chain;
	sink->last_event.commit = ev->kind == PGS_EVENT_COMMIT;
	sink->have_last_event = true;
}

/*
 * Publish a heartbeat to <prefix>.heartbeat: the slot's confirmed position
 * and the time, so that consumers can measure their lag while tables are
 * idle.  It takes part in the chain like any message.
 *
 * Stored last, a heartbeat stands for the event it names as stored before
 * it (Pg-Last-Event-Id), which the resume rule checks against the WAL like
 * any event (event_id.c).  So it is sent only when everything published
 * before it is acknowledged.  Its LSN, shown to consumers, is at least the
 * end of the last acknowledged transaction, whatever the caller passes.
 */
static void
nats_heartbeat(PgsSink *base, XLogRecPtr confirmed)
{
	PgsNatsSink *sink = (PgsNatsSink *) base;
	NatsPending what;
	NatsHeader	headers[6];
	int			nheaders;
	char		lsn[32];
	char		last_event_id[PGS_EVENT_ID_LEN];
	char		last_event_xid[16];
	StringInfoData subject;
	StringInfoData payload;
	TimestampTz now = GetCurrentTimestamp();
	XLogRecPtr	shown_lsn;

	check_failed(sink);
	retire_messages(sink);
	if (sink->txn_open || sink->pending_head != pg_atomic_read_u64(&sink->pending_tail))
		return;
	shown_lsn = Max(confirmed, sink->acked);

	memset(&what, 0, sizeof(what));
	pgs_event_id_heartbeat(shown_lsn, (int64) now, &what.id);
	pgs_format_lsn(lsn, shown_lsn);
	initStringInfo(&subject);
	appendStringInfo(&subject, "%s.heartbeat", base->config->fmt.subject_prefix);
	initStringInfo(&payload);
	{
		/* ISO 8601 in UTC, like commit_time in the json format */
		char	   *time = pstrdup(timestamptz_to_str(now));
		size_t		len = strlen(time);

		if (len > 3 && strcmp(time + len - 3, "+00") == 0)
		{
			time[len - 3] = 'Z';
			time[len - 2] = '\0';
		}
		if (len > 10 && time[10] == ' ')
			time[10] = 'T';
		appendStringInfo(&payload, "{\"Heartbeat\":{\"confirmed_lsn\":\"%s\",\"time\":\"%s\"}}",
						 lsn, time);
	}
	headers[0].key = "Pg-Lsn";
	headers[0].value = lsn;
	headers[1].key = "Pg-Operation";
	headers[1].value = "heartbeat";
	headers[2].key = "Pg-System-Id";
	headers[2].value = sink->system_id;
	nheaders = 3;

	/*
	 * The event stored before it: a heartbeat found last in JetStream
	 * resumes the stream after that event (event_id.c), checked against
	 * the WAL like any event.  A heartbeat after an unchained event says so
	 * too, even if this life is chained.
	 */
	if (sink->have_last_event)
	{
		pgs_event_id_format(last_event_id, sink->slot_name, &sink->last_event.id);
		headers[nheaders].key = "Pg-Last-Event-Id";
		headers[nheaders++].value = last_event_id;
		if (TransactionIdIsValid(sink->last_event.xid))
		{
			last_event_xid[pg_ultoa_n(sink->last_event.xid, last_event_xid)] = '\0';
			headers[nheaders].key = "Pg-Last-Event-Xid";
			headers[nheaders++].value = last_event_xid;
		}
		if (sink->last_event.unchained && sink->chain)
		{
			headers[nheaders].key = "Pg-Unchained";
			headers[nheaders++].value = "true";
		}
	}
	/* a heartbeat belongs to no transaction */
	publish_chained(sink, subject.data, payload.data, payload.len, headers,
					nheaders, &what, false);
}

static const PgsEventId *
nats_stored_snapshot(PgsSink *base)
{
	PgsNatsSink *sink = (PgsNatsSink *) base;

	if (!sink->have_last_event || !sink->last_event.commit ||
		sink->last_event.unchained || sink->last_event.id.snapshot == 0)
		return NULL;
	return &sink->last_event.id;
}

static void
nats_end_transaction(PgsSink *base, XLogRecPtr end_lsn)
{
	PgsNatsSink *sink = (PgsNatsSink *) base;
	uint64		tail = pg_atomic_read_u64(&sink->pending_tail);

	/* nothing published for this transaction (filtered, or already stored) */
	if (!sink->txn_open)
		return;
	sink->txn_open = false;

	/*
	 * Its messages are the newest ones in the ring: the last one carries
	 * the position.  If all of them are already retired, they are stored.
	 */
	if (sink->pending_head < tail)
		sink->pending[(tail - 1) % sink->pending_cap].end_lsn = end_lsn;
	else
	{
		sink->acked = end_lsn;
		sink->base.last_ack_at = GetCurrentTimestamp();
	}
}

/*
 * Send what is buffered, and retire the acknowledged messages at the head
 * of the ring.
 */
static void
nats_poll(PgsSink *base)
{
	PgsNatsSink *sink = (PgsNatsSink *) base;

	/*
	 * Once the decoder paused, flush at once rather than after the
	 * client's 1 ms batching delay: a transaction that comes while nothing
	 * is in flight reaches JetStream sooner.  But a flush is a round trip
	 * that costs this process and the server more than a small
	 * transaction's messages do, so under a stream of small transactions,
	 * at most one per millisecond: cnats' flusher writes the rest within
	 * that millisecond, in batches.
	 */
	if (sink->unflushed && sink->conn &&
		(sink->published_from_idle ||
		 monotonic_us() - sink->flushed_at_us >= 1000))
	{
		(void) natsConnection_FlushTimeout(sink->conn, 1000);
		sink->unflushed = false;
		sink->flushed_at_us = monotonic_us();
		sink->published_from_idle = false;
	}
	check_failed(sink);
	check_connection(sink);
	retire_messages(sink);
}

static XLogRecPtr
nats_acked_lsn(PgsSink *base)
{
	return ((PgsNatsSink *) base)->acked;
}

static bool
nats_idle(PgsSink *base)
{
	PgsNatsSink *sink = (PgsNatsSink *) base;

	return sink->txn_messages == 0 && !sink->txn_open;
}

/*
 * Called from the worker's exit callback, after the slot's last
 * confirmation: acknowledgements that come now would confirm nothing, so
 * only what is buffered is sent (sparing a restart sending it again), then
 * the connection closes.  Nothing here may raise an error.
 */
static void
nats_shutdown(PgsSink *base)
{
	PgsNatsSink *sink = (PgsNatsSink *) base;

	if (sink->conn != NULL)
		(void) natsConnection_FlushTimeout(sink->conn, 1000);
	destroy_connection(sink);
	if (nats_opened)
		(void) nats_CloseAndWait(2000);
	nats_opened = false;
}

/*
 * Claim the NATS target in the shared registry, or fail the stream if a
 * running stream of any database of this cluster already writes the same
 * JetStream stream or overlapping subjects on the same NATS server: each
 * would break the other's chain, and exactly-once with it.  The claim is
 * made before anything is published and lasts as long as the worker.
 */
static void
claim_target(PgsNatsSink *sink, const PgsStreamConfig *config)
{
	PgsNatsTarget target;
	PgsNatsConflict conflict;

	pgs_nats_target_init(&target, sink->url, config->fmt.subject_prefix,
						 sink->stream, config->nats.shared, config->fmt.database);
	if (pgs_shmem_claim_nats_target(MyDatabaseId, config->id, &target, &conflict))
		return;
	if (conflict.same_stream)
		pgs_worker_fail(psprintf("JetStream stream \"%s\" on the same NATS server is already written by stream \"%s\" of database \"%s\"",
								 sink->stream, conflict.name, conflict.database),
						PGS_NATS_TARGET_HINT);
	pgs_worker_fail(psprintf("subjects \"%s.>\" on the same NATS server overlap with the subjects \"%s.>\" of stream \"%s\" of database \"%s\"",
							 target.prefix, conflict.prefix, conflict.name,
							 conflict.database),
					PGS_NATS_TARGET_HINT);
}

/*
 * Create the target and connect.  While NATS cannot be reached, retries
 * with a delay that doubles up to pgoutput_stream.nats_max_retry_delay,
 * showing the reason in stream_status; a stop request or SIGTERM ends the
 * wait, and the worker (pgs_worker_checkpoint).
 */
PgsSink *
pgs_sink_nats_create(const PgsStreamConfig *config)
{
	PgsNatsSink *sink = palloc0(sizeof(PgsNatsSink));
	long		delay_ms = 250;
	bool		waited = false;
	uint64		i;

	sink->base.name = "nats";
	sink->base.config = config;
	sink->cxt = CurrentMemoryContext;
	sink->base.uses_payload = true;
	sink->base.target_index = 1;
	sink->base.send = nats_send;
	sink->base.end_transaction = nats_end_transaction;
	sink->base.poll = nats_poll;
	sink->base.acked_lsn = nats_acked_lsn;
	sink->base.idle = nats_idle;
	sink->base.shutdown = nats_shutdown;
	sink->base.heartbeat = nats_heartbeat;
	sink->base.stored_snapshot = nats_stored_snapshot;
	sink->stream = pstrdup(config->nats.stream);
	sink->system_id = psprintf(UINT64_FORMAT, GetSystemIdentifier());
	sink->url = pstrdup(config->nats.url ? config->nats.url : pgs_nats_url);
	sink->acked = InvalidXLogRecPtr;
	sink->pending_cap = pgs_nats_max_pending + 2;
	sink->pending = MemoryContextAllocHuge(CurrentMemoryContext,
										   sizeof(NatsPending) * sink->pending_cap);
	for (i = 0; i < sink->pending_cap; i++)
		pg_atomic_init_u32(&sink->pending[i].state, NATS_PENDING_STORED);
	pg_atomic_init_u32(&sink->ack_stop, 0);
	pg_atomic_init_u64(&sink->pending_tail, 0);
	pg_atomic_init_u32(&sink->inflight, 0);
	pg_atomic_init_u64(&sink->progress_ms, 0);
	pg_atomic_init_u32(&sink->room_wanted, 0);
	pg_atomic_init_u32(&sink->failed, 0);
	pthread_mutex_init(&sink->error_mu, NULL);
	sink->slot_name = pstrdup(config->slot_name);
	initStringInfo(&sink->msgbuf);
	claim_target(sink, config);

	for (;;)
	{
		char	   *reason = NULL;

		if (try_connect(sink, config, &reason))
			break;
		if (sink->refusal != NULL)
			pgs_worker_fail(sink->refusal, PGS_NATS_WRITER_HINT);
		ereport(LOG,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("stream \"%s\" is waiting for NATS: %s", config->name, reason),
				 errdetail("Next attempt in %ld ms.", delay_ms)));
		pgs_worker_report_waiting(reason);
		waited = true;

		pgs_worker_sleep(delay_ms);
		/* a reload may have fixed the settings; the URLs may hold credentials */
		pgs_wipe_free(sink->url);
		sink->url = pstrdup(config->nats.url ? config->nats.url : pgs_nats_url);
		delay_ms = Min(delay_ms * 2, (long) pgs_nats_max_retry_delay);
	}
	if (waited)
		ereport(LOG,
				(errmsg("stream \"%s\" connected to NATS at %s", config->name,
						pgs_url_shown(sink->url))));
	pgs_worker_report_streaming();
	return &sink->base;
}
