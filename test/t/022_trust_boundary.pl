
# Copyright (c) 2026, pgoutput_stream developers

# The trust boundary between the workers and the owners of the streamed
# tables (issue 16).  A worker decodes as the bootstrap superuser; the
# types of a published table's columns belong to the table's owner, who
# may be any role.  Rendering a value must run none of that role's code:
# no input function of a user type (record_in and domain_in run CHECK
# constraints, range_in runs the subtype's input), and no user cast (the
# cast of an enum or a range to json is what array_to_json() would call).
#
# A role without any privilege ("mallory"), owner of schema m, creates
# everything in it: an enum with casts to json, jsonb and text; a domain
# over int whose CHECK calls a PL/pgSQL function; composites with enum,
# domain, composite and array fields (one with a dropped attribute), and a
# range over the domain and its multirange, all with casts to json, jsonb
# and text; a domain over an array of the enum and one over a composite
# (CHECK calling a function too); columns of each, and arrays of each.  Every user
# function logs "PGS_USER_CODE_RAN by <current_user> (pid, backend_type)"
# when it runs, and
# when that role is a superuser it also runs COPY ... TO PROGRAM 'touch
# <marker>' and returns the contents of pg_hba.conf (the casts put it in
# the value they produce).
#
# Rows are there before the streams are created with snapshot => true
# (snapshot path) and are inserted, updated and deleted while the streams
# run (streaming path), in two tables (REPLICA IDENTITY DEFAULT and FULL).
# The streams: one per format and value mode with target log (json and
# json-pretty typed and text, text, debezium, feldera), one json stream
# with target nats (JetStream), one with target feldera (the fake
# Feldera), and a stopped one read with peek() by the superuser (peek
# decodes in the caller's backend).
#
# Checked:
#  (a) no user function ran as the superuser, nor in a worker: every
#      "PGS_USER_CODE_RAN" line of the server log says "by mallory" and
#      comes from a client backend, one of mallory's sessions (her own
#      INSERTs do run her CHECK constraints, which is PostgreSQL's
#      business);
#  (b) the marker file of COPY ... TO PROGRAM does not exist;
#  (c) no event (log, JetStream, peek) and no row of the fake Feldera
#      holds pg_hba.conf's text or the output of a user cast;
#  (d) every row arrived, per table and path (snapshot rows, inserts,
#      updates, deletes), every stream is still running with the worker
#      it had when its snapshot was done, and has no last_error;
#  (e) every value is rendered as docs/formats.md says, whatever the
#      user casts: typed json: enum as the string of its label, domain
#      over int as a number, composite, range and multirange as strings of
#      their text form; arrays as JSON arrays whose elements follow
#      array_to_json() as if the user had no cast (enum labels as strings,
#      composites as objects with fields by the same rules, ranges as
#      strings), with field order and digits checked byte for byte on the
#      compact json payloads; value_mode text and the text format: the
#      text form; debezium and feldera: text forms as strings, domain over
#      int as a number, arrays of element encodings (composite elements as
#      strings of their text form).  The text forms and the array_to_json()
#      output without casts that the expectations are written from are
#      checked against PostgreSQL first.
#
# Then how the initial snapshot reads the tables (the review of 54879cf).
# Each trap gets a stream with snapshot => true (target log, format json)
# followed by inserts of mallory's, and the checks of (a), (b) and (d): no
# trace of the trap's function by the superuser or from a worker, no marker
# file, every row delivered (per table, snapshot and streaming), the stream
# still streaming on the worker that sent its snapshot, no last_error and
# no error logged by a worker.  Each trap is then shown to be armed: the
# SELECT that the snapshot used to run, planned in mallory's own session,
# does run her function.
#  1. planning a SELECT of a table runs its owner's IMMUTABLE functions:
#     (a) an index expression, (b) a partial index predicate, (c) a
#     statistics expression, (d) a partition key expression (the root
#     published with publish_via_partition_root), (e) a CHECK constraint
#     of a partition of a root published with a row filter
#     (constraint_exclusion = partition, the default), (f) a CHECK
#     constraint of a plain table with a row filter, in a database of
#     mallory's where she set constraint_exclusion = on;
#  2. while the worker waits for an earlier table (mallory holds a lock on
#     it: the window a big table gives, made deterministic; the stream
#     uses a slot made by hand under its slot name, because a new slot
#     would wait for her transaction), she renames a published table and
#     creates a view under its old name: the table is read, under its new
#     name, and the view is not;
#  3. in the same window she swaps the names of two columns under a row
#     filter (an int column and one of her enum, which has an implicit
#     cast to int): the filter applies to the column it was written for,
#     and the cast never runs;
#  7. a database of mallory's where she set default_transaction_read_only
#     = on and default_transaction_isolation = serializable: the snapshot
#     and the changes are delivered.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";

use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PgsTestUtil;
use PgsNatsUtil;
use PgsFelderaUtil;

my $canon = JSON::PP->new->utf8->canonical->allow_nonref;
my $tmp = PostgreSQL::Test::Utils::tempdir('trust');
my $marker = "$tmp/copy_to_program_ran";

my $nats = PgsNatsUtil->new('tb')->start;
my $fake = PgsFelderaUtil->new('f022')->start;

