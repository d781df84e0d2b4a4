/*
 * bench/js_ceiling.c
 *		JetStream's ceiling for the bulk workload: how many messages per
 *		second cnats can publish asynchronously with message ids (and wait
 *		for every acknowledgement) on this machine, with nothing else to do.
 *
 *	usage: js_ceiling URL STREAM SUBJECT_PREFIX COUNT PAYLOAD_BYTES HEADERS [RATE]
 *
 *	The JetStream stream must exist and capture SUBJECT_PREFIX.>.  HEADERS
 *	is 0 for the message id alone; 1 to also set the eight Pg-* headers
 *	pgoutput_stream sets on a row change (values of realistic length)
 *	through cnats' natsMsgHeader_Set, which shows what the library's header
 *	table costs; 2 for the messages pgoutput_stream publishes: those eight
 *	headers, the id and the chain header (Nats-Expected-Last-Msg-Id),
 *	encoded as one block the way the extension does it (cnats'
 *	natsMsg_create, see src/nats_sink.c).  With RATE (messages per
 *	second), publishing is paced: by any moment, RATE times the seconds
 *	since the start have been published, in the small bursts a stream of
 *	commits brings (the bench's JetStream-alone load beside the small
 *	transactions).  Prints "<messages per second>
 *	<CPU microseconds of this program per message>" on stdout; the CPU
 *	time covers every thread of the program (cnats' included) from the
 *	first publish to the last acknowledgement.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>

#include <dlfcn.h>

#include <nats/nats.h>

typedef natsStatus (*CreateEncodedMsgFn) (natsMsg **msg,
										  const char *subject, int subject_len,
										  const char *reply, int reply_len,
										  const char *buf, int buf_len,
										  int header_len);

static void
die(const char *what, natsStatus s)
{
	fprintf(stderr, "js_ceiling: %s: %s\n", what, natsStatus_GetText(s));
	exit(1);
}

static double
now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * A message JetStream did not store (cnats calls this from its own thread):
 * a ceiling that counted it would be no ceiling.
 */
static void
refused(jsCtx *js, jsPubAckErr *pae, void *closure)
{
	(void) js;
	(void) closure;
	fprintf(stderr, "js_ceiling: a message was not stored: %s\n",
			pae->ErrText != NULL ? pae->ErrText : natsStatus_GetText(pae->Err));
	exit(1);
}

/* CPU time (user and system) of every thread of this process, in seconds */
static double
cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
		ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

