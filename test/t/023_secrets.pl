
# Copyright (c) 2026, pgoutput_stream developers

# Secrets and row values in error texts (issue 16, point 6).  The
# monitoring role reads stream_status.last_error and worker_status(); the
# secret settings are superuser-only and the role may not read the tables.
#  (a) URLs with credentials, in the stream options nats_url and
#      feldera_url and in the settings pgoutput_stream.nats_url and
#      feldera_url, that are malformed (refused when set) or that the
#      server refuses (when the worker connects): the error message, its
#      detail, the server log, stream_status and worker_status() show the
#      URL with its user information, a port that is not a number, or its
#      query as "***", never the password or token;
#  (b) Feldera answers 400 ParseErrors and echoes the rejected row (the
#      parse error quotes the value, "Invalid fragment" the whole row):
#      last_error keeps Feldera's error code, its summary and the names of
#      the fields, never a value; the server log has the whole answer in a
#      DETAIL.  The same for a value Feldera cannot represent;
#  (c) plaintext copies, read in core files taken with gcore (skipped
#      without gdb): the user information of a Feldera URL is not copied
#      into every request's URL; a reload that changes a secret replaces
#      the worker that held the old one (the copies PostgreSQL's GUC code
#      leaves in the postmaster and the new worker are counted, not
#      asserted: not the extension's memory); reloads that change nothing
#      leave no more copies of the NATS password in the worker (it keeps a
#      digest of the connection settings, not a copy).
#
# Secrets reach the server only through files read with pg_read_file() or
# through postgresql.conf: the TAP nodes log every statement
# (log_statement = all), and statement texts are PostgreSQL's to log.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";

use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PgsTestUtil;
use PgsNatsUtil;
use PgsFelderaUtil;

my $json = JSON::PP->new->utf8->canonical;

my $nats = PgsNatsUtil->new('plain23')->start;
my $auth_nats = PgsNatsUtil->new('auth23',
	conf => qq{authorization { user: "right_user", password: "right_password" }\n})->start;
my $fake = PgsFelderaUtil->new('f023', api_key => 'right-key-023')->start;
my $closed = PostgreSQL::Test::Cluster::get_free_port();

my $node = pgs_nats_node('main', $nats,
	conf => "pgoutput_stream.feldera_max_retry_delay = '500ms'\n"
	  . "shared_buffers = '16MB'\n"
	  . "pgoutput_stream.feldera_api_key = 'right-key-023'\n"
	  . "pgoutput_stream.feldera_url = '" . $fake->url . "'\n");
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION pgoutput_stream;
CREATE ROLE mon LOGIN;
GRANT pg_read_all_stats TO mon;
GRANT USAGE ON SCHEMA pgoutput_stream TO mon;
GRANT SELECT ON pgoutput_stream.stream_status TO mon;
GRANT EXECUTE ON FUNCTION pgoutput_stream.worker_status() TO mon;
CREATE TABLE nn (id int PRIMARY KEY);
CREATE PUBLICATION nn_pub FOR TABLE nn;
});

# the random part of every secret: what must appear nowhere
sub rnd { return join('', map { sprintf('%02x', int(rand(256))) } 1 .. 10); }
my %pw = map { $_ => 'S' . rnd() } qw(a1 a2 a3 a4 a5 a6 a7 a8 a9 a10 a11 a12 c);

my $tmp = PostgreSQL::Test::Utils::tempdir('opts');
my $nfile = 0;

# The options as an SQL expression that reads them from a file, so that no
# statement text holds a secret
sub opts_sql
{
	my ($opts) = @_;
	my $file = "$tmp/o" . ++$nfile . '.json';
	append_to_file($file, $json->encode($opts));
	chmod(0644, $file);
	return "pg_read_file('$file')::jsonb";
}

# every text a role could see: errors, status rows, the log (below)
my @texts;

# Run $sql; returns (SQLSTATE or '', stderr).  Errors come with DETAIL and
# HINT (VERBOSITY verbose); stderr is kept for the grep.
sub try_sql
{
	my ($sql, %params) = @_;
	my ($rc, $out, $err) = $node->psql('postgres', "\\set VERBOSITY verbose\n$sql", %params);
	push @texts, $err;
	return ($err =~ /ERROR:  ([0-9A-Z]{5}):/ ? $1 : '', $err);
}

