
# Copyright (c) 2026, pgoutput_stream developers

# Crash matrix under a continuous workload, with two streams running at
# once: one to NATS JetStream (exactly once, chained message ids) and one
# to the fake Feldera server (at-least-once into tables with primary keys).
#
# Two background writers run multi-statement transactions (inserts, updates,
# key updates, deletes, the odd large insert) over three published tables
# for the whole test.  Every row change is also recorded, in the same
# transaction, by a trigger into an unpublished ledger table, and every
# transaction into a per-writer log numbered 1, 2, 3, ... without gaps.
# Meanwhile, in a random (seeded) order and at random moments:
#
#   worker   a stream worker (the NATS one, the Feldera one, or both)
#            killed with SIGKILL: a crash restart of the whole server
#   pgstop   pg_ctl stop -m immediate, then start
#   nats     nats-server killed with SIGKILL, started again on the same
#            port with the same store directory
#   feldera  the fake Feldera killed with SIGKILL, started again on the same
#            port with its state file (it keeps its tables, as a Feldera
#            pipeline does across a connector reconnect); half of these
#            kills happen while the fake holds requests (pause), and then
#            its state file must hold exactly the tables it acknowledged
#
# Default: 10 / 2 / 2 / 2 faults.  PGS_TEST_LONG=1: 50 / 10 / 10 / 10.
# PGS_TEST_SEED=N replays the fault plan (kinds, order, delays) of a run;
# the seed is printed at the start and, on failure, with the fault sequence.
# test/run-tests.sh passes both through to the tests, e.g.
#   PGS_TEST_LONG=1 PGS_TEST_SEED=123 test/run-tests.sh REGRESS= \
#     PROVE_TESTS=test/t/013_crash_matrix.pl
#
# Afterwards, once both streams confirmed the end of WAL:
#   - JetStream holds every change of every committed transaction exactly
#     once: the same transactions (by xid), each with the same changes in
#     the same order as the ledger, per-table and per-operation counts equal,
#     no Nats-Msg-Id twice, in commit order, chained, whole transactions
#     (pgs_js_problems), and each writer's transactions in its order;
#   - the fake's tables equal PostgreSQL's, row for row, with no contract
#     violation;
#   - no process crashed other than by our SIGKILLs, no stream failed.
# A note line per fault kind gives the count and the time to recover: from
# the fault until both streams (and each of them) confirmed everything
# committed up to the moment the faulty component was back.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";

use IPC::Run;
use JSON::PP;
use POSIX qw(WNOHANG);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use PgsTestUtil;
use PgsNatsUtil;
use PgsFelderaUtil;

my $t_start = time();
my $long = $ENV{PGS_TEST_LONG} ? 1 : 0;
my $seed = $ENV{PGS_TEST_SEED} // (int(time() * 1000) ^ $$) % 1_000_000_000;
note("crash matrix: seed $seed (reproduce with PGS_TEST_SEED=$seed)"
	  . ($long ? ', long mode' : ', default mode (PGS_TEST_LONG=1 for the long one)'));
srand($seed);

my %plan_count = $long
  ? (worker => 50, pgstop => 10, nats => 10, feldera => 10)
  : (worker => 10, pgstop => 2, nats => 2, feldera => 2);
# random delay before each fault, and downtime of a killed sink (seconds)
my ($delay_min, $delay_max) = (0.05, $long ? 6.0 : 2.0);
my $downtime_max = 1.5;
# seconds a fault may take to recover from (CPU is shared with other tests)
my $recover_timeout = 4 * $PostgreSQL::Test::Utils::timeout_default;

my $writers = 2;
# transactions per psql call of a writer, and the pause after each call
# (rate limiting of the workload, not a wait for anything; longer in long
# mode, to keep the JetStream stream to read at the end within reach)
my ($batch_txns, $writer_pause) = (5, $long ? 0.6 : 0.15);

# ---------------------------------------------------------------------
# NATS, the fake Feldera, PostgreSQL, two streams
# ---------------------------------------------------------------------
my $nats = PgsNatsUtil->new('m013')->start;
my $fake = PgsFelderaUtil->new('f013');
$fake->start;

