/*-------------------------------------------------------------------------
 *
 * guc.c
 *		Definition of every pgoutput_stream.* configuration parameter.
 *
 * Parameters that size shared memory are PGC_POSTMASTER; the tuning knobs
 * can be changed with a reload.  Stream-specific settings are stream
 * options stored with the stream, not parameters.
 *
 * Copyright (c) 2026, pgoutput_stream developers
 *
 * IDENTIFICATION
 *		src/guc.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "miscadmin.h"
#include "utils/guc.h"

#include "compat.h"
#include "guc.h"
#include "secrets.h"

int			pgs_max_streams = 16;
int			pgs_wakeup_interval = 1000;
int			pgs_batch_delay = 1;
int			pgs_restart_delay = 5;
int			pgs_slot_save_interval = 5000;
int			pgs_retained_wal_warning = 1024;
int			pgs_test_heartbeat_interval = 0;

char	   *pgs_nats_url = NULL;
char	   *pgs_nats_user = NULL;
char	   *pgs_nats_password = NULL;
char	   *pgs_nats_token = NULL;
char	   *pgs_nats_creds_file = NULL;
char	   *pgs_nats_nkey_seed_file = NULL;
char	   *pgs_nats_nkey = NULL;
char	   *pgs_nats_connection_name = NULL;
char	   *pgs_nats_tls_ca_file = NULL;
char	   *pgs_nats_tls_cert_file = NULL;
char	   *pgs_nats_tls_key_file = NULL;
int			pgs_nats_connect_timeout = 2000;
int			pgs_nats_ack_timeout = 10000;
int			pgs_nats_max_pending = 4096;
int			pgs_nats_max_retry_delay = 30000;
bool		pgs_nats_encode_headers = true;

char	   *pgs_feldera_url = NULL;
char	   *pgs_feldera_api_key = NULL;
int			pgs_feldera_connect_timeout = 5000;
int			pgs_feldera_request_timeout = 30000;
int			pgs_feldera_max_retry_delay = 30000;

/*
 * Check a URL setting.  PostgreSQL's own message for a refused value
 * quotes the value, credentials included, so the message is always ours:
 * the value as messages show URLs (user information, an unparsable port
 * and a query as "***").
 */
static bool
check_url(const char *name, char **newval, PgsUrlKind kind)
{
	const char *problem = pgs_url_problem(*newval, kind);

	if (problem == NULL)
		return true;
	GUC_check_errcode(ERRCODE_INVALID_PARAMETER_VALUE);
	GUC_check_errmsg("invalid value for parameter \"%s\": \"%s\"",
					 name, pgs_url_shown(*newval));
	GUC_check_errdetail("%s", problem);
	return false;
}

static bool
check_nats_url(char **newval, void **extra pg_attribute_unused(),
			   GucSource source pg_attribute_unused())
{
	return check_url("pgoutput_stream.nats_url", newval, PGS_URL_NATS);
}

static bool
check_feldera_url(char **newval, void **extra pg_attribute_unused(),
				  GucSource source pg_attribute_unused())
{
	return check_url("pgoutput_stream.feldera_url", newval, PGS_URL_FELDERA);
}

/* A secret: readable and settable by superusers only */
static void
define_secret(const char *name, const char *description, char **variable)
{
	DefineCustomStringVariable(name, description, NULL, variable, "",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);
}

/*
 * Define the parameters.  Called from _PG_init while the postmaster loads
 * shared_preload_libraries.
 */
