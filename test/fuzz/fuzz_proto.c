/*-------------------------------------------------------------------------
 *
 * fuzz_proto.c
 *		libFuzzer harness for the pgoutput reader (src/proto.c) and the
 *		formatters (src/format*.c), run inside a PostgreSQL backend.
 *
 * The reader parses with the server's own logicalrep_read_* functions and
 * the formatters look types up in the catalogs, so the harness runs where
 * they run in production: in a backend, in a transaction.  It is a small
 * loadable library of its own (pgoutput_stream_fuzz.so, see Makefile),
 * built from the reader and formatter sources with clang's coverage
 * instrumentation, and linked with libFuzzer's fuzzer_no_main runtime.
 * The SQL function
 *
 *		fuzz_pgoutput(args text[]) RETURNS int
 *
 * hands args to LLVMFuzzerRunDriver() as libFuzzer's argv (args[1] is
 * argv[0]), and libFuzzer then owns the backend: it runs inputs until it
 * is done and then exits the process (exit(0), which runs the backend's
 * normal exit processing), or reports a crash and _Exit()s with its error
 * code.  The function therefore normally does not return.  Two flags are
 * the harness's own and are taken out of args before libFuzzer sees them:
 *
 *		-pgs_log=FILE	append stdout and stderr (libFuzzer's and
 *						AddressSanitizer's reports) to FILE
 *		-pgs_done=FILE	on a normal exit of libFuzzer, write the harness's
 *						statistics to FILE; its absence means the run
 *						did not end normally (crash, timeout, killed)
 *
 * Input format: a sequence of pgoutput messages, each preceded by its
 * length as a 2-byte big-endian number.  A length beyond the end of the
 * input takes what is left.  Each message is copied into a malloc'd buffer
 * of exactly its length plus the NUL byte that every StringInfo has (which
 * pq_getmsgstring relies on), so that AddressSanitizer sees any read past
 * it.
 *
 * Each input is read twice, by a new PgsProtoState each time: with the
 * default filters and with some table, column and operation filters on.
 * Every event the reader passes on is rendered in every format and value
 * mode, and its subject is built.
 *
 * Errors are expected (most mutated inputs are invalid): each pass runs in
 * an internal subtransaction, like a PL/pgSQL exception block, and an
 * ERROR ends the pass, as it ends a stream's decoding in production.
 * Rendering an event runs in a nested subtransaction, and an ERROR in one
 * format only skips that format (as the type cache must survive errors:
 * peek() formats in a backend that lives on after one).  Crashes and
 * AddressSanitizer reports are the findings.
 *
 * Copyright (c) 2026, pgoutput_stream developers
 *
 * IDENTIFICATION
 *		test/fuzz/fuzz_proto.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/resowner.h"

#include "filter.h"
#include "format.h"
#include "proto.h"

PG_MODULE_MAGIC;

PG_FUNCTION_INFO_V1(fuzz_pgoutput);

/* libFuzzer's entry point for programs that own main() */
extern int	LLVMFuzzerRunDriver(int *argc, char ***argv,
								int (*callback) (const uint8_t *data, size_t size));

/* The renderings of every event; the subject is rendered once more */
#define NRENDERS	8

typedef struct FuzzPass
{
	PgsFormatOptions opts[NRENDERS];
	StringInfoData buf;
} FuzzPass;

/* Distinct error origins, for the summary */
#define MAX_ORIGINS	128

typedef struct ErrorOrigin
{
	char		where;			/* 'P' reading, 'R' rendering */
	char		key[96];		/* file:line function */
	int			sqlerrcode;
	uint64		count;
	char		sample[120];	/* first message seen */
} ErrorOrigin;

static struct
{
	uint64		inputs;
	uint64		messages;
	uint64		messages_ok;
	uint64		proto_errors;
	uint64		events;
	uint64		renders;
	uint64		renders_emitted;
	uint64		render_errors;
	int			norigins;
	uint64		origins_dropped;
	ErrorOrigin origins[MAX_ORIGINS];
}			stats;

static MemoryContext harness_cxt = NULL;
static MemoryContext input_cxt = NULL;
static PgsFilterConfig default_filter;
static PgsFilterConfig some_filters;
static char *done_path = NULL;

/* The message buffer being read, freed after an error too */
static char *message_copy = NULL;

