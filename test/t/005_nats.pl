
# Copyright (c) 2026, pgoutput_stream developers

# The "nats" target against a real nats-server:
#  - a mixed workload (inserts, updates, deletes, truncate, transactional
#    and non-transactional logical messages, hostile and colliding names)
#    arrives in JetStream exactly once, in commit order, with the subjects,
#    headers and payloads peek() shows for the same WAL; the stream's format
#    and value_mode apply to the NATS payloads;
#  - an existing JetStream stream is used as it is if it captures the
#    subjects, and is an error (never altered) if it does not;
#  - user/password authentication, a rejected login ("waiting for target",
#    no restart loop), and the secrets being hidden from non-superusers;
#  - TLS with a private CA, and a server certificate the CA does not trust.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use PgsTestUtil;
use PgsNatsUtil;

my $nats = PgsNatsUtil->new('main')->start;

my $node = pgs_nats_node('main', $nats, conf => "restart_after_crash = on\n");
$node->start;

# Names that are not NATS tokens: white space, '.', '*', '>', non-ASCII;
# and public."a.b" vs "public.a".b, which would both be postgres.public.a.b
# without escaping.
$node->safe_psql(
	'postgres', q{
CREATE EXTENSION pgoutput_stream;
CREATE SCHEMA "sch ema";
CREATE SCHEMA "public.a";
CREATE TABLE t1 (id int PRIMARY KEY, v text, n numeric, doc jsonb);
CREATE TABLE t2 (id bigint PRIMARY KEY, w text);
ALTER TABLE t2 REPLICA IDENTITY FULL;
CREATE TABLE "sch ema"."we.ird *>tab" (id int PRIMARY KEY, "col.x" text);
CREATE TABLE public."a.b" (id int PRIMARY KEY, v text);
CREATE TABLE "public.a".b (id int PRIMARY KEY, v text);
CREATE TABLE "ünï" (id int PRIMARY KEY);
CREATE PUBLICATION pub FOR TABLE t1, t2, "sch ema"."we.ird *>tab", public."a.b",
  "public.a".b, "ünï";
});

# Peek-only twins (never started) first, so their slots see everything the
# running streams see.
$node->safe_psql(
	'postgres', q{
SELECT pgoutput_stream.create_stream('q', 'pub', start => false);
SELECT pgoutput_stream.create_stream('qp', 'pub', format => 'json-pretty',
  options => '{"value_mode": "text", "subject_prefix": "pretty"}', start => false);
SELECT pgoutput_stream.create_stream('qt', 'pub', format => 'text',
  options => '{"subject_prefix": "txt"}', start => false);
SELECT pgoutput_stream.create_stream('s', 'pub', targets => '{nats}');
SELECT pgoutput_stream.create_stream('sp', 'pub', targets => '{nats}', format => 'json-pretty',
  options => '{"value_mode": "text", "subject_prefix": "pretty", "nats_stream": "pretty_stream"}');
SELECT pgoutput_stream.create_stream('st', 'pub', targets => '{nats}', format => 'text',
  options => '{"subject_prefix": "txt", "nats_stream": "text_stream", "nats_storage": "memory",
               "nats_max_msgs": "100000", "nats_max_age": "3600", "nats_duplicate_window": "60"}');
});
foreach my $s (qw(s sp st))
{
	ok( pgs_wait_for_status(
			$node, 'postgres', $s, "state = 'streaming' AND pid IS NOT NULL"),
		"stream $s is streaming");
}
my $pid_s = pgs_status($node, 'postgres', 's')->{pid};

my $start_lsn = $node->safe_psql('postgres', 'SELECT pg_current_wal_lsn()');

# ---------------------------------------------------------------------
# (a) the workload
# ---------------------------------------------------------------------
$node->safe_psql(
	'postgres', q{
INSERT INTO t1 VALUES (1, 'one', 1.5, '{"a": [1, 2]}'), (2, 'two', NULL, NULL);
BEGIN;
INSERT INTO t2 VALUES (10, 'x');
UPDATE t1 SET v = 'uno' WHERE id = 1;
SELECT pg_logical_emit_message(true, 'tx.prefix *', 'in tx');
DELETE FROM t1 WHERE id = 2;
COMMIT;
SELECT pg_logical_emit_message(false, 'my.prefix >', 'outside');
INSERT INTO "sch ema"."we.ird *>tab" VALUES (1, 'w1'), (2, 'w2');
BEGIN;
UPDATE "sch ema"."we.ird *>tab" SET "col.x" = 'w1b' WHERE id = 1;
DELETE FROM "sch ema"."we.ird *>tab" WHERE id = 2;
COMMIT;
BEGIN;
INSERT INTO public."a.b" VALUES (1, 'table a.b of public');
INSERT INTO "public.a".b VALUES (101, 'table b of public.a');
COMMIT;
INSERT INTO public."a.b" VALUES (2, 'table a.b of public');
INSERT INTO "public.a".b VALUES (102, 'table b of public.a');
UPDATE t2 SET w = 'y' WHERE id = 10;
BEGIN;
INSERT INTO t1 VALUES (99, 'rolled back', NULL, NULL);
ROLLBACK;
TRUNCATE t1, t2;
INSERT INTO "ünï" VALUES (1);
INSERT INTO t1 VALUES (3, 'last', 3, '[]');
});

