/*-------------------------------------------------------------------------
 *
 * feldera_sink.c
 *		The "feldera" target: each transaction pushed to a Feldera
 *		pipeline's HTTP ingress, one request per (transaction, table).
 *
 * Rows of a transaction are collected per Feldera table in Feldera's JSON
 * encodings (format_feldera.c) and sent when the transaction ends, as
 *   POST {url}/v0/pipelines/{pipeline}/ingress/{table}
 *        ?format=json&update_format=insert_delete&array=true
 * with at most feldera_max_rows rows per request.  A table's rows go out
 * as soon as they reach feldera_max_bytes, and so do all the tables' rows
 * when together they reach it: the rows the worker holds stay bounded
 * also in a snapshot, which is one transaction.  The target is
 * synchronous: a transaction counts as delivered once Feldera answered
 * 200 to every one of its requests (and, with feldera_wait_completion, the
 * completion tokens report "complete"), so the slot is never confirmed past
 * anything Feldera has not accepted.
 *
 * 5xx, 429 and transport failures (refused or reset connections,
 * timeouts) are retried with a delay that doubles up to
 * pgoutput_stream.feldera_max_retry_delay; the stream shows "waiting for
 * target" meanwhile.  Sending a request again is safe for tables with a
 * primary key in Feldera (an insert is an upsert).  Any other answer (400
 * ParseErrors, 401, 404, ...) puts the stream in state "failed" with
 * Feldera's error code and message.
 *
 * One easy handle on one multi handle is reused for every request, so the
 * connection is kept alive; the multi interface lets the wait for an
 * answer check for interrupts every 100 ms, so SIGTERM is honoured even
 * while a request hangs.  libcurl's threaded resolver may start a thread
 * per name lookup: signals are blocked around every call that may do so.
 *
 * This is the only file that includes <curl/curl.h>.
 *
 * Copyright (c) 2026, pgoutput_stream developers
 *
 * IDENTIFICATION
 *		src/feldera_sink.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <pthread.h>
#include <signal.h>

#include <curl/curl.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "guc.h"
#include "secrets.h"
#include "sink.h"
#include "worker.h"

#define PGS_FELDERA_MAX_RESPONSE	65536

/* Most bytes of Feldera's message, and field names, in stream_status */
#define PGS_FELDERA_SHOWN_MESSAGE	200
#define PGS_FELDERA_SHOWN_FIELDS	5

/* Most bytes of an answer that is not Feldera's JSON, in the server log */
#define PGS_FELDERA_LOGGED_BODY		2000

/* Rows of the current transaction for one Feldera table */
typedef struct FelderaBatch
{
	Oid			relid;			/* hash key */
	char	   *table;			/* Feldera table name, NULL: not sent */
	StringInfoData body;		/* "[" row, row ... */
	int			nrows;
} FelderaBatch;

typedef struct PgsFelderaSink
{
	PgsSink		base;
	char	   *base_url;		/* without trailing "/" nor user information */
	char	   *pipeline_escaped;

	CURLM	   *multi;
	CURL	   *easy;
	struct curl_slist *headers;
	char		errbuf[CURL_ERROR_SIZE];
	char	   *response;		/* malloc'd, filled by the write callback */
	size_t		response_len;

	MemoryContext txn_cxt;		/* batches of the current transaction */
	HTAB	   *batches;		/* relid -> FelderaBatch */
	int64		buffered;		/* bytes of rows in the batches, not sent */
	List	   *tokens;			/* completion tokens of the transaction */
	XLogRecPtr	acked;
	uint64		requests;
} PgsFelderaSink;

static bool curl_initialised = false;

/* Keep (a bounded part of) the answer: an error body or a token */
static size_t
collect_response(char *data, size_t size, size_t nmemb, void *closure)
{
	PgsFelderaSink *sink = (PgsFelderaSink *) closure;
	size_t		n = size * nmemb;
	size_t		keep = Min(n, PGS_FELDERA_MAX_RESPONSE - sink->response_len);

	if (keep > 0)
	{
		/* malloc, not palloc: an error must not longjmp through libcurl */
		char	   *grown = realloc(sink->response, sink->response_len + keep + 1);

		if (grown == NULL)
			return 0;
		sink->response = grown;
		memcpy(sink->response + sink->response_len, data, keep);
		sink->response_len += keep;
		sink->response[sink->response_len] = '\0';
	}
	return n;
}

