/*-------------------------------------------------------------------------
 *
 * guc.h
 *		Configuration parameters of pgoutput_stream.
 *
 * Copyright (c) 2026, pgoutput_stream developers
 *
 * IDENTIFICATION
 *		src/guc.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGS_GUC_H
#define PGS_GUC_H

extern int	pgs_max_streams;
extern int	pgs_wakeup_interval;
extern int	pgs_batch_delay;
extern int	pgs_restart_delay;
extern int	pgs_slot_save_interval;
extern int	pgs_retained_wal_warning;
extern int	pgs_test_heartbeat_interval;

/* NATS connection (defaults for every stream with target nats) */
extern char *pgs_nats_url;
extern char *pgs_nats_user;
extern char *pgs_nats_password;
extern char *pgs_nats_token;
extern char *pgs_nats_creds_file;
extern char *pgs_nats_nkey_seed_file;
extern char *pgs_nats_nkey;
extern char *pgs_nats_connection_name;
extern char *pgs_nats_tls_ca_file;
extern char *pgs_nats_tls_cert_file;
extern char *pgs_nats_tls_key_file;
extern int	pgs_nats_connect_timeout;
extern int	pgs_nats_ack_timeout;
extern int	pgs_nats_max_pending;
extern int	pgs_nats_max_retry_delay;
extern bool pgs_nats_encode_headers;

/* Feldera */
extern char *pgs_feldera_url;
extern char *pgs_feldera_api_key;
extern int	pgs_feldera_connect_timeout;
extern int	pgs_feldera_request_timeout;
extern int	pgs_feldera_max_retry_delay;

extern void pgs_guc_init(void);
extern void pgs_guc_override_database_settings(void);

#endif							/* PGS_GUC_H */
