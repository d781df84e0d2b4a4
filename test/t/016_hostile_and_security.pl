
# Copyright (c) 2026, pgoutput_stream developers

# Hostile input and security, against a real nats-server and the fake
# Feldera:
#  (a) a LATIN1 database: LATIN1 table, column and text values arrive in
#      JetStream as UTF-8 JSON, byte for byte what PostgreSQL's own
#      conversion gives, with subjects escaped from the UTF-8 bytes;
#  (b) a SQL_ASCII database: bytes that are not UTF-8 become U+FFFD in
#      payloads, subject tokens escape the raw bytes;
#  (c) which role a worker runs as, and that it reads past row-level
#      security; any role can inject logical messages into every stream;
#  (d) roles without the right (a plain role; the documented monitoring
#      role) can neither manage nor peek streams, nor read
#      pgoutput_stream.streams or the secret settings (42501);
#  (e) every secret setting set to a random value while the targets refuse
#      it (NATS authorization violations, bad credential files, Feldera
#      401): no secret appears in the server log, stream_status,
#      worker_status(), pg_stat_activity or any error message.  PostgreSQL
#      itself logs the new value of a changed parameter at a reload
#      ("parameter ... changed to ..."): those lines, and only those, are
#      excluded (and their presence is asserted);
#  (f) error texts longer than stream_status can hold are cut at a
#      character boundary; the application name of a worker.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";

use Encode qw(decode FB_CROAK LEAVE_SRC);
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use PgsTestUtil;
use PgsNatsUtil;
use PgsFelderaUtil;

my $json = JSON::PP->new->utf8->canonical;

my $nats = PgsNatsUtil->new('plain')->start;
my $auth_nats = PgsNatsUtil->new('auth',
	conf => qq{authorization { user: "right_user", password: "right_password" }\n})->start;
my $fake = PgsFelderaUtil->new('f016', api_key => 'right-api-key')->start;