/*
 * Feldera's name for a relation, or NULL if the stream leaves it out (the
 * feldera_tables allow-list).
 */
static char *
feldera_table_name(const PgsStreamConfig *config, const char *nspname,
				   const char *relname)
{
	char	   *name = NULL;

	if (config->feldera.table_map != NULL)
	{
		char	   *qualified = psprintf("%s.%s", nspname, relname);
		char	   *copy = pstrdup(config->feldera.table_map);
		char	   *save = NULL;
		char	   *entry;

		for (entry = strtok_r(copy, ",", &save); entry != NULL;
			 entry = strtok_r(NULL, ",", &save))
		{
			char	   *eq = strchr(entry, '=');

			*eq = '\0';
			if (strcmp(entry, qualified) == 0)
			{
				name = pstrdup(eq + 1);
				break;
			}
		}
	}
	if (name == NULL)
		name = config->feldera.naming == PGS_FELDERA_TABLE ? pstrdup(relname) :
			psprintf("%s_%s", nspname, relname);

	if (config->feldera.tables != NULL)
	{
		char	   *copy = pstrdup(config->feldera.tables);
		char	   *save = NULL;
		char	   *entry;
		bool		allowed = false;

		for (entry = strtok_r(copy, ",", &save); entry != NULL && !allowed;
			 entry = strtok_r(NULL, ",", &save))
			allowed = pg_strcasecmp(entry, name) == 0;
		if (!allowed)
			return NULL;
	}
	return name;
}

/* A Feldera name seen while checking the mapping, and where it came from */
typedef struct FelderaNameEntry
{
	char		name[NAMEDATALEN * 2];	/* hash key, lower case */
	char		source[NAMEDATALEN * 2];	/* schema.table */
} FelderaNameEntry;

/*
 * Two tables of the publication must not land in one Feldera table.
 * Checked at start, before the slot is acquired (it reads catalogs).
 */
static void
check_table_names(const PgsStreamConfig *config)
{
	HTAB	   *seen;
	HASHCTL		ctl;
	uint64		i;
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];
	char	   *collision = NULL;
	MemoryContext caller_cxt = CurrentMemoryContext;

	ctl.keysize = NAMEDATALEN * 2;
	ctl.entrysize = sizeof(FelderaNameEntry);
	seen = hash_create("pgoutput_stream feldera names", 64, &ctl, HASH_ELEM | HASH_STRINGS);

	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	args[0] = CStringGetTextDatum(config->publication);
	if (SPI_execute_with_args("SELECT schemaname, tablename FROM pg_catalog.pg_publication_tables WHERE pubname = $1",
							  1, argtypes, args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not list the tables of publication \"%s\"", config->publication);
	for (i = 0; i < SPI_processed && collision == NULL; i++)
	{
		char	   *nsp = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
		char	   *rel = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);
		char	   *name = feldera_table_name(config, nsp, rel);
		char		key[NAMEDATALEN * 2];
		char	   *p;
		FelderaNameEntry *entry;
		bool		found;

		if (name == NULL)
			continue;
		/* Feldera compares unquoted names case-insensitively */
		strlcpy(key, name, sizeof(key));
		for (p = key; *p; p++)
			*p = pg_tolower((unsigned char) *p);
		entry = hash_search(seen, key, HASH_ENTER, &found);
		if (found)
			collision = MemoryContextStrdup(caller_cxt,
											psprintf("tables \"%s\" and \"%s.%s\" both map to Feldera table \"%s\"",
													 entry->source, nsp, rel, name));
		else
			snprintf(entry->source, sizeof(entry->source), "%s.%s", nsp, rel);
	}
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	hash_destroy(seen);

	if (collision != NULL)
		pgs_worker_fail(collision,
						"Map one of the tables to another name with the stream option feldera_table_map, or use feldera_table_names.");
}