void
pgs_guc_init(void)
{
	DefineCustomIntVariable("pgoutput_stream.max_streams",
							gettext_noop("Maximum number of streams that can run at the same time in the cluster."),
							gettext_noop("Each running stream also uses one background worker process and one replication slot."),
							&pgs_max_streams,
							16, 1, 1024,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("pgoutput_stream.wakeup_interval",
							gettext_noop("Longest time a stream worker sleeps before it looks for new WAL."),
							gettext_noop("Commits wake the workers at once; this is the fallback, e.g. for asynchronous commits."),
							&pgs_wakeup_interval,
							1000, 1, 3600 * 1000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("pgoutput_stream.batch_delay",
							gettext_noop("Shortest time between two decoding passes of a stream worker while commits come faster than it wakes up."),
							gettext_noop("Once a pass decoded three transactions or more, the next one waits until this long after it started, so that the worker decodes and publishes the commits of that time together. 0 decodes at every wake-up."),
							&pgs_batch_delay,
							1, 0, 100,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("pgoutput_stream.restart_delay",
							gettext_noop("Time before a stream worker that ended with an error is started again."),
							NULL,
							&pgs_restart_delay,
							5, 1, 3600,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("pgoutput_stream.slot_save_interval",
							gettext_noop("How often a stream worker writes its slot's confirmed position to disk."),
							gettext_noop("After a crash, delivery resumes from the last saved position, so events after it are delivered again."),
							&pgs_slot_save_interval,
							5000, 100, 3600 * 1000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("pgoutput_stream.retained_wal_warning",
							gettext_noop("WAL a stream's slot may retain before the stream warns (0 turns the warning off)."),
							gettext_noop("Above it, the worker logs a WARNING at most once a minute and stream_status shows wal_warning."),
							&pgs_retained_wal_warning,
							1024, 0, INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_MB,
							NULL, NULL, NULL);

	/*
	 * Lets a test run many heartbeats, and the worker's loop as many times,
	 * in minutes (the soak test of test/t/026_bounded_memory.pl), where the
	 * stream option counts whole seconds.
	 */
	DefineCustomIntVariable("pgoutput_stream.test_heartbeat_interval",
							gettext_noop("For tests only: when set, streams with heartbeat_interval send heartbeats this often instead."),
							gettext_noop("0 uses each stream's heartbeat_interval."),
							&pgs_test_heartbeat_interval,
							0, 0, 3600 * 1000,
							PGC_SIGHUP,
							GUC_UNIT_MS | GUC_NOT_IN_SAMPLE,
							NULL, NULL, NULL);

	DefineCustomStringVariable("pgoutput_stream.nats_url",
							   gettext_noop("NATS server URL, or a comma-separated list of the servers of a cluster, for streams with target nats."),
							   gettext_noop("A stream's nats_url option overrides it. tls:// implies TLS."),
							   &pgs_nats_url,
							   "nats://127.0.0.1:4222",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY,
							   check_nats_url, NULL, NULL);
	define_secret("pgoutput_stream.nats_user",
				  gettext_noop("User name for NATS authentication."),
				  &pgs_nats_user);
	define_secret("pgoutput_stream.nats_password",
				  gettext_noop("Password for NATS authentication."),
				  &pgs_nats_password);
	define_secret("pgoutput_stream.nats_token",
				  gettext_noop("Token for NATS authentication."),
				  &pgs_nats_token);
	define_secret("pgoutput_stream.nats_creds_file",
				  gettext_noop("NATS credentials file (JWT and NKey seed) for authentication."),
				  &pgs_nats_creds_file);
	define_secret("pgoutput_stream.nats_nkey_seed_file",
				  gettext_noop("File holding the NKey seed for NATS authentication."),
				  &pgs_nats_nkey_seed_file);
	DefineCustomStringVariable("pgoutput_stream.nats_nkey",
							   gettext_noop("Public NKey (starting with U) that goes with pgoutput_stream.nats_nkey_seed_file."),
							   NULL,
							   &pgs_nats_nkey,
							   "",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("pgoutput_stream.nats_connection_name",
							   gettext_noop("Connection name shown by the NATS server; empty means \"pgoutput_stream <stream name>\"."),
							   NULL,
							   &pgs_nats_connection_name,
							   "",
							   PGC_SIGHUP, 0,
							   NULL, NULL, NULL);
	define_secret("pgoutput_stream.nats_tls_ca_file",
				  gettext_noop("CA certificates to verify the NATS server with; setting it enables TLS."),
				  &pgs_nats_tls_ca_file);
	define_secret("pgoutput_stream.nats_tls_cert_file",
				  gettext_noop("Client certificate for TLS connections to NATS."),
				  &pgs_nats_tls_cert_file);
	define_secret("pgoutput_stream.nats_tls_key_file",
				  gettext_noop("Private key of the client certificate for TLS connections to NATS."),
				  &pgs_nats_tls_key_file);
	DefineCustomIntVariable("pgoutput_stream.nats_connect_timeout",
							gettext_noop("Timeout of one attempt to connect to a NATS server."),
							NULL,
							&pgs_nats_connect_timeout,
							2000, 100, 600 * 1000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("pgoutput_stream.nats_ack_timeout",
							gettext_noop("How long a stream waits for JetStream to acknowledge a message before it reconnects and sends again."),
							NULL,
							&pgs_nats_ack_timeout,
							10000, 100, 3600 * 1000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("pgoutput_stream.nats_max_pending",
							gettext_noop("Most messages a stream has in flight to JetStream, not yet acknowledged."),
							NULL,
							&pgs_nats_max_pending,
							4096, 1, 1000000,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("pgoutput_stream.nats_max_retry_delay",
							gettext_noop("Longest wait between two attempts to reach NATS (the delay doubles up to it)."),
							NULL,
							&pgs_nats_max_retry_delay,
							30000, 100, 3600 * 1000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomBoolVariable("pgoutput_stream.nats_encode_headers",
							 gettext_noop("Encodes NATS message headers in the extension instead of through the client library's header table."),
							 gettext_noop("Off falls back to the client library's public header functions, which cost several allocations per header."),
							 &pgs_nats_encode_headers,
							 true,
							 PGC_SIGHUP, 0,
							 NULL, NULL, NULL);

	DefineCustomStringVariable("pgoutput_stream.feldera_url",
							   gettext_noop("Base URL of the Feldera API for streams with target feldera."),
							   gettext_noop("A stream's feldera_url option overrides it."),
							   &pgs_feldera_url,
							   "http://127.0.0.1:8080",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY,
							   check_feldera_url, NULL, NULL);
	define_secret("pgoutput_stream.feldera_api_key",
				  gettext_noop("Feldera API key, sent as \"Authorization: Bearer <key>\"."),
				  &pgs_feldera_api_key);
	DefineCustomIntVariable("pgoutput_stream.feldera_connect_timeout",
							gettext_noop("Timeout of one attempt to connect to Feldera."),
							NULL,
							&pgs_feldera_connect_timeout,
							5000, 100, 600 * 1000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("pgoutput_stream.feldera_request_timeout",
							gettext_noop("Longest time one Feldera ingress request may take before it is sent again."),
							gettext_noop("A paused pipeline holds requests, so this bounds how long such a request is waited for."),
							&pgs_feldera_request_timeout,
							30000, 100, 3600 * 1000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("pgoutput_stream.feldera_max_retry_delay",
							gettext_noop("Longest wait between two attempts to deliver to Feldera (the delay doubles up to it)."),
							NULL,
							&pgs_feldera_max_retry_delay,
							30000, 100, 3600 * 1000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);

	MarkGUCPrefixReserved("pgoutput_stream");
}

/*
 * Undo what a database's owner could set for the extension's processes.
 *
 * A worker or scanner connects as the bootstrap superuser, and PostgreSQL
 * applies the settings of ALTER DATABASE ... SET to it, which the database's
 * owner may change without any other privilege.  Those that could make the
 * process act as another role (role, session_authorization), resolve names
 * in another role's schemas (search_path), stop it (read-only transactions,
 * timeouts, exit_on_error turning the error handler's errors into FATAL) or
 * change how its transactions behave are overridden here, once after
 * connecting, outside any transaction.  Overridden settings no longer
 * follow a reload; none of them is meant to be tuned for these processes.
 */
void
pgs_guc_override_database_settings(void)
{
	Assert(!IsTransactionState());

	/* the role name is looked up in the catalogs */
	StartTransactionCommand();
	SetConfigOption("session_authorization",
					GetUserNameFromId(BOOTSTRAP_SUPERUSERID, false),
					PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("role", "none", PGC_SUSET, PGC_S_OVERRIDE);
	CommitTransactionCommand();

	SetConfigOption("search_path", "", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("default_transaction_read_only", "off", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("default_transaction_isolation", "read committed",
					PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("exit_on_error", "off", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("statement_timeout", "0", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("lock_timeout", "0", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("idle_in_transaction_session_timeout", "0",
					PGC_SUSET, PGC_S_OVERRIDE);
}