foreach my $s (qw(s sp st))
{
	ok(pgs_wait_delivered($node, 'postgres', $s), "stream $s delivered the workload");
}

# What peek() shows for the same WAL, from the workload on
sub peek_events
{
	my ($stream) = @_;
	my $out = $node->safe_psql(
		'postgres',
		"SELECT lsn, coalesce(xid::text, ''), subject, payload FROM pgoutput_stream.peek('$stream', 10000)
		 WHERE lsn >= '$start_lsn'",
		extra_params => [ '-F', "\x1f", '-R', "\x1e" ]);
	my @events;
	foreach my $row (split /\x1e/, $out)
	{
		my ($lsn, $xid, $subject, $payload) = split /\x1f/, $row, 4;
		utf8::decode($payload);
		utf8::decode($subject);
		push @events, { lsn => $lsn, xid => $xid, subject => $subject, payload => $payload };
	}
	return @events;
}

# The messages of a JetStream stream from the workload on
sub workload_msgs
{
	my ($js_stream) = @_;
	my $dump = pgs_js_dump($nats->url, $js_stream);
	is($dump->{count}, $dump->{last_seq},
		"JetStream stream $js_stream: every message was read");
	return grep { pgs_lsn_num($_->{headers}{'Pg-Lsn'}) >= pgs_lsn_num($start_lsn) }
	  @{ $dump->{msgs} };
}