my $node = pgs_nats_node(
	'main', $nats, conf => "restart_after_crash = on
pgoutput_stream.feldera_url = '" . $fake->url . "'
pgoutput_stream.feldera_max_retry_delay = '500ms'
pgoutput_stream.feldera_connect_timeout = '1s'
pgoutput_stream.feldera_request_timeout = '10s'
log_statement = none
");
$node->start;

my @tables = qw(t1 t2 t3);
my @specs = map {
	pgs_feldera_spec("public.$_", key => ['id'],
		columns => [
			[ id => 'bigint', 'BIGINT',  'int',  0 ],
			[ w  => 'int',    'INT',     'int' ],
			[ n  => 'bigint', 'BIGINT',  'int' ],
			[ k  => 'int',    'INT',     'int' ],
			[ v  => 'text',   'VARCHAR', 'text' ],
		])
} @tables;

$node->safe_psql('postgres',
	"CREATE EXTENSION pgoutput_stream;\n"
	  . join('', map { pgs_feldera_ddl($_) } @specs) . q{
-- one row per committed transaction of a writer: w, n = 1, 2, 3, ...
CREATE TABLE txlog (w int, n bigint, xid bigint NOT NULL, PRIMARY KEY (w, n));
-- every row change of the published tables, in the order they were made
CREATE TABLE changes (seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  xid bigint NOT NULL, tbl text NOT NULL, op text NOT NULL, id bigint NOT NULL,
  old_id bigint, n bigint, k int);
CREATE FUNCTION log_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    INSERT INTO changes (xid, tbl, op, id)
      VALUES (pg_current_xact_id()::text::bigint % 4294967296, TG_TABLE_NAME, 'delete', OLD.id);
  ELSIF TG_OP = 'UPDATE' THEN
    INSERT INTO changes (xid, tbl, op, id, old_id, n, k)
      VALUES (pg_current_xact_id()::text::bigint % 4294967296, TG_TABLE_NAME, 'update', NEW.id, OLD.id, NEW.n, NEW.k);
  ELSE
    INSERT INTO changes (xid, tbl, op, id, n, k)
      VALUES (pg_current_xact_id()::text::bigint % 4294967296, TG_TABLE_NAME, 'insert', NEW.id, NEW.n, NEW.k);
  END IF;
  RETURN NULL;
END $$;
}
	  . join('',
		map { "CREATE TRIGGER log_$_ AFTER INSERT OR UPDATE OR DELETE ON $_ FOR EACH ROW EXECUTE FUNCTION log_change();\n" }
		  @tables)
	  . "CREATE PUBLICATION pub_cm FOR TABLE " . join(', ', @tables) . ";\n");

$fake->declare('cm', [ map { pgs_feldera_decl($_) } @specs ]);
$node->safe_psql('postgres', q{
SELECT pgoutput_stream.create_stream('s_nats', 'pub_cm', targets => '{nats}',
  options => '{"subject_prefix": "cm", "nats_stream": "cm"}');
SELECT pgoutput_stream.create_stream('s_feld', 'pub_cm', targets => '{feldera}',
  options => '{"feldera_pipeline": "cm"}');
});
my %stream_of = (nats => 's_nats', feldera => 's_feld');
foreach my $s (sort values %stream_of)
{
	ok(pgs_wait_for_status($node, 'postgres', $s, "state = 'streaming' AND pid IS NOT NULL"),
		"stream $s is streaming");
}

# ---------------------------------------------------------------------
# The workload: forked writers, each running its transactions one after
# the other through psql.  After a failure (crash restart, immediate
# shutdown), a writer waits for the server, reads in txlog which of its
# transactions committed, and goes on with the next number.
# ---------------------------------------------------------------------

# The SQL of transaction $n of writer $w
sub txn_sql
{
	my ($w, $n) = @_;
	my $sql = "BEGIN;\nINSERT INTO txlog VALUES ($w, $n, pg_current_xact_id()::text::bigint % 4294967296);\n";
	my $stmts = 1 + int(rand(4));
	for my $k (0 .. $stmts - 1)
	{
		my $t = $tables[ int(rand(@tables)) ];
		my $r = rand();
		# ids: w * 10^12 + n * 1000 + k * 100 + j, unique per insert
		my $base = $w * 1_000_000_000_000 + $n * 1000 + $k * 100;
		if ($r < 0.02)
		{
			my $rows = 20 + int(rand(40));
			$sql .= "INSERT INTO $t SELECT $base + j, $w, $n, $k, 'big ' || j FROM generate_series(0, $rows - 1) j;\n";
		}
		elsif ($r < 0.45)
		{
			my $rows = 1 + int(rand(3));
			$sql .= "INSERT INTO $t SELECT $base + j, $w, $n, $k, 'ins ' || j FROM generate_series(0, $rows - 1) j;\n";
		}
		elsif ($r < 0.75)
		{
			my ($off, $rows) = (int(rand(30)), 1 + int(rand(2)));
			$sql .= "UPDATE $t SET n = $n, k = $k, v = left(v, 20) || '+' WHERE id IN "
			  . "(SELECT id FROM $t WHERE w = $w ORDER BY id DESC OFFSET $off LIMIT $rows);\n";
		}
		elsif ($r < 0.82)
		{
			# a change of the primary key
			my $off = int(rand(30));
			$sql .= "UPDATE $t SET id = -id, n = $n, k = $k WHERE id = "
			  . "(SELECT id FROM $t WHERE w = $w AND id > 0 ORDER BY id DESC OFFSET $off LIMIT 1);\n";
		}
		else
		{
			# one row, and the oldest ones beyond 120 rows of the writer
			my $off = int(rand(30));
			$sql .= "DELETE FROM $t WHERE id IN (SELECT id FROM $t WHERE w = $w ORDER BY id DESC OFFSET $off LIMIT 1)"
			  . " OR id IN (SELECT id FROM $t WHERE w = $w ORDER BY id"
			  . " LIMIT greatest(0, (SELECT count(*) FROM $t WHERE w = $w) - 120));\n";
		}
	}
	return $sql . "COMMIT;\n";
}

my $connstr = $node->connstr('postgres');

# psql in a writer: (ok, stdout, stderr)
sub writer_psql
{
	my ($sql) = @_;
	my ($out, $err) = ('', '');
	my $ok = eval {
		IPC::Run::run([ 'psql', '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-d', $connstr, '-f', '-' ],
			'<', \$sql, '>', \$out, '2>', \$err, IPC::Run::timeout(120));
	};
	$err .= $@ if $@;
	return ($ok, $out, $err);
}

# The body of writer $w (a forked process: no TAP output, leaves with
# POSIX::_exit).  Exit codes: 0 stopped by SIGTERM, 2 the server did not
# come back, 3 the same transaction failed again and again.
sub writer_main
{
	my ($w) = @_;
	srand($seed * 10 + $w);
	my $logfile = "$PostgreSQL::Test::Utils::log_path/writer_$w.log";
	open my $log, '>>', $logfile or POSIX::_exit(4);
	$log->autoflush(1);
	my $stop = 0;
	$SIG{TERM} = sub { $stop = 1 };

	my $committed = sub {
		my $deadline = time() + $recover_timeout;
		while (time() < $deadline)
		{
			my ($ok, $out, $err) = writer_psql("SELECT coalesce(max(n), 0) FROM txlog WHERE w = $w");
			return $1 if $ok && $out =~ /^(\d+)$/m;
			usleep(200_000);    # poll for the server
		}
		return undef;
	};

	my $n = $committed->() // POSIX::_exit(2);
	$n++;
	my ($fail_n, $fails, $batches, $failed_batches) = (0, 0, 0, 0);
	while (!$stop)
	{
		my $sql = join('', map { txn_sql($w, $n + $_) } 0 .. $batch_txns - 1);
		my ($ok, $out, $err) = writer_psql($sql);
		if ($ok)
		{
			$n += $batch_txns;
			$batches++;
		}
		else
		{
			$failed_batches++;
			$err =~ s/\s+$//;
			printf $log "%.3f writer %d: batch from transaction %d failed: %s\n", time(), $w, $n, $err;
			my $c = $committed->();
			if (!defined $c)
			{
				printf $log "%.3f writer %d: the server did not come back\n", time(), $w;
				POSIX::_exit(2);
			}
			printf $log "%.3f writer %d: %d transactions committed, going on\n", time(), $w, $c;
			if ($c + 1 == $fail_n)
			{
				POSIX::_exit(3) if ++$fails >= 100;
			}
			else
			{
				($fail_n, $fails) = ($c + 1, 1);
			}
			$n = $c + 1;
			next;
		}
		usleep($writer_pause * 1e6);
	}
	printf $log "%.3f writer %d: stopped after transaction %d, %d batches, %d failed\n", time(), $w, $n - 1,
	  $batches, $failed_batches;
	close $log;
	POSIX::_exit(0);
}

my %writer_pid;
for my $w (1 .. $writers)
{
	my $pid = fork();
	die "fork failed: $!" unless defined $pid;
	if ($pid == 0)
	{
		eval { writer_main($w); };
		print STDERR "writer $w died: $@";
		POSIX::_exit(5);
	}
	$writer_pid{$w} = $pid;
}

# Make sure the writers are ended if the test dies
END
{
	foreach my $pid (values %writer_pid)
	{
		kill('KILL', $pid);
		waitpid($pid, 0);
	}
}

# The output of a query, '' if it failed: the server may be in a crash
# restart (then psql may even exit before it reads the query, and IPC::Run
# dies of the broken pipe)
sub query
{
	my ($sql) = @_;
	my ($out, $err) = ('', '');
	eval { $node->psql('postgres', $sql, stdout => \$out, stderr => \$err, timeout => 30); 1 }
	  or return '';
	return $out;
}

sub committed_txns
{
	my $out = query('SELECT count(*) FROM txlog');
	return $out =~ /^(\d+)$/ ? $1 : undef;
}

ok(pgs_wait_until(sub { (committed_txns() // 0) >= 20 }, 'the writers to commit 20 transactions', 60),
	'the workload runs');

# ---------------------------------------------------------------------
# Recovery tracking: a fault is recovered when both streams confirmed
# (slot confirmed_flush_lsn, as stream_status shows it) the WAL position
# taken once the faulty component was back
# ---------------------------------------------------------------------
my @faults;      # { kind, detail, t_fault, t_back, lsn_back, recovered }
my @sequence;    # text of each fault, for the report

sub lsn_num { return pgs_lsn_num($_[0]); }

# One look at the server: (current WAL LSN, confirmed LSN of s_nats, of
# s_feld), or () if it does not answer
sub positions
{
	my $out = query(
		q{SELECT pg_current_wal_lsn(),
		         (SELECT confirmed_lsn FROM pgoutput_stream.stream_status WHERE name = 's_nats'),
		         (SELECT confirmed_lsn FROM pgoutput_stream.stream_status WHERE name = 's_feld')});
	return () unless $out =~ m{^([0-9A-F]+/[0-9A-F]+)\|([0-9A-F/]*)\|([0-9A-F/]*)$};
	return ($1, $2, $3);
}

# Resolve the faults whose recovery is now visible
sub track
{
	my @open = grep { !defined $_->{recovered} } @faults;
	return 1 unless @open;
	my ($cur, $cn, $cf) = positions() or return 0;
	my $now = time();
	foreach my $f (@open)
	{
		$f->{lsn_back} //= $cur if defined $f->{t_back};
		next unless defined $f->{lsn_back};
		$f->{rec_nats} //= $now if $cn ne '' && lsn_num($cn) >= lsn_num($f->{lsn_back});
		$f->{rec_feld} //= $now if $cf ne '' && lsn_num($cf) >= lsn_num($f->{lsn_back});
		$f->{recovered} = $now if defined $f->{rec_nats} && defined $f->{rec_feld};
	}
	return !grep { !defined $_->{recovered} } @faults;
}

# Sleep $seconds on purpose (the random delay between faults), tracking
# recoveries meanwhile
sub deliberate_delay
{
	my ($seconds) = @_;
	my $end = time() + $seconds;
	while ((my $left = $end - time()) > 0)
	{
		track();
		$left = $end - time();
		usleep(($left > 0.2 ? 0.2 : $left) * 1e6) if $left > 0;
	}
}

# Wait until $code returns true, tracking recoveries meanwhile
sub wait_tracking
{
	my ($code, $what, $timeout) = @_;
	return pgs_wait_until(sub { track(); $code->() }, $what, $timeout // $recover_timeout);
}

# Whether $pid is a live process of the pgoutput_stream worker type whose
# parent is our postmaster
sub is_our_worker
{
	my ($pid) = @_;
	my $pm = eval { (split /\n/, slurp_file($node->data_dir . '/postmaster.pid'))[0] } or return 0;
	open my $fh, '<', "/proc/$pid/stat" or return 0;
	my $stat = <$fh>;
	close $fh;
	return 0 unless $stat =~ /^\d+ \(.*\) \S (\d+)/s && $1 == $pm;
	my $cmd = eval { slurp_file("/proc/$pid/cmdline") } // '';
	return $cmd =~ /pgoutput_stream/;
}

# The pids of the workers of the streams, when they run: stream => pid;
# their states in %worker_state
my %worker_state;

sub worker_pids
{
	my $out = query("SELECT name, pid, state FROM pgoutput_stream.stream_status WHERE pid IS NOT NULL");
	my %pid;
	%worker_state = ();
	foreach (split /\n/, $out)
	{
		next unless /^(\w+)\|(\d+)\|(.*)$/;
		$pid{$1} = $2;
		$worker_state{$1} = $3;
	}
	return %pid;
}

# ---------------------------------------------------------------------
# The faults
# ---------------------------------------------------------------------
# states the killed workers were in: state => count
my %victim_states;

sub fault_worker
{
	my ($f) = @_;
	my $r = rand();
	my @victims = map { $stream_of{$_} } ($r < 0.4 ? ('nats') : $r < 0.8 ? ('feldera') : ('nats', 'feldera'));
	# the victims' workers, whatever they are doing (streaming, catching
	# up, waiting for their target), at the same time.  A worker may end by
	# itself between the look and the kill (an error restart): then look
	# again.  Of two victims, the second may be gone already: the
	# postmaster answers the first death at once by ending every other
	# process.
	my (%pid, %state, @failed, $offset);
	for my $attempt (1 .. 5)
	{
		wait_tracking(
			sub {
				%pid = worker_pids();
				return !grep { !$pid{$_} || !is_our_worker($pid{$_}) } @victims;
			},
			"the workers of @victims") or die "the workers of @victims do not run";
		%state = %worker_state;
		$offset = pgs_log_offset($node);
		$f->{t_fault} = time();
		@failed = ();
		foreach my $v (@victims)
		{
			push @failed, "kill $pid{$v} failed: $!" unless kill('KILL', $pid{$v});
		}
		last if @failed < @victims;
	}
	$victim_states{$_}++ foreach map { $state{$_} } @victims;
	$f->{detail} = join(' and ', map { "$_ (pid $pid{$_}, $state{$_})" } @victims)
	  . (@failed ? " (@failed)" : '');
	$f->{ok} = @failed < @victims;
	if (!$f->{ok})
	{
		$f->{t_back} = time();
		return;
	}
	# back: the crash restart happened and the killed workers were replaced
	wait_tracking(
		sub {
			return 0 unless $node->log_contains(qr/all server processes terminated; reinitializing/, $offset);
			my %now = worker_pids();
			return !grep { !$now{$_} || $now{$_} == $pid{$_} } @victims;
		},
		'the crash restart after the SIGKILL') or die 'the server or its workers did not come back';
	$f->{t_back} = time();
}

sub fault_pgstop
{
	my ($f) = @_;
	$f->{t_fault} = time();
	$node->stop('immediate');
	$node->start;
	$f->{t_back} = time();
	$f->{detail} = sprintf('down %.1f s', $f->{t_back} - $f->{t_fault});
	$f->{ok} = 1;
}

# The fake Feldera's tables, each as canonical JSON of its sorted rows
my $canon = JSON::PP->new->utf8->canonical;

sub fake_tables
{
	return { map { $_->{feldera} => $canon->encode($fake->rows('cm', $_->{feldera})) } @specs };
}

# The tables in the fake's state file, in the same form
sub state_file_tables
{
	my $doc = $canon->decode(slurp_file($fake->state_file));
	my ($p) = grep { $_->{name} eq 'cm' } @{ $doc->{pipelines} };
	return { map { $_->{name} => $canon->encode($_->{rows}) } @{ $p->{tables} // [] } };
}

# nats-server or the fake Feldera killed with SIGKILL, down for a random
# while, started again on the same port with its store / state file.  Half
# of the fake's kills (at random) happen while the fake holds (pause) the
# requests it receives: the tables it acknowledged are then known, and the
# state file it starts again from must hold exactly them.
my ($state_checks, @state_diffs) = (0);

sub fault_sink
{
	my ($f, $server) = @_;
	my $down = rand($downtime_max);
	my $paused = $server == $fake && rand() < 0.5;
	my $before;
	if ($paused)
	{
		$fake->fault({ pause => JSON::PP::true });
		$before = fake_tables();
	}
	$f->{t_fault} = time();
	$server->stop('KILL');
	if ($paused)
	{
		my $file = state_file_tables();
		$state_checks++;
		push @state_diffs, "fault " . (scalar(@faults)) . ": table $_ differs from what the fake had acknowledged"
		  foreach grep { ($file->{$_} // '') ne $before->{$_} } sort keys %$before;
	}
	deliberate_delay($down);
	$server->start;
	$f->{t_back} = time();
	$f->{detail} = sprintf('down %.1f s', $f->{t_back} - $f->{t_fault}) . ($paused ? ', killed while paused' : '');
	$f->{ok} = 1;
}

my @plan = map { ($_) x $plan_count{$_} } sort keys %plan_count;
# Fisher-Yates with the seeded rand
for (my $i = $#plan; $i > 0; $i--)
{
	my $j = int(rand($i + 1));
	@plan[ $i, $j ] = @plan[ $j, $i ];
}
my @delays = map { $delay_min + rand($delay_max - $delay_min) } @plan;
note('fault plan: ' . join(' ', @plan));

my $t_faults = time();
for my $i (0 .. $#plan)
{
	my $kind = $plan[$i];
	deliberate_delay($delays[$i]);
	my $f = { kind => $kind };
	push @faults, $f;
	if    ($kind eq 'worker')  { fault_worker($f); }
	elsif ($kind eq 'pgstop')  { fault_pgstop($f); }
	elsif ($kind eq 'nats')    { fault_sink($f, $nats); }
	elsif ($kind eq 'feldera') { fault_sink($f, $fake); }
	push @sequence, sprintf('#%d at %.1f s (after %.2f s): %s %s', $i + 1, $f->{t_fault} - $t_start,
		$delays[$i], $kind, $f->{detail});
	note($sequence[-1]);
}
my $fault_phase = time() - $t_faults;

# a little more workload after the last fault, then stop the writers
deliberate_delay(1 + rand(1));
kill('TERM', values %writer_pid);
my %writer_rc;
ok( pgs_wait_until(
		sub {
			foreach my $w (keys %writer_pid)
			{
				next if defined $writer_rc{$w};
				my $r = waitpid($writer_pid{$w}, WNOHANG);
				$writer_rc{$w} = $? >> 8 if $r == $writer_pid{$w};
			}
			return keys(%writer_rc) == $writers;
		},
		'the writers to stop', 180),
	'the writers stopped');
%writer_pid = ();
is(join(',', map { $writer_rc{$_} // 'running' } 1 .. $writers), join(',', (0) x $writers),
	'every writer kept writing until it was stopped (exit code 0)')
  or diag(join('', map { slurp_file("$PostgreSQL::Test::Utils::log_path/writer_$_.log") } 1 .. $writers));

# ---------------------------------------------------------------------
# Recovery, then the end of WAL confirmed by both streams
# ---------------------------------------------------------------------
is(scalar(grep { $_->{ok} } @faults), scalar(@plan), 'every fault of the plan was injected')
  or diag(join("\n", @sequence));
my %injected;
$injected{ $_->{kind} }++ foreach @faults;
is_deeply(\%injected, \%plan_count, 'faults per kind as planned');

ok(wait_tracking(sub { track() }, 'every fault to be recovered from'),
	'both streams recovered from every fault')
  or diag(join("\n", map { "not recovered: $_->{kind} $_->{detail}, back at LSN " . ($_->{lsn_back} // '?') }
		  grep { !defined $_->{recovered} } @faults));

foreach my $s (sort values %stream_of)
{
	ok(pgs_wait_delivered($node, 'postgres', $s, $recover_timeout),
		"$s confirmed the end of WAL after the workload");
}

# ---------------------------------------------------------------------
# Summary per fault kind
# ---------------------------------------------------------------------
foreach my $kind (sort keys %plan_count)
{
	my @f = grep { $_->{kind} eq $kind && defined $_->{recovered} } @faults;
	next unless @f;
	# avg/median/max of the seconds from the fault to $key
	my $stats = sub {
		my ($key) = @_;
		my @v = sort { $a <=> $b } map { $_->{$key} - $_->{t_fault} } @f;
		my $sum = 0;
		$sum += $_ foreach @v;
		return sprintf('avg %.1f s, median %.1f s, max %.1f s', $sum / @v, $v[ $#v / 2 ], $v[-1]);
	};
	note(sprintf('%-8s x %2d: both streams recovered in %s; s_nats in %s; s_feld in %s; faulty component back in %s',
			$kind, scalar(@f), $stats->('recovered'), $stats->('rec_nats'), $stats->('rec_feld'), $stats->('t_back')));
}

my ($txns, $changes) = split /\|/, $node->safe_psql('postgres',
	'SELECT (SELECT count(*) FROM txlog), (SELECT count(*) FROM changes)');
cmp_ok($txns, '>=', 100, 'the writers committed at least 100 transactions');
note(sprintf('workload: %d transactions, %d row changes; fault phase %.1f s', $txns, $changes, $fault_phase));
note('states of the killed workers: ' . join(', ', map { "$_ x $victim_states{$_}" } sort keys %victim_states));
my $writer_failures = 0;
foreach my $w (1 .. $writers)
{
	$writer_failures += () = slurp_file("$PostgreSQL::Test::Utils::log_path/writer_$w.log") =~ /failed:/g;
}
note("writers: $writer_failures batches interrupted by the faults");

# per writer, the transactions are numbered 1..N without gaps
is( $node->safe_psql('postgres',
		'SELECT count(*) FROM (SELECT w, count(*) AS c, max(n) AS m FROM txlog GROUP BY w) s WHERE c <> m'),
	'0', 'each writer\'s committed transactions are numbered without gaps');

# ---------------------------------------------------------------------
# JetStream: every change once, in commit order, chained
# ---------------------------------------------------------------------
my $t_check = time();
my $dump = pgs_js_dump($nats->url, 'cm');
my $msgs = $dump->{msgs};
note(sprintf('JetStream: %d messages read in %.1f s', $dump->{count}, time() - $t_check));
is($dump->{count}, $dump->{last_seq}, 'JetStream: every message of the stream was read');
is($msgs->[0]{seq}, 1, 'JetStream: the stream starts at sequence 1');

my @problems = pgs_js_problems($msgs, 'pgs_s_nats');
ok(!@problems, 'JetStream: unique message ids, commit order, chained, whole transactions')
  or diag(scalar(@problems) . " problems:\n" . join("\n", @problems[ 0 .. ($#problems > 29 ? 29 : $#problems) ]));

my %id_seen;
my $dup_ids = grep { defined $_->{id} && $id_seen{ $_->{id} }++ } @$msgs;
is($dup_ids, 0, 'JetStream: no Nats-Msg-Id twice');

# The changes of each transaction as JetStream has them: xid => [ "t1
# insert id n k", ... ] in message order, and the xids in commit order
my (%js_tx, @js_order, %js_counts, @bad);
foreach my $m (@$msgs)
{
	my $op = $m->{headers}{'Pg-Operation'} // '';
	next if $op eq 'begin' || $op eq 'commit' || $op eq 'relation';
	my $xid = $m->{headers}{'Pg-Xid'} // '';
	my $tbl = $m->{headers}{'Pg-Table'} // '';
	my $d = $m->{data_raw};
	my $text;
	if ($op eq 'insert' && $d =~ /\\"new_tuple\\":\{\\"id\\":(-?\d+),\\"w\\":\d+,\\"n\\":(\d+),\\"k\\":(\d+)/)
	{
		$text = "$tbl insert $1 $2 $3";
	}
	elsif ($op eq 'update'
		&& $d =~ /\\"old_tuple\\":(?:null|\{\\"id\\":(-?\d+)[^}]*\}),\\"new_tuple\\":\{\\"id\\":(-?\d+),\\"w\\":\d+,\\"n\\":(\d+),\\"k\\":(\d+)/)
	{
		$text = "$tbl update $2 " . ($1 // $2) . " $3 $4";
	}
	elsif ($op eq 'delete' && $d =~ /\\"old_tuple\\":\{\\"id\\":(-?\d+)/)
	{
		$text = "$tbl delete $1";
	}
	if (!defined $text || $xid !~ /^\d+$/)
	{
		push @bad, "message $m->{seq} ($op, Pg-Xid '$xid'): " . substr($d, 0, 200);
		next;
	}
	push @js_order, $xid unless $js_tx{$xid};
	push @{ $js_tx{$xid} }, $text;
	$js_counts{"$tbl $op"}++;
}
is(scalar(@bad), 0, 'JetStream: every message is a Begin, Commit, Relation or a row change of t1..t3')
  or diag(join("\n", @bad[ 0 .. ($#bad > 9 ? 9 : $#bad) ]));

# The same from the ledger
my (%pg_tx, %pg_counts);
foreach my $line (split /\n/, $node->safe_psql('postgres',
	q{SELECT xid, tbl, op, id, coalesce(old_id, id), coalesce(n, -1), coalesce(k, -1) FROM changes ORDER BY seq}))
{
	my ($xid, $tbl, $op, $id, $old, $n, $k) = split /\|/, $line;
	my $text = $op eq 'insert' ? "$tbl insert $id $n $k"
	  : $op eq 'update' ? "$tbl update $id $old $n $k"
	  :                   "$tbl delete $id";
	push @{ $pg_tx{$xid} }, $text;
	$pg_counts{"$tbl $op"}++;
}

my @missing = grep { !$js_tx{$_} } sort { $a <=> $b } keys %pg_tx;
my @extra = grep { !$pg_tx{$_} } sort { $a <=> $b } keys %js_tx;
my @differ = grep { $pg_tx{$_} && join("\n", @{ $js_tx{$_} }) ne join("\n", @{ $pg_tx{$_} }) }
  sort { $a <=> $b } keys %js_tx;
is(scalar(@missing), 0, 'JetStream: no committed transaction is missing')
  or diag(scalar(@missing) . ' missing xids: ' . join(' ', @missing[ 0 .. ($#missing > 19 ? 19 : $#missing) ]));
is(scalar(@extra), 0, 'JetStream: no transaction that PostgreSQL does not have')
  or diag('extra xids: ' . join(' ', @extra[ 0 .. ($#extra > 19 ? 19 : $#extra) ]));
is(scalar(@differ), 0, 'JetStream: each transaction has exactly its changes, once, in order')
  or diag(join("\n", map { "xid $_:\n  JetStream: @{ $js_tx{$_} }\n  PostgreSQL: @{ $pg_tx{$_} }" }
		  @differ[ 0 .. ($#differ > 4 ? 4 : $#differ) ]));
is_deeply(\%js_counts, \%pg_counts, 'JetStream: changes per table and operation equal PostgreSQL\'s');
note('changes per table and operation: ' . join(', ', map { "$_ $pg_counts{$_}" } sort keys %pg_counts));

# each writer's transactions appear in its order (its number n grows)
my %writer_of;
foreach my $line (split /\n/, $node->safe_psql('postgres', 'SELECT xid, w, n FROM txlog'))
{
	my ($xid, $w, $n) = split /\|/, $line;
	$writer_of{$xid} = [ $w, $n ];
}
my (%last_n, @out_of_order);
foreach my $xid (@js_order)
{
	my $wn = $writer_of{$xid} or next;
	my ($w, $n) = @$wn;
	push @out_of_order, "writer $w: transaction $n after $last_n{$w}" if defined $last_n{$w} && $n <= $last_n{$w};
	$last_n{$w} = $n;
}
is(scalar(@out_of_order), 0, 'JetStream: the transactions of each writer in the order they committed')
  or diag(join("\n", @out_of_order[ 0 .. ($#out_of_order > 9 ? 9 : $#out_of_order) ]));
is(scalar(grep { !$writer_of{$_} } @js_order), 0, 'JetStream: every transaction is one of a writer');

# ---------------------------------------------------------------------
# Feldera: the fake's tables equal PostgreSQL's
# ---------------------------------------------------------------------
is_deeply(\@state_diffs, [],
	"Feldera: after each kill while paused ($state_checks), the state file held the acknowledged tables");
ok(pgs_feldera_wait_equal($node, 'postgres', $fake, 'cm', \@specs, timeout => 60),
	'Feldera: the tables equal PostgreSQL\'s, row for row');
note('rows: ' . join(', ', map { "$_ " . $node->safe_psql('postgres', "SELECT count(*) FROM $_") } @tables));
is_deeply($fake->violations, [], 'Feldera: no contract violation recorded by the fake');

# ---------------------------------------------------------------------
# The server and the streams
# ---------------------------------------------------------------------
foreach my $s (sort values %stream_of)
{
	is(pgs_status($node, 'postgres', $s)->{state}, 'streaming', "$s is streaming at the end");
	is(pgs_worker_count($node, $s), 1, "one worker for $s");
}
ok(!$node->log_contains(qr/stream "s_(?:nats|feld)" failed/), 'no stream failed')
  or diag(join("\n", grep { /stream "s_\w+" failed/ } split /\n/, slurp_file($node->logfile)));
ok(!$node->log_contains(qr/terminated by signal (?!9)/),
	'no process crashed, other than the workers killed with SIGKILL')
  or diag(join("\n", grep { /terminated by signal/ } split /\n/, slurp_file($node->logfile)));
my $starts = () = slurp_file($node->logfile) =~ /started streaming from replication slot/g;
note("worker starts: $starts");
note(sprintf('check %.1f s, total %.1f s', time() - $t_check, time() - $t_start));

if (!Test::More->builder->is_passing)
{
	diag("crash matrix failed with seed $seed (PGS_TEST_SEED=$seed" . ($long ? ' PGS_TEST_LONG=1' : '') . ')');
	diag("fault sequence:\n" . join("\n", @sequence));
}

$node->stop;
$nats->stop;
$fake->stop;

done_testing();