static void
note_error(char where, ErrorData *edata)
{
	char		key[96];
	int			i;

	snprintf(key, sizeof(key), "%s:%d %s",
			 edata->filename ? edata->filename : "?", edata->lineno,
			 edata->funcname ? edata->funcname : "?");
	for (i = 0; i < stats.norigins; i++)
	{
		ErrorOrigin *o = &stats.origins[i];

		if (o->where == where && o->sqlerrcode == edata->sqlerrcode &&
			strcmp(o->key, key) == 0)
		{
			o->count++;
			return;
		}
	}
	if (stats.norigins == MAX_ORIGINS)
	{
		stats.origins_dropped++;
		return;
	}
	stats.origins[i].where = where;
	strlcpy(stats.origins[i].key, key, sizeof(stats.origins[i].key));
	stats.origins[i].sqlerrcode = edata->sqlerrcode;
	stats.origins[i].count = 1;
	strlcpy(stats.origins[i].sample, edata->message ? edata->message : "",
			sizeof(stats.origins[i].sample));
	stats.norigins++;
}

/*
 * Catch the ERROR raised in a subtransaction: note where it came from and
 * roll the subtransaction back, as PL/pgSQL's exception blocks do.
 */
static void
catch_error(char where, MemoryContext cxt, ResourceOwner owner)
{
	ErrorData  *edata;

	MemoryContextSwitchTo(harness_cxt);
	edata = CopyErrorData();
	FlushErrorState();
	RollbackAndReleaseCurrentSubTransaction();
	MemoryContextSwitchTo(cxt);
	CurrentResourceOwner = owner;
	note_error(where, edata);
	FreeErrorData(edata);
}

static void
render_one(FuzzPass *pass, const PgsEvent *ev, int i)
{
	resetStringInfo(&pass->buf);
	if (i == NRENDERS)
	{
		pgs_format_subject(&pass->buf, &pass->opts[0], ev);
		return;
	}
	stats.renders++;
	if (pgs_format_payload(&pass->buf, &pass->opts[i], ev))
		stats.renders_emitted++;
}

/*
 * The reader's callback: render ev every way.  An error in one rendering
 * is caught and the others still run.
 */
static void
render_event(const PgsEvent *ev, void *arg)
{
	FuzzPass   *pass = (FuzzPass *) arg;
	volatile int next = 0;

	stats.events++;
	while (next <= NRENDERS)
	{
		MemoryContext cxt = CurrentMemoryContext;
		ResourceOwner owner = CurrentResourceOwner;

		BeginInternalSubTransaction(NULL);
		MemoryContextSwitchTo(cxt);
		PG_TRY();
		{
			for (; next <= NRENDERS; next++)
				render_one(pass, ev, next);
			ReleaseCurrentSubTransaction();
			MemoryContextSwitchTo(cxt);
			CurrentResourceOwner = owner;
		}
		PG_CATCH();
		{
			stats.render_errors++;
			catch_error('R', cxt, owner);
			next++;
		}
		PG_END_TRY();
	}
}

static void
init_pass(FuzzPass *pass)
{
	int			i;

	memset(pass, 0, sizeof(FuzzPass));
	for (i = 0; i < NRENDERS; i++)
	{
		pass->opts[i].subject_prefix = "postgres.fuzz";
		pass->opts[i].transaction_events = -1;
		pass->opts[i].relation_events = -1;
		pass->opts[i].stream_name = "fuzz";
		pass->opts[i].database = "fuzz";
	}
	pass->opts[0].format = PGS_FORMAT_JSON;
	pass->opts[0].value_mode = PGS_VALUES_TYPED;
	pass->opts[1].format = PGS_FORMAT_JSON;
	pass->opts[1].value_mode = PGS_VALUES_TEXT;
	pass->opts[2].format = PGS_FORMAT_JSON_PRETTY;
	pass->opts[2].value_mode = PGS_VALUES_TYPED;
	pass->opts[2].transaction_events = 1;
	pass->opts[2].relation_events = 1;
	pass->opts[3].format = PGS_FORMAT_JSON_PRETTY;
	pass->opts[3].value_mode = PGS_VALUES_TEXT;
	pass->opts[3].transaction_events = 0;
	pass->opts[3].relation_events = 0;
	pass->opts[4].format = PGS_FORMAT_TEXT;
	/* Debezium with transaction metadata, and with Feldera's values */
	pass->opts[5].format = PGS_FORMAT_DEBEZIUM;
	pass->opts[5].transaction_events = 1;
	pass->opts[5].debezium = pgs_debezium_state_create();
	pass->opts[6].format = PGS_FORMAT_DEBEZIUM;
	pass->opts[6].debezium_feldera = true;
	pass->opts[6].debezium = pgs_debezium_state_create();
	pass->opts[7].format = PGS_FORMAT_FELDERA;
	initStringInfo(&pass->buf);
}

