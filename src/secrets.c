/*-------------------------------------------------------------------------
 *
 * secrets.c
 *		URLs and secrets in error texts: validation, redaction, wiping.
 *
 * Credentials reach the extension in the superuser-only settings (NATS
 * password, token, NKey and TLS files, the Feldera API key) and in URLs:
 * "nats://user:password@host:4222", "nats://token@host",
 * "http://user:password@host:8080".  Error texts reach the server log and
 * stream_status.last_error, which a monitoring role reads (and the views'
 * wait reason), so no error text may hold a secret.
 *
 * Rule for every URL a message shows (pgs_url_shown):
 *	- the user information, everything from the authority's start to its
 *	  last "@", becomes "***";
 *	- a port that is not a number makes the whole host and port "***":
 *	  in "nats://user:password" (the host forgotten) the password is what a
 *	  URL parser takes for the port;
 *	- a query or fragment becomes "?***" or "#***".
 * Scheme, host, port and path are shown as they are.  The same parts are
 * refused in URL settings and options where they cannot work
 * (pgs_url_problem), and the messages of those refusals show the value by
 * the same rule.
 *
 * Texts that come from the client libraries (cnats' last error, libcurl's
 * error buffer) may quote a URL or a part of it: cnats reports a port it
 * cannot parse as "invalid port '<it>'".  pgs_redact_text() applies the
 * rule to every URL found in such a text and replaces every occurrence of
 * a known secret: the user information, password, unparsable port and
 * query of the configured URLs, and the password, token and API key
 * settings.  Secrets shorter than PGS_MIN_SECRET_LEN bytes are not looked
 * for (they would garble every message), but they are still hidden inside
 * URLs.
 *
 * Memory: strings the extension copies a secret into are wiped before
 * they are freed (pgs_wipe_free).  Copies made by PostgreSQL's GUC code,
 * by cnats and by libcurl are freed by them without wiping; see
 * docs/reliability.md, "Secrets and error texts".
 *
 * Copyright (c) 2026, pgoutput_stream developers
 *
 * IDENTIFICATION
 *		src/secrets.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>

#include "common/base64.h"
#include "lib/stringinfo.h"
#include "nodes/pg_list.h"

#include "guc.h"
#include "secrets.h"

/* Secrets shorter than this are not searched for in texts */
#define PGS_MIN_SECRET_LEN	4

#define PGS_HIDDEN			"***"

/*
 * One URL, as pointers into its text.  Parsed as cnats parses a server
 * URL, which takes the last "@" of everything after the scheme as the end
 * of the user information: that is the most a message must hide.
 */
typedef struct UrlParts
{
	const char *start;
	const char *end;
	const char *authority;		/* after "scheme://", or start */
	const char *at;				/* last "@" after authority, or NULL */
	const char *host;			/* after at, or authority */
	const char *host_end;		/* first "/", "?" or "#" after host, or end */
	const char *port;			/* after the ":" before the port, or NULL */
	const char *query;			/* first "?" or "#" after host, or NULL */
} UrlParts;

static void
url_parse(const char *start, const char *end, UrlParts *u)
{
	const char *p;

	u->start = start;
	u->end = end;
	u->authority = start;
	for (p = start; p + 2 < end; p++)
	{
		if (p[0] == ':' && p[1] == '/' && p[2] == '/')
		{
			u->authority = p + 3;
			break;
		}
	}

	u->at = NULL;
	for (p = u->authority; p < end; p++)
	{
		if (*p == '@')
			u->at = p;
	}
	u->host = u->at ? u->at + 1 : u->authority;

	u->host_end = end;
	for (p = u->host; p < end; p++)
	{
		if (*p == '/' || *p == '?' || *p == '#')
		{
			u->host_end = p;
			break;
		}
	}
	u->query = NULL;
	for (p = u->host_end; p < end; p++)
	{
		if (*p == '?' || *p == '#')
		{
			u->query = p;
			break;
		}
	}

	/* the port: after the last ":", or after "]:" for an IPv6 address */
	u->port = NULL;
	if (u->host < u->host_end && *u->host == '[')
	{
		const char *bracket = memchr(u->host, ']', u->host_end - u->host);

		if (bracket != NULL && bracket + 1 < u->host_end && bracket[1] == ':')
			u->port = bracket + 2;
	}
	else
	{
		for (p = u->host; p < u->host_end; p++)
		{
			if (*p == ':')
				u->port = p + 1;
		}
	}
}

/* Whether the port is missing, empty or a number */
static bool
port_is_number(const UrlParts *u)
{
	const char *p;

	if (u->port == NULL)
		return true;
	for (p = u->port; p < u->host_end; p++)
	{
		if (*p < '0' || *p > '9')
			return false;
	}
	return true;
}

