/*-------------------------------------------------------------------------
 *
 * worker.h
 *		Background worker processes: launcher, database scanner, stream
 *		worker, and their registration.
 *
 * Copyright (c) 2026, pgoutput_stream developers
 *
 * IDENTIFICATION
 *		src/worker.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGS_WORKER_H
#define PGS_WORKER_H

#include "postmaster/bgworker.h"

/* What a stream worker is told at registration, in bgw_extra */
typedef struct PgsWorkerArgs
{
	Oid			dboid;
	TransactionId wait_xid;		/* transaction that started the stream, to
								 * wait for; Invalid if none */
} PgsWorkerArgs;

StaticAssertDecl(sizeof(PgsWorkerArgs) <= BGW_EXTRALEN,
				 "PgsWorkerArgs must fit in bgw_extra");

extern void pgs_launcher_register(void);
extern bool pgs_worker_register(Oid dboid, int32 stream_id, const char *name,
								TransactionId wait_xid);

extern void pgs_worker_report_waiting(const char *reason);
extern void pgs_worker_fail(const char *message, const char *hint) pg_attribute_noreturn();
extern void pgs_worker_report_streaming(void);
extern bool pgs_worker_stop_requested(void);
extern void pgs_worker_checkpoint(void);
extern void pgs_worker_sleep(long ms);
extern void pgs_worker_skip_exit_handlers(void);

extern PGDLLEXPORT void pgoutput_stream_launcher_main(Datum main_arg);
extern PGDLLEXPORT void pgoutput_stream_scanner_main(Datum main_arg);
extern PGDLLEXPORT void pgoutput_stream_worker_main(Datum main_arg);

#endif							/* PGS_WORKER_H */