my $node = pgs_nats_node('main', $nats,
	conf => "pgoutput_stream.feldera_max_retry_delay = '500ms'\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION pgoutput_stream');

# Raw messages of a JetStream stream: [ { seq, subject, bytes } ] (the
# payload exactly as stored, not decoded)
my $raw_js = <<'EOF';
import { connect } from "nats";
const nc = await connect({ servers: process.env.PGS_URL, timeout: 5000 });
const jsm = await nc.jetstreamManager();
const info = await jsm.streams.info(process.env.PGS_STREAM);
for (let seq = info.state.first_seq; info.state.messages > 0 && seq <= info.state.last_seq; seq++) {
  const m = await jsm.streams.getMessage(process.env.PGS_STREAM, { seq });
  process.stdout.write(JSON.stringify({ seq, subject: m.subject,
    hex: Buffer.from(m.data).toString("hex") }) + "\n");
}
await nc.close();
EOF

sub js_raw
{
	my ($url, $stream) = @_;
	my ($out, $err) = ('', '');
	local $ENV{PGS_URL}    = $url;
	local $ENV{PGS_STREAM} = $stream;
	IPC::Run::run([ $ENV{PGS_NODE} // 'node', '--input-type=module', '-e', $raw_js ],
		'<', \undef, '>', \$out, '2>', \$err,
		init => sub { chdir(pgs_nats_dir()) or die "chdir: $!" },
		IPC::Run::timeout(60))
	  or die "reading JetStream stream $stream failed: $err";
	return [ map {
		my $m = $json->decode($_);
		+{ seq => $m->{seq}, subject => $m->{subject}, bytes => pack('H*', $m->{hex}) }
	} split /\n/, $out ];
}

# Percent-decoding of a subject token, as bytes ("%00" is the empty name)
sub unescape_bytes
{
	my ($token) = @_;
	return '' if $token eq '%00';
	(my $b = $token) =~ s/%([0-9A-F]{2})/chr(hex($1))/ge;
	return $b;
}

# The rows of a query, fields split (separators that no value contains)
sub rows
{
	my ($db, $sql, %params) = @_;
	my $out = $node->safe_psql($db, $sql, extra_params => [ '-F', "\x1f", '-R', "\x1e" ], %params);
	return map { [ split /\x1f/, $_, -1 ] } split /\x1e/, $out;
}

# ---------------------------------------------------------------------
# (a) LATIN1
# ---------------------------------------------------------------------
# The Perl strings below are UTF-8 bytes (no "use utf8"); every session
# declares client_encoding UTF8, so PostgreSQL converts them to LATIN1.
my $u8 = "SET client_encoding = 'UTF8';\n";
$node->safe_psql('postgres',
	"CREATE DATABASE lat ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0");
$node->safe_psql('lat', $u8 . q{
CREATE EXTENSION pgoutput_stream;
CREATE SCHEMA "sché";
CREATE TABLE "sché"."tëst_ß" (id int PRIMARY KEY, "çol é" text, "naïve" text);
CREATE TABLE plain_t (id int PRIMARY KEY, v text);
CREATE PUBLICATION pub FOR TABLE "sché"."tëst_ß", plain_t;
SELECT pgoutput_stream.create_stream('lat_twin', 'pub', start => false,
  options => '{"subject_prefix": "lat"}');
SELECT pgoutput_stream.create_stream('lat_nats', 'pub', targets => '{nats}',
  options => '{"subject_prefix": "lat", "nats_stream": "lat_stream"}');
});
is($node->safe_psql('lat', 'SHOW server_encoding'), 'LATIN1', 'the database is LATIN1');
ok(pgs_wait_for_status($node, 'lat', 'lat_nats', "state = 'streaming'"), 'lat_nats is streaming');

# every LATIN1 letter and sign from U+00A0 to U+00FF, and the C1 controls
my $latin1_all = join('', map { chr($_) } 0xA0 .. 0xFF);
my $c1 = join('', map { chr($_) } 0x80 .. 0x9F);
utf8::encode(my $latin1_all_u8 = $latin1_all);
utf8::encode(my $c1_u8 = $c1);
$node->safe_psql('lat', $u8 . qq{
INSERT INTO "sché"."tëst_ß" VALUES (1, 'é', 'ß');
INSERT INTO "sché"."tëst_ß" VALUES (2, '$latin1_all_u8', E'\\x01\\n\\t"\\\\$c1_u8');
UPDATE "sché"."tëst_ß" SET "naïve" = 'ÿ×÷' WHERE id = 1;
INSERT INTO plain_t VALUES (1, 'Grüße');
});
ok(pgs_wait_delivered($node, 'lat', 'lat_nats'), 'lat_nats delivered');

my $msgs = js_raw($nats->url, 'lat_stream');
my @data = grep { $_->{subject} =~ /\.(insert|update|delete)\z/ } @$msgs;
is(scalar(@data), 4, 'four data events in JetStream');

# every payload is valid UTF-8 JSON
my @bad_utf8 = grep { !eval { decode('UTF-8', $_->{bytes}, FB_CROAK | LEAVE_SRC); 1 } } @$msgs;
is(scalar(@bad_utf8), 0, 'every JetStream payload is valid UTF-8');
my @not_json = grep { !eval { $json->decode($_->{bytes}); 1 } } @$msgs;
is(scalar(@not_json), 0, "every JetStream payload is JSON") or diag(explain($msgs->[0]));

# names and values, decoded
my %want_tuple = (
	1 => { id => 1, "\x{e7}ol \x{e9}" => "\x{e9}", "na\x{ef}ve" => "\x{df}" },
	2 => { id => 2, "\x{e7}ol \x{e9}" => $latin1_all, "na\x{ef}ve" => "\x01\n\t\"\\" . $c1 });
my $first = $json->decode($data[0]{bytes});
is($first->{Insert}{schema}, "sch\x{e9}", 'the schema name in the payload');
is($first->{Insert}{table},  "t\x{eb}st_\x{df}", 'the table name in the payload');
is_deeply($first->{Insert}{new_tuple}, $want_tuple{1}, 'column names and values of row 1');
is_deeply($json->decode($data[1]{bytes})->{Insert}{new_tuple}, $want_tuple{2},
	'row 2: every LATIN1 character, C1 controls, quote, backslash, newline');
is($json->decode($data[2]{bytes})->{Update}{new_tuple}{"na\x{ef}ve"}, "\x{ff}\x{d7}\x{f7}",
	'the update');
is($json->decode($data[3]{bytes})->{Insert}{new_tuple}{v}, "Gr\x{fc}\x{df}e", 'the other table');

# bytes: UTF-8, never a LATIN1 byte
like($data[0]{bytes}, qr/"\xc3\xa7ol \xc3\xa9":"\xc3\xa9","na\xc3\xafve":"\xc3\x9f"/,
	'row 1 as UTF-8 bytes');
unlike(join('', map { $_->{bytes} } @$msgs), qr/"t\xebst_\xdf"|"\xe9"/, 'no LATIN1 bytes in any payload');

# subjects: escaped from the UTF-8 form of the names
is($data[0]{subject}, 'lat.sch%C3%A9.t%C3%ABst_%C3%9F.insert', 'subject of the LATIN1 table');
is(unescape_bytes((split /\./, $data[0]{subject})[2]), "t\xc3\xabst_\xc3\x9f",
	'the table token decodes to the UTF-8 bytes of the name');
is($data[3]{subject}, 'lat.public.plain_t.insert', 'subject of the ASCII table');

# byte for byte what PostgreSQL's LATIN1 -> UTF-8 conversion gives for the
# same events (peek of the stopped twin, read with client_encoding UTF8)
my @peek = rows('lat', $u8 . q{SELECT subject, payload FROM pgoutput_stream.peek('lat_twin', 1000)
	WHERE subject ~ '\.(insert|update|delete)$'});
is_deeply([ map { "$_->{subject} $_->{bytes}" } @data ], [ map { "$_->[0] $_->[1]" } @peek ],
	'JetStream subjects and payloads are byte for byte the UTF-8 conversion of peek()');
$node->safe_psql('lat', q{
SELECT pgoutput_stream.drop_stream('lat_nats');
SELECT pgoutput_stream.drop_stream('lat_twin');
});

# ---------------------------------------------------------------------
# (b) SQL_ASCII: invalid UTF-8 becomes U+FFFD in payloads, subject tokens
# escape the raw bytes
# ---------------------------------------------------------------------
$node->safe_psql('postgres',
	"CREATE DATABASE sqla ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0");
# (raw bytes: \xe9 alone is not UTF-8, \xc3\xa9 is)
$node->safe_psql('sqla', qq{
CREATE EXTENSION pgoutput_stream;
CREATE TABLE "caf\xe9" (id int PRIMARY KEY, "v\xff" text);
CREATE PUBLICATION pub FOR TABLE "caf\xe9";
SELECT pgoutput_stream.create_stream('sqla_nats', 'pub', targets => '{nats}',
  options => '{"subject_prefix": "sqla", "nats_stream": "sqla_stream"}');
});
ok(pgs_wait_for_status($node, 'sqla', 'sqla_nats', "state = 'streaming'"), 'sqla_nats is streaming');
$node->safe_psql('sqla', qq{INSERT INTO "caf\xe9" VALUES (1, E'a\\xff\\xfeb\xc3\xa9\\xc3')});
ok(pgs_wait_delivered($node, 'sqla', 'sqla_nats'), 'sqla_nats delivered');
$msgs = js_raw($nats->url, 'sqla_stream');
my ($ins) = grep { $_->{subject} =~ /\.insert\z/ } @$msgs;
ok($ins, 'the insert is in JetStream');
is($ins->{subject}, 'sqla.public.caf%E9.insert', 'the subject token escapes the raw byte');
ok(eval { decode('UTF-8', $ins->{bytes}, FB_CROAK | LEAVE_SRC); 1 }, 'the payload is valid UTF-8');
my $doc = $json->decode($ins->{bytes});
is($doc->{Insert}{table}, "caf\x{fffd}", 'table name: the invalid byte is U+FFFD');
is_deeply($doc->{Insert}{new_tuple}, { id => 1, "v\x{fffd}" => "a\x{fffd}\x{fffd}b\x{e9}\x{fffd}" },
	'value: each invalid byte is U+FFFD, valid UTF-8 is kept, a cut sequence is U+FFFD');
$node->safe_psql('sqla', q{SELECT pgoutput_stream.drop_stream('sqla_nats')});

# ---------------------------------------------------------------------
# (c) the worker's role; row-level security; logical messages
# ---------------------------------------------------------------------
$node->safe_psql('postgres', q{
CREATE ROLE hs_plain LOGIN;
CREATE ROLE hs_monitor LOGIN;
GRANT pg_read_all_stats TO hs_monitor;
GRANT USAGE ON SCHEMA pgoutput_stream TO hs_monitor;
GRANT SELECT ON pgoutput_stream.stream_status TO hs_monitor;
GRANT EXECUTE ON FUNCTION pgoutput_stream.worker_status() TO hs_monitor;
CREATE ROLE hs_pg_monitor LOGIN;
GRANT pg_monitor TO hs_pg_monitor;
CREATE TABLE rls_t (id int PRIMARY KEY, secret text);
ALTER TABLE rls_t ENABLE ROW LEVEL SECURITY;
ALTER TABLE rls_t FORCE ROW LEVEL SECURITY;
CREATE POLICY nobody ON rls_t USING (false);
GRANT SELECT ON rls_t TO hs_plain;
CREATE PUBLICATION rls_pub FOR TABLE rls_t;
SELECT pgoutput_stream.create_stream('hs_log', 'rls_pub');
});
ok(pgs_wait_for_status($node, 'postgres', 'hs_log', "state = 'streaming' AND pid IS NOT NULL"),
	'hs_log is streaming');
my $log_pid = pgs_status($node, 'postgres', 'hs_log')->{pid};
is( $node->safe_psql(
		'postgres', qq{
SELECT a.usesysid = 10, a.usename = (SELECT rolname FROM pg_roles WHERE oid = 10), r.rolsuper
FROM pg_stat_activity a JOIN pg_roles r ON r.oid = a.usesysid WHERE a.pid = $log_pid}),
	't|t|t',
	'the worker runs as the bootstrap superuser (pg_stat_activity.usename)');

my $offset = pgs_log_offset($node);
$node->safe_psql('postgres', q{INSERT INTO rls_t VALUES (1, 'hidden by RLS')});
is($node->safe_psql('postgres', 'SET ROLE hs_plain; SELECT count(*) FROM rls_t'), '0',
	'row-level security hides the row from a role that may SELECT the table');
ok(pgs_wait_for_log($node, $offset, qr/stream "hs_log" event postgres\.public\.rls_t\.insert: .*"hidden by RLS"/),
	'the stream delivers it anyway: decoding reads past row-level security');

# any role that can connect can write logical messages into every stream
my ($rc, $out, $err) = $node->psql('postgres',
	q{SELECT pg_logical_emit_message(true, 'forged', 'from hs_plain') IS NOT NULL},
	extra_params => [ '-U', 'hs_plain' ]);
is($rc, 0, 'a plain role may call pg_logical_emit_message()');
ok(pgs_wait_for_log($node, $offset, qr/stream "hs_log" event postgres\.messages\.forged: .*"from hs_plain"/),
	'and its message reaches the stream, whatever the publication');

# ---------------------------------------------------------------------
# (d) roles without the right
# ---------------------------------------------------------------------
my @secret_gucs = qw(nats_user nats_password nats_token nats_creds_file nats_nkey_seed_file
  nats_tls_ca_file nats_tls_cert_file nats_tls_key_file feldera_api_key);
my @hidden_gucs = (@secret_gucs, qw(nats_url nats_nkey feldera_url));
my @errors_seen;

# run $sql as $role: the SQLSTATE of its error ('' if none)
sub sqlstate_as
{
	my ($role, $sql, $db) = @_;
	my ($rc, $out, $err) = $node->psql($db // 'postgres', "\\set VERBOSITY verbose\n$sql",
		extra_params => [ '-U', $role ]);
	push @errors_seen, $err;
	return $err =~ /ERROR:  ([0-9A-Z]{5}):/ ? $1 : '';
}

my @manage = (
	q{SELECT pgoutput_stream.create_stream('x', 'rls_pub')},
	q{SELECT pgoutput_stream.alter_stream('hs_log', format => 'text')},
	q{SELECT pgoutput_stream.start_stream('hs_log')},
	q{SELECT pgoutput_stream.stop_stream('hs_log')},
	q{SELECT pgoutput_stream.drop_stream('hs_log')},
	q{SELECT * FROM pgoutput_stream.peek('hs_log', 1)},
	q{SELECT * FROM pgoutput_stream.streams},
	q{UPDATE pgoutput_stream.streams SET enabled = false},
	q{DROP EXTENSION pgoutput_stream},
	q{SELECT * FROM pg_file_settings},
	q{SELECT pg_read_file('postgresql.auto.conf')},
	q{SELECT pg_read_file('postgresql.conf')});
foreach my $role (qw(hs_plain hs_monitor))
{
	foreach my $sql (@manage)
	{
		is(sqlstate_as($role, $sql), '42501', "$role: $sql => 42501");
	}
	foreach my $guc (@hidden_gucs)
	{
		is(sqlstate_as($role, "SHOW pgoutput_stream.$guc"), '42501',
			"$role: SHOW pgoutput_stream.$guc => 42501");
		is(sqlstate_as($role, "SELECT current_setting('pgoutput_stream.$guc', true)"), '42501',
			"$role: current_setting('pgoutput_stream.$guc', true) => 42501");
	}
	is( $node->safe_psql('postgres',
			q{SELECT count(*) FROM pg_settings WHERE name ~ '^pgoutput_stream\.(nats_(url|user|password|token|creds_file|nkey|nkey_seed_file|tls_.*)|feldera_(url|api_key))$'},
			extra_params => [ '-U', $role ]),
		'0', "$role: pg_settings hides the secret settings");
}
is(sqlstate_as('hs_plain', 'SELECT * FROM pgoutput_stream.stream_status'), '42501',
	'hs_plain cannot read stream_status');
is(sqlstate_as('hs_plain', 'SELECT * FROM pgoutput_stream.worker_status()'), '42501',
	'hs_plain cannot call worker_status()');
is(sqlstate_as('hs_monitor', 'SELECT * FROM pgoutput_stream.stream_status'), '',
	'the monitoring role reads stream_status');
is(sqlstate_as('hs_monitor', 'SELECT pid, application_name, query FROM pg_stat_activity'), '',
	'and pg_stat_activity');
# members of pg_monitor (through pg_read_all_settings) can read every secret
is(sqlstate_as('hs_pg_monitor', 'SHOW pgoutput_stream.nats_password'), '',
	'a member of pg_monitor can read the secret settings: not for monitoring roles');

# ---------------------------------------------------------------------
# (e) secrets: every secret setting gets a random value the targets refuse
# ---------------------------------------------------------------------
sub rnd { return join('', map { sprintf('%02x', int(rand(256))) } 1 .. 10); }
my $dir = PostgreSQL::Test::Utils::tempdir('secrets');
# the random part of every secret: what must appear nowhere
my %random = map { $_ => rnd() } qw(nats_user nats_password nats_token nats_creds_file
  nats_nkey_seed_file nats_tls_ca_file nats_tls_cert_file nats_tls_key_file feldera_api_key
  content_creds content_seed content_ca content_cert content_key url_password);
my %secret = (
	nats_user           => "u$random{nats_user}",
	nats_password       => "p$random{nats_password}",
	nats_token          => "t$random{nats_token}",
	nats_creds_file     => "$dir/c$random{nats_creds_file}.creds",
	nats_nkey_seed_file => "$dir/s$random{nats_nkey_seed_file}.nk",
	nats_tls_ca_file    => "$dir/a$random{nats_tls_ca_file}.pem",
	nats_tls_cert_file  => "$dir/r$random{nats_tls_cert_file}.pem",
	nats_tls_key_file   => "$dir/k$random{nats_tls_key_file}.pem",
	feldera_api_key     => "f$random{feldera_api_key}");
# file contents are secrets too
append_to_file($secret{nats_creds_file},
	"-----BEGIN NATS USER JWT-----\neyJ$random{content_creds}\n------END NATS USER JWT------\n\n"
	  . "-----BEGIN USER NKEY SEED-----\nSU$random{content_creds}\n------END USER NKEY SEED------\n");
append_to_file($secret{nats_nkey_seed_file}, "SU$random{content_seed}\n");
append_to_file($secret{nats_tls_ca_file}, "-----BEGIN CERTIFICATE-----\n$random{content_ca}\n-----END CERTIFICATE-----\n");
append_to_file($secret{nats_tls_cert_file}, "-----BEGIN CERTIFICATE-----\n$random{content_cert}\n-----END CERTIFICATE-----\n");
append_to_file($secret{nats_tls_key_file}, "-----BEGIN PRIVATE KEY-----\n$random{content_key}\n-----END PRIVATE KEY-----\n");
# credentials in the URL of the GUC nats_url (superuser-only)
my $url_with_password = "nats://hs_url_user:w$random{url_password}\@127.0.0.1:" . $auth_nats->port;

# The streams whose targets refuse: NATS with authorization, Feldera with
# another API key
my $ff = pgs_feldera_spec('public.ff', key => ['id'], columns => [ [ id => 'int', 'INT', 'int' ] ]);
$node->safe_psql('postgres', pgs_feldera_ddl($ff) . q{
CREATE TABLE nn (id int PRIMARY KEY);
CREATE PUBLICATION nn_pub FOR TABLE nn;
CREATE PUBLICATION ff_pub FOR TABLE ff;
});
$fake->declare('p016', [ pgs_feldera_decl($ff) ]);
my $auth_url = $auth_nats->url;
my $fake_url = $fake->url;
$node->safe_psql('postgres', qq{
SELECT pgoutput_stream.create_stream('hs_nats', 'nn_pub', targets => '{nats}',
  options => '{"nats_url": "$auth_url", "subject_prefix": "hs", "nats_stream": "hs"}');
SELECT pgoutput_stream.create_stream('hs_guc_url', 'nn_pub', targets => '{nats}',
  options => '{"subject_prefix": "hsu", "nats_stream": "hsu"}');
});

# what was seen: every column of the status views and of pg_stat_activity,
# as the superuser and as the monitoring role
my @seen;
sub look
{
	push @seen, pgs_status_texts($node, 'hs_monitor');
}

my $conf_line = 0;
# Set pgoutput_stream.* settings (undef: back to empty) in postgresql.conf
# (not with ALTER SYSTEM: the TAP nodes log every statement), reload, and
# wait until $stream reports an error of the new settings
sub set_and_wait
{
	my ($stream, $what, %settings) = @_;
	my $t = $node->safe_psql('postgres', 'SELECT now()');
	$node->append_conf('postgresql.conf',
		join('', map { "pgoutput_stream.$_ = '" . ($settings{$_} // '') . "'\n" } sort keys %settings));
	$node->reload;
	my $ok = pgs_wait_for_status($node, 'postgres', $stream,
		"last_error_at > '$t' AND state IN ('waiting for target', 'failed', 'restarting')");
	ok($ok, "$what: $stream reports an error");
	my $st = pgs_status($node, 'postgres', $stream);
	note("$what: $stream $st->{state}: " . ($st->{last_error} // ''));
	look();
	return $st;
}

my $st = set_and_wait('hs_nats', 'user and password, API key',
	nats_user => $secret{nats_user}, nats_password => $secret{nats_password},
	feldera_api_key => $secret{feldera_api_key});
like($st->{last_error}, qr/Authorization Violation/i, 'NATS refused the user and password');

# Feldera with another API key: the first row pushed gets 401
$node->safe_psql('postgres', qq{
SELECT pgoutput_stream.create_stream('hs_feld', 'ff_pub', targets => '{feldera}',
  options => '{"feldera_url": "$fake_url", "feldera_pipeline": "p016"}');
});
$node->safe_psql('postgres', 'INSERT INTO ff VALUES (1)');
ok(pgs_wait_for_status($node, 'postgres', 'hs_feld', "state = 'failed'"), 'hs_feld failed');
$st = pgs_status($node, 'postgres', 'hs_feld');
like($st->{last_error}, qr/HTTP 401/, 'Feldera refused the API key (401)');
note("hs_feld: $st->{last_error}");
look();

$st = set_and_wait('hs_nats', 'token',
	nats_user => undef, nats_password => undef, nats_token => $secret{nats_token});
like($st->{last_error}, qr/Authorization Violation/i, 'NATS refused the token');

$st = set_and_wait('hs_nats', 'credentials file',
	nats_token => undef, nats_creds_file => $secret{nats_creds_file});
$st = set_and_wait('hs_nats', 'NKey seed file',
	nats_creds_file => undef, nats_nkey => 'UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4',
	nats_nkey_seed_file => $secret{nats_nkey_seed_file});
$st = set_and_wait('hs_nats', 'TLS files',
	nats_nkey => undef, nats_nkey_seed_file => undef,
	nats_tls_ca_file => $secret{nats_tls_ca_file}, nats_tls_cert_file => $secret{nats_tls_cert_file},
	nats_tls_key_file => $secret{nats_tls_key_file});
$st = set_and_wait('hs_nats', 'TLS client certificate',
	nats_tls_ca_file => undef, nats_tls_cert_file => $secret{nats_tls_cert_file},
	nats_tls_key_file => $secret{nats_tls_key_file});
$st = set_and_wait('hs_guc_url', 'credentials in the URL',
	nats_tls_ca_file => undef, nats_tls_cert_file => undef, nats_tls_key_file => undef,
	nats_url => $url_with_password);
like($st->{last_error}, qr/Authorization Violation/i, 'NATS refused the user and password of the URL');

# everything at once, then the roles again
set_and_wait('hs_nats', 'all secrets', %secret);
foreach my $role (qw(hs_plain hs_monitor))
{
	foreach my $guc (@secret_gucs)
	{
		is(sqlstate_as($role, "SELECT current_setting('pgoutput_stream.$guc')"), '42501',
			"$role: current_setting('pgoutput_stream.$guc') with a value => 42501");
	}
}
push @seen, join("\n", @errors_seen);

# The grep.  PostgreSQL logs the new value of every parameter a reload
# changes, secrets included: exactly those lines are left out, and they
# must be there (docs/operations.md says so).
my @log = split /\n/, slurp_file($node->logfile);
my $param_re = qr/^\S+ \S+ \S+ \[\d+\] LOG:  parameter "pgoutput_stream\.[a-z_]+" changed to "[^"]*"$/;
my @param_lines = grep { $_ =~ $param_re } @log;
ok((grep { /parameter "pgoutput_stream\.nats_password" changed to "\Q$secret{nats_password}\E"/ } @param_lines),
	'PostgreSQL logs the new value of a secret parameter at a reload');
ok((grep { /parameter "pgoutput_stream\.feldera_api_key" changed to "\Q$secret{feldera_api_key}\E"/ } @param_lines),
	'... the API key too');
my $haystack = join("\n", (grep { $_ !~ $param_re } @log), @seen);
note(scalar(@log) . ' log lines (' . scalar(@param_lines) . ' parameter changes left out), '
	  . length(join('', @seen)) . ' bytes of status, activity and error texts');

my @lines = split /\n/, $haystack;
foreach my $name (sort keys %random)
{
	my @hits = grep { /\Q$random{$name}\E/ } @lines;
	# The paths of the credential files are not secret (their contents
	# are): the NATS client names a file it cannot load, and that text
	# is the stream's last_error.  Nowhere else.
	if ($name =~ /_file\z/)
	{
		@hits = grep { !/Error loading (trusted certificates|certificate chain) '\Q$secret{$name}\E'/ } @hits;
	}
	is(scalar(@hits), 0, "secret $name appears nowhere" . ($name =~ /_file\z/ ? ' but in an error about loading it' : ''))
	  or diag(join("\n", @hits[ 0 .. ($#hits > 4 ? 4 : $#hits) ]));
}

$node->safe_psql('postgres', q{
SELECT pgoutput_stream.drop_stream('hs_log');
SELECT pgoutput_stream.drop_stream('hs_nats');
SELECT pgoutput_stream.drop_stream('hs_guc_url');
SELECT pgoutput_stream.drop_stream('hs_feld');
});
$node->append_conf('postgresql.conf',
	join('', map { "pgoutput_stream.$_ = ''\n" } sort(keys %secret), 'nats_nkey')
	  . "pgoutput_stream.nats_url = '" . $nats->url . "'\n");
$node->reload;

# ---------------------------------------------------------------------
# (f) long error texts and long stream names
# ---------------------------------------------------------------------
# an error text longer than stream_status keeps (511 bytes), full of
# two-byte characters: it is cut at a character boundary, so last_error
# and state_reason stay valid UTF-8 (convert_to() verifies)
my $long_host = "\xc3\xa9" x 300;
$node->safe_psql('postgres', qq{
SELECT pgoutput_stream.create_stream('hs_long', 'nn_pub', targets => '{nats}',
  options => '{"nats_url": "nats://$long_host:4222", "subject_prefix": "hl", "nats_stream": "hl"}');
});
ok(pgs_wait_for_status($node, 'postgres', 'hs_long', "state = 'waiting for target'"),
	'hs_long is waiting for NATS');
($rc, $out, $err) = $node->psql('postgres', q{
SELECT octet_length(convert_to(last_error, 'UTF8')), octet_length(convert_to(state_reason, 'UTF8'))
FROM pgoutput_stream.stream_status WHERE name = 'hs_long'});
is($err, '', 'last_error and state_reason are valid UTF-8');
like($out, qr/^(\d+)\|(\d+)$/, 'and both are there');
note("hs_long: $out $err");
$node->safe_psql('postgres', q{SELECT pgoutput_stream.drop_stream('hs_long')});

# the worker's application name is "pgoutput_stream <name>", for names of
# every allowed length
foreach my $len (47, 48)
{
	my $name = 'n' x $len;
	$node->safe_psql('postgres', "SELECT pgoutput_stream.create_stream('$name', 'nn_pub')");
	ok(pgs_wait_for_status($node, 'postgres', $name, "state = 'streaming' AND pid IS NOT NULL"),
		"the stream with a $len-character name is streaming");
	my $pid = pgs_status($node, 'postgres', $name)->{pid};
	my $app = $node->safe_psql('postgres', "SELECT application_name FROM pg_stat_activity WHERE pid = $pid");
	local $TODO = 'application_name holds 63 bytes: "pgoutput_stream " and a 48-character name do not fit'
	  if $len == 48;
	is($app, "pgoutput_stream $name", "application name of the worker of a $len-character stream name");
	$node->safe_psql('postgres', "SELECT pgoutput_stream.drop_stream('$name')");
}

is($node->safe_psql('postgres', "SELECT string_agg(slot_name || ' ' || database, ', ') FROM pg_replication_slots"),
	'', 'no slot is left');
$node->stop;
$nats->stop;
$auth_nats->stop;
$fake->stop;
done_testing();
