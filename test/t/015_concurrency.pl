
# Copyright (c) 2026, pgoutput_stream developers

# Concurrency, with the nats target (file storage):
#  (a) 8 streams on 8 publications (one table each), each into its own
#      JetStream stream and subject prefix, while 8 writers commit
#      transactions that touch 1 to 3 of the tables (inserts, updates,
#      deletes).  Every transaction takes a counter row last, so the
#      counter gives PostgreSQL's commit order, and logs what it did.  Each
#      JetStream stream must hold exactly its table's changes, each once,
#      transaction by transaction in that order;
#  (b) meanwhile, streams are created and dropped repeatedly (two at a time,
#      filling pgoutput_stream.max_streams, busy with a published table when
#      dropped).  The running streams lose nothing (checked by (a)), and
#      afterwards no slot, worker or registry entry of a dropped stream is
#      left: pg_replication_slots, pg_stat_activity and stream_status show
#      exactly the streams that exist;
#  (c) mid-stream changes of a stream's publication, in one session so that
#      the commit order is known: a published table DROPPED (the stream
#      goes on; consumers see the table's changes committed before the
#      DROP, and nothing for the DROP itself), the same name created again
#      and added (a new Relation event with the new relation_id), a table
#      ADDED (its changes arrive from the ALTER PUBLICATION's commit on), a
#      table REMOVED (its changes stop at that commit), checked against
#      the commit LSNs of the DDL; and changes of a table decoded only
#      after the table was dropped (stream stopped meanwhile) still arrive.
#
# Long mode (PGS_TEST_LONG=1 when prove runs directly, or "pgs_long" in
# PG_TEST_EXTRA) runs 16 create/drop cycles instead of 4, so the writers
# run about 4 times as long.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use PgsTestUtil;
use PgsNatsUtil;

my $t0 = time();
my @timings;

sub timing
{
	my ($what, $start) = @_;
	push @timings, sprintf('%s %.1f s', $what, time() - $start);
}