# 10 workers (9 running streams) besides the launcher
my $node = pgs_nats_node('main', $nats, conf => "max_worker_processes = 24
max_replication_slots = 20
pgoutput_stream.feldera_url = '@{[ $fake->url ]}'
pgoutput_stream.feldera_max_retry_delay = '500ms'
");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION pgoutput_stream');
my $superuser = $node->safe_psql('postgres', 'SELECT rolname FROM pg_roles WHERE oid = 10');

# The rows of a query, fields split (separators that no value contains)
sub rows
{
	my ($sql, %params) = @_;
	my $out = $node->safe_psql('postgres', $sql,
		extra_params => [ '-F', "\x1f", '-R', "\x1e", '-P', 'null=<NULL>', @{ $params{extra} // [] } ]);
	return map { [ split /\x1f/, $_, -1 ] } split /\x1e/, $out;
}

sub as_mallory
{
	my ($sql) = @_;
	return $node->safe_psql('postgres', $sql, extra_params => [ '-U', 'mallory' ]);
}

# ---------------------------------------------------------------------
# The values.  One line per table, variant and column:
#   table variant column | text form | typed json | debezium and feldera
# "S" is the JSON string of the text form, "same" the typed json.  Variant
# B is NULL in every column.
# ---------------------------------------------------------------------
my %cols = (
	zoo  => [qw(e ea d da r ra mr mra dea)],
	deep => [qw(c ca c2 c2a dc dca)]);
my %val;    # {table}{variant}{column} => { text, typed (raw JSON), dbz (raw JSON) }
foreach my $line (split /\n/, <<'EOF')
zoo A e | two words | S | S
zoo A ea | {lo,"two words","q,\"x\"\\y",NULL} | ["lo","two words","q,\"x\"\\y",null] | same
zoo A d | 7 | 7 | 7
zoo A da | {1,NULL,3} | [1,null,3] | same
zoo A r | [1,5) | S | S
zoo A ra | {"[1,5)",empty,NULL} | ["[1,5)","empty",null] | same
zoo A mr | {[1,3),[5,8)} | S | S
zoo A mra | {"{[1,3)}","{}"} | ["{[1,3)}","{}"] | same
zoo A dea | {hi,lo} | ["hi","lo"] | same
zoo C e | q,"x"\y | S | S
zoo C ea | {{lo,hi},{hi,lo}} | [["lo","hi"],["hi","lo"]] | same
zoo C d | 0 | 0 | 0
zoo C da | [0:1]={5,6} | [5,6] | same
zoo C r | empty | S | S
zoo C ra | {} | [] | same
zoo C mr | {} | S | S
zoo C mra | {NULL} | [null] | same
zoo C dea | {"two words"} | ["two words"] | same
deep A c | (5,hi,"a b") | S | S
deep A ca | {"(1,lo,x)","(,,)",NULL} | [{"n":1,"l":"lo","t":"x"},{"n":null,"l":null,"t":null},null] | ["(1,lo,x)","(,,)",null]
deep A c2 | (9,"(2,""two words"",t)","{lo,hi}","{4,NULL}") | S | S
deep A c2a | {"(9,\"(2,\"\"two words\"\",t)\",\"{lo,hi}\",\"{4,NULL}\")",NULL} | [{"k":9,"sub":{"n":2,"l":"two words","t":"t"},"ls":["lo","hi"],"ds":[4,null]},null] | ["(9,\"(2,\"\"two words\"\",t)\",\"{lo,hi}\",\"{4,NULL}\")",null]
deep A dc | (3,lo,z) | S | S
deep A dca | {"(4,hi,w)"} | [{"n":4,"l":"hi","t":"w"}] | ["(4,hi,w)"]
deep C c | (0,"q,""x""\\y","") | S | S
deep C ca | {} | [] | same
deep C c2 | (,,{},{}) | S | S
deep C c2a | {"(1,\"(,,)\",{},{})"} | [{"k":1,"sub":{"n":null,"l":null,"t":null},"ls":[],"ds":[]}] | ["(1,\"(,,)\",{},{})"]
deep C dc | (,,) | S | S
deep C dca | {NULL,"(,,\"\")"} | [null,{"n":null,"l":null,"t":""}] | [null,"(,,\"\")"]
EOF
{
	my ($head, $text, $typed, $dbz) = split / \| /, $line, -1;
	my ($table, $variant, $col) = split / /, $head;
	$typed = $canon->encode($text) if $typed eq 'S';
	$dbz = $dbz eq 'same' ? $typed : $dbz eq 'S' ? $canon->encode($text) : $dbz;
	$val{$table}{$variant}{$col} = { text => $text, typed => $typed, dbz => $dbz };
}
foreach my $table (keys %cols)
{
	foreach my $col (@{ $cols{$table} })
	{
		$val{$table}{B}{$col} = undef;
		die "no value for $table $_ $col" foreach grep { !$val{$table}{$_}{$col} } qw(A C);
	}
}

# SQL literal of a column's value in a variant
sub lit
{
	my ($table, $variant, $col) = @_;
	my $v = $val{$table}{$variant}{$col};
	return 'NULL' unless $v;
	(my $q = $v->{text}) =~ s/'/''/g;
	return "'$q'";
}

sub insert_sql
{
	my ($table, $id, $variant) = @_;
	return "INSERT INTO m.$table VALUES ($id, "
	  . join(', ', map { lit($table, $variant, $_) } @{ $cols{$table} }) . ");\n";
}

sub update_sql
{
	my ($table, $id, $variant) = @_;
	return "UPDATE m.$table SET "
	  . join(', ', map { "$_ = " . lit($table, $variant, $_) } @{ $cols{$table} })
	  . " WHERE id = $id;\n";
}

# ---------------------------------------------------------------------
# mallory and her objects
# ---------------------------------------------------------------------
$node->safe_psql('postgres', q{
CREATE ROLE mallory LOGIN;
CREATE SCHEMA m AUTHORIZATION mallory;
});
is($node->safe_psql('postgres', q{
SELECT rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls,
       (SELECT count(*) FROM pg_auth_members WHERE member = r.oid)
FROM pg_roles r WHERE rolname = 'mallory'}), 'f|f|f|f|f|0', 'mallory has no privilege and no role');

# mallory's function $schema.trace(what): leaves a trace of every call; as
# a superuser, also runs a program and reads pg_hba.conf (returned,
# prefixed with PGS_LOOT)
sub trace_function_sql
{
	my ($schema) = @_;
	return <<"EOF";
CREATE FUNCTION $schema.trace(what text) RETURNS text LANGUAGE plpgsql AS \$f\$
DECLARE
  loot text := '';
BEGIN
  RAISE LOG 'PGS_USER_CODE_RAN by % (pid %, %, %)', current_user, pg_catalog.pg_backend_pid(),
    (SELECT a.backend_type FROM pg_catalog.pg_stat_activity a WHERE a.pid = pg_catalog.pg_backend_pid()), what;
  IF (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user) THEN
    BEGIN
      EXECUTE pg_catalog.format('COPY (SELECT 1) TO PROGRAM %L', 'touch $marker');
    EXCEPTION WHEN OTHERS THEN
      RAISE LOG 'PGS_USER_CODE_COPY_FAILED by % (pid %, %)', current_user, pg_catalog.pg_backend_pid(), SQLERRM;
    END;
    BEGIN
      loot := 'PGS_LOOT:' || pg_catalog.pg_read_file('pg_hba.conf');
    EXCEPTION WHEN OTHERS THEN
      loot := 'PGS_LOOT_FAILED:' || SQLERRM;
    END;
  END IF;
  RETURN loot;
END
\$f\$;
EOF
}

my $setup = trace_function_sql('m') . <<"EOF";
CREATE FUNCTION m.chk(v anyelement, what text) RETURNS boolean LANGUAGE plpgsql AS \$f\$
BEGIN
  PERFORM m.trace(what);
  RETURN true;
END
\$f\$;
CREATE TYPE m.e AS ENUM ('lo', 'hi', 'two words', 'q,"x"\\y');
CREATE DOMAIN m.d AS int CHECK (m.chk(VALUE, 'domain check'));
CREATE TYPE m.c AS (n m.d, l m.e, t text);
CREATE TYPE m.c2 AS (k int, gone text, sub m.c, ls m.e[], ds m.d[]);
ALTER TYPE m.c2 DROP ATTRIBUTE gone;
CREATE DOMAIN m.dc AS m.c CHECK (m.chk(VALUE, 'composite domain check'));
CREATE TYPE m.r AS RANGE (subtype = m.d, multirange_type_name = m.mr);
CREATE DOMAIN m.dea AS m.e[] CHECK (m.chk(VALUE, 'array domain check'));
EOF
foreach my $t (qw(e c c2 r mr))
{
	foreach my $target (qw(json jsonb text))
	{
		my $body =
		  $target eq 'text'
		  ? "RETURN 'PGS_CAST text ' || m.trace('cast $t to text');"
		  : "RETURN pg_catalog.${target}_build_object('PGS_CAST', '$target', 'loot', m.trace('cast $t to $target'));";
		$setup .= "CREATE FUNCTION m.${t}_$target(x m.$t) RETURNS $target LANGUAGE plpgsql AS \$f\$\nBEGIN\n  $body\nEND\n\$f\$;\n"
		  . "CREATE CAST (m.$t AS $target) WITH FUNCTION m.${t}_$target(m.$t);\n";
	}
}
$setup .= q{
CREATE TABLE m.zoo (id int PRIMARY KEY, e m.e, ea m.e[], d m.d, da m.d[], r m.r, ra m.r[],
                    mr m.mr, mra m.mr[], dea m.dea);
CREATE TABLE m.deep (id int PRIMARY KEY, c m.c, ca m.c[], c2 m.c2, c2a m.c2[], dc m.dc, dca m.dc[]);
ALTER TABLE m.deep REPLICA IDENTITY FULL;
};
# the snapshot rows: 1 = A, 2 = B (NULLs), 3 = C
foreach my $table (qw(zoo deep))
{
	$setup .= insert_sql($table, 1, 'A') . insert_sql($table, 2, 'B') . insert_sql($table, 3, 'C');
}
as_mallory($setup);
is($node->safe_psql('postgres', q{
SELECT string_agg(DISTINCT pg_get_userbyid(o), ',') FROM (
  SELECT typowner FROM pg_type WHERE typnamespace = 'm'::regnamespace
  UNION ALL SELECT proowner FROM pg_proc WHERE pronamespace = 'm'::regnamespace
    AND prolang = (SELECT oid FROM pg_language WHERE lanname = 'plpgsql')
  UNION ALL SELECT relowner FROM pg_class WHERE relnamespace = 'm'::regnamespace) AS x(o)}),
	'mallory', 'every type, PL/pgSQL function and table of schema m belongs to mallory');
is($node->safe_psql('postgres', q{
SELECT count(*) FROM pg_cast WHERE castsource IN (SELECT oid FROM pg_type WHERE typnamespace = 'm'::regnamespace)
  AND casttarget IN ('json'::regtype, 'jsonb'::regtype, 'text'::regtype)}),
	'15', 'mallory made 15 casts of her types to json, jsonb and text');

# The expectations are right about PostgreSQL: the text forms (output
# functions only), and array_to_json() without the user casts
foreach my $table (qw(zoo deep))
{
	my @c = @{ $cols{$table} };
	my @got = rows("SELECT id, " . join(', ', @c) . " FROM m.$table ORDER BY id",
		extra => [ '-U', 'mallory' ]);
	my @want = map {
		my ($id, $v) = @$_;
		[ $id, map { $val{$table}{$v}{$_} ? $val{$table}{$v}{$_}{text} : '<NULL>' } @c ]
	} ([ 1, 'A' ], [ 2, 'B' ], [ 3, 'C' ]);
	is_deeply(\@got, \@want, "m.$table: PostgreSQL's text forms are the expected ones");

	my @arrays = grep { $val{$table}{A}{$_}{typed} =~ /^\[/ } @c;
	my $drop = join('', map { "DROP CAST (m.$_ AS json);\n" } qw(e c c2 r mr));
	my @oracle = rows("BEGIN;\n$drop SELECT id, "
		  . join(', ', map { "array_to_json($_)" } @arrays)
		  . " FROM m.$table WHERE id <> 2 ORDER BY id;\nROLLBACK;", extra => [ '-U', 'mallory' ]);
	my @owant = map {
		my ($id, $v) = @$_;
		[ $id, map { $val{$table}{$v}{$_}{typed} } @arrays ]
	} ([ 1, 'A' ], [ 3, 'C' ]);
	is_deeply(\@oracle, \@owant,
		"m.$table: array_to_json() without the user casts gives the expected typed arrays (@arrays)");
}
ok(!-e $marker, 'the marker file does not exist before the streams');

# ---------------------------------------------------------------------
# The streams
# ---------------------------------------------------------------------
my %streams = (
	l_json_typed   => { format => 'json',        mode => 'typed', exact => 1 },
	l_json_text    => { format => 'json',        mode => 'text', options => { value_mode => 'text' } },
	l_pretty_typed => { format => 'json-pretty', mode => 'typed' },
	l_pretty_text  => { format => 'json-pretty', mode => 'text', options => { value_mode => 'text' } },
	l_text         => { format => 'text',        mode => 'text' },
	l_dbz          => { format => 'debezium',    mode => 'dbz' },
	l_feldera      => { format => 'feldera',     mode => 'dbz' },
	n_json         => { format => 'json', mode => 'typed', exact => 1, target => 'nats',
		options => { nats_stream => 'tb', subject_prefix => 'tb' } },
	f_target => { format => 'json', target => 'feldera', options => { feldera_pipeline => 'p022' } },
	p_json   => { format => 'json', mode => 'typed', exact => 1, peek => 1 });
my @running = sort grep { !$streams{$_}{peek} } keys %streams;
my @event_streams = sort grep { $streams{$_}{mode} } keys %streams;

$node->safe_psql('postgres', 'CREATE PUBLICATION tb_pub FOR TABLES IN SCHEMA m');

my %fdecl = (
	zoo => [ [ e => 'VARCHAR' ], [ ea => 'VARIANT' ], [ d => 'INT' ], [ da => 'INT ARRAY' ],
		[ r => 'VARCHAR' ], [ ra => 'VARCHAR ARRAY' ], [ mr => 'VARCHAR' ],
		[ mra => 'VARCHAR ARRAY' ], [ dea => 'VARCHAR ARRAY' ] ],
	deep => [ [ c => 'VARCHAR' ], [ ca => 'VARCHAR ARRAY' ], [ c2 => 'VARCHAR' ], [ c2a => 'VARCHAR ARRAY' ],
		[ dc => 'VARCHAR' ], [ dca => 'VARCHAR ARRAY' ] ]);
$fake->declare('p022', [
	map {
		my $t = $_;
		+{
			name => "m_$t",
			columns => [
				{ name => 'id', type => 'INT', nullable => JSON::PP::false },
				map { +{ name => $_->[0], type => $_->[1], nullable => JSON::PP::true } } @{ $fdecl{$t} } ],
			primary_key => ['id'],
		}
	} qw(zoo deep) ]);

my $offset = pgs_log_offset($node);
foreach my $s (sort keys %streams)
{
	my $st = $streams{$s};
	my $opts = $canon->encode($st->{options} // {});
	my $extra = $st->{peek} ? 'start => false' : 'snapshot => true';
	$node->safe_psql('postgres', "SELECT pgoutput_stream.create_stream('$s', 'tb_pub', targets => '{"
		  . ($st->{target} // 'log') . "}', format => '$st->{format}', options => '$opts', $extra)");
}
my $in = join(', ', map { "'$_'" } @running);

# Every snapshot done; a stream that fails for good is not waited for
my $status_sql = "SELECT name, state, coalesce(pid::text, ''), coalesce(last_error, ''), snapshot
  FROM pgoutput_stream.stream_status WHERE name IN ($in) ORDER BY name";
my %pid_after_snapshot;
pgs_wait_until(
	sub {
		my @st = rows($status_sql);
		$pid_after_snapshot{ $_->[0] } //= $_->[2]
		  foreach grep { $_->[1] eq 'streaming' && $_->[4] eq 'done' && $_->[2] ne '' } @st;
		return keys(%pid_after_snapshot) == @running;
	},
	'every snapshot done', 60);
is(join(',', sort keys %pid_after_snapshot), join(',', @running),
	'every stream sent its snapshot and is streaming');

# ---------------------------------------------------------------------
# The streaming path, as mallory: each statement its own transaction
#   insert 11 = A, 12 = C, 13 = B; update 11 to C, 1 to B;
#   delete 12 and 2 (the final rows: 1 = B, 3 = C, 11 = C, 13 = B)
# ---------------------------------------------------------------------
my @steps = (
	[ insert => 11, 'A' ], [ insert => 12, 'C' ], [ insert => 13, 'B' ],
	[ update => 11, 'C' ], [ update => 1, 'B' ], [ delete => 12, undef ], [ delete => 2, undef ]);
my %before = (1 => 'A', 2 => 'B', 3 => 'C');    # the variant of each row before a step
my %final = %before;
my $changes = '';
foreach my $step (@steps)
{
	my ($op, $id, $v) = @$step;
	foreach my $table (qw(zoo deep))
	{
		$changes .=
		    $op eq 'insert' ? insert_sql($table, $id, $v)
		  : $op eq 'update' ? update_sql($table, $id, $v)
		  :                   "DELETE FROM m.$table WHERE id = $id;\n";
	}
	push @$step, $final{$id};    # the variant before the step
	if ($op eq 'delete') { delete $final{$id} } else { $final{$id} = $v }
}
as_mallory($changes);
my $lsn = $node->safe_psql('postgres', 'SELECT pg_current_wal_lsn()');

# Delivered, or failed: a stream with an error is not waited for
pgs_wait_until(
	sub {
		my @st = rows("SELECT name, confirmed_lsn >= '$lsn', last_error IS NOT NULL
			FROM pgoutput_stream.stream_status WHERE name IN ($in)");
		return !grep { $_->[1] ne 't' && $_->[2] ne 't' } @st;
	},
	'every stream delivered the changes', 60);
my %delivered = map { $_->[0] => $_->[1] eq 't' }
  rows("SELECT name, confirmed_lsn >= '$lsn' FROM pgoutput_stream.stream_status WHERE name IN ($in)");
foreach my $s (grep { $streams{$_}{target} && $streams{$_}{target} eq 'feldera' } @running)
{
	ok($delivered{$s}, "$s: delivered every change to the fake Feldera");
}

# ---------------------------------------------------------------------
# What each stream published
# ---------------------------------------------------------------------

# Events of the log target (payloads of several lines: continuation lines
# start with a tab in the stderr log format)
my %events;
{
	open my $fh, '<', $node->logfile or die "could not open the server log: $!";
	binmode $fh;
	seek($fh, $offset, 0) or die "seek: $!";
	my $cur;
	while (my $line = <$fh>)
	{
		chomp $line;
		if ($line =~ /^\t(.*)\z/s)
		{
			$cur->{payload} .= "\n$1" if $cur;
			next;
		}
		$cur = undef;
		next unless $line =~ /^\S+ \S+ \S+ \[(\d+)\] .*?LOG:  stream "([^"]+)" event (\S+): (.*)\z/;
		$cur = { pid => $1, subject => $3, payload => $4 };
		push @{ $events{$2} }, $cur;
	}
	close $fh;
}
# JetStream
foreach my $s (grep { ($streams{$_}{target} // '') eq 'nats' } @running)
{
	my $dump = pgs_js_dump($nats->url, $streams{$s}{options}{nats_stream});
	foreach my $msg (@{ $dump->{msgs} })
	{
		my $p = pgs_msg_payload($msg);
		utf8::encode($p);
		push @{ $events{$s} }, { subject => $msg->{subject}, payload => $p,
			snapshot_header => $msg->{headers}{'Pg-Snapshot'} };
	}
}
# peek, by the superuser
foreach my $s (grep { $streams{$_}{peek} } sort keys %streams)
{
	my ($rc, $out, $err) = $node->psql('postgres',
		"SELECT subject, payload FROM pgoutput_stream.peek('$s', 1000)",
		extra_params => [ '-F', "\x1f", '-R', "\x1e" ]);
	is($rc, 0, "$s: peek() by the superuser works") or diag($err);
	$events{$s} = [ map { my ($subj, $p) = split /\x1f/, $_, 2; +{ subject => $subj, payload => $p } }
		  split /\x1e/, $out ];
}
my @fake_rows = map { @{ $fake->rows('p022', "m_$_") } } qw(zoo deep);

# ---------------------------------------------------------------------
# (a), (b), (c): no user code as the superuser or in a worker
# ---------------------------------------------------------------------
# (the log has the statements too, function bodies included: only the
# messages themselves count)
my $trace_re = qr/^\S+ \S+ \S+ \[\d+\] .*?LOG:  (PGS_USER_CODE_\w+) by (\S+) \(pid \d+, ([^,)]+)/;
my @traces = grep { $_ =~ $trace_re } split /\n/, slurp_file($node->logfile);
my @by_mallory = grep { /$trace_re/ && $1 eq 'PGS_USER_CODE_RAN' && $2 eq 'mallory' && $3 eq 'client backend' } @traces;
ok(@by_mallory > 0, 'the user functions do leave traces (those of mallory\'s own statements)');
my @bad_traces = grep { !/$trace_re/ || $1 ne 'PGS_USER_CODE_RAN' || $2 ne 'mallory' || $3 ne 'client backend' } @traces;
is(scalar(@bad_traces), 0, "no user function ran as $superuser or in a worker")
  or diag(join("\n", @bad_traces[ 0 .. ($#bad_traces > 9 ? 9 : $#bad_traces) ]));
is(scalar(grep { /$trace_re/ && $2 eq $superuser } @traces), 0,
	"no trace says \"by $superuser\"");
is(scalar(grep { /$trace_re/ && $3 =~ /pgoutput_stream/ } @traces), 0,
	'no trace comes from a pgoutput_stream worker');
ok(!-e $marker, 'COPY ... TO PROGRAM never ran (no marker file)');

my $hba_head = 'PostgreSQL Client Authentication Configuration File';
like(slurp_file($node->data_dir . '/pg_hba.conf'), qr/\Q$hba_head\E/, "pg_hba.conf starts with \"$hba_head\"");
foreach my $s (@event_streams)
{
	my @loot = grep { $_->{payload} =~ /PGS_LOOT|\Q$hba_head\E/ } @{ $events{$s} // [] };
	is(scalar(@loot), 0, "$s: no event holds pg_hba.conf's text")
	  or diag(substr($loot[0]{payload}, 0, 600));
	my @cast = grep { $_->{payload} =~ /PGS_CAST/ } @{ $events{$s} // [] };
	is(scalar(@cast), 0, "$s: no event holds the output of a user cast")
	  or diag(substr($cast[0]{payload}, 0, 600));
}
my $fake_text = $canon->encode(\@fake_rows);
unlike($fake_text, qr/PGS_LOOT|\Q$hba_head\E|PGS_CAST/,
	'no row of the fake Feldera holds pg_hba.conf\'s text or a user cast\'s output');

# ---------------------------------------------------------------------
# (d) every stream still running, on the worker it had
# ---------------------------------------------------------------------
my %status = map { $_->[0] => $_ } rows($status_sql);
foreach my $s (@running)
{
	my $st = $status{$s};
	is($st->[1], 'streaming', "$s: still streaming");
	is($st->[3], '', "$s: no last_error");
	ok(defined $pid_after_snapshot{$s} && $st->[2] eq $pid_after_snapshot{$s},
		"$s: the worker that sent the snapshot is still running (pid "
		  . ($pid_after_snapshot{$s} // 'none') . ", now " . ($st->[2] || 'none') . ')');
}
# (background workers have no application name in log_line_prefix)
my @errors = grep { /^\S+ \S+ \S+ \[\d+\] ERROR:/ || /background worker "pgoutput_stream worker" \(PID \d+\) exited/ }
  split /\n/, slurp_file($node->logfile, $offset);
is(scalar(@errors), 0, 'no worker logged an error or exited')
  or diag(join("\n", @errors[ 0 .. ($#errors > 4 ? 4 : $#errors) ]));

# ---------------------------------------------------------------------
# (e) the values, and (d) the counts
# ---------------------------------------------------------------------

# The value of a column in a variant, as canonical JSON: typed, text (the
# text form as a string) or dbz (debezium and feldera encodings)
sub want_value
{
	my ($mode, $table, $variant, $col) = @_;
	my $v = $val{$table}{$variant}{$col};
	return 'null' unless $v;
	return $canon->encode($v->{text}) if $mode eq 'text';
	return $canon->encode($canon->decode($mode eq 'typed' ? $v->{typed} : $v->{dbz}));
}

sub want_id
{
	my ($mode, $id) = @_;
	return $mode eq 'text' ? $canon->encode("$id") : $id;
}

# {column => canonical JSON} of a whole row, or of its key
sub want_tuple
{
	my ($mode, $table, $id, $variant, $key_only) = @_;
	my %t = (id => want_id($mode, $id));
	foreach my $col (@{ $cols{$table} })
	{
		next if $key_only && $mode ne 'dbz_before';
		$t{$col} = $key_only ? 'null' : want_value($mode, $table, $variant, $col);
	}
	return \%t;
}

# The expected events of a stream: snapshot rows (by table and id), then
# the changes in order, as { op, table, id, snapshot, old, new }
sub want_events
{
	my ($s) = @_;
	my $st = $streams{$s};
	my $mode = $st->{mode};
	my $f = $st->{format};
	my @ev;
	unless ($st->{peek})
	{
		foreach my $table (qw(deep zoo))
		{
			push @ev, { op => 'insert', table => "m.$table", id => $_, snapshot => 1,
				new => want_tuple($mode, $table, $_, $before{$_}) } foreach 1 .. 3;
		}
	}
	foreach my $step (@steps)
	{
		my ($op, $id, $v, $prev) = @$step;
		foreach my $table (qw(zoo deep))
		{
			my $full = $table eq 'deep';
			my %e = (op => $op, table => "m.$table", id => $id, snapshot => 0);
			$e{new} = want_tuple($mode, $table, $id, $v) if $op ne 'delete';
			if ($op eq 'delete')
			{
				# a key-only old tuple: Debezium writes the other columns as null
				$e{old} = $full ? want_tuple($mode, $table, $id, $prev)
				  : $f eq 'debezium' ? want_tuple('dbz_before', $table, $id, undef, 1)
				  :                    want_tuple($mode, $table, $id, undef, 1);
			}
			elsif ($op eq 'update' && $full)
			{
				$e{old} = want_tuple($mode, $table, $id, $prev);
			}
			push @ev, \%e;
		}
	}
	return @ev;
}

sub canon_tuple
{
	my ($t) = @_;
	return undef unless defined $t;
	return { map { $_ => $canon->encode($t->{$_}) } keys %$t };
}

# A published data event in the same form (undef for others)
sub got_event
{
	my ($s, $ev) = @_;
	my $f = $streams{$s}{format};
	my @tok = split /\./, $ev->{subject};
	return undef unless @tok >= 4 && $tok[-1] =~ /^(insert|update|delete)\z/;
	my %e = (op => $tok[-1], table => pgs_subject_unescape($tok[-3]) . '.' . pgs_subject_unescape($tok[-2]));
	if ($f eq 'text')
	{
		my @lines = split /\n/, $ev->{payload};
		my $head = shift @lines;
		$e{snapshot} = $head =~ /^INSERT \(snapshot\) / ? 1 : 0;
		my $section;
		foreach my $l (@lines)
		{
			if ($l =~ /^  (Old|New) values:\z/) { $section = lc($1); $e{$section} = {}; next; }
			if ($l =~ /^    ([^:]+): (.*)\z/ && $section)
			{
				$e{$section}{$1} = $2 eq 'NULL' ? 'null' : $canon->encode($2);
				next;
			}
			$e{bad_line} //= $l;
		}
	}
	else
	{
		my $doc = eval { $canon->decode($ev->{payload}) };
		return { %e, bad_line => "not JSON: $ev->{payload}" } unless $doc;
		if ($f eq 'debezium')
		{
			my $p = $doc->{payload};
			$e{snapshot} = ($p->{op} // '') eq 'r' ? 1 : 0;
			$e{old} = canon_tuple($p->{before});
			$e{new} = canon_tuple($p->{after});
		}
		elsif ($f eq 'feldera')
		{
			$e{old} = canon_tuple($doc->{delete});
			$e{new} = canon_tuple($doc->{insert});
		}
		else
		{
			my ($kind) = keys %$doc;
			my $x = $doc->{$kind};
			$e{snapshot} = $x->{snapshot} ? 1 : 0;
			$e{old} = canon_tuple($x->{old_tuple});
			$e{new} = canon_tuple($x->{new_tuple});
		}
	}
	my $t = $e{new} // $e{old};
	$e{id} = $t && defined $t->{id} ? $canon->decode($t->{id}) : undef;
	return \%e;
}

# Differences between an expected and a published event
sub event_diffs
{
	my ($s, $want, $got, $where) = @_;
	my $f = $streams{$s}{format};
	my @d;
	push @d, "$where: unparsed line \"$got->{bad_line}\"" if $got->{bad_line};
	foreach my $k (qw(op table id))
	{
		push @d, "$where: $k is " . ($got->{$k} // 'undef') . ", want $want->{$k}"
		  unless ($got->{$k} // '') eq $want->{$k};
	}
	push @d, "$where: snapshot flag is " . ($got->{snapshot} // 'undef') . ", want $want->{snapshot}"
	  if $f ne 'feldera' && ($got->{snapshot} // -1) != $want->{snapshot};
	# the feldera format has no old tuple for an update without one, the
	# other formats write it as null or leave the section out
	foreach my $part (qw(old new))
	{
		my ($w, $g) = ($want->{$part}, $got->{$part});
		if (!$w || !$g)
		{
			push @d, "$where: $part tuple is " . ($g ? $canon->encode($g) : 'absent')
			  . ', want ' . ($w ? $canon->encode($w) : 'absent')
			  if $w || $g;
			next;
		}
		foreach my $col (sort { ($a eq 'id' ? '' : $a) cmp ($b eq 'id' ? '' : $b) } keys %{ { %$w, %$g } })
		{
			my ($wv, $gv) = ($w->{$col}, $g->{$col});
			push @d, "$where: $part.$col is " . ($gv // '(absent)') . ', want ' . ($wv // '(absent)')
			  unless defined $wv && defined $gv && $wv eq $gv;
		}
	}
	return @d;
}

# The compact json payload from "table" on, as the typed json format
# writes it (field order and digits as they are)
sub want_json_tail
{
	my ($table, $w) = @_;
	my $tuple = sub {
		my ($id, $variant, $key_only) = @_;
		return '{' . join(',', qq{"id":$id},
			$key_only ? () : map {
				my $v = $val{$table}{$variant}{$_};
				qq{"$_":} . ($v ? $v->{typed} : 'null')
			} @{ $cols{$table} }) . '}';
	};
	my $t = qq{"table":"$table"};
	$t .= ',"snapshot":true' if $w->{snapshot};
	$t .= ',"old_tuple":' . ($w->{old_raw} // 'null') if $w->{op} ne 'insert';
	$t .= ',"new_tuple":' . $tuple->($w->{id}, $w->{variant}) if $w->{op} ne 'delete';
	return "$t}}";
}

# the variants behind each expected event, for want_json_tail
sub want_raw
{
	my ($s) = @_;
	my @raw;
	unless ($streams{$s}{peek})
	{
		foreach my $table (qw(deep zoo))
		{
			push @raw, { table => $table, op => 'insert', id => $_, variant => $before{$_}, snapshot => 1 }
			  foreach 1 .. 3;
		}
	}
	foreach my $step (@steps)
	{
		my ($op, $id, $v, $prev) = @$step;
		foreach my $table (qw(zoo deep))
		{
			my %r = (table => $table, op => $op, id => $id, variant => $v, snapshot => 0);
			if ($op eq 'delete' || ($op eq 'update' && $table eq 'deep'))
			{
				my $key_only = $table eq 'zoo';
				$r{old_raw} = '{' . join(',', qq{"id":$id},
					$key_only ? () : map {
						my $x = $val{$table}{$prev}{$_};
						qq{"$_":} . ($x ? $x->{typed} : 'null')
					} @{ $cols{$table} }) . '}';
			}
			push @raw, \%r;
		}
	}
	return @raw;
}

my $n_want_counts;
foreach my $s (@event_streams)
{
	my @want = want_events($s);
	my @got = grep { defined } map { got_event($s, $_) } @{ $events{$s} // [] };
	# snapshot rows by table and id, changes in the order published
	my $order = sub {
		my @snap = sort { $a->{table} cmp $b->{table} || ($a->{id} // 0) <=> ($b->{id} // 0) }
		  grep { $_->{snapshot} } @_;
		return (@snap, grep { !$_->{snapshot} } @_);
	};
	# (the feldera format does not mark snapshot rows: they come first)
	if ($streams{$s}{format} eq 'feldera' && !$streams{$s}{peek})
	{
		$_->{snapshot} = 1 foreach @got[ 0 .. ($#got < 5 ? $#got : 5) ];
	}
	@got = $order->(@got);

	# counts per table and path
	my $count = sub {
		my %n;
		$n{"$_->{table} " . ($_->{snapshot} ? 'snapshot' : $_->{op})}++ foreach @_;
		return join(', ', map { "$_: $n{$_}" } sort keys %n);
	};
	is($count->(@got), $count->(@want), "$s: every row arrived (per table and path)");

	my @diffs;
	foreach my $i (0 .. ($#want > $#got ? $#want : $#got))
	{
		my ($w, $g) = ($want[$i], $got[$i]);
		my $where = $w ? "$w->{op} $w->{table} id $w->{id}" . ($w->{snapshot} ? ' (snapshot)' : '') : "event $i";
		if (!$g) { push @diffs, "$where: missing"; next; }
		if (!$w) { push @diffs, "$where: unexpected $g->{op} $g->{table} id " . ($g->{id} // '?'); next; }
		push @diffs, event_diffs($s, $w, $g, $where);
	}
	is(scalar(@diffs), 0, "$s ($streams{$s}{format}, $streams{$s}{mode}): every value rendered as documented")
	  or diag(join("\n", "$s: " . scalar(@diffs) . ' differences (got ..., want ...):',
		  @diffs[ 0 .. ($#diffs > 24 ? 24 : $#diffs) ]));

	# byte for byte: compact typed json
	next unless $streams{$s}{exact};
	my @raw_want = want_raw($s);
	my @payloads = grep { $_->{subject} =~ /\.(insert|update|delete)\z/ } @{ $events{$s} // [] };
	my %by_key;
	foreach my $ev (@payloads)
	{
		my ($t, $op) = $ev->{subject} =~ /\.m\.(\w+)\.(\w+)\z/ or next;
		my $snap = $ev->{payload} =~ /"snapshot":true/ ? 1 : 0;
		my ($id) = $ev->{payload} =~ /"(?:new|old)_tuple":\{"id":(\d+)/;
		push @{ $by_key{ join(' ', $t, $op, $id // '?', $snap) } }, $ev->{payload};
	}
	my @raw_diffs;
	foreach my $r (@raw_want)
	{
		my $key = join(' ', @$r{qw(table op id snapshot)});
		my $p = shift @{ $by_key{$key} // [] };
		my $tail = want_json_tail($r->{table}, $r);
		if (!defined $p) { push @raw_diffs, "$key: no such event"; next; }
		my $at = index($p, '"table":');
		my $got_tail = $at >= 0 ? substr($p, $at) : $p;
		push @raw_diffs, "$key:\n  got  $got_tail\n  want $tail" unless $got_tail eq $tail;
	}
	is(scalar(@raw_diffs), 0, "$s: compact payloads byte for byte (field order, digits)")
	  or diag(join("\n", @raw_diffs[ 0 .. ($#raw_diffs > 5 ? 5 : $#raw_diffs) ]));
}

# The fake Feldera's tables: the final rows, in Feldera's encodings
foreach my $table (qw(zoo deep))
{
	my $got = $fake->rows('p022', "m_$table");
	my @want = map {
		my $id = $_;
		my $t = want_tuple('dbz', $table, $id, $final{$id});
		'{' . join(',', map { $canon->encode($_) . ':' . $t->{$_} } sort keys %$t) . '}'
	} sort { $a <=> $b } keys %final;
	my @got = map {
		my $row = $_;
		$row->{$_} //= undef foreach ('id', @{ $cols{$table} });
		$canon->encode($row)
	} @$got;
	is_deeply(\@got, \@want, "f_target: the fake Feldera's m_$table has the final rows, values as documented");
}
is_deeply($fake->violations, [], 'f_target: no contract violation in the fake');

foreach my $s (sort keys %streams)
{
	$node->safe_psql('postgres', "SELECT pgoutput_stream.drop_stream('$s')");
}
# =====================================================================
# How the initial snapshot reads the tables (review of 54879cf)
# =====================================================================
# Each block: mallory's traps, a stream with snapshot => true (target log,
# format json), then her inserts while it streams.  Then the traps are
# shown to be armed: the query the snapshot used to run (a SELECT of the
# table, with the row filter), planned or run in mallory's own session,
# does run her function.

# The trace lines since $offset, as [ kind, role, backend type, what ]
my $trace_what_re =
  qr/^\S+ \S+ \S+ \[\d+\] .*?LOG:  (PGS_USER_CODE_\w+) by (\S+) \(pid \d+, ([^,)]+)(?:, (.*))?\)$/;

sub traces_since
{
	my ($offset) = @_;
	return map { [ $_ =~ $trace_what_re ] } grep { $_ =~ $trace_what_re }
	  split /\n/, slurp_file($node->logfile, $offset);
}

sub mallory_in_her_session
{
	my ($t) = @_;
	return $t->[0] eq 'PGS_USER_CODE_RAN' && $t->[1] eq 'mallory' && $t->[2] eq 'client backend';
}

# (a), (b): none of the functions @whats (nor any other) ran as the
# superuser or in a worker since $offset, and COPY ... TO PROGRAM never ran
# (the marker file is removed after the check: each block starts without)
sub no_user_code_ran
{
	my ($offset, $label, @whats) = @_;
	my @t = traces_since($offset);
	foreach my $what (@whats)
	{
		my @bad = grep { ($_->[3] // '') eq $what && !mallory_in_her_session($_) } @t;
		is(scalar(@bad), 0, "$label: \"$what\" ran only in mallory's own sessions (not as $superuser, not in a worker)")
		  or diag(join("\n", map { join(' | ', map { $_ // '' } @$_) } @bad[ 0 .. ($#bad > 4 ? 4 : $#bad) ]));
	}
	my @bad = grep { !mallory_in_her_session($_) } @t;
	is(scalar(@bad), 0, "$label: no user function ran as $superuser or in a worker")
	  or diag(join("\n", map { join(' | ', map { $_ // '' } @$_) } @bad[ 0 .. ($#bad > 4 ? 4 : $#bad) ]));
	ok(!-e $marker, "$label: COPY ... TO PROGRAM never ran (no marker file)");
	unlink $marker;
}

# The traps are armed: each of @whats ran in mallory's session since $offset
sub traps_armed
{
	my ($offset, $label, @whats) = @_;
	my @t = traces_since($offset);
	foreach my $what (@whats)
	{
		ok((grep { ($_->[3] // '') eq $what && mallory_in_her_session($_) } @t),
			"$label: the old snapshot query, in mallory's session, does run \"$what\"");
	}
}

# Wait until $s sent its snapshot and streams, or has an error; its pid
# then (undef after an error)
sub wait_snapshot_done
{
	my ($db, $s) = @_;
	my ($pid, $r);
	pgs_wait_until(
		sub {
			$r = pgs_stream_state($node, $db, $s);
			$pid = $r->{pid} if $r->{state} eq 'streaming' && $r->{snapshot} eq 'done' && $r->{pid} ne '';
			return defined $pid || $r->{last_error} ne '';
		},
		"$s: snapshot done, or an error", 60);
	note("$s: $r->{state}, snapshot $r->{snapshot}, last_error: $r->{last_error}");
	return $pid;
}

# (d): still streaming on the worker that sent the snapshot, no last_error
sub stream_still_fine
{
	my ($db, $s, $pid, $label) = @_;
	my $r = pgs_stream_state($node, $db, $s);
	is($r->{state}, 'streaming', "$label: $s is streaming");
	is($r->{snapshot}, 'done', "$label: $s sent its snapshot");
	is($r->{last_error}, '', "$label: $s has no last_error");
	ok(defined $pid && $r->{pid} eq $pid,
		"$label: $s still runs on the worker that sent the snapshot (pid " . ($pid // 'none') . ", now "
		  . ($r->{pid} || 'none') . ')');
}

# Insert events of $s since $offset: "schema.table snapshot|insert" => ids
sub delivered_ids
{
	my ($offset, $s) = @_;
	my %r;
	foreach my $ev (pgs_events($node, $offset, stream => $s, kind => 'insert'))
	{
		my $ins = eval { pgs_json($ev)->{Insert} } or next;
		push @{ $r{"$ins->{schema}.$ins->{table} " . ($ins->{snapshot} ? 'snapshot' : 'insert')} },
		  $ins->{new_tuple}{id};
	}
	return { map { $_ => join(',', sort { $a <=> $b } @{ $r{$_} }) } keys %r };
}

# Since $offset, no background process logged an error, and worker $pid
# did not exit (the workers of the streams dropped before may)
sub no_worker_errors
{
	my ($offset, $label, $pid) = @_;
	$pid //= 'none';
	my @errors = grep { /^\S+ \S+ \S+ \[\d+\] ERROR:/ || /background worker "pgoutput_stream worker" \(PID \Q$pid\E\) exited/ }
	  split /\n/, slurp_file($node->logfile, $offset);
	is(scalar(@errors), 0, "$label: no worker logged an error, the stream's worker did not exit")
	  or diag(join("\n", @errors[ 0 .. ($#errors > 4 ? 4 : $#errors) ]));
}

sub run_as_mallory
{
	my ($db, $sql) = @_;
	return $node->safe_psql($db, $sql, extra_params => [ '-U', 'mallory' ]);
}

# mallory's IMMUTABLE function $schema.f(what), which calls $trace.trace
sub f_sql
{
	my ($schema, $trace) = @_;
	return qq{
CREATE FUNCTION $schema.f(what text) RETURNS int LANGUAGE plpgsql IMMUTABLE AS \$f\$
BEGIN
  PERFORM $trace.trace(what);
  RETURN 0;
END
\$f\$;
};
}

# ---------------------------------------------------------------------
# 1 (a)-(e): planning a SELECT of a table runs the owner's IMMUTABLE
# functions: index expressions, partial index predicates, statistics
# expressions, partition key expressions, and (constraint_exclusion =
# partition, the default) CHECK constraints of the partitions of a root
# published with a row filter
# ---------------------------------------------------------------------
my %plan_what = (
	't_idx'  => 'index expression',
	't_pred' => 'partial index predicate',
	't_stat' => 'statistics expression',
	't_part' => 'partition key',
	'p'      => 'check constraint of a partition');
$node->safe_psql('postgres', 'CREATE SCHEMA mp AUTHORIZATION mallory');
run_as_mallory('postgres', f_sql('mp', 'm') . q{
CREATE TABLE mp.t_idx (id int PRIMARY KEY, a int);
CREATE INDEX ON mp.t_idx ((a + mp.f('index expression')));
CREATE TABLE mp.t_pred (id int PRIMARY KEY, a int);
CREATE INDEX ON mp.t_pred (a) WHERE a > mp.f('partial index predicate');
CREATE TABLE mp.t_stat (id int PRIMARY KEY, a int);
CREATE STATISTICS mp.t_stat_x ON (a + mp.f('statistics expression')) FROM mp.t_stat;
CREATE TABLE mp.t_part (id int, a int) PARTITION BY RANGE ((a + mp.f('partition key')));
CREATE TABLE mp.t_part_1 PARTITION OF mp.t_part FOR VALUES FROM (MINVALUE) TO (MAXVALUE);
CREATE TABLE mp.p (id int, a int) PARTITION BY LIST (id);
CREATE TABLE mp.p_1 PARTITION OF mp.p FOR VALUES IN (1, 2, 3, 4);
ALTER TABLE mp.p_1 ADD CONSTRAINT p_1_a CHECK (a < 1000 + mp.f('check constraint of a partition'));
INSERT INTO mp.t_idx VALUES (1, 10), (2, 20), (3, 30);
INSERT INTO mp.t_pred VALUES (1, 10), (2, 20), (3, 30);
INSERT INTO mp.t_stat VALUES (1, 10), (2, 20), (3, 30);
INSERT INTO mp.t_part VALUES (1, 10), (2, 20), (3, 30);
-- 3 does not pass the publication's row filter
INSERT INTO mp.p VALUES (1, 10), (2, 20), (3, -30);
});
is($node->safe_psql('postgres', 'SHOW constraint_exclusion'), 'partition',
	'(1e) constraint_exclusion is the default, partition');
$node->safe_psql('postgres', q{
CREATE PUBLICATION tb_plan FOR TABLE mp.t_idx, mp.t_pred, mp.t_stat, mp.t_part, mp.p WHERE (a > 0)
  WITH (publish_via_partition_root = true);
});
my $offset_plan = pgs_log_offset($node);
$node->safe_psql('postgres', "SELECT pgoutput_stream.create_stream('s_plan', 'tb_plan', snapshot => true)");
my $pid_plan = wait_snapshot_done('postgres', 's_plan');
run_as_mallory('postgres', join('', map { "INSERT INTO mp.$_ VALUES (4, 40);\n" } sort keys %plan_what));
pgs_wait_delivered_or_error($node, 'postgres', 's_plan');

no_user_code_ran($offset_plan, '(1a-e) s_plan', map { $plan_what{$_} } sort keys %plan_what);
is_deeply(delivered_ids($offset_plan, 's_plan'),
	{ map { ("mp.$_ snapshot" => ($_ eq 'p' ? '1,2' : '1,2,3'), "mp.$_ insert" => '4') } keys %plan_what },
	'(1a-e) s_plan: every row arrived, per table, in the snapshot and streaming (partitioned tables as their root, the row filter applied)');
stream_still_fine('postgres', 's_plan', $pid_plan, '(1a-e)');
no_worker_errors($offset_plan, '(1a-e)', $pid_plan);

my $offset_armed = pgs_log_offset($node);
run_as_mallory('postgres', join('', map {
	"EXPLAIN SELECT id, a FROM " . ($_ =~ /^t_(idx|pred|stat)$/ ? 'ONLY ' : '') . "mp.$_"
	  . ($_ eq 'p' ? ' WHERE (a > 0)' : '') . ";\n"
} sort keys %plan_what));
traps_armed($offset_armed, '(1a-e)', map { $plan_what{$_} } sort keys %plan_what);

# ---------------------------------------------------------------------
# 2 and 3: names looked up again after the tables were listed.  While the
# worker waits for an earlier table (mallory holds a lock on it; a big
# table would give the same window), mallory renames a published table
# and creates a view with its old name (2), and swaps the names of the
# columns under a row filter, so that the filter, parsed again, would
# call her implicit cast (3)
# ---------------------------------------------------------------------
# (The lock is taken in ACCESS EXCLUSIVE mode, which gives the locking
# transaction an xid: a new slot would wait for that transaction to end.
# So the stream's slot is made by hand before, under the stream's slot
# name, which the worker uses as it is, docs/snapshot.md.)
$node->safe_psql('postgres', 'CREATE SCHEMA mr AUTHORIZATION mallory');
run_as_mallory('postgres', f_sql('mr', 'm') . q{
CREATE TYPE mr.e AS ENUM ('x');
CREATE FUNCTION mr.e_int(mr.e) RETURNS int LANGUAGE plpgsql AS $f$
BEGIN
  PERFORM m.trace('implicit cast in a row filter');
  RETURN 0;
END
$f$;
CREATE CAST (mr.e AS int) WITH FUNCTION mr.e_int(mr.e) AS IMPLICIT;
CREATE TABLE mr.a_first (id int PRIMARY KEY);
CREATE TABLE mr.rf (id int PRIMARY KEY, a int, b mr.e);
ALTER TABLE mr.rf REPLICA IDENTITY FULL;
CREATE TABLE mr.z_tgt (id int PRIMARY KEY, a int);
INSERT INTO mr.a_first VALUES (1), (2);
-- 2 does not pass the row filter
INSERT INTO mr.rf VALUES (1, 10, 'x'), (2, 1, 'x');
INSERT INTO mr.z_tgt VALUES (1, 1), (2, 2);
});
$node->safe_psql('postgres', q{
CREATE PUBLICATION tb_race FOR TABLE mr.a_first, mr.rf WHERE (a > 5), mr.z_tgt;
SELECT pgoutput_stream.create_stream('s_race', 'tb_race', start => false, snapshot => true);
SELECT pg_create_logical_replication_slot('pgs_s_race', 'pgoutput');
});
is($node->safe_psql('postgres', q{SELECT string_agg(tablename, ',' ORDER BY tablename)
	FROM pg_publication_tables WHERE pubname = 'tb_race'}), 'a_first,rf,z_tgt',
	'(2, 3) the snapshot reads mr.a_first first');
my $offset_race = pgs_log_offset($node);
my $locker = $node->background_psql('postgres', extra_params => [ '-U', 'mallory' ]);
$locker->query_safe('BEGIN');
$locker->query_safe('LOCK TABLE mr.a_first IN ACCESS EXCLUSIVE MODE');
$node->safe_psql('postgres', "SELECT pgoutput_stream.start_stream('s_race')");
# the locks of a worker (s_race's: no other reads schema mr) on mallory's tables
my $race_locks_sql = q{SELECT coalesce(string_agg(c.relname || ':' || l.granted, ',' ORDER BY c.relname), '')
	FROM pg_locks l JOIN pg_class c ON c.oid = l.relation JOIN pg_stat_activity a ON a.pid = l.pid
	WHERE a.backend_type = 'pgoutput_stream worker' AND c.relnamespace = 'mr'::regnamespace};
my $race_locks;
ok( pgs_wait_until(
		sub {
			$race_locks = $node->safe_psql('postgres', $race_locks_sql);
			return $race_locks =~ /\ba_first:false\b/ || pgs_stream_state($node, 'postgres', 's_race')->{last_error} ne '';
		},
		'the s_race worker waits for mr.a_first', 60),
	'(2, 3) the s_race worker waits for its lock on mr.a_first');
is($race_locks, 'a_first:false', '(2, 3) and holds no lock on mr.rf or mr.z_tgt yet');
if ($race_locks eq 'a_first:false')
{
	run_as_mallory('postgres', q{
ALTER TABLE mr.z_tgt RENAME TO z_old;
CREATE VIEW mr.z_tgt AS SELECT id, a + mr.f('view under the old name of a renamed table') AS a FROM mr.z_old;
ALTER TABLE mr.rf RENAME COLUMN a TO a_old;
ALTER TABLE mr.rf RENAME COLUMN b TO a;
});
}
$locker->query_safe('COMMIT');
$locker->quit;
my $pid_race = wait_snapshot_done('postgres', 's_race');
run_as_mallory('postgres', q{
INSERT INTO mr.a_first VALUES (3);
-- 4 does not pass the row filter (a_old > 5)
INSERT INTO mr.rf VALUES (3, 30, 'x'), (4, 2, 'x');
INSERT INTO mr.z_old VALUES (3, 3);
});
pgs_wait_delivered_or_error($node, 'postgres', 's_race');

no_user_code_ran($offset_race, '(2, 3) s_race', 'view under the old name of a renamed table',
	'implicit cast in a row filter');
is_deeply(delivered_ids($offset_race, 's_race'),
	{ 'mr.a_first snapshot' => '1,2', 'mr.a_first insert' => '3',
	  'mr.rf snapshot' => '1', 'mr.rf insert' => '3',
	  'mr.z_old snapshot' => '1,2', 'mr.z_old insert' => '3' },
	'(2, 3) s_race: every row arrived: the renamed table under its new name (not the view), the row filter on the column it was written for');
my ($rf_snap) = grep { $_->{payload} =~ /"snapshot":true/ } pgs_events($node, $offset_race, stream => 's_race', table => 'rf');
is($rf_snap ? $canon->encode(pgs_json($rf_snap)->{Insert}{new_tuple}) : 'none', '{"a":"x","a_old":10,"id":1}',
	'(3) s_race: the snapshot row of mr.rf, with its columns as renamed');
stream_still_fine('postgres', 's_race', $pid_race, '(2, 3)');
no_worker_errors($offset_race, '(2, 3)', $pid_race);

$offset_armed = pgs_log_offset($node);
run_as_mallory('postgres', q{
EXPLAIN SELECT id, a FROM ONLY mr.z_tgt;
SELECT count(*) FROM ONLY mr.rf WHERE (a > 5);
});
traps_armed($offset_armed, '(2, 3)', 'view under the old name of a renamed table', 'implicit cast in a row filter');

# ---------------------------------------------------------------------
# 1 (f): a database whose owner (mallory) set constraint_exclusion = on:
# planning checks the CHECK constraints of a plain table too
# ---------------------------------------------------------------------
$node->safe_psql('postgres', 'CREATE DATABASE tb_ce OWNER mallory');
$node->safe_psql('tb_ce', 'CREATE EXTENSION pgoutput_stream');
run_as_mallory('tb_ce', 'CREATE SCHEMA mp;' . trace_function_sql('mp') . f_sql('mp', 'mp') . q{
CREATE TABLE mp.plain (id int PRIMARY KEY, a int CHECK (a < 1000 + mp.f('check constraint, constraint_exclusion on')));
-- 3 does not pass the row filter
INSERT INTO mp.plain VALUES (1, 10), (2, 20), (3, -30);
ALTER DATABASE tb_ce SET constraint_exclusion = on;
});
is($node->safe_psql('tb_ce', 'SHOW constraint_exclusion'), 'on', '(1f) constraint_exclusion is on in database tb_ce');
$node->safe_psql('tb_ce', 'CREATE PUBLICATION tb_ce_pub FOR TABLE mp.plain WHERE (a > 0)');
my $offset_ce = pgs_log_offset($node);
$node->safe_psql('tb_ce', "SELECT pgoutput_stream.create_stream('s_ce', 'tb_ce_pub', snapshot => true)");
my $pid_ce = wait_snapshot_done('tb_ce', 's_ce');
run_as_mallory('tb_ce', 'INSERT INTO mp.plain VALUES (4, 40)');
pgs_wait_delivered_or_error($node, 'tb_ce', 's_ce');

no_user_code_ran($offset_ce, '(1f) s_ce', 'check constraint, constraint_exclusion on');
is_deeply(delivered_ids($offset_ce, 's_ce'), { 'mp.plain snapshot' => '1,2', 'mp.plain insert' => '4' },
	'(1f) s_ce: every row arrived');
stream_still_fine('tb_ce', 's_ce', $pid_ce, '(1f)');
no_worker_errors($offset_ce, '(1f)', $pid_ce);

$offset_armed = pgs_log_offset($node);
run_as_mallory('tb_ce', 'EXPLAIN SELECT id, a FROM ONLY mp.plain WHERE (a > 0)');
traps_armed($offset_armed, '(1f)', 'check constraint, constraint_exclusion on');

# ---------------------------------------------------------------------
# 7: a database whose owner (mallory) made transactions read-only and
# serializable by default
# ---------------------------------------------------------------------
$node->safe_psql('postgres', 'CREATE DATABASE tb_ro OWNER mallory');
$node->safe_psql('tb_ro', 'CREATE EXTENSION pgoutput_stream');
run_as_mallory('tb_ro', q{
CREATE SCHEMA mp;
CREATE TABLE mp.t (id int PRIMARY KEY, v text);
INSERT INTO mp.t VALUES (1, 'one'), (2, 'two'), (3, 'three');
ALTER DATABASE tb_ro SET default_transaction_read_only = on;
ALTER DATABASE tb_ro SET default_transaction_isolation = 'serializable';
});
is($node->safe_psql('tb_ro', 'SHOW default_transaction_read_only; SHOW default_transaction_isolation'),
	"on\nserializable", '(7) transactions are read-only and serializable by default in database tb_ro');
# (the superuser's sessions set them back for themselves)
my $rw = "SET default_transaction_read_only = off;\nSET default_transaction_isolation = 'read committed';\n";
$node->safe_psql('tb_ro', $rw . 'CREATE PUBLICATION tb_ro_pub FOR TABLE mp.t');
my $offset_ro = pgs_log_offset($node);
$node->safe_psql('tb_ro', $rw . "SELECT pgoutput_stream.create_stream('s_ro', 'tb_ro_pub', snapshot => true)");
my $pid_ro = wait_snapshot_done('tb_ro', 's_ro');
run_as_mallory('tb_ro', "SET default_transaction_read_only = off;\nINSERT INTO mp.t VALUES (4, 'four')");
pgs_wait_delivered_or_error($node, 'tb_ro', 's_ro');

is_deeply(delivered_ids($offset_ro, 's_ro'), { 'mp.t snapshot' => '1,2,3', 'mp.t insert' => '4' },
	'(7) s_ro: every row arrived');
stream_still_fine('tb_ro', 's_ro', $pid_ro, '(7)');
no_worker_errors($offset_ro, '(7)', $pid_ro);

$node->safe_psql('postgres', q{
SELECT pgoutput_stream.drop_stream('s_plan');
SELECT pgoutput_stream.drop_stream('s_race');
});
$node->safe_psql('tb_ce', "SELECT pgoutput_stream.drop_stream('s_ce')");
$node->safe_psql('tb_ro', $rw . "SELECT pgoutput_stream.drop_stream('s_ro')");

$node->stop;
$nats->stop;
$fake->stop;
unlink $marker;
done_testing();
