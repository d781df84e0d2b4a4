
# Copyright (c) 2026, pgoutput_stream developers

# The debezium format, as Feldera ingests it: a stream with
# format => 'debezium' and {"debezium_values": "feldera"} publishes to
# JetStream, and its data-change messages are posted, in order, to the
# fake Feldera (test/feldera/fake_feldera.mjs) with
# update_format=debezium&json_flavor=debezium_postgres:
#  - every request is answered 200, nothing is refused, ignored or missing,
#    and the Feldera tables end up equal to PostgreSQL's, value by value,
#    for every type Feldera has (bigint, int, smallint, boolean, decimal,
#    real, double, text, varchar, date, time, timestamp, timestamptz,
#    binary, uuid, VARIANT, arrays), NULLs, values at the edges of their
#    ranges, key changes, a table without primary key (a multiset, with a
#    duplicate row), unchanged TOASTed values and several multi-row and
#    multi-table transactions;
#  - REPLICA IDENTITY: FULL gives every update and delete the whole old
#    row as "before"; DEFAULT (key-only "before") still works for a
#    Feldera table with a primary key, but not for one without;
#  - what must not be routed to Feldera: truncate (op "t"), logical
#    message (op "m") and transaction BEGIN/END events are refused (400);
#  - why debezium_values = feldera exists: with Debezium's own encodings
#    (connect mode) a TIME column is silently read 1000 times too small,
#    and timestamptz, bytea and NaN values are refused.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";

use HTTP::Tiny;
use JSON::PP;
use B ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PgsTestUtil;
use PgsNatsUtil;
use PgsFelderaUtil;

my $nats = PgsNatsUtil->new('dbz')->start;
my $fake = PgsFelderaUtil->new('f012')->start;

my $node = pgs_nats_node('main', $nats);
$node->start;

my $json = JSON::PP->new->utf8->allow_nonref;
my $canon_json = JSON::PP->new->utf8->canonical->allow_nonref;
my $http = HTTP::Tiny->new(timeout => 30, keep_alive => 1);

# ---------------------------------------------------------------------
# Tables.
#
# REPLICA IDENTITY FULL on every table but one: Feldera applies a Debezium
# event as "delete `before`, then insert `after`" (DebeziumUpdate::apply in
# feldera crates/adapters/src/format/json/input.rs), and it deletes the
# whole `before` row.  In a Feldera table without a primary key (a
# multiset, shop.ledger below) that row must equal the stored one value by
# value, or the delete removes nothing and leaves a row of weight -1.
# Under REPLICA IDENTITY DEFAULT `before` is only the key with every other
# column null, or null altogether for an update that keeps the key (so the
# old row is not deleted at all), and an unchanged TOASTed value in `after`
# is Debezium's placeholder "__debezium_unavailable_value", which Feldera
# would store as data: FULL gives the whole old row, and the extension
# writes the old TOASTed value instead (public.dbz_all.big).
# public.keyed_default keeps REPLICA IDENTITY DEFAULT to show both sides: a
# Feldera table with a primary key reads only the key columns of a delete
# (the table's key struct, DeMapStream::delete in feldera
# crates/adapters/src/static_compile/deinput.rs), so the key-only `before`
# works there, even with a NOT NULL column; a Feldera table without one
# gets deletes of rows it does not hold.
# ---------------------------------------------------------------------

# Columns: [name, PostgreSQL type, Feldera type, kind, nullable].  A
# timestamptz column is TIMESTAMP WITH TIME ZONE in Feldera (TIMESTAMP
# would read the same in this flavour: both are milliseconds).
my $all = pgs_feldera_spec(
	'public.dbz_all',
	key     => ['id'],
	columns => [
		[ id  => 'bigint',           'BIGINT',                   'int', 0 ],
		[ i   => 'int',              'INT',                      'int' ],
		[ s   => 'smallint',         'SMALLINT',                 'int' ],
		[ b   => 'boolean',          'BOOLEAN',                  'bool' ],
		[ n   => 'numeric(12,2)',    'DECIMAL(12,2)',            'decimal' ],
		[ r   => 'real',             'REAL',                     'real' ],
		[ d8  => 'double precision', 'DOUBLE',                   'double' ],
		[ t   => 'text',             'VARCHAR',                  'text' ],
		[ vc  => 'varchar(20)',      'VARCHAR(20)',              'text' ],
		[ dt  => 'date',             'DATE',                     'date' ],
		[ tm  => 'time',             'TIME',                     'time' ],
		[ ts  => 'timestamp',        'TIMESTAMP',                'timestamp' ],
		[ tz  => 'timestamptz',      'TIMESTAMP WITH TIME ZONE', 'timestamptz' ],
		[ bin => 'bytea',            'VARBINARY',                'bytes' ],
		[ u   => 'uuid',             'UUID',                     'uuid' ],
		[ j   => 'jsonb',            'VARIANT',                  'json' ],
		[ ia  => 'int[]',            'INT ARRAY',                'json' ],
		[ ta  => 'text[]',           'VARCHAR ARRAY',            'json' ],
		[ big => 'text',             'VARCHAR',                  'text' ],
	]);