my $long = ($ENV{PGS_TEST_LONG} // '') eq '1'
  || ($ENV{PG_TEST_EXTRA} // '') =~ /\bpgs_long\b/;

my $nstreams = 8;
my $nchurn   = 2;                  # churn streams running at the same time
my $ncycles  = $long ? 16 : 4;     # create/drop cycles
note('mode: ' . ($long ? 'long' : 'default') . ", $ncycles create/drop cycles");

my $nats = PgsNatsUtil->new('conc')->start;

# 8 streams + 2 churn streams fill max_streams; (c) needs one more entry
# once the churn streams are gone.  Worker processes: the launcher, a
# scanner at start, 10 stream workers, and room for hand-overs.
my $node = pgs_nats_node(
	'conc', $nats, conf => <<"EOF");
max_worker_processes = 20
max_replication_slots = 16
pgoutput_stream.max_streams = @{[ $nstreams + $nchurn ]}
pgoutput_stream.nats_ack_timeout = '10s'
EOF
$node->start;

my $setup = "CREATE EXTENSION pgoutput_stream;\n";
for my $k (1 .. $nstreams)
{
	$setup .= "CREATE TABLE t$k (id bigint PRIMARY KEY, v text);\n"
	  . "CREATE PUBLICATION p$k FOR TABLE t$k;\n";
}
$node->safe_psql('postgres', $setup . q{
CREATE TABLE ctl (n bigint NOT NULL);           -- in no publication
INSERT INTO ctl VALUES (0);
CREATE TABLE stopflag (stop boolean NOT NULL);
INSERT INTO stopflag VALUES (false);
CREATE TABLE txlog (n bigint PRIMARY KEY, xid text, w int, i int, acts text[]);

-- One transaction of writer w: rows of 1 to 3 of the tables t1..t8
-- (ids w * 10^7 + i * 10 + j), an update of an older row of the writer
-- every 4th transaction, a delete every 5th.  Last, it takes the counter
-- row: the lock makes the counter order the commit order.  txlog records
-- what it did, as "t<k> <op> <id> [<v>]".
CREATE FUNCTION work(w int, i int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
	acts text[] := '{}';
	nt int := 1 + (w * 7 + i) % 3;
	t int;
	id bigint;
	r bigint;
	v text;
	cnt bigint;
BEGIN
	FOR j IN 0 .. nt - 1 LOOP
		t := (w + i * 3 + j * 5) % 8 + 1;
		id := w::bigint * 10000000 + i * 10 + j;
		v := format('%s/%s/%s', w, i, j);
		EXECUTE format('INSERT INTO t%s VALUES ($1, $2)', t) USING id, v;
		acts := acts || format('t%s insert %s %s', t, id, v);
		IF i % 4 = 0 THEN
			v := format('upd %s/%s', w, i);
			EXECUTE format('UPDATE t%s SET v = $2 WHERE id = (SELECT max(id) FROM t%s
			                WHERE id / 10000000 = $1 AND id < $3) RETURNING id', t, t)
			  USING w, v, id INTO r;
			IF r IS NOT NULL THEN
				acts := acts || format('t%s update %s %s', t, r, v);
			END IF;
		END IF;
		IF i % 5 = 0 THEN
			EXECUTE format('DELETE FROM t%s WHERE id = (SELECT min(id) FROM t%s
			                WHERE id / 10000000 = $1) RETURNING id', t, t)
			  USING w INTO r;
			IF r IS NOT NULL THEN
				acts := acts || format('t%s delete %s', t, r);
			END IF;
		END IF;
	END LOOP;
	UPDATE ctl SET n = n + 1 RETURNING n INTO cnt;
	INSERT INTO txlog VALUES (cnt, (txid_current() % 4294967296)::text, w, i, acts);
END $$;

-- Writer w: one transaction after the other until stopflag is set (at most
-- 20000)
CREATE PROCEDURE writer(w int) LANGUAGE plpgsql AS $$
DECLARE
	i int := 0;
BEGIN
	LOOP
		i := i + 1;
		PERFORM work(w, i);
		COMMIT;
		EXIT WHEN (SELECT stop FROM stopflag) OR i >= 20000;
		PERFORM pg_sleep(0.01);
	END LOOP;
END $$;
});

# The slots and stream workers that exist, as "name,name,..."
sub slots
{
	return $node->safe_psql('postgres',
		"SELECT string_agg(slot_name, ',' ORDER BY slot_name) FROM pg_replication_slots");
}

sub workers
{
	return $node->safe_psql('postgres', q{
		SELECT string_agg(application_name, ',' ORDER BY application_name)
		FROM pg_stat_activity WHERE backend_type = 'pgoutput_stream worker'});
}

# Create stream $name on $pub into its own JetStream stream $name (subject
# prefix $name) and wait until it streams
sub create_stream
{
	my ($name, $pub) = @_;
	$node->safe_psql('postgres',
		"SELECT pgoutput_stream.create_stream('$name', '$pub', targets => '{nats}',
		   options => '{\"subject_prefix\": \"$name\", \"nats_stream\": \"$name\"}')");
}

# ---------------------------------------------------------------------
# (a) 8 streams, 8 writers
# ---------------------------------------------------------------------
my $start = time();
create_stream("c$_", "p$_") for 1 .. $nstreams;
for my $k (1 .. $nstreams)
{
	ok(pgs_wait_for_status($node, 'postgres', "c$k", "state = 'streaming' AND pid IS NOT NULL"),
		"stream c$k is streaming");
}
my %pid0 = map { ($_ => pgs_status($node, 'postgres', "c$_")->{pid}) } 1 .. $nstreams;

# The writers: one psql each
my @writers;
foreach my $w (1 .. 8)
{
	my ($out, $err) = ('', '');
	push @writers,
	  {
		w => $w, out => \$out, err => \$err,
		h => IPC::Run::start(
			[ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('postgres'),
			  '-c', "CALL writer($w)" ],
			'<', \undef, '>', \$out, '2>', \$err,
			IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default * 3))
	  };
}

# ---------------------------------------------------------------------
# (b) meanwhile: create and drop streams, two at a time, on p1 (busy)
# ---------------------------------------------------------------------
my $txlog_count = sub {
	return $node->safe_psql('postgres', 'SELECT count(*) FROM txlog');
};
ok(pgs_wait_until(sub { $txlog_count->() >= 50 }, 'the writers to commit 50 transactions'),
	'(a) the writers are committing');

my %churn_slots;
my @churn_names;
for my $cycle (1 .. $ncycles)
{
	my @names = map { "x${cycle}_$_" } 1 .. $nchurn;
	push @churn_names, @names;
	my ($rc, $out, $err) = $node->psql('postgres',
		join('', map { "SELECT pgoutput_stream.create_stream('$_', 'p1', targets => '{nats}',
		   options => '{\"subject_prefix\": \"$_\", \"nats_stream\": \"$_\"}');\n" } @names));
	is($rc, 0, "(b) cycle $cycle: created @names while 8 streams run (max_streams is full)")
	  or diag($err);
	foreach my $name (@names)
	{
		# busy: it published something of p1
		ok( pgs_wait_until(
				sub {
					my $st = pgs_js_stream_state($nats, $name);
					return $st && $st->{messages} > 0;
				},
				"stream $name to publish"),
			"(b) cycle $cycle: $name streams");
	}
	$node->safe_psql('postgres',
		join('', map { "SELECT pgoutput_stream.drop_stream('$_');\n" } @names));
	foreach my $name (@names)
	{
		ok( $node->poll_query_until(
				'postgres', qq{
SELECT count(*) = 0 FROM pg_stat_activity
WHERE backend_type = 'pgoutput_stream worker' AND application_name = 'pgoutput_stream $name'}),
			"(b) cycle $cycle: the worker of $name is gone");
	}
}
my $during = $txlog_count->();

$node->safe_psql('postgres', 'UPDATE stopflag SET stop = true');
foreach my $wr (@writers)
{
	my $finished = eval { $wr->{h}->finish; 1 };
	my $err = $@;
	if (!$finished)
	{
		$wr->{h}->kill_kill;
		$err = "timed out: $err";
	}
	is($finished ? $wr->{h}->result(0) : -1, 0, "(a) writer $wr->{w} ended without error")
	  or diag("writer $wr->{w}: $err ${ $wr->{err} }");
}
my $ntx = $txlog_count->();
note("(a) $ntx transactions committed by 8 writers, $during of them while the churn ran");
timing('(a)+(b) writes and churn', $start);

# ---------------------------------------------------------------------
# (b) afterwards: nothing of the dropped streams is left
# ---------------------------------------------------------------------
my @expected_slots = map { "pgs_c$_" } 1 .. $nstreams;
is(slots(), join(',', sort @expected_slots), '(b) pg_replication_slots: only the slots of the 8 streams');
ok( $node->poll_query_until(
		'postgres', q{
SELECT count(*) = 8 FROM pg_stat_activity WHERE backend_type = 'pgoutput_stream worker'}),
	'(b) 8 stream workers run');
is(workers(), join(',', sort map { "pgoutput_stream c$_" } 1 .. $nstreams),
	'(b) pg_stat_activity: exactly the workers of the 8 streams');
is( $node->safe_psql(
		'postgres', 'SELECT string_agg(name, \',\' ORDER BY name) FROM pgoutput_stream.stream_status'),
	join(',', map { "c$_" } 1 .. $nstreams),
	'(b) stream_status: only the 8 streams');
is_deeply(
	{ map { ($_ => pgs_status($node, 'postgres', "c$_")->{pid}) } 1 .. $nstreams },
	\%pid0, '(b) the 8 workers never restarted');

# ---------------------------------------------------------------------
# (a) every JetStream stream holds exactly its table's changes
# ---------------------------------------------------------------------
$start = time();
for my $k (1 .. $nstreams)
{
	ok(pgs_wait_delivered($node, 'postgres', "c$k", 300), "(a) stream c$k delivered everything");
}

# What PostgreSQL committed, in commit order: per table, the transactions
# that touched it as [xid, [op id v, ...]]
my %expected;
my %xid_of_n;
foreach my $row (split /\n/, $node->safe_psql('postgres',
	"SELECT n, xid, array_to_string(acts, ';') FROM txlog ORDER BY n"))
{
	my ($n, $xid, $acts) = split /\|/, $row, 3;
	my %per_table;
	foreach my $a (split /;/, $acts)
	{
		my ($t, $rest) = split / /, $a, 2;
		push @{ $per_table{$t} }, $rest;
	}
	push @{ $expected{$_} }, "B $xid", @{ $per_table{$_} }, "C $xid" for sort keys %per_table;
}

# The same from the messages of a JetStream stream
sub events_of
{
	my ($msgs) = @_;
	my @ev;
	foreach my $m (@$msgs)
	{
		my $op = $m->{headers}{'Pg-Operation'};
		my $xid = $m->{headers}{'Pg-Xid'} // '?';
		if ($op eq 'begin') { push @ev, "B $xid"; next; }
		if ($op eq 'commit') { push @ev, "C $xid"; next; }
		next if $op eq 'relation';
		my (undef, $j) = pgs_msg_payload($m);
		my ($body) = values %{ $j // {} };
		if ($op eq 'insert' || $op eq 'update')
		{
			push @ev, "$op $body->{new_tuple}{id} $body->{new_tuple}{v}";
		}
		elsif ($op eq 'delete')
		{
			push @ev, "delete $body->{old_tuple}{id}";
		}
		else
		{
			push @ev, "unexpected $op";
		}
	}
	return @ev;
}

my $nmsgs = 0;
for my $k (1 .. $nstreams)
{
	my $dump = pgs_js_dump($nats->url, "c$k");
	$nmsgs += $dump->{count};
	is($dump->{count}, $dump->{last_seq}, "(a) c$k: every message read");
	my @p = pgs_js_problems($dump->{msgs}, "pgs_c$k");
	ok(!@p, "(a) c$k: ids unique, commit order, chained, whole transactions")
	  or diag(join("\n", @p[ 0 .. ($#p > 9 ? 9 : $#p) ]));
	my @got = events_of($dump->{msgs});
	my $want = $expected{"t$k"} // [];
	cmp_ok(scalar(@$want), '>=', 100, "(a) t$k had changes to stream");
	my $i = 0;
	$i++ while $i < @got && $i < @$want && $got[$i] eq $want->[$i];
	ok(@got == @$want && $i == @got,
		"(a) c$k: exactly the changes of t$k, once, in commit order ("
		  . scalar(@$want) . ' events)')
	  or diag("first difference at event $i: got "
		  . ($got[$i] // '(end)') . ', expected ' . ($want->[$i] // '(end)')
		  . ' (' . scalar(@got) . ' vs ' . scalar(@$want) . ' events)');
	my @subjects = grep { $_ !~ /^c$k\.(transactions\.(begin|commit)\.event|public\.t$k\.(insert|update|delete|relation))\z/ }
	  map { $_->{subject} } @{ $dump->{msgs} };
	is_deeply(\@subjects, [], "(a) c$k: only subjects under c$k. of table t$k");
}
note("(a) $nmsgs messages in the 8 JetStream streams");

# The streams of (b): what they stored is a run of consecutive transactions
# of p1 (the last one may be cut short by the drop), chained, without
# duplicates
my $c1 = pgs_js_dump($nats->url, 'c1');
my @c1_events = events_of($c1->{msgs});
foreach my $name (@churn_names)
{
	my $dump = pgs_js_dump($nats->url, $name);
	# (the drop may have cut the last transaction short)
	my ($last_lsn) = reverse map { (pgs_msg_id_parts($_->{id}))[1] // () } @{ $dump->{msgs} };
	my @p = grep { !/^commit LSN \Q$last_lsn\E: ends with \w+, not commit\z/ }
	  pgs_js_problems($dump->{msgs}, "pgs_$name");
	my @ev = events_of($dump->{msgs});
	# find the first Begin of the churn stream in c1, then compare
	my $first = (grep { $c1_events[$_] eq ($ev[0] // '') } 0 .. $#c1_events)[0];
	my $i = 0;
	$i++ while defined $first && $i < @ev && ($c1_events[ $first + $i ] // '') eq $ev[$i];
	ok(!@p && defined $first && $i == @ev,
		"(b) $name: " . scalar(@ev) . ' events, a run of consecutive transactions of c1, chained, no duplicates')
	  or diag(join("\n", @p, "matched $i of " . scalar(@ev) . ' events, from '
		. ($ev[0] // '(none)')));
}
timing('(a)+(b) checks', $start);

# ---------------------------------------------------------------------
# (c) the publication changes while the stream runs
# ---------------------------------------------------------------------
$start = time();
$node->safe_psql(
	'postgres', q{
CREATE TABLE d1 (id int PRIMARY KEY);
CREATE TABLE d2 (id int PRIMARY KEY);
CREATE TABLE d3 (id int PRIMARY KEY);
CREATE TABLE d4 (id int PRIMARY KEY);
CREATE TABLE d6 (id int PRIMARY KEY);
CREATE PUBLICATION p_ddl FOR TABLE d1, d2, d3, d6;
});
create_stream('ddl', 'p_ddl');
ok(pgs_wait_for_status($node, 'postgres', 'ddl', "state = 'streaming' AND pid IS NOT NULL"),
	'(c) stream ddl is streaming');
my $pid_ddl = pgs_status($node, 'postgres', 'ddl')->{pid};
my $relid_d3_old = $node->safe_psql('postgres', "SELECT 'd3'::regclass::oid");

# Run $sql (one transaction) and return the WAL position after its commit
sub commit_lsn_after
{
	my ($sql) = @_;
	return $node->safe_psql('postgres', "$sql;\nSELECT pg_current_wal_lsn();");
}

my %lsn;
$lsn{start} = $node->safe_psql('postgres', 'SELECT pg_current_wal_lsn()');
commit_lsn_after('BEGIN; INSERT INTO d1 VALUES (1); INSERT INTO d2 VALUES (1); INSERT INTO d3 VALUES (1); COMMIT');
$lsn{drop} = commit_lsn_after('DROP TABLE d3');
commit_lsn_after('BEGIN; INSERT INTO d1 VALUES (2); INSERT INTO d2 VALUES (2); COMMIT');
$lsn{before_add} = commit_lsn_after('INSERT INTO d4 VALUES (1)');
$lsn{add} = commit_lsn_after('ALTER PUBLICATION p_ddl ADD TABLE d4');
commit_lsn_after('BEGIN; INSERT INTO d4 VALUES (2); INSERT INTO d1 VALUES (3); COMMIT');
$lsn{remove} = commit_lsn_after('ALTER PUBLICATION p_ddl DROP TABLE d2');
commit_lsn_after('BEGIN; INSERT INTO d2 VALUES (3); INSERT INTO d1 VALUES (4); COMMIT');
commit_lsn_after('INSERT INTO d2 VALUES (4)');
# the dropped name again: a new table, added to the publication
commit_lsn_after('CREATE TABLE d3 (id int PRIMARY KEY, extra text)');
$lsn{readd} = commit_lsn_after('ALTER PUBLICATION p_ddl ADD TABLE d3');
commit_lsn_after("INSERT INTO d3 VALUES (10, 'new')");
ok(pgs_wait_delivered($node, 'postgres', 'ddl'), '(c) the stream delivered the changes after the DDL');
my $st = pgs_status($node, 'postgres', 'ddl');
is($st->{state} . ' ' . $st->{pid}, "streaming $pid_ddl",
	'(c) the stream kept streaming with the same worker through DROP TABLE and ALTER PUBLICATION');

# Changes of a table that is dropped before the stream decodes them
$node->safe_psql('postgres', "SELECT pgoutput_stream.stop_stream('ddl')");
ok(pgs_wait_for_status($node, 'postgres', 'ddl', "state = 'stopped' AND pid IS NULL"),
	'(c) stream ddl stopped');
commit_lsn_after('BEGIN; INSERT INTO d1 VALUES (6); INSERT INTO d6 VALUES (1); COMMIT');
$lsn{drop6} = commit_lsn_after('DROP TABLE d6');
commit_lsn_after('INSERT INTO d1 VALUES (7)');
$node->safe_psql('postgres', "SELECT pgoutput_stream.start_stream('ddl')");
ok(pgs_wait_for_status($node, 'postgres', 'ddl', "state = 'streaming' AND pid IS NOT NULL"),
	'(c) stream ddl streams again');
ok(pgs_wait_delivered($node, 'postgres', 'ddl'), '(c) and delivered the changes made meanwhile');

my $dump = pgs_js_dump($nats->url, 'ddl');
my @msgs = grep { pgs_lsn_num($_->{headers}{'Pg-Commit-Lsn'}) > pgs_lsn_num($lsn{start}) }
  @{ $dump->{msgs} };
my @p = pgs_js_problems($dump->{msgs}, 'pgs_ddl');
ok(!@p, '(c) ids unique, commit order, chained, whole transactions') or diag(join("\n", @p));

# The events, each as "<table> <op> <id>" (relation events as
# "<table> relation"), transactions as "B" ... "C"
my @got;
foreach my $m (@msgs)
{
	my $op = $m->{headers}{'Pg-Operation'};
	if ($op eq 'begin' || $op eq 'commit') { push @got, $op eq 'begin' ? 'B' : 'C'; next; }
	my $table = $m->{headers}{'Pg-Table'};
	if ($op eq 'relation') { push @got, "$table relation"; next; }
	my (undef, $j) = pgs_msg_payload($m);
	push @got, "$table $op $j->{Insert}{new_tuple}{id}";
}
is_deeply(
	\@got,
	[
		'B', 'd1 relation', 'd1 insert 1', 'd2 relation', 'd2 insert 1', 'd3 relation', 'd3 insert 1', 'C',
		'B', 'd1 insert 2', 'd2 insert 2', 'C',
		# d4 (1) was committed before d4 was added: nothing
		'B', 'd4 relation', 'd4 insert 2', 'd1 insert 3', 'C',
		# d2 removed: its row 3 is left out, its row 4 makes no transaction
		'B', 'd1 insert 4', 'C',
		'B', 'd3 relation', 'd3 insert 10', 'C',
		# decoded after the stream restarted, d6 dropped meanwhile
		'B', 'd1 relation', 'd1 insert 6', 'd6 relation', 'd6 insert 1', 'C',
		'B', 'd1 insert 7', 'C',
	],
	'(c) exactly the expected events: the dropped table up to its DROP, '
	  . 'the added table from its ALTER PUBLICATION on, the removed one up to its ALTER PUBLICATION')
  or diag(join("\n", @got));

# The boundaries, against the commit LSNs of the DDL
my $commit_of = sub { pgs_lsn_num($_[0]->{headers}{'Pg-Commit-Lsn'}) };
my $on = sub {
	my ($table) = @_;
	return grep { ($_->{headers}{'Pg-Table'} // '') eq $table && $_->{headers}{'Pg-Operation'} ne 'relation' }
	  @msgs;
};
my @d4 = $on->('d4');
ok(@d4 && !grep({ $commit_of->($_) <= pgs_lsn_num($lsn{add}) } @d4),
	"(c) every change of d4 committed after ALTER PUBLICATION ... ADD TABLE d4 ($lsn{add})");
my @d2 = $on->('d2');
ok(@d2 == 2 && !grep({ $commit_of->($_) >= pgs_lsn_num($lsn{remove}) } @d2),
	"(c) every change of d2 committed before ALTER PUBLICATION ... DROP TABLE d2 ($lsn{remove})");
my @d3 = $on->('d3');
ok( @d3 == 2
	  && $commit_of->($d3[0]) < pgs_lsn_num($lsn{drop})
	  && $commit_of->($d3[1]) > pgs_lsn_num($lsn{readd}),
	"(c) d3: its change before DROP TABLE ($lsn{drop}), then the new d3's after it was added ($lsn{readd})");
my @d6 = $on->('d6');
ok(@d6 == 1 && $commit_of->($d6[0]) < pgs_lsn_num($lsn{drop6}),
	"(c) d6: the change committed before DROP TABLE d6 ($lsn{drop6}) arrives although decoded after it");

# The Relation events of the two tables named d3
my @rel_d3 = map { scalar((pgs_msg_payload($_))[1]) }
  grep { ($_->{headers}{'Pg-Table'} // '') eq 'd3' && $_->{headers}{'Pg-Operation'} eq 'relation' } @msgs;
is(scalar(@rel_d3), 2, '(c) two Relation events for d3');
my $relid_d3_new = $node->safe_psql('postgres', "SELECT 'd3'::regclass::oid");
is_deeply(
	[ map { [ $_->{Relation}{relation_id}, join(',', map { $_->{name} } @{ $_->{Relation}{columns} }) ] } @rel_d3 ],
	[ [ $relid_d3_old, 'id' ], [ $relid_d3_new, 'id,extra' ] ],
	'(c) the new d3 comes with its own relation_id and columns');
is( $node->safe_psql('postgres',
		"SELECT string_agg(name, ',' ORDER BY name) FROM pgoutput_stream.stream_status WHERE state = 'streaming'"),
	join(',', (map { "c$_" } 1 .. $nstreams), 'ddl'),
	'(c) all 9 streams are streaming at the end');
timing('(c)', $start);

note('timings: ' . join(', ', @timings) . sprintf(', total %.1f s', time() - $t0));
$node->stop;
$nats->stop;
done_testing();
