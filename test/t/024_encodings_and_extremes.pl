
# Copyright (c) 2026, pgoutput_stream developers

# Values and logical messages that PostgreSQL accepts and that a stream
# must deliver instead of failing on them (the review of 54879cf), with
# target log:
#  (a) Debezium intervals: the interval whose time part is the smallest
#      microsecond count (interval_out writes -2562047788:00:54.775808,
#      which interval_in rejects), alone and in an array, in the snapshot,
#      in an insert and in the old row of a delete (REPLICA IDENTITY FULL),
#      format debezium with both value encodings (connect and feldera),
#      and the largest one: delivered as microseconds
#      (-9223372036854775808 and 9223372036854775807), the stream still
#      streaming on the worker that sent its snapshot, no last_error, no
#      error logged by a worker;
#  (b) non-transactional logical messages (pg_logical_emit_message(false,
#      ...), which any role may call; here a role without any privilege)
#      in a LATIN1 and in a WIN1252 database: delivered once, with their
#      content, and the stream goes on with the next change on the same
#      worker, without last_error or an error logged by a worker (such a
#      message is rendered outside a transaction, where the conversion to
#      UTF-8 used to be looked up and failed: every stream of the
#      database restarted on it, again and again);
#  (c) a WIN1252 database: a text value with byte 0x81, which WIN1252
#      accepts and which has no Unicode equivalent (PostgreSQL's own
#      conversion to UTF-8 refuses it), in the snapshot and in an insert,
#      arrives with U+FFFD in its place and its other characters converted
#      (0x80 is U+20AC); a logical message whose content holds that byte
#      arrives as content_base64 with the exact bytes, transactional or
#      not; a message of WIN1252 text that converts arrives as content;
#  (d) a data exception raised by PostgreSQL's own code with the value in
#      its message (a row filter's make_date() on a row it cannot make a
#      date of): the stream fails, last_error names the SQLSTATE and not
#      the value, the server log has the whole error;
#  (e) a MULE_INTERNAL database, which has no conversion to UTF-8: the
#      stream fails with that reason instead of restarting without one;
#  (f) a database's owner sets role, session_authorization, exit_on_error,
#      lock_timeout, logical_decoding_work_mem and
#      default_transaction_read_only for the database: after a restart the
#      scanner starts its streams, the worker runs as the bootstrap
#      superuser (it reads the extension's table, which the owner may not;
#      pg_stat_activity still shows the owner, the role it connected
#      with), takes its snapshot and streams, a value Feldera cannot
#      represent still fails a stream with its reason, and the worker logs
#      that it ignores the database's logical_decoding_work_mem.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";

use JSON::PP;
use MIME::Base64 qw(encode_base64);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PgsTestUtil;

# values are compared as UTF-8 bytes
my %u8 = (fffd => "\xef\xbf\xbd", euro => "\xe2\x82\xac", e_acute => "\xc3\xa9");
my $canon = JSON::PP->new->canonical->allow_nonref->allow_bignum;

my $node = pgs_new_node('main');
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION pgoutput_stream;
CREATE ROLE plain LOGIN;
});

# Wait until $s streams (its snapshot sent, if it takes one), or has an
# error; its pid then (undef after an error)
sub wait_streaming
{
	my ($db, $s, $snapshot) = @_;
	my ($pid, $r);
	pgs_wait_until(
		sub {
			$r = pgs_stream_state($node, $db, $s);
			$pid = $r->{pid}
			  if $r->{state} eq 'streaming' && $r->{pid} ne '' && (!$snapshot || $r->{snapshot} eq 'done');
			return defined $pid || $r->{last_error} ne '';
		},
		"$s: streaming, or an error", 60);
	note("$s: $r->{state}, snapshot $r->{snapshot}, last_error: $r->{last_error}");
	return $pid;
}