/*
 * Why a URL setting or stream option cannot be used, as an error detail,
 * or NULL if it can.  A NATS value is a comma-separated list of server
 * URLs ("nats://", "tls://", or host:port); a Feldera value is one base
 * URL ("http://" or "https://"), to which the API's paths and query are
 * appended.  What is refused here would fail when the worker connects, or,
 * for a query in a Feldera URL, send every request to a wrong address.
 */
const char *
pgs_url_problem(const char *value, PgsUrlKind kind)
{
	const char *p;
	const char *entry;

	if (value == NULL || value[0] == '\0')
		return gettext_noop("The URL must not be empty.");
	for (p = value; *p; p++)
	{
		if ((unsigned char) *p <= ' ')
			return gettext_noop("A URL cannot contain white space or control characters.");
	}

	entry = value;
	for (;;)
	{
		const char *end = (kind == PGS_URL_NATS) ? strchr(entry, ',') : NULL;
		UrlParts	u;

		if (end == NULL)
			end = entry + strlen(entry);
		/* cnats skips empty entries of the list */
		if (end > entry)
		{
			url_parse(entry, end, &u);
			/* cnats reads no scheme; tls:// is turned into TLS by the sink */
			if (kind == PGS_URL_NATS && u.authority != entry &&
				!(u.authority - entry == 7 && pg_strncasecmp(entry, "nats://", 7) == 0) &&
				!(u.authority - entry == 6 && pg_strncasecmp(entry, "tls://", 6) == 0))
				return gettext_noop("A NATS URL must start with nats:// or tls://, or be host:port.");
			if (u.query != NULL)
				return gettext_noop("A URL cannot have a query (\"?\") or a fragment (\"#\").");
			if (!port_is_number(&u) ||
				(u.port != NULL && u.port < u.host_end &&
				 (u.host_end - u.port > 5 || atoi(u.port) < 1 || atoi(u.port) > 65535)))
				return gettext_noop("The port of a URL must be a number from 1 to 65535.");
			if (kind == PGS_URL_FELDERA)
			{
				const char *c;
				int			ats = 0;

				if (u.authority != entry &&
					!(u.authority - entry == 7 && pg_strncasecmp(entry, "http://", 7) == 0) &&
					!(u.authority - entry == 8 && pg_strncasecmp(entry, "https://", 8) == 0))
					return gettext_noop("The URL must start with http:// or https://.");
				if (u.host == u.host_end || (u.port != NULL && u.host == u.port - 1))
					return gettext_noop("The URL must name a host.");
				for (c = u.authority; c < u.host_end; c++)
				{
					if (*c == '@')
						ats++;
				}
				if (ats > 1)
					return gettext_noop("A \"@\" in the user name or the password must be written as %40.");
			}
		}
		if (*end == '\0')
			break;
		entry = end + 1;
	}
	return NULL;
}

/* Append one URL (start to end) to buf, by the rule at the top */
static void
append_shown_url(StringInfo buf, const char *start, const char *end)
{
	UrlParts	u;

	url_parse(start, end, &u);
	appendBinaryStringInfo(buf, start, u.authority - start);
	if (u.at != NULL)
		appendStringInfoString(buf, PGS_HIDDEN "@");
	if (port_is_number(&u))
		appendBinaryStringInfo(buf, u.host, u.host_end - u.host);
	else
		appendStringInfoString(buf, PGS_HIDDEN);
	appendBinaryStringInfo(buf, u.host_end, (u.query ? u.query : end) - u.host_end);
	if (u.query != NULL)
	{
		appendStringInfoChar(buf, *u.query);
		appendStringInfoString(buf, PGS_HIDDEN);
	}
}

/*
 * A URL, or a comma-separated list of them, as messages show it (see the
 * rule at the top).  Always a new palloc'd string.
 */
char *
pgs_url_shown(const char *urls)
{
	StringInfoData buf;
	const char *entry = urls ? urls : "";

	initStringInfo(&buf);
	for (;;)
	{
		const char *end = strchr(entry, ',');

		if (end == NULL)
			end = entry + strlen(entry);
		append_shown_url(&buf, entry, end);
		if (*end == '\0')
			break;
		appendStringInfoChar(&buf, ',');
		entry = end + 1;
	}
	return buf.data;
}

static int
compare_cstrings(const ListCell *a, const ListCell *b)
{
	return strcmp((const char *) lfirst(a), (const char *) lfirst(b));
}

/*
 * The NATS servers of a URL list as "host:port", sorted, without
 * duplicates and joined by ",": what the collision checks compare to tell
 * whether two streams talk to the same server.  The scheme, the user
 * information (a credential), the path and letter case of the host are
 * dropped, and a missing port is cnats' default, 4222.  Host names are not
 * resolved: "localhost" and "127.0.0.1" count as different servers.
 */