/* The response body as jsonb, or NULL if it is not JSON */
static Jsonb *
response_json(PgsFelderaSink *sink)
{
	Jsonb	   *volatile result = NULL;
	MemoryContext cxt = CurrentMemoryContext;

	if (sink->response == NULL)
		return NULL;
	PG_TRY();
	{
		result = DatumGetJsonbP(DirectFunctionCall1(jsonb_in,
													CStringGetDatum(sink->response)));
	}
	PG_CATCH();
	{
		/* not JSON */
		MemoryContextSwitchTo(cxt);
		FlushErrorState();
	}
	PG_END_TRY();
	return result;
}

/* The value of member key of the JSON object in container, or NULL */
static JsonbValue *
object_member(JsonbContainer *container, const char *key)
{
	JsonbValue	k;

	if (!JsonContainerIsObject(container))
		return NULL;
	k.type = jbvString;
	k.val.string.val = unconstify(char *, key);
	k.val.string.len = strlen(key);
	return findJsonbValueFromContainer(container, JB_FOBJECT, &k);
}

/* The JSON string member key of an object, or NULL */
static char *
string_member(JsonbContainer *container, const char *key)
{
	JsonbValue *v = object_member(container, key);

	if (v == NULL || v->type != jbvString)
		return NULL;
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/* Pull the JSON string member key out of the response body, or NULL */
static char *
response_member(PgsFelderaSink *sink, const char *key)
{
	Jsonb	   *jb = response_json(sink);

	if (jb == NULL)
		return NULL;
	return string_member(&jb->root, key);
}

/*
 * Perform the prepared request; interruptible.  Returns the HTTP status,
 * or 0 on a transport failure (reason in errbuf).
 */
static long
perform(PgsFelderaSink *sink)
{
	int			running = 1;
	long		status = 0;
	CURLMsg    *msg;
	int			left;
	CURLcode	result = CURLE_OK;
	sigset_t	all;
	sigset_t	old;

	free(sink->response);
	sink->response = NULL;
	sink->response_len = 0;
	sink->errbuf[0] = '\0';

	curl_multi_add_handle(sink->multi, sink->easy);
	while (running)
	{
		/* a name lookup may start a thread: it must not take our signals */
		sigfillset(&all);
		pthread_sigmask(SIG_BLOCK, &all, &old);
		(void) curl_multi_perform(sink->multi, &running);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (running)
		{
			(void) curl_multi_poll(sink->multi, NULL, 0, 100, NULL);

			/*
			 * A stop leaves at once: the transaction of this request is
			 * not confirmed, and the exit callback takes the request off
			 * the multi handle (feldera_shutdown).
			 */
			pgs_worker_checkpoint();
		}
	}
	while ((msg = curl_multi_info_read(sink->multi, &left)) != NULL)
	{
		if (msg->msg == CURLMSG_DONE)
			result = msg->data.result;
	}
	curl_multi_remove_handle(sink->multi, sink->easy);

	if (result != CURLE_OK)
	{
		if (sink->errbuf[0] == '\0')
			strlcpy(sink->errbuf, curl_easy_strerror(result), sizeof(sink->errbuf));
		return 0;
	}
	curl_easy_getinfo(sink->easy, CURLINFO_RESPONSE_CODE, &status);
	sink->requests++;
	return status;
}

/* Whether an answer (or its absence) is worth sending the request again */
static bool
retryable(long status)
{
	return status == 0 || status == 429 || status >= 500;
}

/*
 * The names of the fields in a ParseErrors answer's details
 * ({"errors": [{"field": ..., ...}], ...}), as ' in field "a"' or ' in
 * fields "a", "b"', or "" if it names none.  Field names are column names,
 * not values.
 */
static char *
failed_fields(JsonbContainer *root)
{
	JsonbValue *details = object_member(root, "details");
	JsonbValue *errors;
	List	   *names = NIL;
	StringInfoData buf;
	ListCell   *lc;
	int			i;
	int			n;

	if (details == NULL || details->type != jbvBinary ||
		(errors = object_member(details->val.binary.data, "errors")) == NULL ||
		errors->type != jbvBinary || !JsonContainerIsArray(errors->val.binary.data))
		return "";
	n = JsonContainerSize(errors->val.binary.data);
	for (i = 0; i < n && list_length(names) < PGS_FELDERA_SHOWN_FIELDS; i++)
	{
		JsonbValue *error = getIthJsonbValueFromContainer(errors->val.binary.data, i);
		char	   *field;
		bool		seen = false;

		if (error == NULL || error->type != jbvBinary ||
			(field = string_member(error->val.binary.data, "field")) == NULL)
			continue;
		foreach(lc, names)
			seen = seen || strcmp((char *) lfirst(lc), field) == 0;
		if (!seen)
			names = lappend(names, field);
	}
	if (names == NIL)
		return "";
	initStringInfo(&buf);
	appendStringInfoString(&buf, list_length(names) == 1 ? " in field " : " in fields ");
	foreach(lc, names)
		appendStringInfo(&buf, "%s\"%s\"", foreach_current_index(lc) > 0 ? ", " : "",
						 (char *) lfirst(lc));
	return buf.data;
}

/*
 * Describe a failed request in two parts.
 *
 * *summary is for stream_status.last_error (which monitoring roles read,
 * and they may not read the tables) and the log line: a transport error,
 * or the HTTP status, Feldera's error_code and the first line of its
 * message, cut to PGS_FELDERA_SHOWN_MESSAGE bytes, with the names of the
 * fields of a ParseErrors.  It never holds row values: Feldera's
 * ParseErrors message goes on with one line per error that quotes the
 * value ("invalid type: string \"...\"") and the whole event ("Invalid
 * fragment: '...'"), and an answer that is not Feldera's JSON could echo
 * anything, so neither is in the summary.
 *
 * *answer is the rest, for the server log only (superusers): Feldera's
 * whole message, or the body of an answer that is not Feldera's JSON; NULL
 * when the summary has it all.
 */
static void
describe_failure(PgsFelderaSink *sink, long status, const char *what,
				 char **summary, char **answer)
{
	Jsonb	   *jb;
	char	   *code = NULL;
	char	   *message = NULL;
	size_t		line_len;
	int			clip_len;
	int			shown_len;
	const char *fields;

	*answer = NULL;
	if (status == 0)
	{
		/* libcurl's text may quote the URL; it has no user information */
		const PgsStreamConfig *config = sink->base.config;
		char	   *text = pgs_redact_text(sink->errbuf,
										   config->feldera.url ? config->feldera.url : pgs_feldera_url);

		*summary = psprintf("%s: %s", what, text);
		return;
	}

	jb = response_json(sink);
	if (jb != NULL)
	{
		code = string_member(&jb->root, "error_code");
		message = string_member(&jb->root, "message");
	}
	if (code == NULL && message == NULL)
	{
		if (sink->response == NULL || sink->response_len == 0)
			*summary = psprintf("%s: HTTP %ld", what, status);
		else
		{
			*summary = psprintf("%s: HTTP %ld with an answer that is not a Feldera error",
								what, status);
			*answer = pnstrdup(sink->response,
							   pg_mbcliplen(sink->response, (int) sink->response_len,
											PGS_FELDERA_LOGGED_BODY));
		}
		return;
	}

	if (message == NULL)
		message = "";
	line_len = strcspn(message, "\r\n");
	clip_len = pg_mbcliplen(message, (int) line_len, PGS_FELDERA_SHOWN_MESSAGE);
	fields = failed_fields(&jb->root);
	/* "Errors parsing input data (1 errors):" announces the lines cut off */
	shown_len = clip_len;
	if (fields[0] != '\0' && shown_len == (int) line_len && shown_len > 0 &&
		message[shown_len - 1] == ':')
		shown_len--;
	*summary = psprintf("%s: HTTP %ld %s: %.*s%s", what, status, code ? code : "",
						shown_len, message, fields);
	if ((size_t) clip_len < line_len || message[line_len] != '\0')
		*answer = message;
}

/*
 * Send one request until Feldera accepts it; retries transient failures
 * with a growing delay and fails the stream on any other answer.
 */
static long
send_with_retry(PgsFelderaSink *sink, const char *url, const char *body,
				size_t len, const char *what, bool accept_202)
{
	long		delay_ms = 250;
	bool		waited = false;

	for (;;)
	{
		long		status;
		char	   *reason;
		char	   *answer;

		curl_easy_setopt(sink->easy, CURLOPT_URL, url);
		if (body != NULL)
		{
			curl_easy_setopt(sink->easy, CURLOPT_HTTPGET, 0L);
			curl_easy_setopt(sink->easy, CURLOPT_POSTFIELDS, body);
			curl_easy_setopt(sink->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) len);
		}
		else
			curl_easy_setopt(sink->easy, CURLOPT_HTTPGET, 1L);
		status = perform(sink);
		if (status == 200 || (accept_202 && status == 202))
		{
			if (waited)
				pgs_worker_report_streaming();
			return status;
		}
		describe_failure(sink, status, what, &reason, &answer);

		/*
		 * Feldera's message (in reason, which stream_status shows) and its
		 * whole answer (for the log): a proxy in between could echo the
		 * request's credentials, also as its Authorization header
		 */
		reason = pgs_redact_text(reason, sink->base.config->feldera.url ?
								 sink->base.config->feldera.url : pgs_feldera_url);
		if (answer != NULL)
			answer = pgs_redact_text(answer, sink->base.config->feldera.url ?
									 sink->base.config->feldera.url : pgs_feldera_url);
		if (!retryable(status))
		{
			/* the whole answer, rows included, for the server log only */
			if (answer != NULL)
				ereport(LOG,
						(errmsg("stream \"%s\" received HTTP %ld from Feldera",
								sink->base.config->name, status),
						 errdetail("Feldera answered: %s", answer)));
			pgs_worker_fail(reason,
							"Fix the pipeline or the data, then call pgoutput_stream.start_stream(); the slot was not confirmed past this transaction.");
		}

		ereport(LOG,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("stream \"%s\" is waiting for Feldera: %s",
						sink->base.config->name, reason),
				 answer != NULL ?
				 errdetail("Next attempt in %ld ms. Feldera answered: %s", delay_ms, answer) :
				 errdetail("Next attempt in %ld ms.", delay_ms)));
		pgs_worker_report_waiting(reason);
		waited = true;
		/* a stop leaves from here: nothing of this transaction is confirmed */
		pgs_worker_sleep(delay_ms);
		delay_ms = Min(delay_ms * 2, (long) pgs_feldera_max_retry_delay);
	}
}

