/*-------------------------------------------------------------------------
 *
 * secrets.h
 *		URLs and secrets in error texts: validation, redaction, wiping.
 *
 * Copyright (c) 2026, pgoutput_stream developers
 *
 * IDENTIFICATION
 *		src/secrets.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGS_SECRETS_H
#define PGS_SECRETS_H

/* What a URL setting or option names */
typedef enum PgsUrlKind
{
	PGS_URL_NATS,				/* a comma-separated list of NATS servers */
	PGS_URL_FELDERA				/* the base URL of the Feldera API */
} PgsUrlKind;

extern const char *pgs_url_problem(const char *value, PgsUrlKind kind);
extern char *pgs_url_shown(const char *urls);
extern char *pgs_redact_text(const char *text, const char *urls);
extern bool pgs_url_split_userinfo(const char *url, char **userinfo,
								   char **rest);
extern char *pgs_nats_server_list(const char *urls);
extern void pgs_wipe_free(char *secret);

#endif							/* PGS_SECRETS_H */