char *
pgs_nats_server_list(const char *urls)
{
	List	   *servers = NIL;
	const char *entry = urls ? urls : "";
	StringInfoData buf;
	ListCell   *lc;
	const char *prev = NULL;

	for (;;)
	{
		const char *end = strchr(entry, ',');

		if (end == NULL)
			end = entry + strlen(entry);
		/* cnats skips empty entries of the list */
		if (end > entry)
		{
			UrlParts	u;
			const char *host_end;
			char	   *server;
			char	   *p;

			url_parse(entry, end, &u);
			host_end = u.port ? u.port - 1 : u.host_end;
			server = psprintf("%.*s:%.*s", (int) (host_end - u.host), u.host,
							  u.port ? (int) (u.host_end - u.port) : 4,
							  u.port ? u.port : "4222");
			for (p = server; *p; p++)
				*p = pg_ascii_tolower((unsigned char) *p);
			servers = lappend(servers, server);
		}
		if (*end == '\0')
			break;
		entry = end + 1;
	}

	list_sort(servers, compare_cstrings);
	initStringInfo(&buf);
	foreach(lc, servers)
	{
		const char *server = lfirst(lc);

		if (prev != NULL && strcmp(prev, server) == 0)
			continue;
		if (buf.len > 0)
			appendStringInfoChar(&buf, ',');
		appendStringInfoString(&buf, server);
		prev = server;
	}
	return buf.data;
}

/* Add start..end to the list of secrets, if long enough */
static List *
add_secret(List *secrets, const char *start, const char *end)
{
	if (end - start >= PGS_MIN_SECRET_LEN)
		secrets = lappend(secrets, pnstrdup(start, end - start));
	return secrets;
}

/* start..end with %XX escapes decoded, as libcurl decodes user information */
static char *
percent_decoded(const char *start, const char *end)
{
	StringInfoData out;
	const char *p;

	initStringInfo(&out);
	for (p = start; p < end; p++)
	{
		if (*p == '%' && end - p >= 3 && isxdigit((unsigned char) p[1]) &&
			isxdigit((unsigned char) p[2]))
		{
			char		hex[3] = {p[1], p[2], '\0'};

			appendStringInfoChar(&out, (char) strtol(hex, NULL, 16));
			p += 2;
		}
		else
			appendStringInfoChar(&out, *p);
	}
	return out.data;
}

/*
 * The user information of a URL as an HTTP client sends it: decoded, and
 * as the base64 of "user:password" in an "Authorization: Basic" header,
 * which a proxy or a server's error message may echo back.
 */
static List *
add_sent_userinfo_secrets(List *secrets, const char *start, const char *end)
{
	char	   *userinfo = percent_decoded(start, end);
	size_t		len = strlen(userinfo);
	char	   *colon = strchr(userinfo, ':');
	int			b64len = pg_b64_enc_len((int) len);
	char	   *b64 = palloc(b64len + 1);
	int			n;

	secrets = add_secret(secrets, userinfo, userinfo + len);
	if (colon != NULL)
		secrets = add_secret(secrets, colon + 1, userinfo + len);
	n = pg_b64_encode(userinfo, (int) len, b64, b64len);
	if (n > 0)
		secrets = add_secret(secrets, b64, b64 + n);
	explicit_bzero(userinfo, len);
	pfree(userinfo);
	explicit_bzero(b64, b64len + 1);
	pfree(b64);
	return secrets;
}

/* The secret parts of every URL of a list: see pgs_redact_text */
static List *
add_url_secrets(List *secrets, const char *urls)
{
	const char *entry = urls;

	if (urls == NULL)
		return secrets;
	for (;;)
	{
		const char *end = strchr(entry, ',');
		UrlParts	u;

		if (end == NULL)
			end = entry + strlen(entry);
		url_parse(entry, end, &u);
		if (u.at != NULL)
		{
			const char *colon = memchr(u.authority, ':', u.at - u.authority);

			secrets = add_secret(secrets, u.authority, u.at);
			if (colon != NULL)
				secrets = add_secret(secrets, colon + 1, u.at);
			secrets = add_sent_userinfo_secrets(secrets, u.authority, u.at);
		}
		if (!port_is_number(&u))
		{
			secrets = add_secret(secrets, u.host, u.host_end);
			secrets = add_secret(secrets, u.port, u.host_end);
		}
		if (u.query != NULL)
			secrets = add_secret(secrets, u.query + 1, end);
		if (*end == '\0')
			break;
		entry = end + 1;
	}
	return secrets;
}

/* Longest first, so that a secret is replaced before a part of it */
static int
longer_first(const ListCell *a, const ListCell *b)
{
	size_t		la = strlen((const char *) lfirst(a));
	size_t		lb = strlen((const char *) lfirst(b));

	return (la < lb) - (la > lb);
}