# Still streaming on worker $pid, without last_error; since $offset, no
# background process logged an error and that worker did not exit (the
# workers of dropped streams do)
sub stream_fine
{
	my ($db, $s, $pid, $offset) = @_;
	my $r = pgs_stream_state($node, $db, $s);
	is($r->{state}, 'streaming', "$s is streaming");
	is($r->{last_error}, '', "$s has no last_error");
	ok(defined $pid && $r->{pid} eq $pid,
		"$s still runs on the same worker (pid " . ($pid // 'none') . ', now ' . ($r->{pid} || 'none') . ')');
	my $p = $pid // 'none';
	my @errors = grep { /^\S+ \S+ \S+ \[\d+\] ERROR:/ || /background worker "pgoutput_stream worker" \(PID \Q$p\E\) exited/ }
	  split /\n/, slurp_file($node->logfile, $offset);
	is(scalar(@errors), 0, "$s: no worker logged an error, its worker did not exit")
	  or diag(join("\n", @errors[ 0 .. ($#errors > 4 ? 4 : $#errors) ]));
}

# The logical messages $s published since $offset, as
# "prefix transactional content=..." or "... base64=..."
sub messages
{
	my ($offset, $s) = @_;
	my @m;
	foreach my $ev (pgs_events($node, $offset, stream => $s))
	{
		next unless $ev->{payload} =~ /^\{"Message":/;
		my $m = pgs_json($ev)->{Message};
		my $line = join(' ', $m->{prefix}, $m->{transactional} ? 'transactional' : 'non-transactional',
			exists $m->{content} ? "content=$m->{content}" : (),
			exists $m->{content_base64} ? "base64=$m->{content_base64}" : ());
		utf8::encode($line);
		push @m, $line;
	}
	return \@m;
}

# The value of column $col of the inserted rows of $s since $offset, by
# id, and whether each is a snapshot row
sub inserted
{
	my ($offset, $s, $col) = @_;
	my %v;
	foreach my $ev (pgs_events($node, $offset, stream => $s, kind => 'insert'))
	{
		my $ins = pgs_json($ev)->{Insert};
		$v{ $ins->{new_tuple}{id} } = ($ins->{snapshot} ? 'snapshot ' : 'insert ') . $ins->{new_tuple}{$col};
		utf8::encode($v{ $ins->{new_tuple}{id} });
	}
	return \%v;
}

# ---------------------------------------------------------------------
# (a) Debezium intervals
# ---------------------------------------------------------------------
my $min_iv = q{(interval '-2562047788:00:54.775807' - interval '00:00:00.000001')};
my $max_iv = q{interval '2562047788:00:54.775807'};
$node->safe_psql('postgres', qq{
CREATE TABLE iv (id int PRIMARY KEY, v interval, va interval[]);
ALTER TABLE iv REPLICA IDENTITY FULL;
INSERT INTO iv VALUES (1, $min_iv, ARRAY[$min_iv, interval '1 day', NULL]);
CREATE PUBLICATION iv_pub FOR TABLE iv;
});
is($node->safe_psql('postgres', 'SELECT v FROM iv WHERE id = 1'), '-2562047788:00:54.775808',
	'(a) the interval as interval_out writes it');
my ($rc, $out, $err) = $node->psql('postgres', q{SELECT '-2562047788:00:54.775808'::interval});
like($err, qr/invalid input syntax for type interval/, '(a) which interval_in rejects');

my %iv_streams = (iv_dbz => '{}', iv_dbz_feldera => '{"debezium_values": "feldera"}');
my $offset = pgs_log_offset($node);
foreach my $s (sort keys %iv_streams)
{
	$node->safe_psql('postgres', "SELECT pgoutput_stream.create_stream('$s', 'iv_pub', format => 'debezium',
		options => '$iv_streams{$s}', snapshot => true)");
}
my %pid = map { $_ => wait_streaming('postgres', $_, 1) } sort keys %iv_streams;
$node->safe_psql('postgres', qq{
INSERT INTO iv VALUES (2, $min_iv, ARRAY[$min_iv]);
INSERT INTO iv VALUES (3, $max_iv, NULL);
DELETE FROM iv WHERE id = 2;
});
my $min_us = '-9223372036854775808';
my $max_us = '9223372036854775807';
foreach my $s (sort keys %iv_streams)
{
	pgs_wait_delivered_or_error($node, 'postgres', $s);
	my @got;
	foreach my $ev (pgs_events($node, $offset, stream => $s))
	{
		next unless $ev->{kind} =~ /^(insert|update|delete)\z/;
		my $p = pgs_json($ev)->{payload};
		my $t = $p->{after} // $p->{before};
		push @got, $canon->encode([ $p->{op}, $t->{id}, $t->{v}, $t->{va} ]);
	}
	is_deeply(\@got, [
		qq{["r",1,$min_us,[$min_us,86400000000,null]]},
		qq{["c",2,$min_us,[$min_us]]},
		qq{["c",3,$max_us,null]},
		qq{["d",2,$min_us,[$min_us]]} ],
		"(a) $s: the intervals as microseconds, in the snapshot, inserts and a delete's old row");
	stream_fine('postgres', $s, $pid{$s}, $offset);
}
$node->safe_psql('postgres', "SELECT pgoutput_stream.drop_stream('$_')") foreach sort keys %iv_streams;

# ---------------------------------------------------------------------
# (b) non-transactional messages in a LATIN1 database
# ---------------------------------------------------------------------
$node->safe_psql('postgres',
	"CREATE DATABASE lat ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0");
$node->safe_psql('lat', q{
CREATE EXTENSION pgoutput_stream;
CREATE TABLE t (id int PRIMARY KEY, v text);
CREATE PUBLICATION pub FOR TABLE t;
SELECT pgoutput_stream.create_stream('lat_msg', 'pub');
});
is($node->safe_psql('lat', 'SHOW server_encoding'), 'LATIN1', '(b) the database lat is LATIN1');
my $pid = wait_streaming('lat', 'lat_msg');
$offset = pgs_log_offset($node);
$node->safe_psql('lat', q{SELECT pg_logical_emit_message(false, 'nt', 'hello')},
	extra_params => [ '-U', 'plain' ]);
# (chr(233) is é in LATIN1)
$node->safe_psql('lat', q{INSERT INTO t VALUES (1, 'caf' || chr(233))});
pgs_wait_delivered_or_error($node, 'lat', 'lat_msg');
is_deeply(messages($offset, 'lat_msg'), ['nt non-transactional content=hello'],
	'(b) lat_msg: the non-transactional message of a role without privileges, once');
is_deeply(inserted($offset, 'lat_msg', 'v'), { 1 => "insert caf$u8{e_acute}" }, '(b) lat_msg: and the insert after it');
stream_fine('lat', 'lat_msg', $pid, $offset);
$node->safe_psql('lat', q{SELECT pgoutput_stream.drop_stream('lat_msg')});

# ---------------------------------------------------------------------
# (c) WIN1252: 0x81 in values and messages; (b) non-transactional
# messages there too
# ---------------------------------------------------------------------
$node->safe_psql('postgres',
	"CREATE DATABASE win ENCODING 'WIN1252' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0");
# (convert_from() from the database's own encoding only checks the bytes)
my $x81 = q{convert_from('\x81', 'WIN1252')};
my $euro = q{convert_from('\x80', 'WIN1252')};
$node->safe_psql('win', qq{
CREATE EXTENSION pgoutput_stream;
CREATE TABLE t (id int PRIMARY KEY, v text);
INSERT INTO t VALUES (1, 'a' || $x81 || 'b');
CREATE PUBLICATION pub FOR TABLE t;
});
is($node->safe_psql('win', 'SHOW server_encoding'), 'WIN1252', '(c) the database win is WIN1252');
is($node->safe_psql('win', q{SELECT convert_to(v, 'WIN1252') FROM t WHERE id = 1}), '\x618162',
	'(c) the value holds byte 0x81');
($rc, $out, $err) = $node->psql('win', q{SELECT convert_to(v, 'UTF8') FROM t WHERE id = 1});
like($err, qr/character with byte sequence 0x81 in encoding "WIN1252" has no equivalent in encoding "UTF8"/,
	"(c) which PostgreSQL's conversion to UTF-8 refuses");

$offset = pgs_log_offset($node);
$node->safe_psql('win', q{SELECT pgoutput_stream.create_stream('win_val', 'pub', snapshot => true)});
$pid = wait_streaming('win', 'win_val', 1);
$node->safe_psql('win', qq{INSERT INTO t VALUES (2, 'x' || $euro || $x81 || 'y')});
pgs_wait_delivered_or_error($node, 'win', 'win_val');
is_deeply(inserted($offset, 'win_val', 'v'), { 1 => "snapshot a$u8{fffd}b", 2 => "insert x$u8{euro}$u8{fffd}y" },
	'(c) win_val: 0x81 is U+FFFD, in the snapshot and in an insert; 0x80 is U+20AC');
stream_fine('win', 'win_val', $pid, $offset);
$node->safe_psql('win', q{SELECT pgoutput_stream.drop_stream('win_val')});

# transactional messages (a stream of their own, so that each finding
# fails on its own in the code reviewed)
$node->safe_psql('win', q{SELECT pgoutput_stream.create_stream('win_tx', 'pub')});
$pid = wait_streaming('win', 'win_tx');
$offset = pgs_log_offset($node);
$node->safe_psql('win', qq{
SELECT pg_logical_emit_message(true, 'txt', $euro);
SELECT pg_logical_emit_message(true, 'bin', '\\x618162'::bytea);
INSERT INTO t VALUES (4, 'w');
});
pgs_wait_delivered_or_error($node, 'win', 'win_tx');
my $b64 = encode_base64("a\x81b", '');
is_deeply(messages($offset, 'win_tx'), [ "txt transactional content=$u8{euro}", "bin transactional base64=$b64" ],
	"(c) win_tx: a message of WIN1252 text as content, one holding 0x81 as content_base64 ($b64, its exact bytes)");
is_deeply(inserted($offset, 'win_tx', 'v'), { 4 => 'insert w' }, '(c) win_tx: and the insert after them');
stream_fine('win', 'win_tx', $pid, $offset);
$node->safe_psql('win', q{SELECT pgoutput_stream.drop_stream('win_tx')});

$node->safe_psql('win', q{SELECT pgoutput_stream.create_stream('win_msg', 'pub')});
$pid = wait_streaming('win', 'win_msg');
$offset = pgs_log_offset($node);
$node->safe_psql('win', q{
SELECT pg_logical_emit_message(false, 'nt', 'hello');
SELECT pg_logical_emit_message(false, 'ntbin', '\x618162'::bytea);
}, extra_params => [ '-U', 'plain' ]);
$node->safe_psql('win', q{INSERT INTO t VALUES (3, 'z')});
pgs_wait_delivered_or_error($node, 'win', 'win_msg');
is_deeply(messages($offset, 'win_msg'),
	[ 'nt non-transactional content=hello', "ntbin non-transactional base64=$b64" ],
	'(b, c) win_msg: the non-transactional messages of a role without privileges, once each, 0x81 in base64');
is_deeply(inserted($offset, 'win_msg', 'v'), { 3 => 'insert z' }, '(b) win_msg: and the insert after them');
stream_fine('win', 'win_msg', $pid, $offset);
$node->safe_psql('win', q{SELECT pgoutput_stream.drop_stream('win_msg')});

# ---------------------------------------------------------------------
# (d) a data exception of PostgreSQL's own code, with the value in its
#     message: a row filter's make_date() on a row it cannot make a date
#     of.  The stream fails (the change fails again after every restart),
#     and last_error names the SQLSTATE, not the value
# ---------------------------------------------------------------------
$node->safe_psql('postgres', q{
CREATE TABLE ymd (id int PRIMARY KEY, y int, m int, d int);
CREATE PUBLICATION ymd_pub FOR TABLE ymd WHERE (make_date(y, m, d) > '2000-01-01');
SELECT pgoutput_stream.create_stream('ymd_s', 'ymd_pub');
});
$pid = wait_streaming('postgres', 'ymd_s');
$offset = pgs_log_offset($node);
$node->safe_psql('postgres', q{INSERT INTO ymd VALUES (1, 4111, 11, 31)});
ok( pgs_wait_until(sub { pgs_stream_state($node, 'postgres', 'ymd_s')->{state} eq 'failed' },
		'ymd_s failed', 60),
	'(d) a row filter that raises a data exception fails the stream');
my $r = pgs_stream_state($node, 'postgres', 'ymd_s');
is($r->{last_error},
	'a change could not be decoded or rendered: error 22008 (the server log has the error)',
	'(d) last_error names the SQLSTATE');
unlike($r->{last_error}, qr/4111/, '(d) and not the value');
like(slurp_file($node->logfile, $offset), qr/date field value out of range: 4111-11-31/,
	'(d) the server log has the whole error');
$node->safe_psql('postgres', q{SELECT pgoutput_stream.drop_stream('ymd_s')});

# ---------------------------------------------------------------------
# (e) a MULE_INTERNAL database: PostgreSQL has no conversion to UTF-8
#     from it; the stream fails with the reason instead of restarting
#     without one
# ---------------------------------------------------------------------
$node->safe_psql('postgres',
	"CREATE DATABASE mule ENCODING 'MULE_INTERNAL' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0");
$node->safe_psql('mule', q{
CREATE EXTENSION pgoutput_stream;
CREATE TABLE t (id int PRIMARY KEY);
CREATE PUBLICATION pub FOR TABLE t;
SELECT pgoutput_stream.create_stream('mule_s', 'pub');
});
ok(pgs_wait_until(sub { pgs_stream_state($node, 'mule', 'mule_s')->{state} eq 'failed' }, 'mule_s failed', 60),
	'(e) a stream of a MULE_INTERNAL database fails');
like(pgs_stream_state($node, 'mule', 'mule_s')->{last_error},
	qr/default conversion function for encoding "MULE_INTERNAL" to "UTF8" does not exist/,
	'(e) last_error says why');
$node->safe_psql('mule', q{SELECT pgoutput_stream.drop_stream('mule_s')});

# ---------------------------------------------------------------------
# (f) what a database's owner may set for every session of the database
#     (ALTER DATABASE ... SET) does not reach the workers and the scanner:
#     role and session_authorization (the workers would run as the owner,
#     who cannot read the extension's table: every stream stopped),
#     exit_on_error (the worker's error handler would turn a failed stream
#     into a crash loop), default_transaction_read_only, lock_timeout,
#     logical_decoding_work_mem (ignored, with a LOG line).  A stream of
#     that database, started at server start by the scanner, takes its
#     snapshot, streams, and a refused value still fails it with its
#     reason
# ---------------------------------------------------------------------
$node->safe_psql('postgres', q{
CREATE ROLE dbowner LOGIN;
CREATE DATABASE owned OWNER dbowner;
});
$node->safe_psql('owned', q{
CREATE EXTENSION pgoutput_stream;
CREATE TABLE t (id int PRIMARY KEY, f float8);
INSERT INTO t VALUES (1, 1.5);
CREATE PUBLICATION pub FOR TABLE t;
SELECT pgoutput_stream.create_stream('own_s', 'pub', snapshot => true, start => false);
SELECT pgoutput_stream.create_stream('own_f', 'pub', format => 'feldera', start => false);
});
# read-only last: ALTER DATABASE is refused in a read-only transaction
foreach my $set ('role = dbowner', 'session_authorization = dbowner', 'exit_on_error = on',
	q{lock_timeout = '1ms'}, q{logical_decoding_work_mem = '1TB'},
	'default_transaction_read_only = on')
{
	$node->safe_psql('owned', "ALTER DATABASE owned SET $set", extra_params => [ '-U', 'dbowner' ]);
}
# this test's own sessions of that database undo them (settings of the
# connection come before those of the database)
my $superuser = $node->safe_psql('postgres', 'SELECT rolname FROM pg_roles WHERE oid = 10');
local $ENV{PGOPTIONS} = "-c session_authorization=$superuser -c role=none -c exit_on_error=off "
  . '-c default_transaction_read_only=off -c lock_timeout=0';
$offset = pgs_log_offset($node);
$node->safe_psql('owned', q{
SELECT pgoutput_stream.start_stream('own_s');
SELECT pgoutput_stream.start_stream('own_f');
});
# the scanner starts them again after a restart
$node->restart;
$pid = wait_streaming('owned', 'own_s', 1);
ok(defined $pid, '(f) own_s takes its snapshot and streams');
# pg_stat_activity keeps the role a process had when it connected, so it
# shows dbowner; that the worker read the extension's table, which dbowner
# may not, shows it did not act as dbowner
{
	local $ENV{PGOPTIONS} = '';
	my ($rc, $out, $err) = $node->psql('owned', 'SELECT count(*) FROM pgoutput_stream.streams',
		extra_params => [ '-U', 'dbowner' ]);
	like($err, qr/permission denied/, '(f) dbowner may not read the extension\'s table');
}
$node->safe_psql('owned', q{INSERT INTO t VALUES (2, 'NaN')});
ok(pgs_wait_until(sub { pgs_stream_state($node, 'owned', 'own_f')->{state} eq 'failed' }, 'own_f failed', 60),
	'(f) own_f fails on a value Feldera cannot represent, with exit_on_error set');
like(pgs_stream_state($node, 'owned', 'own_f')->{last_error}, qr/cannot be represented in Feldera/,
	'(f) with its reason');
pgs_wait_delivered_or_error($node, 'owned', 'own_s');
is_deeply(inserted($offset, 'own_s', 'id'), { 1 => 'snapshot 1', 2 => 'insert 2' },
	'(f) own_s delivered the snapshot row and the insert');
like(slurp_file($node->logfile, $offset),
	qr/stream worker ignores the setting of "logical_decoding_work_mem" made for its database or role/,
	'(f) the worker says it ignores the database\'s logical_decoding_work_mem');
$node->safe_psql('owned', q{
SELECT pgoutput_stream.drop_stream('own_s');
SELECT pgoutput_stream.drop_stream('own_f');
});

is($node->safe_psql('postgres', 'SELECT count(*) FROM pg_replication_slots'), '0', 'no slot is left');
$node->stop;
done_testing();
