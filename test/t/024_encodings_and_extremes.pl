
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
#      not; a message of WIN1252 text that converts arrives as content.

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

# The stream_status row of $s in database $db
sub stream_row
{
	my ($db, $s) = @_;
	my $out = $node->safe_psql($db,
		"SELECT state, coalesce(snapshot, ''), coalesce(pid::text, ''), coalesce(last_error, '')
		 FROM pgoutput_stream.stream_status WHERE name = '$s'",
		extra_params => [ '-F', "\x1f" ]);
	my %r;
	@r{qw(state snapshot pid last_error)} = map { $_ // '' } split /\x1f/, $out, -1;
	return \%r;
}

# Wait until $s streams (its snapshot sent, if it takes one), or has an
# error; its pid then (undef after an error)
sub wait_streaming
{
	my ($db, $s, $snapshot) = @_;
	my ($pid, $r);
	pgs_wait_until(
		sub {
			$r = stream_row($db, $s);
			$pid = $r->{pid}
			  if $r->{state} eq 'streaming' && $r->{pid} ne '' && (!$snapshot || $r->{snapshot} eq 'done');
			return defined $pid || $r->{last_error} ne '';
		},
		"$s: streaming, or an error", 60);
	note("$s: $r->{state}, snapshot $r->{snapshot}, last_error: $r->{last_error}");
	return $pid;
}

# Wait until $s confirmed everything written so far, or has an error
sub wait_delivered_or_error
{
	my ($db, $s) = @_;
	my $lsn = $node->safe_psql($db, 'SELECT pg_current_wal_lsn()');
	return pgs_wait_until(
		sub {
			$node->safe_psql($db, "SELECT confirmed_lsn >= '$lsn' OR last_error IS NOT NULL
				FROM pgoutput_stream.stream_status WHERE name = '$s'") eq 't';
		},
		"$s: delivered up to $lsn, or an error", 60);
}

# Still streaming on worker $pid, without last_error; since $offset, no
# background process logged an error and that worker did not exit (the
# workers of dropped streams do)
sub stream_fine
{
	my ($db, $s, $pid, $offset) = @_;
	my $r = stream_row($db, $s);
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
	wait_delivered_or_error('postgres', $s);
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
wait_delivered_or_error('lat', 'lat_msg');
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
wait_delivered_or_error('win', 'win_val');
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
wait_delivered_or_error('win', 'win_tx');
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
wait_delivered_or_error('win', 'win_msg');
is_deeply(messages($offset, 'win_msg'),
	[ 'nt non-transactional content=hello', "ntbin non-transactional base64=$b64" ],
	'(b, c) win_msg: the non-transactional messages of a role without privileges, once each, 0x81 in base64');
is_deeply(inserted($offset, 'win_msg', 'v'), { 3 => 'insert z' }, '(b) win_msg: and the insert after them');
stream_fine('win', 'win_msg', $pid, $offset);
$node->safe_psql('win', q{SELECT pgoutput_stream.drop_stream('win_msg')});

is($node->safe_psql('postgres', 'SELECT count(*) FROM pg_replication_slots'), '0', 'no slot is left');
$node->stop;
done_testing();