/* Feed the framed messages of data to a new reader */
static void
read_messages(const uint8_t *data, size_t size, const PgsFilterConfig *filter)
{
	FuzzPass	pass;
	PgsProtoState *proto;
	MemoryContext msg_cxt;
	MemoryContext old;
	size_t		pos = 0;
	int			n = 0;

	init_pass(&pass);
	proto = pgs_proto_create(CurrentMemoryContext, filter, render_event, &pass);
	msg_cxt = AllocSetContextCreate(CurrentMemoryContext, "fuzz message",
									ALLOCSET_DEFAULT_SIZES);
	while (size - pos >= 2)
	{
		size_t		len = ((size_t) data[pos] << 8) | data[pos + 1];

		pos += 2;
		if (len > size - pos)
			len = size - pos;
		message_copy = malloc(len + 1);
		if (message_copy == NULL)
			elog(ERROR, "out of memory");
		memcpy(message_copy, data + pos, len);
		message_copy[len] = '\0';
		pos += len;

		stats.messages++;
		old = MemoryContextSwitchTo(msg_cxt);
		/* LSNs as the decoder reports them: increasing */
		pgs_proto_read(proto, (XLogRecPtr) 0x1000000 + 0x40 * n++,
					   InvalidTransactionId, message_copy, (int) len);
		MemoryContextSwitchTo(old);
		MemoryContextReset(msg_cxt);
		stats.messages_ok++;
		free(message_copy);
		message_copy = NULL;
	}
}

static void
run_pass(const uint8_t *data, size_t size, const PgsFilterConfig *filter)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		read_messages(data, size, filter);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		stats.proto_errors++;
		catch_error('P', cxt, owner);
	}
	PG_END_TRY();
	free(message_copy);
	message_copy = NULL;
	MemoryContextSwitchTo(cxt);
	MemoryContextReset(input_cxt);
}

static int
fuzz_one_input(const uint8_t *data, size_t size)
{
	MemoryContext old;

	stats.inputs++;
	old = MemoryContextSwitchTo(input_cxt);
	run_pass(data, size, &default_filter);
	run_pass(data, size, &some_filters);
	MemoryContextSwitchTo(old);
	return 0;
}

static int
origin_cmp(const void *a, const void *b)
{
	const ErrorOrigin *x = (const ErrorOrigin *) a;
	const ErrorOrigin *y = (const ErrorOrigin *) b;

	if (x->count != y->count)
		return x->count > y->count ? -1 : 1;
	return strcmp(x->key, y->key);
}

static void
print_stats(FILE *f)
{
	int			i;

	fprintf(f, "pgoutput_stream_fuzz: inputs=" UINT64_FORMAT
			" messages=" UINT64_FORMAT " messages_ok=" UINT64_FORMAT
			" read_errors=" UINT64_FORMAT " events=" UINT64_FORMAT
			" renders=" UINT64_FORMAT " payloads=" UINT64_FORMAT
			" render_errors=" UINT64_FORMAT "\n",
			stats.inputs, stats.messages, stats.messages_ok,
			stats.proto_errors, stats.events, stats.renders,
			stats.renders_emitted, stats.render_errors);
	qsort(stats.origins, stats.norigins, sizeof(ErrorOrigin), origin_cmp);
	for (i = 0; i < stats.norigins; i++)
	{
		ErrorOrigin *o = &stats.origins[i];

		fprintf(f, "pgoutput_stream_fuzz: error %c %10" INT64_MODIFIER "u %s %s: %s\n",
				o->where, o->count, unpack_sql_state(o->sqlerrcode), o->key,
				o->sample);
	}
	if (stats.origins_dropped > 0)
		fprintf(f, "pgoutput_stream_fuzz: " UINT64_FORMAT " errors of other origins\n",
				stats.origins_dropped);
}

/*
 * At exit: libFuzzer ends a normal run with exit(), which runs this before
 * the backend's own exit processing (atexit handlers run in reverse).  An
 * exit through proc_exit() (FATAL, terminated backend) is not a normal end
 * of the run, and a crash _Exit()s without running it.
 */