my $clock = pgs_feldera_spec(
	'public.clock',
	key     => ['id'],
	columns => [
		[ id => 'int',       'INT',       'int', 0 ],
		[ tm => 'time',      'TIME',      'time', 0 ],
		[ ts => 'timestamp', 'TIMESTAMP', 'timestamp' ],
	]);
# No primary key, on either side
my $ledger = pgs_feldera_spec(
	'shop.ledger',
	key     => [],
	columns => [
		[ acct   => 'int',           'INT',                      'int', 0 ],
		[ amount => 'numeric(12,2)', 'DECIMAL(12,2)',            'decimal', 0 ],
		[ at     => 'timestamptz',   'TIMESTAMP WITH TIME ZONE', 'timestamptz' ],
		[ note   => 'text',          'VARCHAR',                  'text' ],
	]);
# REPLICA IDENTITY DEFAULT (see above)
my $kd = pgs_feldera_spec(
	'public.keyed_default',
	key     => ['id'],
	columns => [ [ id => 'int', 'INT', 'int', 0 ], [ v => 'text', 'VARCHAR', 'text', 0 ] ]);
# Only for the truncate event
my $scratch = pgs_feldera_spec(
	'public.scratch',
	key     => ['id'],
	columns => [ [ id => 'int', 'INT', 'int', 0 ] ]);
my @specs = ($all, $clock, $ledger, $kd);

sub pg_ddl
{
	my ($spec) = @_;
	my $identity = $spec == $kd ? 'DEFAULT' : 'FULL';
	my @defs = map { "$_->{name} $_->{pg}" . ($_->{nullable} ? '' : ' NOT NULL') }
	  @{ $spec->{columns} };
	push @defs, 'PRIMARY KEY (' . join(', ', @{ $spec->{key} }) . ')' if @{ $spec->{key} };
	return "CREATE TABLE $spec->{pg} (" . join(', ', @defs)
	  . ");\nALTER TABLE $spec->{pg} REPLICA IDENTITY $identity;\n";
}

$node->safe_psql(
	'postgres', join('', 'CREATE EXTENSION pgoutput_stream; CREATE SCHEMA shop;',
		map { pg_ddl($_) } @specs, $scratch)
	  . q{
ALTER TABLE dbz_all ALTER COLUMN big SET STORAGE EXTERNAL;
CREATE PUBLICATION dbz_pub FOR TABLE dbz_all, clock, shop.ledger, keyed_default, scratch;

-- PostgreSQL values in the form the fake stores (fake_feldera.mjs README,
-- "Stored rows have a canonical form"), converted as Feldera reads what
-- the stream sends: TIME in microseconds (exact), TIMESTAMP and
-- TIMESTAMP WITH TIME ZONE in milliseconds since 1970, rounded down (the
-- microseconds are lost), in UTC; infinities, NaN: NULL.
CREATE FUNCTION fk_frac(us numeric) RETURNS text LANGUAGE sql IMMUTABLE AS $$
	SELECT CASE WHEN us % 1000000 = 0 THEN ''
		ELSE '.' || lpad((us % 1000000)::bigint::text, 6, '0') END $$;
CREATE FUNCTION fk_time(t time) RETURNS text LANGUAGE sql IMMUTABLE AS $$
	SELECT to_char(date '2000-01-01' + t, 'HH24:MI:SS') || fk_frac(extract(microseconds FROM t)) $$;
CREATE FUNCTION fk_ts(t timestamp) RETURNS text LANGUAGE sql IMMUTABLE AS $$
	SELECT CASE WHEN isfinite(t) THEN
		to_char(date_trunc('milliseconds', t), 'YYYY-MM-DD HH24:MI:SS')
		|| fk_frac(extract(microseconds FROM date_trunc('milliseconds', t))) END $$;
CREATE FUNCTION fk_tstz(t timestamptz) RETURNS text LANGUAGE sql IMMUTABLE AS $$
	SELECT fk_ts(t AT TIME ZONE 'UTC') $$;
});