# No problem found by pgs_js_problems
sub no_problems
{
	my ($msgs, $slot, $name) = @_;
	my @p = pgs_js_problems($msgs, $slot);
	ok(!@p, $name) or diag(join("\n", @p[ 0 .. ($#p > 19 ? 19 : $#p) ]));
}

# Messages against peek: same events in the same order, same payloads,
# Pg-Lsn and Pg-Xid.  Relation events aside: pgoutput describes a table
# again after a relation cache invalidation, and the worker, which decodes
# as the workload runs, can receive invalidations (e.g. from autovacuum)
# that peek, decoding later, does not.  check_relations checks them.
sub compare_with_peek
{
	my ($what, $msgs, $peek) = @_;
	my @m = grep { $_->{subject} !~ /\.relation\z/ } @$msgs;
	my @p = grep { $_->{subject} !~ /\.relation\z/ } @$peek;
	is(scalar(@m), scalar(@p), "$what: as many messages as peek() shows events");
	my @diff;
	for my $i (0 .. $#p)
	{
		my ($m, $p) = ($m[$i], $p[$i]);
		last unless $m;
		my $data = pgs_msg_payload($m);
		push @diff, "#$i subject $m->{subject} vs $p->{subject}" if $m->{subject} ne $p->{subject};
		push @diff, "#$i payload $data vs $p->{payload}" if $data ne $p->{payload};
		push @diff, "#$i Pg-Lsn $m->{headers}{'Pg-Lsn'} vs $p->{lsn}"
		  if $m->{headers}{'Pg-Lsn'} ne $p->{lsn};
		push @diff, "#$i Pg-Xid " . ($m->{headers}{'Pg-Xid'} // '(none)') . " vs $p->{xid}"
		  if ($m->{headers}{'Pg-Xid'} // '') ne $p->{xid};
	}
	is_deeply(\@diff, [], "$what: subjects, payloads, Pg-Lsn and Pg-Xid are those of peek()")
	  or diag(join("\n", @diff[ 0 .. ($#diff > 9 ? 9 : $#diff) ]));

	# the payloads of relation events are those of peek for the table
	my %peek_rel = map { $_->{subject} => $_->{payload} } grep { $_->{subject} =~ /\.relation\z/ } @$peek;
	my @bad = grep { ($peek_rel{ $_->{subject} } // '') ne pgs_msg_payload($_) }
	  grep { $_->{subject} =~ /\.relation\z/ } @$msgs;
	ok(!@bad, "$what: relation events are those of peek()")
	  or diag(join("\n", map { "$_->{subject}: " . pgs_msg_payload($_) } @bad));
	check_relations($what, $msgs);
}

# Relation events: each describes a table that has a change at or after its
# position in its transaction, and the first change of every table follows
# a relation event of that table
sub check_relations
{
	my ($what, $msgs) = @_;
	my (@bad, %described);
	my $table = sub { my @t = split /\./, $_[0]; join('.', @t[ -3, -2 ]) };
	for my $i (0 .. $#$msgs)
	{
		my $m = $msgs->[$i];
		my (undef, $lsn, $pos, $relid) = pgs_msg_id_parts($m->{id});
		next if $m->{subject} =~ /\.(transactions\.|messages\.)/;
		my $t = $table->($m->{subject});
		if (defined $relid)
		{
			$described{$t} = 1;
			my $found = grep {
				my (undef, $l, $p, $r) = pgs_msg_id_parts($_->{id});
				!defined $r && $l eq $lsn && $p >= $pos
				  && $_->{subject} !~ /\.relation\z/ && $table->($_->{subject}) eq $t
			} @$msgs[ $i + 1 .. $#$msgs ];
			push @bad, "$m->{id}: no change of $t after it in its transaction" unless $found;
		}
		elsif (!$described{$t})
		{
			push @bad, "$m->{id}: first change of $t without a relation event before it";
			$described{$t} = 1;
		}
	}
	ok(!@bad, "$what: relation events come before the changes they describe")
	  or diag(join("\n", @bad));
}

my @msgs = workload_msgs('postgres_replication');
my @peek = peek_events('q');
compare_with_peek('json', \@msgs, \@peek);

# The exact events, relation events aside
my @tx_begin = ('postgres.transactions.begin.event');
my @tx_commit = ('postgres.transactions.commit.event');
my $weird = 'postgres.sch%20ema.we%2Eird%20%2A%3Etab';
my @expected = (
	@tx_begin, 'postgres.public.t1.insert', 'postgres.public.t1.insert', @tx_commit,
	@tx_begin, 'postgres.public.t2.insert', 'postgres.public.t1.update',
	  'postgres.messages.tx%2Eprefix%20%2A', 'postgres.public.t1.delete', @tx_commit,
	'postgres.messages.my%2Eprefix%20%3E',
	@tx_begin, "$weird.insert", "$weird.insert", @tx_commit,
	@tx_begin, "$weird.update", "$weird.delete", @tx_commit,
	@tx_begin, 'postgres.public.a%2Eb.insert', 'postgres.public%2Ea.b.insert', @tx_commit,
	@tx_begin, 'postgres.public.a%2Eb.insert', @tx_commit,
	@tx_begin, 'postgres.public%2Ea.b.insert', @tx_commit,
	@tx_begin, 'postgres.public.t2.update', @tx_commit,
	@tx_begin, 'postgres.public.t1.truncate', 'postgres.public.t2.truncate', @tx_commit,
	@tx_begin, 'postgres.public.%C3%BCn%C3%AF.insert', @tx_commit,
	@tx_begin, 'postgres.public.t1.insert', @tx_commit);
my @got = map { $_->{subject} } grep { $_->{headers}{'Pg-Operation'} ne 'relation' } @msgs;
is_deeply(\@got, \@expected,
	'JetStream holds exactly the events of the workload, in commit order, with escaped subjects')
  or diag(join("\n", @got));

no_problems(\@msgs, 'pgs_s', 'unique message ids, commit order, chained, whole transactions');
is(scalar(grep { !defined $_->{id} || $_->{id} ne $_->{headers}{'Nats-Msg-Id'} } @msgs),
	0, 'the id js_dump reports is the Nats-Msg-Id header');

# Headers and payloads of every message, against its subject
{
	my @bad;
	my %xid_of;    # commit LSN => xid
	foreach my $m (@msgs)
	{
		my $h = $m->{headers};
		my ($data, $json) = pgs_msg_payload($m);
		my @tok = split /\./, $m->{subject};
		my $where = "message $m->{seq} ($m->{subject})";
		push @bad, "$where: payload is not JSON" unless $json;
		push @bad, "$where: $_ missing" foreach grep { !defined $h->{$_} }
		  qw(Nats-Msg-Id Pg-Lsn Pg-Commit-Lsn Pg-Operation);
		if ($m->{subject} =~ /^postgres\.transactions\.(begin|commit)\.event\z/)
		{
			push @bad, "$where: Pg-Operation $h->{'Pg-Operation'}" if $h->{'Pg-Operation'} ne $1;
			push @bad, "$where: Pg-Table set" if exists $h->{'Pg-Table'} || exists $h->{'Pg-Schema'};
		}
		elsif ($tok[1] eq 'messages')
		{
			push @bad, "$where: Pg-Operation $h->{'Pg-Operation'}" if $h->{'Pg-Operation'} ne 'message';
			push @bad, "$where: Pg-Table set" if exists $h->{'Pg-Table'};
			push @bad, "$where: subject token does not decode to the prefix"
			  if !$json || pgs_subject_unescape($tok[2]) ne $json->{Message}{prefix};
			push @bad, "$where: not one token after messages" if @tok != 3;
			if ($json && !$json->{Message}{transactional})
			{
				push @bad, "$where: Pg-Commit-Lsn is not the message's LSN"
				  if $h->{'Pg-Commit-Lsn'} ne $h->{'Pg-Lsn'};
				push @bad, "$where: non-transactional message with Pg-Commit-Time"
				  if exists $h->{'Pg-Commit-Time'};
			}
		}
		else
		{
			push @bad, "$where: not prefix.schema.table.operation" if @tok != 4;
			push @bad, "$where: Pg-Operation $h->{'Pg-Operation'}" if $h->{'Pg-Operation'} ne $tok[3];
			push @bad, "$where: Pg-Schema " . ($h->{'Pg-Schema'} // '(none)')
			  if ($h->{'Pg-Schema'} // '') ne $tok[1];
			push @bad, "$where: Pg-Table " . ($h->{'Pg-Table'} // '(none)')
			  if ($h->{'Pg-Table'} // '') ne $tok[2];
			my ($body) = $json ? values %$json : ();
			push @bad, "$where: payload names table $body->{schema}.$body->{table}"
			  if !$body
			  || $body->{schema} ne pgs_subject_unescape($tok[1])
			  || $body->{table} ne pgs_subject_unescape($tok[2]);
		}
		if (!($json && $json->{Message} && !$json->{Message}{transactional}))
		{
			push @bad, "$where: Pg-Xid missing" unless defined $h->{'Pg-Xid'};
			push @bad, "$where: Pg-Commit-Time $h->{'Pg-Commit-Time'}"
			  unless ($h->{'Pg-Commit-Time'} // '') =~ /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?\+00\z/;
			my $lsn = $h->{'Pg-Commit-Lsn'};
			$xid_of{$lsn} //= $h->{'Pg-Xid'} // '';
			push @bad, "$where: Pg-Xid differs within the transaction"
			  if ($h->{'Pg-Xid'} // '') ne $xid_of{$lsn};
		}
		if ($h->{'Pg-Operation'} eq 'commit')
		{
			push @bad, "$where: Commit lsn is not Pg-Commit-Lsn"
			  if !$json || $json->{Commit}{lsn} ne $h->{'Pg-Commit-Lsn'};
		}
	}
	is_deeply(\@bad, [], 'headers and payloads of every message match their subject')
	  or diag(join("\n", @bad));
}

# No table's events under another table's subject: the rows of public."a.b"
# and "public.a".b stay apart
{
	my %ids;
	foreach my $m (grep { $_->{headers}{'Pg-Operation'} eq 'insert' } @msgs)
	{
		my (undef, $json) = pgs_msg_payload($m);
		push @{ $ids{ $m->{subject} } }, $json->{Insert}{new_tuple}{id};
	}
	is_deeply($ids{'postgres.public.a%2Eb.insert'}, [ 1, 2 ], 'public."a.b" has its own subject');
	is_deeply($ids{'postgres.public%2Ea.b.insert'}, [ 101, 102 ], '"public.a".b has its own subject');
	is_deeply($ids{"$weird.insert"}, [ 1, 2 ], '"sch ema"."we.ird *>tab" has its own subject');
	is(scalar(grep { ($_->{subject} =~ tr/.//) > 3 } @msgs), 0,
		'no subject has more tokens than prefix.schema.table.operation');
}

# The JetStream stream the worker created
{
	my ($info, $err) = pgs_js_admin($nats->url, {}, 'info', 'postgres_replication');
	is_deeply($info->{config}{subjects}, ['postgres.>'],
		'the worker created postgres_replication for postgres.>');
	is($info->{config}{storage}, 'file', 'with file storage by default');
	is($info->{config}{num_replicas}, 1, 'with one replica by default');
	($info, $err) = pgs_js_admin($nats->url, {}, 'info', 'text_stream');
	is_deeply(
		[ map { $info->{config}{$_} } qw(subjects storage max_msgs max_age duplicate_window) ],
		[ ['txt.>'], 'memory', 100000, 3600 * 10**9, 60 * 10**9 ],
		'the nats_* stream options apply to a JetStream stream the worker creates');
}

# The stream's format and value_mode apply to NATS payloads
{
	my @pmsgs = workload_msgs('pretty_stream');
	compare_with_peek('json-pretty, value_mode text', \@pmsgs, [ peek_events('qp') ]);
	my ($ins) = grep { $_->{subject} eq 'pretty.public.t1.insert' } @pmsgs;
	my ($data, $json) = pgs_msg_payload($ins);
	like($data, qr/\n\s+"Insert": \{/, 'json-pretty payloads are laid out on several lines');
	is($json->{Insert}{new_tuple}{id}, '1', 'value_mode text: values are strings');
	like($data, qr/"id": "1"/, 'value_mode text: the id is the string "1"');
	no_problems(\@pmsgs, 'pgs_sp',
		'json-pretty stream: unique ids, commit order, chained, whole transactions');

	my @tmsgs = workload_msgs('text_stream');
	compare_with_peek('text', \@tmsgs, [ peek_events('qt') ]);
	($ins) = grep { $_->{subject} eq 'txt.public.t1.insert' } @tmsgs;
	$data = pgs_msg_payload($ins);
	unlike($data, qr/^\{/, 'text format: the payload is not JSON');
}

is(pgs_status($node, 'postgres', 's')->{pid}, $pid_s, 'the worker of s never restarted');

# cnats runs threads inside the worker: every one of them blocks
# PostgreSQL's signals, so that SIGTERM, SIGHUP, SIGUSR1, SIGINT and the
# latch's SIGURG reach the main thread only.
{
	my @wanted = (1, 2, 10, 15, 23);    # SIGHUP SIGINT SIGUSR1 SIGTERM SIGURG
	my (@threads, @leaky);
	opendir(my $dh, "/proc/$pid_s/task") or die "no /proc/$pid_s/task: $!";
	foreach my $tid (grep { /^\d+$/ } readdir($dh))
	{
		open(my $fh, '<', "/proc/$pid_s/task/$tid/status") or next;
		my ($mask) = map { /^SigBlk:\s+([0-9a-f]+)/ ? hex($1) : () } <$fh>;
		close($fh);
		next if $tid == $pid_s;
		push @threads, $tid;
		push @leaky, $tid if grep { !($mask & (1 << ($_ - 1))) } @wanted;
	}
	closedir($dh);
	cmp_ok(scalar(@threads), '>=', 3, 'the NATS worker runs cnats threads');
	is_deeply(\@leaky, [], 'every cnats thread blocks the signals PostgreSQL uses');
}
$node->safe_psql(
	'postgres', q{
SELECT pgoutput_stream.drop_stream(name) FROM unnest('{sp,st,q,qp,qt}'::text[]) name;
});

# ---------------------------------------------------------------------
# (a2) headers through the client library's header functions
# (pgoutput_stream.nats_encode_headers off): the same headers, chain and
# payloads as the headers the worker encodes itself
# ---------------------------------------------------------------------
{
	my $offset = -s $node->logfile;
	my $before = pgs_js_dump($nats->url, 'postgres_replication')->{last_seq};
	$node->safe_psql('postgres', q{
ALTER SYSTEM SET pgoutput_stream.nats_encode_headers = off;
SELECT pg_reload_conf();
SELECT pgoutput_stream.stop_stream('s');
});
	ok(pgs_wait_for_status($node, 'postgres', 's', "state = 'stopped'"), 'stream s stopped');
	$node->safe_psql('postgres', "SELECT pgoutput_stream.start_stream('s')");
	ok(pgs_wait_for_status($node, 'postgres', 's', "state = 'streaming' AND pid IS NOT NULL"),
		'stream s streams again with nats_encode_headers off');
	$node->safe_psql(
		'postgres', q{
INSERT INTO t1 VALUES (50, 'library headers', 5, '{}');
BEGIN;
UPDATE "sch ema"."we.ird *>tab" SET "col.x" = 'w1c' WHERE id = 1;
SELECT pg_logical_emit_message(true, 'tx.prefix *', 'library');
COMMIT;
});
	ok(pgs_wait_delivered($node, 'postgres', 's'), 'stream s delivered with library headers');
	like(slurp_file($node->logfile, $offset),
		qr/stream "s" sets NATS message headers through the client library's header functions/,
		'the worker says it sets headers through the client library');

	my @all = @{ pgs_js_dump($nats->url, 'postgres_replication')->{msgs} };
	my @new = grep { $_->{seq} > $before } @all;
	my %keys;
	$keys{ $_->{headers}{'Pg-Operation'} } = join(',', sort keys %{ $_->{headers} }) foreach @new;
	my $row = 'Nats-Expected-Last-Msg-Id,Nats-Msg-Id,Pg-Commit-Lsn,Pg-Commit-Time,Pg-Lsn,'
	  . 'Pg-Operation,Pg-Schema,Pg-System-Id,Pg-Table,Pg-Xid';
	is_deeply(
		[ map { $_->{subject} } grep { $_->{headers}{'Pg-Operation'} ne 'relation' } @new ],
		[
			@tx_begin, 'postgres.public.t1.insert', @tx_commit,
			@tx_begin, "$weird.update", 'postgres.messages.tx%2Eprefix%20%2A', @tx_commit
		],
		'library headers: the events arrive in commit order');
	is($keys{insert}, $row, 'library headers: an insert has every header');
	is($keys{update}, $row, 'library headers: an update has every header');
	my ($upd) = grep { $_->{headers}{'Pg-Operation'} eq 'update' } @new;
	is_deeply(
		[ map { $upd->{headers}{$_} } qw(Pg-Schema Pg-Table) ],
		[ 'sch%20ema', 'we%2Eird%20%2A%3Etab' ],
		'library headers: escaped schema and table');
	no_problems(\@all, 'pgs_s',
		'encoded and library headers: unique ids, commit order, one chain, whole transactions');

	$node->safe_psql('postgres', q{
ALTER SYSTEM RESET pgoutput_stream.nats_encode_headers;
SELECT pg_reload_conf();
});
}

# ---------------------------------------------------------------------
# (b) existing JetStream streams: used as they are if they capture the
# prefix; a stream that does not capture it makes the pgoutput stream wait
# (the JetStream stream is never altered) until it is fixed
# ---------------------------------------------------------------------
{
	my ($info, $err) = pgs_js_admin($nats->url, {}, 'add', 'other', 'file', 'other.>');
	ok($info, 'JetStream stream "other" for other.> created') or diag($err);
	($info, $err) = pgs_js_admin($nats->url, {}, 'add', 'wide', 'memory', 'foo.>', 'wide.>');
	ok($info, 'JetStream stream "wide" for foo.> and wide.> created') or diag($err);

	my $offset = pgs_log_offset($node);
	$node->safe_psql(
		'postgres', q{
SELECT pgoutput_stream.create_stream('bad', 'pub', targets => '{nats}',
  options => '{"nats_stream": "other", "subject_prefix": "bad"}');
SELECT pgoutput_stream.create_stream('w', 'pub', targets => '{nats}',
  options => '{"nats_stream": "wide", "subject_prefix": "wide"}');
});
	ok( pgs_wait_for_status(
			$node, 'postgres', 'bad',
			q{state = 'waiting for target' AND last_error LIKE '%does not capture%'}),
		'a JetStream stream that does not capture the prefix: waiting for target');
	my $st = pgs_status($node, 'postgres', 'bad');
	like(
		$st->{last_error},
		qr/^JetStream stream "other" does not capture the subjects "bad\.>"/,
		'last_error names the JetStream stream and the subjects');
	my @waits = pgs_wait_for_log($node, $offset,
		qr/^\S+ \S+ \S+ \[(\d+)\] LOG:  stream "bad" is waiting for NATS: JetStream stream "other" does not capture/,
		3);
	is_deeply([ map { $_->[0] } @waits[ 0 .. 2 ] ], [ ($st->{pid}) x 3 ],
		'the stream checks again, in the same process');
	ok(pgs_wait_for_status($node, 'postgres', 'w', "state = 'streaming'"),
		'a JetStream stream that captures the prefix is used');
	$node->safe_psql('postgres', "INSERT INTO t1 VALUES (4, 'four', 4, NULL)");
	ok(pgs_wait_delivered($node, 'postgres', 'w'), 'stream w delivered');

	($info) = pgs_js_admin($nats->url, {}, 'info', 'other');
	is_deeply([ $info->{config}{subjects}, $info->{config}{storage}, $info->{state}{messages} ],
		[ ['other.>'], 'file', 0 ], 'JetStream stream "other" is untouched');
	($info) = pgs_js_admin($nats->url, {}, 'info', 'wide');
	is_deeply([ $info->{config}{subjects}, $info->{config}{storage} ],
		[ [ 'foo.>', 'wide.>' ], 'memory' ], 'JetStream stream "wide" is not altered');
	my $dump = pgs_js_dump($nats->url, 'wide');
	is_deeply(
		[ map { $_->{subject} } @{ $dump->{msgs} } ],
		[ 'wide.transactions.begin.event', 'wide.public.t1.relation', 'wide.public.t1.insert',
		  'wide.transactions.commit.event' ],
		'the events of w are in "wide"');
	ok(!$node->log_contains(qr/stream "bad" started streaming/, $offset),
		'stream bad did not start streaming');

	# fixing the JetStream stream is enough: the waiting stream resumes, and
	# delivers what was committed meanwhile
	($info, $err) = pgs_js_admin($nats->url, {}, 'update', 'other', 'other.>', 'bad.>');
	ok($info, 'the subjects of "other" are now other.> and bad.>') or diag($err);
	ok(pgs_wait_for_status($node, 'postgres', 'bad', "state = 'streaming'"),
		'stream bad resumes by itself');
	is(pgs_status($node, 'postgres', 'bad')->{pid}, $st->{pid}, 'in the same process');
	ok(pgs_wait_delivered($node, 'postgres', 'bad'), 'stream bad delivered');
	$dump = pgs_js_dump($nats->url, 'other');
	is_deeply(
		[ map { $_->{subject} } @{ $dump->{msgs} } ],
		[ 'bad.transactions.begin.event', 'bad.public.t1.relation', 'bad.public.t1.insert',
		  'bad.transactions.commit.event' ],
		'the insert committed while bad waited is in "other"');
	($info) = pgs_js_admin($nats->url, {}, 'info', 'other');
	is_deeply($info->{config}{subjects}, [ 'other.>', 'bad.>' ],
		'the subjects of "other" are still those set by hand');
	$node->safe_psql('postgres', q{
SELECT pgoutput_stream.drop_stream('bad');
SELECT pgoutput_stream.drop_stream('w');
});
}

# ---------------------------------------------------------------------
# (c) user and password
# ---------------------------------------------------------------------
my $auth = PgsNatsUtil->new('auth',
	conf => qq{authorization { user: "pgs", password: "s3cr3t pw" }\n})->start;
my %auth = (user => 'pgs', password => 's3cr3t pw');

sub set_guc
{
	my (%settings) = @_;
	my $sql = '';

	# (a worker that crashed as it ended makes the server restart)
	$node->poll_query_until('postgres', 'SELECT true') or die 'the server is down';
	foreach my $k (sort keys %settings)
	{
		$sql .= defined $settings{$k}
		  ? "ALTER SYSTEM SET pgoutput_stream.$k = '$settings{$k}';\n"
		  : "ALTER SYSTEM RESET pgoutput_stream.$k;\n";
	}
	$node->safe_psql('postgres', $sql . 'SELECT pg_reload_conf();');
	$node->poll_query_until('postgres', 'SELECT true') or die 'the server is down';
}

# Stop a stream and start it again (the connection settings are read when
# the worker connects)
sub restart_stream
{
	my ($name) = @_;
	$node->safe_psql('postgres', "SELECT pgoutput_stream.stop_stream('$name')");
	pgs_wait_for_status($node, 'postgres', $name, "state = 'stopped' AND pid IS NULL")
	  or die "stream $name did not stop";
	# (a worker that crashed as it stopped makes the server restart)
	$node->poll_query_until('postgres', 'SELECT true') or die 'the server is down';
	$node->safe_psql('postgres', "SELECT pgoutput_stream.start_stream('$name')");
}

{
	set_guc(nats_user => 'pgs', nats_password => 's3cr3t pw');
	my $url = $auth->url;
	$node->safe_psql('postgres', qq{
SELECT pgoutput_stream.create_stream('auth', 'pub', targets => '{nats}',
  options => '{"nats_url": "$url", "subject_prefix": "auth", "nats_stream": "auth_stream"}');
});
	ok(pgs_wait_for_status($node, 'postgres', 'auth', "state = 'streaming'"),
		'stream auth connected with user and password');
	$node->safe_psql('postgres', "INSERT INTO t1 VALUES (5, 'five', 5, NULL)");
	ok(pgs_wait_delivered($node, 'postgres', 'auth'), 'stream auth delivered');
	my $dump = pgs_js_dump($url, 'auth_stream', %auth);
	is(scalar(grep { $_->{subject} eq 'auth.public.t1.insert' } @{ $dump->{msgs} }), 1,
		'the insert arrived in the JetStream stream of the server with authentication');

	# a rejected login: waiting for the target, retrying in the same
	# process.  The reload alone hands the stream over to a fresh worker
	# with the new settings.
	my $offset = pgs_log_offset($node);
	my $old_pid = pgs_status($node, 'postgres', 'auth')->{pid};
	set_guc(nats_password => 'wrong');
	ok( pgs_wait_for_status(
			$node, 'postgres', 'auth',
			"pid IS NOT NULL AND pid <> $old_pid"),
		'a reload that changes the password restarts the worker');
	ok( $node->log_contains(
			qr/stream "auth" restarts to use its new connection settings/, $offset),
		'and says so in the log');
	ok( pgs_wait_for_status(
			$node, 'postgres', 'auth',
			"state = 'waiting for target' AND last_error ~* 'authorization'"),
		'with a wrong password the stream is waiting for target, the reason in last_error');
	my $st = pgs_status($node, 'postgres', 'auth');
	note("last_error: $st->{last_error}");
	my @waits = pgs_wait_for_log($node, $offset,
		qr/^\S+ \S+ \S+ \[(\d+)\] LOG:  stream "auth" is waiting for NATS: (.*)$/, 3);
	ok(@waits >= 3, 'the worker logged three attempts');
	is_deeply([ map { $_->[0] } @waits[ 0 .. 2 ] ], [ ($st->{pid}) x 3 ],
		'all by the same process: no restart loop');
	like($waits[0][1], qr/Authorization/i, 'the log says why');
	unlike($st->{last_error} . join('', map { $_->[1] } @waits), qr/wrong/,
		'the password appears neither in last_error nor in the log');
	is(pgs_status($node, 'postgres', 'auth')->{pid}, $st->{pid}, 'still the same worker');

	# the secrets are for superusers only
	$node->safe_psql('postgres', 'CREATE ROLE plain LOGIN');
	foreach my $guc (qw(nats_password nats_user nats_url nats_token nats_tls_key_file))
	{
		my ($stdout, $stderr) = ('', '');
		$node->psql('postgres', "SET ROLE plain; SHOW pgoutput_stream.$guc",
			stdout => \$stdout, stderr => \$stderr);
		like($stderr, qr/must be superuser or have privileges of pg_read_all_settings/,
			"SHOW pgoutput_stream.$guc is refused to a plain role");
		is($stdout, '', "... and shows nothing");
	}
	is( $node->safe_psql(
			'postgres',
			q{SET ROLE plain; SELECT string_agg(name, ',') FROM pg_settings
			  WHERE name ~ '^pgoutput_stream\.nats_(url|user|password|token|creds_file|nkey|nkey_seed_file|tls_.*)$'}),
		'',
		'pg_settings hides the NATS connection settings and secrets from a plain role');

	# the right password again: a reload is enough
	set_guc(nats_password => 's3cr3t pw');
	ok(pgs_wait_for_status($node, 'postgres', 'auth', "state = 'streaming'"),
		'after the reload, the stream connects');
	$node->safe_psql('postgres', "INSERT INTO t1 VALUES (6, 'six', 6, NULL)");
	ok(pgs_wait_delivered($node, 'postgres', 'auth'), 'stream auth delivered');
	$dump = pgs_js_dump($url, 'auth_stream', %auth);
	is(scalar(grep { $_->{subject} eq 'auth.public.t1.insert' } @{ $dump->{msgs} }), 2,
		'both inserts are in JetStream, once each');
	no_problems($dump->{msgs}, 'pgs_auth',
		'auth_stream: unique ids, commit order, chained, whole transactions');
	$node->safe_psql('postgres', "SELECT pgoutput_stream.drop_stream('auth')");
	set_guc(nats_user => undef, nats_password => undef);
	$auth->stop;
}

# ---------------------------------------------------------------------
# (d) TLS
# ---------------------------------------------------------------------
{
	my $dir = PostgreSQL::Test::Utils::tempdir('tls');
	my $f = pgs_nats_tls_files($dir);
	my $tls = PgsNatsUtil->new('tls',
		conf => qq{tls {\n  cert_file: "$f->{cert}"\n  key_file: "$f->{key}"\n}\n})->start;

	# the stream s (plain server) stops first: the CA setting applies to
	# every stream that connects
	$node->safe_psql('postgres', "SELECT pgoutput_stream.stop_stream('s')");
	set_guc(nats_tls_ca_file => $f->{ca});
	my $url = $tls->url('tls');
	$node->safe_psql('postgres', qq{
SELECT pgoutput_stream.create_stream('tls', 'pub', targets => '{nats}',
  options => '{"nats_url": "$url", "subject_prefix": "tls", "nats_stream": "tls_stream"}');
});
	ok(pgs_wait_for_status($node, 'postgres', 'tls', "state = 'streaming'"),
		'stream tls connected with TLS');
	$node->safe_psql('postgres', "INSERT INTO t1 VALUES (7, 'seven', 7, NULL)");
	ok(pgs_wait_delivered($node, 'postgres', 'tls'), 'stream tls delivered');
	my $dump = pgs_js_dump($tls->url, 'tls_stream', tls_ca => $f->{ca});
	is(scalar(grep { $_->{subject} eq 'tls.public.t1.insert' } @{ $dump->{msgs} }), 1,
		'the insert arrived over TLS');
	my $connz = $tls->connz;
	my ($conn) = grep { ($_->{name} // '') eq 'pgoutput_stream tls' } @{ $connz->{connections} };
	ok($conn && $conn->{tls_version}, 'the server sees a TLS connection named after the stream')
	  or diag(explain($connz));

	# A CA that did not sign the server certificate: the reload hands
	# the stream over to a fresh worker, which waits, without a loop.
	# The worker that used TLS must end cleanly.
	my $offset = pgs_log_offset($node);
	my $old_pid = pgs_status($node, 'postgres', 'tls')->{pid};
	set_guc(nats_tls_ca_file => $f->{other_ca});
	ok( pgs_wait_for_status(
			$node, 'postgres', 'tls',
			"state = 'waiting for target' AND pid <> $old_pid"),
		'with an unrelated CA the stream is waiting for target');
	tls_exit_ok($offset, 'the worker that used TLS ended cleanly at the reload');
	my $st = pgs_status($node, 'postgres', 'tls');
	note("last_error: $st->{last_error}");
	like($st->{last_error}, qr/SSL|TLS|certificate|handshake/i, 'last_error tells the TLS failure');
	my @waits = pgs_wait_for_log($node, $offset,
		qr/^\S+ \S+ \S+ \[(\d+)\] LOG:  stream "tls" is waiting for NATS/, 2);
	is_deeply([ map { $_->[0] } @waits[ -2, -1 ] ], [ ($st->{pid}) x 2 ],
		'it retries in the same process');

	# the right CA, with a nats:// URL: the CA setting alone enables TLS
	$offset = pgs_log_offset($node);
	set_guc(nats_tls_ca_file => $f->{ca});
	ok( pgs_wait_for_status(
			$node, 'postgres', 'tls', "state = 'streaming' AND pid <> $st->{pid}"),
		'with the right CA again, the stream connects after the reload');
	ok( sql_until(
			"SELECT pgoutput_stream.stop_stream('tls')",
			q{SELECT state = 'stopped' AND pid IS NULL FROM pgoutput_stream.stream_status
			  WHERE name = 'tls'}),
		'the stream stops');
	tls_exit_ok($offset, 'the workers that used TLS ended cleanly (reload, stop_stream)');
	$node->poll_query_until('postgres', 'SELECT true');
	$node->safe_psql('postgres', qq{
SELECT pgoutput_stream.alter_stream('tls', options => '{"nats_url": "@{[ $tls->url ]}", "subject_prefix": "tls", "nats_stream": "tls_stream"}');
SELECT pgoutput_stream.start_stream('tls');
});
	ok(pgs_wait_for_status($node, 'postgres', 'tls', "state = 'streaming'"),
		'with the CA set, a nats:// URL connects with TLS');
	$node->poll_query_until('postgres', 'SELECT true');
	$node->safe_psql('postgres', "INSERT INTO t1 VALUES (8, 'eight', 8, NULL)");
	ok(pgs_wait_delivered($node, 'postgres', 'tls'), 'stream tls delivered');
	$dump = pgs_js_dump($tls->url, 'tls_stream', tls_ca => $f->{ca});
	is_deeply(
		[ map { pgs_msg_payload($_) =~ /"id":(\d+)/ ? $1 : () }
			grep { $_->{subject} eq 'tls.public.t1.insert' } @{ $dump->{msgs} } ],
		[ 7, 8 ], 'both inserts arrived over TLS, once each');
	no_problems($dump->{msgs}, 'pgs_tls',
		'tls_stream: unique ids, commit order, chained, whole transactions');

	$offset = pgs_log_offset($node);
	ok( sql_until(
			"SELECT pgoutput_stream.drop_stream('tls')",
			q{SELECT count(*) = 0 FROM pg_stat_activity WHERE application_name = 'pgoutput_stream tls'
			  UNION ALL SELECT count(*) = 0 FROM pgoutput_stream.streams WHERE name = 'tls'
			  ORDER BY 1 LIMIT 1}),
		'stream tls dropped, its worker is gone');
	set_guc(nats_tls_ca_file => undef);
	tls_exit_ok($offset, 'the worker that used TLS ended cleanly (drop_stream)');
	$tls->stop;
}

# Run $sql until the query $check returns true (at most 5 times): a worker
# that crashes as it ends (see tls_exit_ok) makes the server restart, which
# can cut the session that runs $sql.  Returns true if $check did.
sub sql_until
{
	my ($sql, $check) = @_;
	for my $attempt (1 .. 5)
	{
		my ($out, $err) = ('', '');
		$node->poll_query_until('postgres', 'SELECT true') or die 'the server is down';
		$node->psql('postgres', $sql, stdout => \$out, stderr => \$err);
		note("attempt $attempt of $sql: $err") if $err ne '';
		return 1 if $node->poll_query_until('postgres', $check);
	}
	return 0;
}

# No worker crashed since $offset of the log (a worker that used TLS once
# crashed in OPENSSL_cleanup, an exit handler, as it ended: with
# restart_after_crash = on, the server restarts).  Waits until the server
# accepts connections.
sub tls_exit_ok
{
	my ($offset, $name) = @_;
	$node->poll_query_until('postgres', 'SELECT true') or die 'the server is down';
	my @crashes = grep { /terminated by signal/ } split /\n/, slurp_file($node->logfile, $offset);
	ok(!@crashes, $name) or diag(join("\n", @crashes));
}

# restart_after_crash is on so that the test goes on after a crash; there
# must have been none
ok(!$node->log_contains(qr/terminated by signal/),
	'no process of the server crashed during the test')
  or diag(join("\n", grep { /terminated by signal/ } split /\n/, slurp_file($node->logfile)));

$node->stop;
$nats->stop;

done_testing();