static void
at_exit(void)
{
	FILE	   *f;

	if (proc_exit_inprogress)
		return;
	print_stats(stderr);
	fflush(stderr);
	if (done_path == NULL)
		return;
	f = fopen(done_path, "w");
	if (f == NULL)
		return;
	print_stats(f);
	fclose(f);
}

static void
set_guc(const char *name, const char *value)
{
	(void) set_config_option(name, value, PGC_SUSET, PGC_S_SESSION,
							 GUC_ACTION_SET, true, 0, false);
}

/* The filters of the second pass; the corpus workload has such names */
static void
init_filters(void)
{
	pgs_filter_defaults(&default_filter);
	pgs_filter_defaults(&some_filters);
	some_filters.include_tables =
		list_make3(pgs_pattern_parse("include_tables", "public.*", 2),
				   pgs_pattern_parse("include_tables", "s?.*", 2),
				   pgs_pattern_parse("include_tables", "odd\\.schema.t\\*", 2));
	some_filters.exclude_tables =
		list_make1(pgs_pattern_parse("exclude_tables", "*.skip*", 2));
	some_filters.exclude_columns =
		list_make2(pgs_pattern_parse("exclude_columns", "*.*.secret", 3),
				   pgs_pattern_parse("exclude_columns", "public.*.c?", 3));
	some_filters.operations = PGS_OP_ALL & ~PGS_OP_TRUNCATE;
}

Datum
fuzz_pgoutput(PG_FUNCTION_ARGS)
{
	ArrayType  *array = PG_GETARG_ARRAYTYPE_P(0);
	Datum	   *elems;
	bool	   *nulls;
	int			nelems;
	int			argc = 0;
	char	  **argv;
	char	   *log_path = NULL;
	int			i;

	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only a superuser may run the fuzzer")));
	if (harness_cxt != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the fuzzer has already run in this session")));

	harness_cxt = AllocSetContextCreate(TopMemoryContext, "fuzz harness",
										ALLOCSET_DEFAULT_SIZES);
	input_cxt = AllocSetContextCreate(harness_cxt, "fuzz input",
									  ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(harness_cxt);

	deconstruct_array(array, TEXTOID, -1, false, TYPALIGN_INT,
					  &elems, &nulls, &nelems);
	argv = palloc0(sizeof(char *) * (nelems + 2));
	for (i = 0; i < nelems; i++)
	{
		char	   *arg;

		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("fuzzer arguments must not be null")));
		arg = TextDatumGetCString(elems[i]);
		if (strncmp(arg, "-pgs_log=", 9) == 0)
			log_path = arg + 9;
		else if (strncmp(arg, "-pgs_done=", 10) == 0)
			done_path = arg + 10;
		else
		{
			argv[argc++] = arg;
			/* no RSS thread in a backend: signals could go to it */
			if (argc == 1)
				argv[argc++] = "-rss_limit_mb=0";
		}
	}
	if (argc == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("fuzzer arguments must start with a program name")));
	argv[argc] = NULL;

	/*
	 * What the worker and peek() decode with.  The client encoding matters:
	 * pq_getmsgstring() converts the names in a message from it to the
	 * database encoding.
	 */
	set_guc("client_encoding", GetDatabaseEncodingName());
	set_guc("DateStyle", "ISO");
	set_guc("IntervalStyle", "postgres");
	set_guc("TimeZone", "UTC");
	set_guc("extra_float_digits", "3");
	set_guc("bytea_output", "hex");
	init_filters();

	if (log_path != NULL)
	{
		int			fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);

		if (fd < 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not open file \"%s\": %m", log_path)));
		fflush(stdout);
		fflush(stderr);
		if (dup2(fd, STDOUT_FILENO) < 0 || dup2(fd, STDERR_FILENO) < 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not redirect output to \"%s\": %m", log_path)));
		close(fd);
	}

	/*
	 * The backend's SIGALRM handler drives its timeouts (none are armed
	 * while the fuzzer runs) and its SIGFPE handler turns the signal into
	 * an ERROR, which the harness would take for a rejected input.  libFuzzer
	 * installs its handlers only where none is set: give it these two, for
	 * its -timeout and to report an arithmetic trap as the crash it is.
	 */
	pqsignal(SIGALRM, SIG_DFL);
	pqsignal(SIGFPE, SIG_DFL);

	atexit(at_exit);
	PG_RETURN_INT32(LLVMFuzzerRunDriver(&argc, &argv, fuzz_one_input));
}