# The fake's pipelines: "dbz" for the feldera values, "connect" for
# Debezium's own
# keyed_default twice: with its primary key, and as a multiset
$fake->declare('dbz',
	[ (map { pgs_feldera_decl($_) } @specs, $scratch),
	  { %{ pgs_feldera_decl($kd, name => 'keyed_default_nopk', columns => { v => { nullable => 1 } }) },
		primary_key => [] } ]);
$fake->declare('connect', [ map { pgs_feldera_decl($_) } $all, $clock ]);

# Two streams of the same changes: Feldera's values (subjects postgres.*,
# JetStream stream postgres_replication) with Debezium's transaction
# metadata, and Debezium's own values (subjects dbzc.*)
$node->safe_psql(
	'postgres', q{
SELECT pgoutput_stream.create_stream('dbz', 'dbz_pub', targets => '{nats}', format => 'debezium',
	options => '{"debezium_values": "feldera", "transaction_events": true}');
SELECT pgoutput_stream.create_stream('dbzc', 'dbz_pub', targets => '{nats}', format => 'debezium',
	options => '{"subject_prefix": "dbzc", "nats_stream": "dbz_connect"}');
});
foreach my $s (qw(dbz dbzc))
{
	ok(pgs_wait_for_status($node, 'postgres', $s, "state = 'streaming' AND pid IS NOT NULL"),
		"stream $s is streaming");
}

# ---------------------------------------------------------------------
# The workload
# ---------------------------------------------------------------------
$node->safe_psql(
	'postgres', q{
-- T1: many rows of two tables in one transaction
BEGIN;
INSERT INTO dbz_all VALUES
	(1, 1, -32768, true, 12.50, 1.1, 0.1, E'quote" backslash\\\\ newline\n tab\t ünï ✓', 'vc',
	 '2026-01-02', '03:04:05.123456', '2026-01-02 03:04:05.123456', '2026-01-02 03:04:05.123456+02',
	 '\x00ff10', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"b": 2, "a": [1, 2.50, null], "s": "x\"y"}',
	 '{1,NULL,3}', '{"a b",NULL,"c\"d",""}', repeat('x', 5000)),
	(2, 2147483647, 32767, false, -9999999999.99, -2.5e10, 1e300, '', ' spaced ',
	 '1970-01-01', '00:00:00', '1969-12-31 23:59:59.9995', '1900-06-15 12:00:00.000001+00',
	 '\x', 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A12', '[]', '{}', '{}', repeat('y', 4000)),
	(3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
	 NULL, NULL, NULL),
	(4, -2147483648, 0, true, 0.01, 0, -0.0, 'four', 'v4', '2000-02-29', NULL, '2000-02-29 12:00:00',
	 NULL, '\x0102', NULL, '{"n": null}', '{-1}', '{x}', NULL),
	(5, 5, 5, false, 5.05, 3.4028235e38, 5e-324, 'five', 'v5', '9999-12-31', '23:59:59.999999',
	 '9999-12-31 23:59:59.999999', '0001-01-01 00:00:00+00', '\xdeadbeef',
	 '00000000-0000-0000-0000-000000000000', '"str"', '{2147483647,-2147483648}', '{"ünï"}', 'short'),
	(6, 6, 6, true, 'NaN', 'NaN', 'Infinity', 'six', 'v6', 'infinity', '12:34:56', '-infinity',
	 'infinity', '\x06', NULL, '123', NULL, NULL, NULL);
INSERT INTO clock VALUES (1, '13:51:30.123456', '2026-03-04 05:06:07.891234'),
	(2, '00:00:00.000001', NULL);
COMMIT;

-- T2: a multiset, with a duplicate row
INSERT INTO shop.ledger VALUES (1, 10.00, '2026-01-01 00:00:00.0005+00', 'a'),
	(1, 10.00, '2026-01-01 00:00:00.0005+00', 'a'), (2, -5.25, NULL, NULL),
	(3, 0.00, '2026-02-02 10:00:00+05', 'x');

-- T3: updates (big stays unchanged: TOASTed), a key change, a delete
BEGIN;
UPDATE dbz_all SET vc = 'changed', tm = '12:00:00.5', tz = tz + interval '1 microsecond',
	ia = ia || 4 WHERE id = 1;
UPDATE dbz_all SET id = 20 WHERE id = 2;
DELETE FROM dbz_all WHERE id = 4;
UPDATE shop.ledger SET note = 'b' WHERE acct = 2;
COMMIT;

-- T4: one of the two equal rows deleted; values to NULL and back
BEGIN;
DELETE FROM shop.ledger WHERE ctid IN (SELECT ctid FROM shop.ledger WHERE acct = 1 LIMIT 1);
UPDATE shop.ledger SET amount = amount + 1, at = at + interval '1 millisecond' WHERE acct = 3;
UPDATE dbz_all SET i = NULL, s = NULL, b = NULL, n = NULL, r = NULL, d8 = NULL, t = NULL,
	vc = NULL, dt = NULL, tm = NULL, ts = NULL, tz = NULL, bin = NULL, u = NULL, j = NULL,
	ia = NULL, ta = NULL, big = NULL WHERE id = 5;
UPDATE dbz_all SET i = 3, b = false, tm = '23:59:59.999999', ts = '2026-06-30 23:59:59.9999',
	tz = '2026-06-30 23:59:59.9999-07', bin = '\x00', j = '[null, true]', ia = '{NULL}',
	ta = '{NULL}' WHERE id = 3;
COMMIT;

-- T5...: one statement each; a deleted key inserted again; changes
-- under REPLICA IDENTITY DEFAULT; a TRUNCATE and a logical message (not
-- for Feldera)
UPDATE clock SET tm = '23:59:59.999999' WHERE id = 2;
INSERT INTO keyed_default VALUES (1, 'a'), (2, 'b');
UPDATE keyed_default SET v = 'a2' WHERE id = 1;
UPDATE keyed_default SET id = 3 WHERE id = 2;
DELETE FROM keyed_default WHERE id = 1;
INSERT INTO dbz_all (id, t) VALUES (4, 'reinserted');
INSERT INTO scratch VALUES (1);
TRUNCATE scratch;
SELECT pg_logical_emit_message(true, 'outbox', '{"order": 1}');
});