# stream_status, worker_status() and pg_stat_activity, as the superuser and
# as the monitoring role
sub look
{
	push @texts, pgs_status_texts($node, 'mon');
}

# create_stream with options read from a file: (SQLSTATE or '', stderr)
sub create
{
	my ($name, $targets, $opts, $pub) = @_;
	return try_sql("SELECT pgoutput_stream.create_stream('$name', '" . ($pub // 'nn_pub')
		  . "', targets => '{$targets}', options => " . opts_sql($opts) . ')');
}

# A stream with a valid URL reports an error of its target: wait for it
sub wait_error
{
	my ($name, $re) = @_;
	ok(pgs_wait_for_status($node, 'postgres', $name, 'last_error IS NOT NULL'),
		"$name reports an error");
	my $st = pgs_status($node, 'postgres', $name);
	note("$name $st->{state}: " . ($st->{last_error} // ''));
	like($st->{last_error}, $re, "$name: last_error tells why") if $re;
	look();
	return $st;
}

# ---------------------------------------------------------------------
# (a) URLs with credentials
# ---------------------------------------------------------------------
my $offset = pgs_log_offset($node);
my ($state, $err);

# malformed: white space
($state, $err) = create('a1', 'nats',
	{ nats_url => "nats://a1user:$pw{a1}\@ho st:4222", subject_prefix => 'a1', nats_stream => 'a1' });
is($state, '22023', 'nats_url with white space: refused');
like($err, qr/invalid value for stream option "nats_url": "nats:\/\/\*\*\*\@ho st:4222"/,
	'the message shows the URL with *** for its user information');
unlike($err, qr/\Q$pw{a1}\E|a1user/, 'neither the password nor the user name is in the message');

# malformed: "user:password" without a host: the password is the port
($state, $err) = create('a2', 'nats',
	{ nats_url => "nats://a2user:$pw{a2}", subject_prefix => 'a2', nats_stream => 'a2' });
is($state, '22023', 'nats_url whose port is not a number: refused when set');
like($err, qr/"nats:\/\/\*\*\*"/, 'the message shows it as nats://***');
like($err, qr/DETAIL:  The port of a URL must be a number from 1 to 65535\./, 'the detail says why');
if ($state eq '')
{
	# the unfixed code accepts it; the worker then fails to connect
	wait_error('a2');
	$node->safe_psql('postgres', q{SELECT pgoutput_stream.drop_stream('a2')});
}

# the same in the second entry of a list
($state, $err) = create('a2b', 'nats',
	{ nats_url => $nats->url . ",nats://a2buser:$pw{a2}", subject_prefix => 'a2b', nats_stream => 'a2b' });
is($state, '22023', 'nats_url list with a bad second entry: refused');
like($err, qr/"nats:\/\/127\.0\.0\.1:\d+,nats:\/\/\*\*\*"/, 'the message shows the list, redacted');
if ($state eq '')
{
	$node->safe_psql('postgres', q{SELECT pgoutput_stream.drop_stream('a2b')});
}

# tls:// asks for TLS.  cnats itself ignores the scheme, so such a URL used
# to connect in plain text, credentials included; against a server without
# TLS the worker now refuses to connect.  Schemes cnats does not speak are
# refused when set.
my $tls_pw = 'T' . rnd();
(my $tls_url = $nats->url) =~ s{^nats://}{TLS://tlsuser:$tls_pw\@};
($state, $err) = create('a3', 'nats',
	{ nats_url => $tls_url, subject_prefix => 'a3', nats_stream => 'a3' });
is($state, '', 'a3 (a TLS:// URL of a server without TLS) is created');
my $st_a3 = wait_error('a3', qr/secure|TLS|SSL/i);
isnt($st_a3->{state}, 'streaming', 'a3 does not stream over a plain connection');
unlike($st_a3->{last_error}, qr/\Q$tls_pw\E|tlsuser/, 'its last_error shows no credentials');
$node->safe_psql('postgres', q{SELECT pgoutput_stream.drop_stream('a3')});
($state, $err) = create('a3b', 'nats',
	{ nats_url => "ws://wsuser:$tls_pw\@127.0.0.1:4222", subject_prefix => 'a3b', nats_stream => 'a3b' });
is($state, '22023', 'a ws:// nats_url: refused');
like($err, qr/DETAIL:  A NATS URL must start with nats:\/\/ or tls:\/\/, or be host:port\./,
	'the detail names the schemes');
unlike($err, qr/\Q$tls_pw\E|wsuser/, 'the message shows no credentials');
$node->safe_psql('postgres', q{SELECT pgoutput_stream.drop_stream('a3b')}) if $state eq '';

# malformed Feldera URLs: white space, no host, a query
($state, $err) = create('a3', 'feldera',
	{ feldera_url => "http://a3user:$pw{a3}\@127.0.0.1:$closed x", feldera_pipeline => 'p' });
is($state, '22023', 'feldera_url with white space: refused');
like($err, qr/"http:\/\/\*\*\*\@\*\*\*"/,
	'the message shows it as http://***@*** (the port is not a number either)');

($state, $err) = create('a4', 'feldera',
	{ feldera_url => "http://a4user:$pw{a4}", feldera_pipeline => 'p' });
is($state, '22023', 'feldera_url whose port is not a number: refused');
like($err, qr/"http:\/\/\*\*\*"/, 'the message shows it as http://***');
if ($state eq '')
{
	$node->safe_psql('postgres', q{SELECT pgoutput_stream.drop_stream('a4')});
}

($state, $err) = create('a5', 'feldera',
	{ feldera_url => "http://127.0.0.1:$closed/?token=$pw{a5}", feldera_pipeline => 'p' });
is($state, '22023', 'feldera_url with a query: refused');
like($err, qr/"http:\/\/127\.0\.0\.1:$closed\/\?\*\*\*"/, 'the message shows the query as ?***');
like($err, qr/DETAIL:  .*query/, 'the detail says why');
if ($state eq '')
{
	$node->safe_psql('postgres', q{SELECT pgoutput_stream.drop_stream('a5')});
}

# well-formed, refused by the server: wrong user and password in the URL
($state, $err) = create('a6', 'nats',
	{ nats_url => "nats://a6user:$pw{a6}\@127.0.0.1:" . $auth_nats->port, subject_prefix => 'a6', nats_stream => 'a6' });
is($state, '', 'a6 (wrong credentials in nats_url) is created');
my $st = wait_error('a6', qr/Authorization Violation/i);
like($st->{last_error}, qr/nats:\/\/\*\*\*\@127\.0\.0\.1:\d+/, 'last_error shows the URL with ***');

# well-formed, nothing listens: a token as user information
($state, $err) = create('a7', 'nats',
	{ nats_url => "nats://$pw{a7}\@127.0.0.1:$closed", subject_prefix => 'a7', nats_stream => 'a7' });
is($state, '', 'a7 (token in nats_url, closed port) is created');
$st = wait_error('a7', qr/could not connect to NATS at nats:\/\/\*\*\*\@127\.0\.0\.1:$closed/);

# Feldera, nothing listens
$node->safe_psql('postgres', q{
CREATE TABLE fa (id int PRIMARY KEY);
CREATE PUBLICATION fa_pub FOR TABLE fa;
});
($state, $err) = create('a8', 'feldera',
	{ feldera_url => "http://a8user:$pw{a8}\@127.0.0.1:$closed", feldera_pipeline => 'p023a' }, 'fa_pub');
is($state, '', 'a8 (credentials in feldera_url, closed port) is created');
ok(pgs_wait_for_status($node, 'postgres', 'a8', "state = 'streaming'"), 'a8 is streaming');
$node->safe_psql('postgres', 'INSERT INTO fa VALUES (1)');
$st = wait_error('a8', qr/could not push 1 row\S* to Feldera table "public_fa": .*\b$closed\b/);
foreach my $s (qw(a6 a7 a8))
{
	$node->safe_psql('postgres', "SELECT pgoutput_stream.drop_stream('$s')");
}

# The settings.  A stream that uses pgoutput_stream.nats_url, then the
# setting gets a malformed URL with credentials: refused (PostgreSQL keeps
# the old value), the stream goes on.
$node->safe_psql('postgres', q{
SELECT pgoutput_stream.create_stream('g_nats', 'nn_pub', targets => '{nats}',
  options => '{"subject_prefix": "gn", "nats_stream": "gn"}');
});
ok(pgs_wait_for_status($node, 'postgres', 'g_nats', "state = 'streaming'"), 'g_nats is streaming');

# Set pgoutput_stream.$guc in postgresql.conf and reload; wait until the
# server refused it or (unfixed code) g_nats reports an error
sub set_guc
{
	my ($guc, $value) = @_;
	my $t = $node->safe_psql('postgres', 'SELECT clock_timestamp()');
	my $log_at = pgs_log_offset($node);
	$node->append_conf('postgresql.conf', "pgoutput_stream.$guc = '$value'\n");
	$node->reload;
	my $refused = 0;
	pgs_wait_until(
		sub {
			$refused = pgs_count_log_lines($node, $log_at,
				qr/invalid value for parameter "pgoutput_stream\.\Q$guc\E"/);
			return 1 if $refused;
			return $node->safe_psql('postgres',
				"SELECT count(*) FROM pgoutput_stream.stream_status WHERE name = 'g_nats' AND last_error_at > '$t'"
			) > 0;
		},
		"pgoutput_stream.$guc refused, or an error of g_nats", 30);
	look();
	return ($refused, $log_at);
}

my ($refused, $log_at) = set_guc('nats_url', "nats://a9user:$pw{a9}");
ok($refused, 'pgoutput_stream.nats_url whose port is not a number: refused at the reload');
ok(pgs_count_log_lines($node, $log_at,
		qr/invalid value for parameter "pgoutput_stream\.nats_url": "nats:\/\/\*\*\*"/),
	'the log shows the value as nats://***');
is($node->safe_psql('postgres', 'SHOW pgoutput_stream.nats_url'), $nats->url,
	'the setting keeps its previous value');

($refused, $log_at) = set_guc('nats_url', "nats://a10user:$pw{a10}\@127.0.0.1:$closed/?x=1 2");
ok($refused, 'pgoutput_stream.nats_url with white space: refused at the reload');
ok(pgs_count_log_lines($node, $log_at,
		qr/invalid value for parameter "pgoutput_stream\.nats_url": "nats:\/\/\*\*\*\@127\.0\.0\.1:$closed\/\?\*\*\*"/),
	'the log shows the user information and the query as ***');

($refused, $log_at) = set_guc('feldera_url', "http://a11user:$pw{a11}\@127.0.0.1:x");
ok($refused, 'pgoutput_stream.feldera_url whose port is not a number: refused at the reload');
ok(pgs_count_log_lines($node, $log_at,
		qr/invalid value for parameter "pgoutput_stream\.feldera_url": "http:\/\/\*\*\*\@\*\*\*"/),
	'the log shows it as http://***@***');

# back to good values (the unfixed code took the bad ones)
$node->append_conf('postgresql.conf',
	"pgoutput_stream.nats_url = '" . $nats->url . "'\npgoutput_stream.feldera_url = '" . $fake->url . "'\n");
$node->reload;
ok(pgs_wait_for_status($node, 'postgres', 'g_nats', "state = 'streaming' AND pid IS NOT NULL"),
	'g_nats is streaming');

# ALTER SYSTEM runs the same check; its statement is logged by PostgreSQL
# (log_statement = all here): those lines are left out of the grep below
($state, $err) = try_sql("ALTER SYSTEM SET pgoutput_stream.nats_url = 'nats://a12user:$pw{a12}'");
is($state, '22023', 'ALTER SYSTEM SET pgoutput_stream.nats_url to a malformed URL: refused');
like($err, qr/invalid value for parameter "pgoutput_stream\.nats_url": "nats:\/\/\*\*\*"/,
	'the message shows the value as nats://***');
$node->safe_psql('postgres', 'ALTER SYSTEM RESET pgoutput_stream.nats_url');

# The grep: no secret in any text seen, nor in the log.  Left out: the
# lines where PostgreSQL logs a statement that held one (ALTER SYSTEM
# above) and "parameter ... changed to" lines (the unfixed code accepts
# the settings).
my @log = split /\n/, slurp_file($node->logfile);
my $stmt_re = qr/(statement: |STATEMENT:  )ALTER SYSTEM SET pgoutput_stream\.nats_url/;
my $param_re = qr/LOG:  parameter "pgoutput_stream\.[a-z_]+" changed to "[^"]*"$/;
ok((grep { $_ =~ $stmt_re && /\Q$pw{a12}\E/ } @log), 'PostgreSQL logs the ALTER SYSTEM statement as it is');
my @lines = ((grep { $_ !~ $stmt_re && $_ !~ $param_re } @log), map { split /\n/ } @texts);
foreach my $name (sort grep { $_ ne 'c' } keys %pw)
{
	my @hits = grep { /\Q$pw{$name}\E/ } @lines;
	is(scalar(@hits), 0, "secret of case $name appears nowhere")
	  or diag(join("\n", @hits[ 0 .. ($#hits > 4 ? 4 : $#hits) ]));
}
my @user_hits = grep { /a\d+user/ } @lines;
is(scalar(@user_hits), 0, 'no user name of a URL appears either')
  or diag(join("\n", @user_hits[ 0 .. ($#user_hits > 4 ? 4 : $#user_hits) ]));
@texts = ();

# ---------------------------------------------------------------------
# (b) row values: Feldera echoes the rejected rows in its 400 answer
# ---------------------------------------------------------------------
my $row_value = 'ROW' . rnd();
my $fb = pgs_feldera_spec('public.fb', key => ['id'],
	columns => [ [ id => 'int', 'INT', 'int' ], [ v => 'text', 'VARCHAR', 'text' ], [ w => 'int', 'INT', 'int' ] ]);
$node->safe_psql('postgres', pgs_feldera_ddl($fb) . 'CREATE PUBLICATION fb_pub FOR TABLE fb;');
# Feldera's v is an INT: a text value there is a parse error that quotes it
$fake->declare('p023b', [ pgs_feldera_decl($fb, columns => { v => { type => 'INT' } }) ]);
$node->safe_psql('postgres', q{
SELECT pgoutput_stream.create_stream('fb', 'fb_pub', targets => '{feldera}',
  options => '{"feldera_pipeline": "p023b"}');
});
ok(pgs_wait_for_status($node, 'postgres', 'fb', "state = 'streaming'"), 'fb is streaming');
$offset = pgs_log_offset($node);
# (the value from a file too: the statement is logged)
my $value_file = "$tmp/value.txt";
append_to_file($value_file, $row_value);
chmod(0644, $value_file);
$node->safe_psql('postgres', "INSERT INTO fb VALUES (1, pg_read_file('$value_file'), 7)");
ok(pgs_wait_for_status($node, 'postgres', 'fb', "state = 'failed'"), 'Feldera refuses the row: fb failed');
my $entries = $fake->request_log;
my ($answer) = grep { ($_->{error_code} // '') eq 'ParseErrors' } @$entries;
ok($answer, 'the fake answered 400 ParseErrors');
$st = pgs_status($node, 'postgres', 'fb');
note("fb: $st->{last_error}");
like($st->{last_error},
	qr/^could not push 1 row\S* to Feldera table "public_fb": HTTP 400 ParseErrors: Errors parsing input data \(1 errors\)/,
	'last_error keeps the HTTP status, the error code and Feldera\'s summary');
like($st->{last_error}, qr/field "v"/, 'and names the field');
unlike($st->{last_error}, qr/\Q$row_value\E|Invalid fragment|"w":7/, 'but no value of the row');
look();
my @status_hits = grep { /\Q$row_value\E/ } @texts;
is(scalar(@status_hits), 0, 'no value in stream_status, worker_status() or pg_stat_activity');

# the server log has Feldera's whole answer, in the DETAIL of a LOG line
# (superusers read the log): one record, which starts with DETAIL
my $logtext = slurp_file($node->logfile, $offset);
my @records = split /\n(?!\t)/, $logtext;
my @with_value = grep { /\Q$row_value\E/ } @records;
ok(scalar(@with_value) >= 1, 'the server log has the rejected value');
my @not_detail = grep { !/^[^\n]*\] (?:\S+ )?DETAIL:  / } @with_value;
is(scalar(@not_detail), 0, 'only in a DETAIL') or diag(join("\n", @not_detail));
like(join("\n", @with_value), qr/Invalid fragment/, 'with Feldera\'s Invalid fragment');

# A value Feldera cannot represent (format_feldera.c): the stream fails
# before anything is sent
$node->safe_psql('postgres', q{
CREATE TABLE fd (id int PRIMARY KEY, d date);
CREATE PUBLICATION fd_pub FOR TABLE fd;
});
$fake->declare('p023d', [ { name => 'public_fd', columns => [ { name => 'id', type => 'INT', nullable => JSON::PP::false },
	{ name => 'd', type => 'DATE', nullable => JSON::PP::true } ], primary_key => ['id'] } ]);
$node->safe_psql('postgres', q{
SELECT pgoutput_stream.create_stream('fd', 'fd_pub', targets => '{feldera}',
  options => '{"feldera_pipeline": "p023d"}');
});
ok(pgs_wait_for_status($node, 'postgres', 'fd', "state = 'streaming'"), 'fd is streaming');
$node->safe_psql('postgres', q{INSERT INTO fd VALUES (1, '0044-03-15 BC')});
ok(pgs_wait_for_status($node, 'postgres', 'fd', 'last_error IS NOT NULL'), 'fd reports an error');
$st = pgs_status($node, 'postgres', 'fd');
note("fd: $st->{last_error}");
like($st->{last_error}, qr/column "d" of table "public\.fd" cannot be represented in Feldera/,
	'last_error names the column');
unlike($st->{last_error}, qr/0044-03-15/, 'but not the value');
foreach my $s (qw(fb fd))
{
	$node->safe_psql('postgres', "SELECT pgoutput_stream.drop_stream('$s')");
}

# ---------------------------------------------------------------------
# (c) plaintext copies in the worker's memory
# ---------------------------------------------------------------------
SKIP:
{
	my $gcore = `command -v gcore 2>/dev/null`;
	chomp $gcore;
	skip 'gcore (gdb) is not installed', 11 unless $gcore;

	# The core of a process; returns its contents
	my $core_dir = PostgreSQL::Test::Utils::tempdir('cores');
	my $core = sub {
		my ($pid) = @_;
		my ($out, $err) = ('', '');
		IPC::Run::run([ $gcore, '-o', "$core_dir/core", $pid ], '<', \undef, '>', \$out, '2>', \$err,
			IPC::Run::timeout(120));
		my $file = "$core_dir/core.$pid";
		return undef unless -s $file;
		my $data = slurp_file($file);
		unlink $file;
		return $data;
	};
	my $count = sub {
		my ($data, $needle) = @_;
		my ($n, $at) = (0, 0);
		while (($at = index($data, $needle, $at)) >= 0) { $n++; $at++; }
		return $n;
	};

	# A Feldera URL with user information, and several transactions
	my $fc = pgs_feldera_spec('public.fc', key => ['id'], columns => [ [ id => 'int', 'INT', 'int' ] ]);
	$node->safe_psql('postgres', pgs_feldera_ddl($fc) . 'CREATE PUBLICATION fc_pub FOR TABLE fc;');
	$fake->declare('p023c', [ pgs_feldera_decl($fc) ]);
	my $hostport = '127.0.0.1:' . $fake->port;
	($state, $err) = create('fc', 'feldera',
		{ feldera_url => "http://c_user:$pw{c}\@$hostport", feldera_pipeline => 'p023c' }, 'fc_pub');
	is($state, '', 'fc (credentials in feldera_url) is created');
	ok(pgs_wait_for_status($node, 'postgres', 'fc', "state = 'streaming' AND pid IS NOT NULL"), 'fc is streaming');
	$node->safe_psql('postgres', "INSERT INTO fc VALUES ($_)") foreach 1 .. 20;
	ok(pgs_feldera_wait_equal($node, 'postgres', $fake, 'p023c', [$fc]), 'fc delivered its rows');

	my $pid = pgs_status($node, 'postgres', 'fc')->{pid};
	my $data = $core->($pid);
	ok(defined $data, "gcore of the worker $pid");
	$data //= '';
	# the option itself (in the stream's row and the configuration) holds
	# the password; what must not be is a request URL with it
	my $request_url = "c_user:$pw{c}\@$hostport/v0/pipelines/p023c/ingress";
	is($count->($data, $request_url), 0, 'no request URL with the credentials in the worker\'s memory');
	note('copies of the password in the worker\'s memory: ' . $count->($data, $pw{c}));
	undef $data;

	# A reload that changes a secret: the worker that held the old API key
	# exits and a new one starts.  The postmaster's GUC machinery frees the
	# old value without wiping it, and every process forked from it
	# afterwards inherits that memory: counted, not asserted.
	my $old_key = 'K' . rnd();
	$node->append_conf('postgresql.conf', "pgoutput_stream.feldera_api_key = '$old_key'\n");
	$node->reload;
	ok( pgs_wait_until(
			sub {
				my $p = pgs_status($node, 'postgres', 'fc')->{pid};
				return defined $p && $p ne $pid;
			},
			'a new worker of fc'),
		'the reload replaced the worker');
	my $pid2 = pgs_status($node, 'postgres', 'fc')->{pid};
	$node->append_conf('postgresql.conf', "pgoutput_stream.feldera_api_key = 'right-key-023'\n");
	$node->reload;
	ok( pgs_wait_until(
			sub {
				my $p = pgs_status($node, 'postgres', 'fc')->{pid};
				return defined $p && $p ne $pid2 && !kill(0, $pid2);
			},
			'a new worker of fc, the previous one gone'),
		'a second reload replaced that worker too');
	my $pid3 = pgs_status($node, 'postgres', 'fc')->{pid};
	$data = $core->($pid3) // '';
	my $in_worker = $count->($data, $old_key);
	undef $data;
	my ($pm_pid) = split /\n/, slurp_file($node->data_dir . '/postmaster.pid');
	$data = $core->($pm_pid) // '';
	note("copies of the previous API key: $in_worker in the new worker $pid3, "
		  . $count->($data, $old_key) . ' in the postmaster');
	undef $data;
	$node->safe_psql('postgres', q{SELECT pgoutput_stream.drop_stream('fc')});

	# Reloads that change nothing a stream uses must not leave copies of
	# the secrets behind in its worker: a NATS stream with a password, 20
	# reloads, and the copies of the password counted before and after
	my $cpw = 'C' . rnd();
	my $cnats = PgsNatsUtil->new('auth23c',
		conf => qq{authorization { user: "cu", password: "$cpw" }\n})->start;
	$node->append_conf('postgresql.conf',
		"pgoutput_stream.nats_user = 'cu'\npgoutput_stream.nats_password = '$cpw'\n");
	$node->reload;
	($state, $err) = create('cr', 'nats',
		{ nats_url => $cnats->url, subject_prefix => 'cr', nats_stream => 'cr' });
	is($state, '', 'cr (NATS with a password) is created');
	ok(pgs_wait_for_status($node, 'postgres', 'cr', "state = 'streaming' AND pid IS NOT NULL"),
		'cr is streaming');
	my $cr_pid = pgs_status($node, 'postgres', 'cr')->{pid};
	my $reloads = sub {
		# After each reload, a logical message is written and confirmed by
		# the worker, so that its loop ran after the reload was signalled;
		# a signal that reaches it late may still fold into the next one,
		# which makes the count below a bound, not exact
		foreach (1 .. $_[0])
		{
			$node->reload;
			my $lsn = $node->safe_psql('postgres',
				q{SELECT pg_logical_emit_message(true, 'reload', 'x')});
			ok(pgs_wait_for_status($node, 'postgres', 'cr', "confirmed_lsn >= '$lsn'"),
				'cr confirms a message written after the reload');
		}
	};
	$reloads->(1);
	my $before = $count->($core->($cr_pid) // '', $cpw);
	$reloads->(20);
	my $after = $count->($core->($cr_pid) // '', $cpw);
	note("copies of the NATS password in the worker: $before after 1 reload, $after after 21");
	is(pgs_status($node, 'postgres', 'cr')->{pid}, $cr_pid, 'the same worker went through the reloads');
	cmp_ok($after, '<=', $before + 2, 'reloads leave no more copies of the password in the worker');
	$node->safe_psql('postgres', q{SELECT pgoutput_stream.drop_stream('cr')});
	$cnats->stop;
}

$node->safe_psql('postgres', q{SELECT pgoutput_stream.drop_stream('g_nats')});
is($node->safe_psql('postgres', "SELECT string_agg(slot_name, ', ') FROM pg_replication_slots"),
	'', 'no slot is left');
$node->stop;
$nats->stop;
$auth_nats->stop;
$fake->stop;
done_testing();