/* URL of a table's ingress endpoint */
static char *
ingress_url(PgsFelderaSink *sink, const char *table)
{
	char	   *escaped;
	char	   *url;
	bool		plain = true;
	const char *p;

	/*
	 * Feldera matches unquoted names case-insensitively; a name that is not
	 * a plain lower-case identifier is sent quoted, to match exactly.
	 */
	for (p = table; *p; p++)
	{
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
			plain = false;
	}
	if (plain)
		escaped = curl_easy_escape(sink->easy, table, 0);
	else
	{
		char	   *quoted = psprintf("\"%s\"", table);

		escaped = curl_easy_escape(sink->easy, quoted, 0);
	}
	url = psprintf("%s/v0/pipelines/%s/ingress/%s?format=json&update_format=insert_delete&array=true",
				   sink->base_url, sink->pipeline_escaped, escaped);
	curl_free(escaped);
	return url;
}

/* Send the rows collected for one table, as one request */
static void
flush_batch(PgsFelderaSink *sink, FelderaBatch *batch)
{
	char	   *body;
	char	   *token;

	if (batch->nrows == 0)
		return;
	appendStringInfoChar(&batch->body, ']');
	/* rows come UTF-8 encoded from pgs_format_payload() */
	body = batch->body.data;
	send_with_retry(sink, ingress_url(sink, batch->table), body, batch->body.len,
					psprintf("could not push %d row(s) to Feldera table \"%s\"",
							 batch->nrows, batch->table), false);
	sink->base.sent += batch->nrows;
	sink->base.last_ack_at = GetCurrentTimestamp();
	sink->buffered -= batch->body.len - 2;	/* the rows without "[" and "]" */
	token = response_member(sink, "token");
	if (token != NULL && sink->base.config->feldera.wait_completion)
	{
		MemoryContext old = MemoryContextSwitchTo(sink->txn_cxt);

		sink->tokens = lappend(sink->tokens, pstrdup(token));
		MemoryContextSwitchTo(old);
	}
	pgs_buffer_trim(&batch->body);
	appendStringInfoChar(&batch->body, '[');
	batch->nrows = 0;
}