/* Whether c ends a URL quoted in a text */
static bool
ends_url(char c)
{
	return c == '\0' || (unsigned char) c <= ' ' || strchr("\"'`<>(),", c) != NULL;
}

/*
 * A text from a client library or an error, made safe to log and to show
 * in stream_status: every URL in it shown by the rule at the top, and
 * every secret it quotes replaced by "***".  The secrets looked for are
 * the parts of the URLs in urls (may be NULL) and of the settings
 * pgoutput_stream.nats_url and feldera_url that a URL hides (user
 * information, password, an unparsable port, a query), and the settings
 * nats_password, nats_token and feldera_api_key.  Always a new palloc'd
 * string.
 */
char *
pgs_redact_text(const char *text, const char *urls)
{
	List	   *secrets = NIL;
	ListCell   *lc;
	StringInfoData buf;
	char	   *work;
	const char *p;

	if (text == NULL)
		return pstrdup("");

	secrets = add_url_secrets(secrets, urls);
	secrets = add_url_secrets(secrets, pgs_nats_url);
	secrets = add_url_secrets(secrets, pgs_feldera_url);
	if (pgs_nats_password != NULL)
		secrets = add_secret(secrets, pgs_nats_password, pgs_nats_password + strlen(pgs_nats_password));
	if (pgs_nats_token != NULL)
		secrets = add_secret(secrets, pgs_nats_token, pgs_nats_token + strlen(pgs_nats_token));
	if (pgs_feldera_api_key != NULL)
		secrets = add_secret(secrets, pgs_feldera_api_key, pgs_feldera_api_key + strlen(pgs_feldera_api_key));
	list_sort(secrets, longer_first);

	/* every known secret */
	work = pstrdup(text);
	foreach(lc, secrets)
	{
		const char *secret = (const char *) lfirst(lc);
		size_t		len = strlen(secret);
		const char *hit;

		if (strstr(work, secret) == NULL)
			continue;
		initStringInfo(&buf);
		p = work;
		while ((hit = strstr(p, secret)) != NULL)
		{
			appendBinaryStringInfo(&buf, p, hit - p);
			appendStringInfoString(&buf, PGS_HIDDEN);
			p = hit + len;
		}
		appendStringInfoString(&buf, p);
		pfree(work);
		work = buf.data;
	}
	foreach(lc, secrets)
		pgs_wipe_free((char *) lfirst(lc));
	list_free(secrets);

	/* every URL: user information and query */
	initStringInfo(&buf);
	p = work;
	for (;;)
	{
		const char *sep = strstr(p, "://");
		const char *start;
		const char *end;
		UrlParts	u;

		if (sep == NULL)
			break;
		start = sep;
		while (start > p && (isalnum((unsigned char) start[-1]) ||
							 start[-1] == '+' || start[-1] == '-' || start[-1] == '.'))
			start--;
		for (end = sep + 3; !ends_url(*end); end++)
			;
		url_parse(start, end, &u);
		appendBinaryStringInfo(&buf, p, u.authority - p);
		if (u.at != NULL)
			appendStringInfoString(&buf, PGS_HIDDEN "@");
		appendBinaryStringInfo(&buf, u.host, (u.query ? u.query : end) - u.host);
		if (u.query != NULL)
		{
			appendStringInfoChar(&buf, *u.query);
			appendStringInfoString(&buf, PGS_HIDDEN);
		}
		p = end;
	}
	appendStringInfoString(&buf, p);
	pfree(work);
	return buf.data;
}

/*
 * Split the user information off a URL, as libcurl reads it: the
 * authority ends at the first "/", "?" or "#", and the user information
 * at its "@".  Returns false if there is none; else *userinfo is
 * "user[:password]" (still percent-encoded) and *rest the URL without it,
 * both palloc'd (the caller wipes *userinfo with pgs_wipe_free).
 */
bool
pgs_url_split_userinfo(const char *url, char **userinfo, char **rest)
{
	const char *authority = strstr(url, "://");
	const char *p;
	const char *at = NULL;
	StringInfoData buf;

	authority = authority ? authority + 3 : url;
	for (p = authority; *p && *p != '/' && *p != '?' && *p != '#'; p++)
	{
		if (*p == '@')
			at = p;
	}
	if (at == NULL)
		return false;
	*userinfo = pnstrdup(authority, at - authority);
	initStringInfo(&buf);
	appendBinaryStringInfo(&buf, url, authority - url);
	appendStringInfoString(&buf, at + 1);
	*rest = buf.data;
	return true;
}

/* Wipe a palloc'd string that held a secret, then free it */
void
pgs_wipe_free(char *secret)
{
	if (secret == NULL)
		return;
	explicit_bzero(secret, strlen(secret));
	pfree(secret);
}