int
main(int argc, char **argv)
{
	natsConnection *conn = NULL;
	jsCtx	   *js = NULL;
	jsOptions	jo;
	natsStatus	s;
	char	   *payload;
	char		subject[256];
	char		id[128];
	char		previd[128] = "";
	char	   *block = NULL;
	CreateEncodedMsgFn create_encoded = NULL;
	long		count;
	long		size;
	int			headers;
	long		i;
	double		rate = 0;
	double		t0;
	double		t1;
	double		cpu0;

	if (argc != 7 && argc != 8)
	{
		fprintf(stderr, "usage: js_ceiling URL STREAM SUBJECT_PREFIX COUNT PAYLOAD_BYTES HEADERS [RATE]\n");
		return 2;
	}
	if (argc == 8)
		rate = atof(argv[7]);
	count = atol(argv[4]);
	size = atol(argv[5]);
	headers = atoi(argv[6]);
	payload = malloc(size);
	memset(payload, 'x', size);
	if (headers == 2)
	{
		create_encoded = (CreateEncodedMsgFn) dlsym(RTLD_DEFAULT, "natsMsg_create");
		if (create_encoded == NULL)
		{
			fprintf(stderr, "js_ceiling: this cnats has no natsMsg_create\n");
			free(payload);
			return 1;
		}
		block = malloc(size + 1024);
	}
	snprintf(subject, sizeof(subject), "%s.public.bench.insert", argv[3]);

	if ((s = natsConnection_ConnectTo(&conn, argv[1])) != NATS_OK)
		die("connect", s);
	jsOptions_Init(&jo);
	/* the same window of unacknowledged messages the extension uses */
	jo.PublishAsync.MaxPending = 4096;
	jo.PublishAsync.ErrHandler = refused;
	if ((s = natsConnection_JetStream(&js, conn, &jo)) != NATS_OK)
		die("JetStream context", s);

	cpu0 = cpu_seconds();
	t0 = now_seconds();
	for (i = 0; i < count; i++)
	{
		natsMsg    *msg = NULL;
		jsPubOptions po;

		/* paced: wait until this message is due, in steps of 1 ms */
		while (rate > 0 && i >= rate * (now_seconds() - t0))
		{
			struct timespec step = {0, 1000000};

			nanosleep(&step, NULL);
		}
		/* ids differ between runs: a repeated id would be a cheap duplicate */
		snprintf(id, sizeof(id), "pgs_bench%d:0/%lX:%ld", headers, 0x1000000L, i);
		if (headers == 2)
		{
			int			hlen;

			hlen = snprintf(block, 1024,
							"NATS/1.0\r\nNats-Msg-Id: %s\r\n%s%s%s"
							"Pg-Lsn: 0/%lX\r\nPg-Commit-Lsn: 0/1F000000\r\nPg-Xid: 123456\r\n"
							"Pg-Commit-Time: 2026-11-26 17:10:09.568253+00\r\n"
							"Pg-Schema: public\r\nPg-Table: bench\r\nPg-Operation: insert\r\n"
							"Pg-System-Id: 7441234567890123456\r\n\r\n",
							id, previd[0] ? "Nats-Expected-Last-Msg-Id: " : "", previd,
							previd[0] ? "\r\n" : "", 0x1000000L + i * 100);
			memcpy(block + hlen, payload, size);
			snprintf(previd, sizeof(previd), "%s", id);
			if ((s = create_encoded(&msg, subject, (int) strlen(subject), NULL, 0,
									block, hlen + (int) size, hlen)) != NATS_OK)
				die("message", s);
			if ((s = js_PublishMsgAsync(js, &msg, NULL)) != NATS_OK)
				die("publish", s);
			continue;
		}
		if ((s = natsMsg_Create(&msg, subject, NULL, payload, (int) size)) != NATS_OK)
			die("message", s);
		if (headers == 1)
		{
			char		lsn[32];

			snprintf(lsn, sizeof(lsn), "0/%lX", 0x1000000L + i * 100);
			natsMsgHeader_Set(msg, "Pg-Lsn", lsn);
			natsMsgHeader_Set(msg, "Pg-Commit-Lsn", "0/1F000000");
			natsMsgHeader_Set(msg, "Pg-Xid", "123456");
			natsMsgHeader_Set(msg, "Pg-Commit-Time", "2026-11-26 17:10:09.568253+00");
			natsMsgHeader_Set(msg, "Pg-Schema", "public");
			natsMsgHeader_Set(msg, "Pg-Table", "bench");
			natsMsgHeader_Set(msg, "Pg-Operation", "insert");
			natsMsgHeader_Set(msg, "Pg-System-Id", "7441234567890123456");
		}
		jsPubOptions_Init(&po);
		po.MsgId = id;
		if ((s = js_PublishMsgAsync(js, &msg, &po)) != NATS_OK)
			die("publish", s);
	}
	{
		jsPubOptions po;

		jsPubOptions_Init(&po);
		po.MaxWait = 120000;
		if ((s = js_PublishAsyncComplete(js, &po)) != NATS_OK)
			die("waiting for acknowledgements", s);
	}
	t1 = now_seconds();
	printf("%.0f %.2f\n", count / (t1 - t0), (cpu_seconds() - cpu0) * 1e6 / count);

	jsCtx_Destroy(js);
	natsConnection_Destroy(conn);
	nats_Close();
	free(payload);
	free(block);
	return 0;
}