# Data-change messages per Feldera table and subject operation
my %want_counts = (
	'public_dbz_all insert' => 7,
	'public_dbz_all update' => 4,
	'public_dbz_all delete' => 1,
	'public_clock insert'   => 2,
	'public_clock update'   => 1,
	'shop_ledger insert'    => 4,
	'shop_ledger update'    => 2,
	'shop_ledger delete'    => 1,
	'public_keyed_default insert' => 2,
	'public_keyed_default update' => 2,
	'public_keyed_default delete' => 1,
	'public_scratch insert' => 1,);

foreach my $s (qw(dbz dbzc))
{
	ok(pgs_wait_delivered($node, 'postgres', $s), "stream $s delivered the workload");
}

# ---------------------------------------------------------------------
# Reading JetStream, routing to Feldera
# ---------------------------------------------------------------------

# Every message of a JetStream stream: [{subject, payload (text), json}]
sub read_stream
{
	my ($js_stream) = @_;
	my $dump = pgs_js_dump($nats->url, $js_stream);
	is($dump->{count}, $dump->{last_seq}, "JetStream stream $js_stream: every message was read");
	return map {
		my ($text, $decoded) = pgs_msg_payload($_);
		{ subject => $_->{subject}, payload => $text, json => $decoded }
	} @{ $dump->{msgs} };
}

# The data-change messages under $prefix, grouped into runs of consecutive
# messages of one table: [[feldera table, [messages]], ...].  Also checks
# each envelope: exactly "schema" and "payload", op as the subject says.
my %op_of = (insert => 'c', update => 'u', delete => 'd');