/* Send the rows collected for every table */
static void
flush_batches(PgsFelderaSink *sink)
{
	HASH_SEQ_STATUS seq;
	FelderaBatch *batch;

	if (sink->batches == NULL)
		return;
	hash_seq_init(&seq, sink->batches);
	while ((batch = hash_seq_search(&seq)) != NULL)
	{
		if (batch->table != NULL)
			flush_batch(sink, batch);
	}
}

/* The batch of a relation, created on first use in the transaction */
static FelderaBatch *
batch_for(PgsFelderaSink *sink, const PgsRelation *rel)
{
	FelderaBatch *batch;
	bool		found;

	if (sink->batches == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(FelderaBatch);
		ctl.hcxt = sink->txn_cxt;
		sink->batches = hash_create("pgoutput_stream feldera batches", 16, &ctl,
									HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	batch = hash_search(sink->batches, &rel->relid, HASH_ENTER, &found);
	if (!found)
	{
		MemoryContext old = MemoryContextSwitchTo(sink->txn_cxt);

		batch->table = feldera_table_name(sink->base.config, rel->nspname, rel->relname);
		initStringInfo(&batch->body);
		appendStringInfoChar(&batch->body, '[');
		batch->nrows = 0;
		MemoryContextSwitchTo(old);
	}
	return batch;
}

static void
feldera_send(PgsSink *base, const PgsOutput *out)
{
	PgsFelderaSink *sink = (PgsFelderaSink *) base;
	const PgsEvent *ev = out->event;
	FelderaBatch *batch;
	MemoryContext old;
	PgsFormatOptions fmt;
	int			len_before;

	if (ev->kind == PGS_EVENT_TRUNCATE)
	{
		batch = batch_for(sink, ev->rel);
		if (batch->table == NULL || base->config->feldera.truncate_skip)
			return;
		pgs_worker_fail(psprintf("TRUNCATE of table \"%s.%s\" cannot be sent to Feldera",
								 ev->rel->nspname, ev->rel->relname),
						"Feldera has no TRUNCATE. Set the stream option feldera_truncate to \"skip\" to ignore TRUNCATE (the Feldera table keeps its rows), then call pgoutput_stream.start_stream().");
	}
	if (ev->kind != PGS_EVENT_INSERT && ev->kind != PGS_EVENT_UPDATE &&
		ev->kind != PGS_EVENT_DELETE)
		return;

	batch = batch_for(sink, ev->rel);
	if (batch->table == NULL)
		return;

	old = MemoryContextSwitchTo(sink->txn_cxt);
	len_before = batch->body.len;
	if (batch->nrows > 0)
		appendStringInfoChar(&batch->body, ',');
	fmt = base->config->fmt;
	fmt.format = PGS_FORMAT_FELDERA;
	/* the feldera format renders exactly the insert_delete object (UTF-8) */
	(void) pgs_format_payload(&batch->body, &fmt, ev);
	batch->nrows++;
	sink->buffered += batch->body.len - len_before;
	MemoryContextSwitchTo(old);

	if (batch->nrows >= base->config->feldera.max_rows ||
		batch->body.len >= base->config->feldera.max_bytes)
		flush_batch(sink, batch);
	else if (sink->buffered >= base->config->feldera.max_bytes)
		flush_batches(sink);
}

/* Wait until Feldera processed every request of the transaction */
static void
wait_for_completion(PgsFelderaSink *sink)
{
	ListCell   *lc;

	foreach(lc, sink->tokens)
	{
		char	   *token = (char *) lfirst(lc);
		char	   *escaped = curl_easy_escape(sink->easy, token, 0);
		char	   *url = psprintf("%s/v0/pipelines/%s/completion_status?token=%s",
								   sink->base_url, sink->pipeline_escaped, escaped);

		curl_free(escaped);
		for (;;)
		{
			char	   *status;

			/* 202: still in progress; 410 (pipeline restarted) fails */
			(void) send_with_retry(sink, url, NULL, 0,
								   "could not read Feldera completion status", true);
			status = response_member(sink, "status");
			if (status != NULL && strcmp(status, "complete") == 0)
				break;
			pgs_worker_sleep(100);
		}
	}
}

static void
feldera_end_transaction(PgsSink *base, XLogRecPtr end_lsn)
{
	PgsFelderaSink *sink = (PgsFelderaSink *) base;

	flush_batches(sink);
	if (sink->tokens != NIL)
		wait_for_completion(sink);
	sink->acked = end_lsn;
	sink->batches = NULL;
	sink->buffered = 0;
	sink->tokens = NIL;
	MemoryContextReset(sink->txn_cxt);
}

static void
feldera_poll(PgsSink *base pg_attribute_unused())
{
}

static XLogRecPtr
feldera_acked_lsn(PgsSink *base)
{
	return ((PgsFelderaSink *) base)->acked;
}

/* Synchronous: nothing is ever in flight between transactions */
static bool
feldera_idle(PgsSink *base pg_attribute_unused())
{
	return true;
}

static void
feldera_shutdown(PgsSink *base)
{
	PgsFelderaSink *sink = (PgsFelderaSink *) base;

	if (sink->multi && sink->easy)
		curl_multi_remove_handle(sink->multi, sink->easy);
	if (sink->easy)
		curl_easy_cleanup(sink->easy);
	if (sink->multi)
		curl_multi_cleanup(sink->multi);
	if (sink->headers)
	{
		struct curl_slist *h;

		/* the list is ours, and its Authorization line holds the API key */
		for (h = sink->headers; h != NULL; h = h->next)
			explicit_bzero(h->data, strlen(h->data));
		curl_slist_free_all(sink->headers);
	}
	free(sink->response);
	sink->easy = NULL;
	sink->multi = NULL;
	sink->headers = NULL;
	sink->response = NULL;
}

/*
 * Give libcurl the user information of the URL, "user[:password]", as it
 * would read it from the URL (percent-decoded), and wipe it.  libcurl
 * keeps its copies for the handle's life; what it frees is not wiped.
 */
static void
set_credentials(PgsFelderaSink *sink, char *userinfo)
{
	size_t		userinfo_len = strlen(userinfo);
	char	   *colon = strchr(userinfo, ':');
	char	   *part[2] = {NULL, NULL};
	int			part_len[2] = {0, 0};
	bool		failed;
	int			i;

	if (colon != NULL)
		*colon = '\0';
	part[0] = curl_easy_unescape(sink->easy, userinfo, 0, &part_len[0]);
	if (colon != NULL)
		part[1] = curl_easy_unescape(sink->easy, colon + 1, 0, &part_len[1]);
	explicit_bzero(userinfo, userinfo_len);
	pfree(userinfo);
	failed = part[0] == NULL || (colon != NULL && part[1] == NULL);
	if (!failed)
	{
		curl_easy_setopt(sink->easy, CURLOPT_USERNAME, part[0]);
		if (part[1] != NULL)
			curl_easy_setopt(sink->easy, CURLOPT_PASSWORD, part[1]);
	}
	for (i = 0; i < 2; i++)
	{
		if (part[i] != NULL)
		{
			explicit_bzero(part[i], part_len[i]);
			curl_free(part[i]);
		}
	}
	if (failed)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
}

/*
 * Create the target.  Checks the table mapping first (before the slot is
 * acquired), then sets up the reused connection.
 */
PgsSink *
pgs_sink_feldera_create(const PgsStreamConfig *config)
{
	PgsFelderaSink *sink = palloc0(sizeof(PgsFelderaSink));
	const char *url = config->feldera.url ? config->feldera.url : pgs_feldera_url;
	char	   *userinfo = NULL;
	size_t		len;
	char	   *escaped;

	check_table_names(config);

	sink->base.name = "feldera";
	sink->base.config = config;
	sink->base.uses_payload = false;
	sink->base.target_index = 2;
	sink->base.send = feldera_send;
	sink->base.end_transaction = feldera_end_transaction;
	sink->base.poll = feldera_poll;
	sink->base.acked_lsn = feldera_acked_lsn;
	sink->base.idle = feldera_idle;
	sink->base.shutdown = feldera_shutdown;
	sink->txn_cxt = AllocSetContextCreate(CurrentMemoryContext,
										  "pgoutput_stream feldera transaction",
										  ALLOCSET_DEFAULT_SIZES);
	/*
	 * User information in the URL ("http://user:password@host") is handed
	 * to libcurl once, as user name and password, and the URL kept without
	 * it: otherwise every request's URL, in this process's memory and in
	 * libcurl's (which copies each URL it is given and frees the previous
	 * copy without wiping it), would hold the password again.
	 */
	if (!pgs_url_split_userinfo(url, &userinfo, &sink->base_url))
		sink->base_url = pstrdup(url);
	len = strlen(sink->base_url);
	while (len > 0 && sink->base_url[len - 1] == '/')
		sink->base_url[--len] = '\0';

	if (!curl_initialised)
	{
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("could not initialise libcurl")));
		curl_initialised = true;
	}
	sink->multi = curl_multi_init();
	sink->easy = curl_easy_init();
	if (sink->multi == NULL || sink->easy == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not create a libcurl handle")));

	escaped = curl_easy_escape(sink->easy, config->feldera.pipeline, 0);
	sink->pipeline_escaped = pstrdup(escaped);
	curl_free(escaped);

	if (userinfo != NULL)
		set_credentials(sink, userinfo);

	sink->headers = curl_slist_append(sink->headers, "Content-Type: application/json");
	/* no "Expect: 100-continue" round trip for large bodies */
	sink->headers = curl_slist_append(sink->headers, "Expect:");
	if (pgs_feldera_api_key[0] != '\0')
	{
		char	   *auth = psprintf("Authorization: Bearer %s", pgs_feldera_api_key);

		/*
		 * The key stays in the list's copy only, which feldera_shutdown()
		 * wipes.  libcurl writes the line into every request it builds and
		 * frees that buffer without wiping it: not ours to wipe.
		 */
		sink->headers = curl_slist_append(sink->headers, auth);
		pgs_wipe_free(auth);
	}
	curl_easy_setopt(sink->easy, CURLOPT_HTTPHEADER, sink->headers);
	/* PostgreSQL owns the signals: no SIGALRM-based timeouts */
	curl_easy_setopt(sink->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(sink->easy, CURLOPT_ERRORBUFFER, sink->errbuf);
	curl_easy_setopt(sink->easy, CURLOPT_CONNECTTIMEOUT_MS, (long) pgs_feldera_connect_timeout);
	curl_easy_setopt(sink->easy, CURLOPT_TIMEOUT_MS, (long) pgs_feldera_request_timeout);
	curl_easy_setopt(sink->easy, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(sink->easy, CURLOPT_WRITEFUNCTION, collect_response);
	curl_easy_setopt(sink->easy, CURLOPT_WRITEDATA, sink);
	sink->acked = InvalidXLogRecPtr;
	return &sink->base;
}