sub data_runs
{
	my ($prefix, $msgs, $counts) = @_;
	my (@runs, @bad);
	foreach my $m (@$msgs)
	{
		next unless $m->{subject} =~ /^\Q$prefix\E\.([^.]+)\.([^.]+)\.(insert|update|delete)\z/;
		my $table = pgs_subject_unescape($1) . '_' . pgs_subject_unescape($2);
		my $op = $3;
		$counts->{"$table $op"}++ if $counts;
		my $j = $m->{json};
		push @bad, "$m->{subject}: not a Debezium envelope: $m->{payload}"
		  unless ref $j eq 'HASH'
		  && join(',', sort keys %$j) eq 'payload,schema'
		  && !defined $j->{schema}
		  && ($j->{payload}{op} // '') eq $op_of{$op};
		if (@runs && $runs[-1][0] eq $table)
		{
			push @{ $runs[-1][1] }, $m;
		}
		else
		{
			push @runs, [ $table, [$m] ];
		}
	}
	is_deeply(\@bad, [], "$prefix: every data message is {\"schema\":null,\"payload\":{..}} with the op of its subject")
	  or diag(join("\n", @bad[ 0 .. ($#bad > 4 ? 4 : $#bad) ]));
	return @runs;
}

# POST messages as one NDJSON body: (status, decoded answer)
my $dbz_query = 'format=json&update_format=debezium&json_flavor=debezium_postgres';

sub ingest
{
	my ($pipeline, $table, @msgs) = @_;
	my $body = join('', map { my $p = $_->{payload}; utf8::encode($p); "$p\n" } @msgs);
	my $res = $http->post($fake->url . "/v0/pipelines/$pipeline/ingress/$table?$dbz_query",
		{ content => $body, headers => { 'content-type' => 'application/json' } });
	my $answer = eval { $json->decode($res->{content}) } // $res->{content};
	return ($res->{status}, $answer);
}

# ---------------------------------------------------------------------
# Comparing PostgreSQL's tables with the fake's
# ---------------------------------------------------------------------

# SQL giving a column's value in the fake's stored form (json_build_object
# makes JSON of it)
sub pg_expr
{
	my ($col) = @_;
	my ($n, $k) = ($col->{name}, $col->{kind});
	return "CASE WHEN $n = 'NaN' THEN NULL ELSE $n\::text END" if $k eq 'decimal';
	return "CASE WHEN $n IN ('NaN', 'Infinity', '-Infinity') THEN NULL ELSE $n END"
	  if $k eq 'real' || $k eq 'double';
	return "CASE WHEN isfinite($n) THEN to_char($n, 'YYYY-MM-DD') END" if $k eq 'date';
	return "fk_time($n)"            if $k eq 'time';
	return "fk_ts($n)"              if $k eq 'timestamp';
	return "fk_tstz($n)"            if $k eq 'timestamptz';
	return "encode($n, 'hex')"      if $k eq 'bytes';
	return "$n\::text"              if $k eq 'uuid';
	return "to_json($n)"            if $k eq 'json' && $col->{pg} =~ /\[\]\z/;
	return $n;
}

# JSON numbers as Perl numbers (JSON::PP keeps "2.50" and 2.5 apart)
sub numbers
{
	my ($v) = @_;
	return [ map { numbers($_) } @$v ] if ref $v eq 'ARRAY';
	return { map { $_ => numbers($v->{$_}) } keys %$v } if ref $v eq 'HASH';
	return $v if !defined $v || ref $v;
	return $v if B::svref_2object(\$v)->FLAGS & B::SVf_POK();
	return 0 + $v;
}

# One value as comparable text
sub canon
{
	my ($kind, $v, $side) = @_;
	return '<NULL>' unless defined $v;
	return $v ? 'true' : 'false' if $kind eq 'bool';
	if ($kind eq 'real')
	{
		my $f = unpack('f', pack('f', 0 + $v));
		return $f == 0 ? '0' : sprintf('%.9g', $f);
	}
	return (0 + $v == 0 ? '0' : sprintf('%.17g', 0 + $v)) if $kind eq 'double';
	if ($kind eq 'bytes')
	{
		return '[' . join(',', @$v) . ']' if $side eq 'fake';
		return '[' . join(',', map { hex } ($v =~ /(..)/g)) . ']';
	}
	return $canon_json->encode(numbers($v)) if $kind eq 'json';
	return "$v";
}

sub canon_row
{
	my ($spec, $row, $side) = @_;
	return { map { $_->{name} => canon($_->{kind}, $row->{ $_->{name} }, $side) }
		  @{ $spec->{columns} } };
}

sub pg_rows
{
	my ($spec) = @_;
	my $obj = join(', ', map { "'$_->{name}', " . pg_expr($_) } @{ $spec->{columns} });
	my $out = $node->safe_psql('postgres',
		"SELECT coalesce(json_agg(json_build_object($obj)), '[]') FROM $spec->{pg}");
	return [ map { canon_row($spec, $_, 'pg') } @{ $json->decode($out) } ];
}

sub fake_rows
{
	my ($pipeline, $spec) = @_;
	return [ map { canon_row($spec, $_, 'fake') } @{ $fake->rows($pipeline, $spec->{feldera}) } ];
}

# Differences between PostgreSQL's rows and the fake's: rows matched by
# primary key, then compared column by column; without a key, whole rows
# counted (a multiset)
sub table_diff
{
	my ($spec, $want, $got) = @_;
	my $short = sub { my $t = shift; length($t) > 300 ? substr($t, 0, 300) . '...' : $t };
	my @diff;
	if (!@{ $spec->{key} })
	{
		my %n;
		$n{ $canon_json->encode($_) }++ foreach @$want;
		$n{ $canon_json->encode($_) }-- foreach @$got;
		foreach my $r (sort grep { $n{$_} } keys %n)
		{
			push @diff, sprintf('row %s: %d more in %s', $short->($r), abs $n{$r},
				$n{$r} > 0 ? 'PostgreSQL' : 'Feldera');
		}
		return @diff;
	}
	my $key = sub { my $r = shift; join(', ', map { "$_=$r->{$_}" } @{ $spec->{key} }) };
	my %w = map { $key->($_) => $_ } @$want;
	my %g = map { $key->($_) => $_ } @$got;
	push @diff, sprintf('%d rows in PostgreSQL, %d in Feldera', scalar @$want, scalar @$got)
	  if @$want != @$got;
	foreach my $k (sort keys %{ { %w, %g } })
	{
		if (!$w{$k} || !$g{$k})
		{
			push @diff, "row $k only in "
			  . ($w{$k} ? 'PostgreSQL: ' . $short->($canon_json->encode($w{$k}))
				: 'Feldera: ' . $short->($canon_json->encode($g{$k})));
			next;
		}
		foreach my $c (map { $_->{name} } @{ $spec->{columns} })
		{
			next if $w{$k}{$c} eq $g{$k}{$c};
			my ($ws, $gs) = map { length > 80 ? substr($_, 0, 80) . '...' : $_ } $w{$k}{$c}, $g{$k}{$c};
			push @diff, "row $k column $c: PostgreSQL $ws, Feldera $gs";
		}
	}
	return @diff;
}

# ---------------------------------------------------------------------
# (1) The feldera values, ingested by Feldera
# ---------------------------------------------------------------------
my @main = read_stream('postgres_replication');
my %counts;
my @runs = data_runs('postgres', \@main, \%counts);
is_deeply(\%counts, \%want_counts, 'one data message per row change, on the subject of its table and operation');

my $since = $fake->last_seq;
my (@refused, $events);
foreach my $run (@runs)
{
	my ($table, $msgs) = @$run;
	my ($status, $answer) = ingest('dbz', $table, @$msgs);
	$events += @$msgs;
	push @refused, "$table (" . scalar(@$msgs) . " events): $status "
	  . (ref $answer ? $answer->{message} // '' : $answer)
	  if $status != 200;
}
is_deeply(\@refused, [], scalar(@runs) . " requests ($events events) to the debezium_postgres ingress answered 200")
  or diag(join("\n", @refused));

# The fake's view of those requests: every event parsed and applied, no
# JSON key left unused, no delete of a row that is not there
my @log = $fake->ingress('dbz', $since);
is(scalar(@log), scalar(@runs), 'the fake logged every request');
my (@problems, $updates);
foreach my $e (@log)
{
	$updates += $e->{updates} // 0;
	push @problems, "request $e->{seq} ($e->{table}): "
	  . join(', ', map { "$_ " . $json->encode($e->{$_}) }
		  grep { ref $e->{$_} ? @{ $e->{$_} } : $e->{$_} } qw(errors violations missing_deletes ignored_keys))
	  if grep { ref $e->{$_} ? @{ $e->{$_} } : $e->{$_} } qw(errors violations missing_deletes ignored_keys);
}
is_deeply(\@problems, [], 'no parse errors, violations, deletes of missing rows or ignored keys')
  or diag(join("\n", @problems));
# Feldera deletes "before" and inserts "after"
my $n_ops = 0;
foreach my $m (map { @{ $_->[1] } } @runs)
{
	$n_ops += (defined $m->{json}{payload}{before}) + (defined $m->{json}{payload}{after});
}
is($updates, $n_ops, "every event was applied as a delete of \"before\" and an insert of \"after\" ($n_ops)");

# Under REPLICA IDENTITY FULL every update and delete has the whole old row
my @partial;
foreach my $run (grep { $_->[0] ne 'public_keyed_default' } @runs)
{
	my ($spec) = grep { $_->{feldera} eq $run->[0] } @specs, $scratch;
	foreach my $m (grep { $_->{subject} =~ /\.(update|delete)\z/ } @{ $run->[1] })
	{
		my $before = $m->{json}{payload}{before};
		push @partial, "$m->{subject}: $m->{payload}"
		  unless ref $before eq 'HASH'
		  && join(',', sort keys %$before) eq join(',', sort map { $_->{name} } @{ $spec->{columns} });
	}
}
is_deeply(\@partial, [], 'REPLICA IDENTITY FULL: every update and delete carries the whole old row as "before"')
  or diag(join("\n", @partial));
is_deeply($fake->violations, [], 'the fake recorded no contract violation');

foreach my $spec (@specs)
{
	my @diff = table_diff($spec, pg_rows($spec), fake_rows('dbz', $spec));
	is_deeply(\@diff, [], "Feldera table $spec->{feldera} equals PostgreSQL's $spec->{pg}")
	  or diag(join("\n", @diff[ 0 .. ($#diff > 19 ? 19 : $#diff) ]));
}

# A few values spelled out, so that a conversion bug on both sides cannot
# hide: the fake's stored form of what Feldera read
my %row = map { $_->{id} => $_ } @{ $fake->rows('dbz', 'public_dbz_all') };
is_deeply(
	[ @{ $row{1} }{qw(tm ts tz bin n j t)} ],
	[ '12:00:00.500000', '2026-01-02 03:04:05.123000', '2026-01-02 01:04:05.123000',
	  [ 0, 255, 16 ], '12.50', { a => [ 1, 2.5, undef ], b => 2, s => 'x"y' },
	  "quote\" backslash\\ newline\n tab\t \x{fc}n\x{ef} \x{2713}" ],
	'id 1: TIME to the microsecond, timestamps to the millisecond in UTC, bytes, decimal, VARIANT, text');
is_deeply(
	[ @{ $row{20} }{qw(ts tz bin u)} ],
	[ '1969-12-31 23:59:59.999000', '1900-06-15 12:00:00', [], 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12' ],
	'id 20 (was 2): a timestamp before 1970 rounded down, microseconds dropped, empty bytea');
is_deeply(
	[ @{ $row{5} }{qw(i tm tz big)}, @{ $row{6} }{qw(n r d8 dt ts tz)} ],
	[ (undef) x 10 ],
	'NULLs; and NaN, infinities and infinite dates and timestamps as NULL');
is(length($row{1}{big} // ''), 5000, 'an unchanged TOASTed value arrives whole (REPLICA IDENTITY FULL)');

# REPLICA IDENTITY DEFAULT: the key-only "before" (null in the NOT NULL
# column v) did its job in the table with a primary key (compared above);
# sent to the same table without a primary key, the deletes miss
{
	my @kd_msgs = map { @{ $_->[1] } } grep { $_->[0] eq 'public_keyed_default' } @runs;
	my $since_nopk = $fake->last_seq;
	my ($status, $answer) = ingest('dbz', 'keyed_default_nopk', @kd_msgs);
	my ($e) = $fake->ingress('dbz', $since_nopk);
	ok($status == 400 && ($e->{violations} // 0) == 2
		  && (ref $answer ? $answer->{message} : '') =~ /delete of a row that is not in table keyed_default_nopk/,
		'REPLICA IDENTITY DEFAULT into a table without primary key: both key-only deletes miss their row')
	  or diag("$status " . (ref $answer ? $json->encode($answer) : $answer));
	my @diff = table_diff({ %$kd, key => [] }, pg_rows($kd),
		fake_rows('dbz', { %$kd, feldera => 'keyed_default_nopk' }));
	is_deeply(\@diff, [
		'row {"id":"1","v":"a"}: 1 more in Feldera',
		'row {"id":"1","v":"a2"}: 1 more in Feldera',
		'row {"id":"2","v":"b"}: 1 more in Feldera' ],
		'... and the old rows stay: (1,a) not deleted by the update that kept the key, (1,a2) and (2,b) by the key-only deletes')
	  or diag(join("\n", @diff));
}

# ---------------------------------------------------------------------
# (2) Events that must not be routed to Feldera: it refuses them
# ---------------------------------------------------------------------
my @scratch_before = @{ $fake->rows('dbz', 'public_scratch') };
my %not_data = (
	'truncate (op "t")' => [ qr/^postgres\.public\.scratch\.truncate\z/, qr/unknown variant `t`/ ],
	'logical message (op "m")' => [ qr/^postgres\.messages\.outbox\z/, qr/unknown variant `m`/ ],
	'transaction BEGIN' => [ qr/^postgres\.transactions\.begin\.event\z/, qr/missing field `op`/ ],
	'transaction END' => [ qr/^postgres\.transactions\.commit\.event\z/, qr/missing field `op`/ ],);
foreach my $what (sort keys %not_data)
{
	my ($subject_re, $error_re) = @{ $not_data{$what} };
	my ($m) = grep { $_->{subject} =~ $subject_re } @main;
	ok($m, "JetStream holds a $what event") or next;
	my ($status, $answer) = ingest('dbz', 'public_scratch', $m);
	my $message = ref $answer ? $answer->{message} // '' : $answer;
	ok($status == 400 && $message =~ /error deserializing JSON string as a Debezium CDC event: .*$error_re/,
		"Feldera refuses a $what event: 400 " . ($message =~ $error_re ? $& : ''))
	  or diag("$status $message\npayload: $m->{payload}");
}
is_deeply($fake->rows('dbz', 'public_scratch'), \@scratch_before,
	'the refused events changed nothing: the truncated row stays in Feldera');
is($node->safe_psql('postgres', 'SELECT count(*) FROM scratch'), '0',
	'(while PostgreSQL truncated it: truncates need another way to Feldera)');

# ---------------------------------------------------------------------
# (3) Debezium's own values (debezium_values = connect) in Feldera's
#     debezium_postgres flavour
# ---------------------------------------------------------------------
my @connect = read_stream('dbz_connect');
my %runs_c;
push @{ $runs_c{ $_->[0] } }, @{ $_->[1] } foreach data_runs('dbzc', \@connect);

# TIME: Debezium writes milliseconds, Feldera reads microseconds.  The
# requests succeed, and the times are wrong.
my ($status, $answer) = ingest('connect', 'public_clock', @{ $runs_c{public_clock} });
is($status, 200, 'connect values of the clock table: Feldera accepts them');
my %pg_clock = map { $_->{id} => $_ } @{ pg_rows($clock) };
my %fk_clock = map { $_->{id} => $_ } @{ fake_rows('connect', $clock) };
is_deeply([ sort keys %fk_clock ], [ sort keys %pg_clock ], '... every row arrives');
foreach my $id (sort keys %pg_clock)
{
	my $pg = $pg_clock{$id}{tm};
	my ($h, $mi, $s, $f) = $pg =~ /^(\d+):(\d+):(\d+)(?:\.(\d+))?\z/ or die "time $pg";
	my $ms = int((($h * 60 + $mi) * 60 + $s) * 1000 + ($f // 0) / 1000);
	# the milliseconds read as microseconds
	my $as_us = sprintf('%02d:%02d:%02d', int($ms / 3_600_000_000), int($ms / 60_000_000) % 60,
		int($ms / 1_000_000) % 60) . ($ms % 1_000_000 ? sprintf('.%06d', $ms % 1_000_000) : '');
	ok($fk_clock{$id}{tm} ne $pg && $fk_clock{$id}{tm} eq $as_us,
		"clock id $id: TIME $pg arrives as $fk_clock{$id}{tm} (its milliseconds read as microseconds)")
	  or diag("got $fk_clock{$id}{tm}, expected $as_us");
	is($fk_clock{$id}{ts}, $pg_clock{$id}{ts}, "clock id $id: TIMESTAMP (milliseconds either way) is right");
}

# timestamptz (ISO string), bytea (base64) and NaN ("NAN") are refused
my %dbz_c;
foreach my $m (grep { $_->{subject} =~ /\.insert\z/ } @{ $runs_c{public_dbz_all} })
{
	$dbz_c{ $m->{json}{payload}{after}{id} } //= $m;
}
foreach my $case ([ 1, 'tz', qr/invalid type: string "2026-01-02T01:04:05\.123456Z", expected i64/ ],
	[ 4, 'bin', qr/invalid type: string "AQI=", expected a sequence/ ],
	[ 6, 'n', qr/"NAN"/ ])
{
	my ($id, $field, $error_re) = @$case;
	my $m = $dbz_c{$id};
	ok($m, "connect insert of dbz_all id $id") or next;
	my ($status, $answer) = ingest('connect', 'public_dbz_all', $m);
	my $err = ref $answer ? $answer->{details}{errors}[0] // {} : {};
	ok($status == 400 && ($err->{field} // '') eq $field && ($err->{description} // '') =~ $error_re,
		"connect values of dbz_all id $id: Feldera refuses column $field")
	  or diag("$status " . (ref $answer ? $json->encode($answer) : $answer));
}
is_deeply($fake->rows('connect', 'public_dbz_all'), [], '... and none of those rows is stored');

$fake->stop;
$nats->stop;
$node->stop;
done_testing();
