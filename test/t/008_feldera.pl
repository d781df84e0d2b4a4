
# Copyright (c) 2026, pgoutput_stream developers

# The "feldera" target against the fake Feldera server
# (test/feldera/fake_feldera.mjs):
#  - a mixed workload of multi-table transactions over tables with many
#    column types: the fake's tables equal PostgreSQL's; one request per
#    (transaction, table), on one kept-alive connection, with the API key;
#  - large transactions in chunks of feldera_max_rows;
#  - table names: schema_table, feldera_table_names, feldera_table_map
#    (a quoted mixed-case name), the feldera_tables allow-list, and two
#    tables mapped to one name (failed at start);
#  - TRUNCATE (fail by default, feldera_truncate = skip);
#  - values Feldera cannot hold (NaN) and unchanged TOASTed values
#    (REPLICA IDENTITY DEFAULT refused, FULL works);
#  - data Feldera rejects: stream failed with Feldera's message, the slot
#    not confirmed past the transaction, and start_stream() retries it;
#  - tables left out by feldera_tables are not rendered (their NaN,
#    unchanged TOAST and TRUNCATE are harmless), also with format feldera;
#  - a wrong API key (401 InvalidApiKey), the key hidden from non-superusers;
#  - the stream option feldera_url (unreachable: waiting; trailing "/");
#  - feldera_wait_completion with completion tokens: 200 complete, 202 in
#    progress (polled, not confirmed), 410 (failed).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";

use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use PgsTestUtil;
use PgsFelderaUtil;

my $api_key = 'apikey:tap-008-0123456789';
my $fake = PgsFelderaUtil->new('f008', api_key => $api_key);
$fake->start;

my $node = pgs_new_node(
	'main', conf => "pgoutput_stream.feldera_url = '" . $fake->url . "'
pgoutput_stream.feldera_api_key = '$api_key'
pgoutput_stream.feldera_max_retry_delay = '500ms'
pgoutput_stream.feldera_request_timeout = '10s'
");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION pgoutput_stream; CREATE SCHEMA sales;');

my $jsonpp = JSON::PP->new->canonical;

# Create a stream with target feldera and wait until it streams
sub create_stream
{
	my ($name, $pub, $options, $format) = @_;
	my $opts = $jsonpp->encode($options);
	$format //= 'json';
	$node->safe_psql('postgres',
		"SELECT pgoutput_stream.create_stream('$name', '$pub', targets => '{feldera}', format => '$format', options => '$opts')"
	);
	return pgs_wait_for_status($node, 'postgres', $name,
		"state = 'streaming' AND pid IS NOT NULL");
}

sub wait_failed
{
	my ($name) = @_;
	return pgs_wait_for_status($node, 'postgres', $name, "state = 'failed' AND pid IS NULL");
}

# Whether the stream has no worker for $seconds (polled)
sub stays_down
{
	my ($name, $seconds) = @_;
	my $deadline = time() + $seconds;
	while (time() < $deadline)
	{
		return 0 if defined pgs_status($node, 'postgres', $name)->{pid};
		usleep(100_000);
	}
	return 1;
}

sub current_lsn
{
	return $node->safe_psql('postgres', 'SELECT pg_current_wal_lsn()');
}

sub confirmed_lsn
{
	my ($stream) = @_;
	return $node->safe_psql('postgres',
		"SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = 'pgs_$stream'");
}

# ---------------------------------------------------------------------
# Tables with many column types, a schema other than public, a composite
# key, and REPLICA IDENTITY FULL on one of them
# ---------------------------------------------------------------------
my $kinds = pgs_feldera_spec(
	'public.kinds',
	key     => ['id'],
	columns => [
		[ id  => 'int',           'INT',             'int' ],
		[ b   => 'boolean',       'BOOLEAN',         'bool' ],
		[ i2  => 'int2',          'SMALLINT',        'int' ],
		[ i4  => 'int4',          'INT',             'int' ],
		[ i8  => 'int8',          'BIGINT',          'int' ],
		[ n   => 'numeric(12,4)', 'DECIMAL(12,4)',   'decimal' ],
		[ r   => 'float4',        'REAL',            'real' ],
		[ f8  => 'float8',        'DOUBLE',          'float' ],
		[ t   => 'text',          'VARCHAR',         'text' ],
		[ vc  => 'varchar(20)',   'VARCHAR(20)',     'text' ],
		[ d   => 'date',          'DATE',            'date' ],
		[ tm  => 'time',          'TIME',            'time' ],
		[ ts  => 'timestamp',     'TIMESTAMP',       'timestamp' ],
		[ tz  => 'timestamptz',   'TIMESTAMP',       'timestamptz' ],
		[ bin => 'bytea',         'VARBINARY',       'bytes' ],
		[ u   => 'uuid',          'UUID',            'uuid' ],
		[ ia  => 'int[]',         'INT ARRAY',       'json' ],
		[ m   => 'int[][]',       'INT ARRAY ARRAY', 'json' ],
		[ ta  => 'text[]',        'VARCHAR ARRAY',   'json' ],
		[ j   => 'jsonb',         'VARIANT',         'json' ],
		[ js  => 'json',          'VARIANT',         'json' ],
	]);
my $orders = pgs_feldera_spec(
	'sales.orders',
	key     => ['order_id'],
	columns => [
		[ order_id  => 'bigint',        'BIGINT',        'int' ],
		[ customer  => 'text',          'VARCHAR',       'text' ],
		[ amount    => 'numeric(12,4)', 'DECIMAL(12,4)', 'decimal' ],
		[ placed_at => 'timestamptz',   'TIMESTAMP',     'timestamptz' ],
		[ status    => 'varchar(12)',   'VARCHAR(12)',   'text' ],
	]);
my $items = pgs_feldera_spec(
	'public.items',
	key     => [ 'order_id', 'line' ],
	columns => [
		[ order_id => 'bigint', 'BIGINT',  'int' ],
		[ line     => 'int',    'INT',     'int' ],
		[ sku      => 'uuid',   'UUID',    'uuid' ],
		[ qty      => 'int',    'INT',     'int' ],
		[ note     => 'text',   'VARCHAR', 'text' ],
	]);
my @main_specs = ($kinds, $orders, $items);

$node->safe_psql('postgres',
	join('', map { pgs_feldera_ddl($_) } @main_specs) . q{
ALTER TABLE sales.orders REPLICA IDENTITY FULL;
CREATE TABLE unpub (id int PRIMARY KEY, v text);
CREATE PUBLICATION pub_main FOR TABLE public.kinds, sales.orders, public.items;
});
$fake->declare('main', [ map { pgs_feldera_decl($_) } @main_specs ]);
ok(create_stream('s_main', 'pub_main', { feldera_pipeline => 'main' }),
	's_main is streaming');

# ---------------------------------------------------------------------
# The workload: deterministic pseudo-random multi-table transactions of
# inserts, updates (some of the key), deletes, inserts deleted again,
# multi-row updates, plus transactions that roll back or touch only an
# unpublished table.
# ---------------------------------------------------------------------
srand(8);

sub pick { return $_[ int(rand(@_)) ]; }

sub q_lit
{
	my ($s) = @_;
	$s =~ s/'/''/g;
	return "'$s'";
}

sub rand_uuid
{
	return q_lit(sprintf('%08x-%04x-%04x-%04x-%012x',
		int(rand(2**32)), int(rand(2**16)), int(rand(2**16)),
		int(rand(2**16)), int(rand(2**48))));
}

# SQL expressions per column of kinds, edge cases first
my %pool = (
	b  => sub { pick('true', 'false') },
	i2 => sub { pick('-32768', '32767', '0', int(rand(60000)) - 30000) },
	i4 => sub { pick('-2147483648', '2147483647', int(rand(2**31)) - 2**30) },
	i8 => sub {
		pick('-9223372036854775808', '9223372036854775807',
			sprintf('%d', int(rand(2**53)) - 2**52))
	},
	n => sub {
		pick("'-99999999.9999'", "'99999999.9999'", '0', '-0.0001', '1.5',
			sprintf('%.4f', rand(2e7) - 1e7), sprintf('%.2f', rand(100)))
	},
	r => sub {
		pick("'3.14159'", "'-1e30'", "'1.17549435e-38'", "'0.1'",
			sprintf("'%.6g'", rand(1000) - 500))
	},
	f8 => sub {
		pick("'0.1'", "'-1.5e-300'", "'1.7976931348623157e308'", "'5e-324'",
			"'1e100'", "'-0'", "'0.3333333333333333'",
			sprintf("'%.17g'", (rand() - 0.5) * 10**(int(rand(40)) - 20)))
	},
	t => sub {
		pick(q{'plain'}, q{'quote" back\slash'}, q{'ü é 😀 中文'},
			q{E'line\nbreak\ttab'}, q{'ctrl' || chr(1) || chr(31) || 'x'},
			q{''}, q{repeat('long ', 150)}, q{'{"not": "json"}'})
	},
	vc => sub { pick(q{'short'}, q{'exactly twenty chars'}, q{'ä'}, q{' '}) },
	d  => sub {
		pick(q{'0001-01-01'}, q{'9999-12-31'}, q{'2024-02-29'}, q{'1970-01-01'},
			sprintf(q{'%04d-%02d-%02d'}, 1 + int(rand(9999)), 1 + int(rand(12)), 1 + int(rand(28))))
	},
	tm => sub {
		pick(q{'00:00:00'}, q{'23:59:59.999999'}, q{'12:34:56.5'}, q{'01:02:03.000001'},
			sprintf(q{'%02d:%02d:%02d.%d'}, int(rand(24)), int(rand(60)), int(rand(60)), int(rand(1000))))
	},
	ts => sub {
		pick(q{'0001-01-01 00:00:00'}, q{'9999-12-31 23:59:59.999999'},
			q{'2024-02-29 12:00:00.000001'}, q{'1999-12-31 23:59:59.5'},
			sprintf(q{'%04d-%02d-%02d %02d:%02d:%02d.%06d'}, 1900 + int(rand(200)), 1 + int(rand(12)),
				1 + int(rand(28)), int(rand(24)), int(rand(60)), int(rand(60)), int(rand(1e6))))
	},
	tz => sub {
		pick(q{'2024-06-01 12:00:00+05:30'}, q{'1970-01-01 00:00:00+00'},
			q{'2038-01-19 03:14:07.123456-08'}, q{'0002-01-01 00:00:00+00'},
			q{'9999-12-31 12:00:00+00'}, q{'2024-03-31 02:30:00 Europe/Paris'},
			sprintf(q{'%04d-%02d-%02d %02d:%02d:%02d.%03d+%02d'}, 1950 + int(rand(100)), 1 + int(rand(12)),
				1 + int(rand(28)), int(rand(24)), int(rand(60)), int(rand(60)), int(rand(1000)), int(rand(14))))
	},
	bin => sub {
		pick(q{'\x'}, q{'\x00ff10'}, q{'\xdeadbeef'},
			"'\\x" . join('', map { sprintf('%02x', int(rand(256))) } 1 .. int(rand(40))) . "'")
	},
	u  => sub { pick(q{'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11'}, rand_uuid()) },
	ia => sub {
		pick(q{'{}'}, q{'{1,NULL,3}'}, q{'{-2147483648,2147483647}'}, q{'[0:2]={7,8,9}'},
			"'{" . join(',', map { int(rand(1000)) } 1 .. int(rand(6))) . "}'")
	},
	m  => sub { pick(q{'{{1,2},{3,4}}'}, q{'{}'}, q{'{{NULL,5}}'}, q{'{{7},{8},{9}}'}) },
	ta => sub {
		pick(q{'{}'}, q{'{"a b",NULL,"c\"d"}'}, q{'{ü,😀,"x,y"}'}, q{'{""}'},
			q{('{"back\\\\slash","new' || chr(10) || 'line"}')::text[]})
	},
	j => sub {
		pick(q{'{"k": [1, "x"], "n": null, "f": 1.50}'}, q{'[]'}, q{'"str"'}, q{'123.456'},
			q{'{"nested": {"z": 1, "a": [{"b": false}]}}'}, q{'{"big": 12345678901234567890}'},
			q{'{"ü": "é", "esc": "a\"b\\\\c\u0001"}'}, q{'true'})
	},
	js => sub { pick(q{'{"b":1,"a":[true,false]}'}, q{'[1, 2 ,3]'}, q{'"s"'}) },
);
my @kind_cols = map { $_->{name} } grep { $_->{name} ne 'id' } @{ $kinds->{columns} };

sub kinds_value
{
	my ($col) = @_;
	return 'NULL' if rand() < 0.12;
	return $pool{$col}->();
}

# Rows that exist, per table: key text => 1
my %exists = (kinds => {}, orders => {}, items => {});
my ($next_id, $next_order, $next_line) = (1, 1, 1);

sub existing
{
	my ($t) = @_;
	my @keys = sort keys %{ $exists{$t} };
	return @keys ? pick(@keys) : undef;
}

sub new_key
{
	my ($t) = @_;
	return $next_id++ if $t eq 'kinds';
	return 1000000000000 + $next_order++ if $t eq 'orders';
	return (1 + int(rand(40))) . ',' . $next_line++;
}

sub key_where
{
	my ($t, $k) = @_;
	return "id = $k" if $t eq 'kinds';
	return "order_id = $k" if $t eq 'orders';
	my ($o, $l) = split /,/, $k;
	return "order_id = $o AND line = $l";
}

my %table_sql = (kinds => 'public.kinds', orders => 'sales.orders', items => 'public.items');

sub insert_sql
{
	my ($t, $k) = @_;
	if ($t eq 'kinds')
	{
		return "INSERT INTO public.kinds (id, " . join(', ', @kind_cols) . ") VALUES ($k, "
		  . join(', ', map { kinds_value($_) } @kind_cols) . ");\n";
	}
	if ($t eq 'orders')
	{
		return sprintf("INSERT INTO sales.orders VALUES (%s, %s, %s, %s, %s);\n",
			$k, pick(q{'Ann'}, q{'Bob O''Brien'}, q{'Zoë'}, 'NULL'),
			sprintf('%.4f', rand(1e6)), $pool{tz}->(), pick(q{'new'}, q{'paid'}, q{'shipped'}, 'NULL'));
	}
	my ($o, $l) = split /,/, $k;
	return sprintf("INSERT INTO public.items VALUES (%d, %d, %s, %d, %s);\n",
		$o, $l, rand_uuid(), int(rand(100)), pick(q{'n'}, 'NULL', q{'gift "wrap"'}));
}

sub update_sql
{
	my ($t, $k) = @_;
	my $set;
	if ($t eq 'kinds')
	{
		my %cols = map { pick(@kind_cols) => 1 } 1 .. 1 + int(rand(3));
		$set = join(', ', map { "$_ = " . kinds_value($_) } sort keys %cols);
	}
	elsif ($t eq 'orders')
	{
		$set = pick(q{status = 'paid'}, sprintf('amount = %.4f', rand(1000)),
			"placed_at = " . $pool{tz}->(), 'customer = NULL');
	}
	else
	{
		$set = pick('qty = qty + 1', "sku = " . rand_uuid(), q{note = 'updated'});
	}
	return "UPDATE $table_sql{$t} SET $set WHERE " . key_where($t, $k) . ";\n";
}

sub rekey_sql
{
	my ($t, $old, $new) = @_;
	my $set;
	if ($t eq 'items')
	{
		my (undef, $l) = split /,/, $new;
		$set = "line = $l";
	}
	else
	{
		$set = ($t eq 'kinds' ? 'id' : 'order_id') . " = $new";
	}
	return "UPDATE $table_sql{$t} SET $set WHERE " . key_where($t, $old) . ";\n";
}

# One operation on table $t: (SQL, number of row events)
sub one_op
{
	my ($t) = @_;
	my $old = existing($t);
	my $r = rand();
	if (!defined $old || keys %{ $exists{$t} } < 4 || $r < 0.40)
	{
		my $k = new_key($t);
		$exists{$t}{$k} = 1;
		return (insert_sql($t, $k), 1);
	}
	if ($r < 0.65)
	{
		return (update_sql($t, $old), 1);
	}
	if ($r < 0.75)
	{
		my $new = new_key($t);
		if ($t eq 'items')
		{
			# the key change keeps the order, changes the line
			my ($o) = split /,/, $old;
			my (undef, $l) = split /,/, $new;
			$new = "$o,$l";
		}
		delete $exists{$t}{$old};
		$exists{$t}{$new} = 1;
		return (rekey_sql($t, $old, $new), 1);
	}
	if ($r < 0.90)
	{
		delete $exists{$t}{$old};
		return ("DELETE FROM $table_sql{$t} WHERE " . key_where($t, $old) . ";\n", 1);
	}
	# inserted and deleted in the same transaction: two events
	my $k = new_key($t);
	return (insert_sql($t, $k) . "DELETE FROM $table_sql{$t} WHERE " . key_where($t, $k) . ";\n", 2);
}

my ($script, $want_requests, $want_events, $transactions) = ('', 0, 0, 0);
for my $tx (1 .. 150)
{
	my $r = rand();
	if ($r < 0.04)
	{
		# rolled back: nothing
		$script .= "BEGIN;\nINSERT INTO public.kinds (id) VALUES (-$tx);\nROLLBACK;\n";
		next;
	}
	if ($r < 0.08)
	{
		# only an unpublished table: nothing either
		$script .= "BEGIN;\nINSERT INTO unpub VALUES ($tx, 'x');\nCOMMIT;\n";
		next;
	}
	my @tables = grep { rand() < 0.5 } qw(kinds orders items);
	@tables = (pick(qw(kinds orders items))) unless @tables;
	$script .= "BEGIN;\n";
	foreach my $t (@tables)
	{
		for (1 .. 1 + int(rand(3)))
		{
			my ($sql, $events) = one_op($t);
			$script .= $sql;
			$want_events += $events;
		}
	}
	if ($tables[0] eq 'kinds' && keys %{ $exists{kinds} } >= 3 && rand() < 0.3)
	{
		# a multi-row update
		my @ids = (sort { $a <=> $b } keys %{ $exists{kinds} })[ 0 .. 2 ];
		$script .= "UPDATE public.kinds SET i4 = coalesce(i4, 0) % 1000 + 1 WHERE id IN (@{[ join(', ', @ids) ]});\n";
		$want_events += 3;
	}
	$script .= "INSERT INTO unpub VALUES ($tx, 'y');\n" if rand() < 0.2;
	$script .= "COMMIT;\n";
	$want_requests += scalar(@tables);
	$transactions++;
}

my $seq0 = $fake->last_seq;
my $t0 = time();
$node->safe_psql('postgres', $script);
note("workload: $transactions transactions, $want_events row events, $want_requests requests expected");

ok(pgs_feldera_wait_equal($node, 'postgres', $fake, 'main', \@main_specs),
	'after the workload the Feldera tables equal the PostgreSQL tables');
note(sprintf('workload delivered in %.2f s', time() - $t0));
is($node->safe_psql('postgres', 'SELECT count(*) > 20 FROM public.kinds'),
	't', 'the workload left rows in kinds');
is_deeply($fake->violations, [], 'no contract violation recorded by the fake');

# ---------------------------------------------------------------------
# The requests: one per (transaction, table), every one accepted, with the
# documented query, the API key, JSON without chunking or 100-continue, on
# one kept-alive connection
# ---------------------------------------------------------------------
{
	my @req = $fake->ingress('main', $seq0);
	is(scalar(@req), $want_requests, 'one ingress request per (transaction, table)');
	my $events = 0;
	$events += $_->{events} // 0 foreach @req;
	is($events, $want_events, 'every row change sent once, as one event');
	is(scalar(grep { ($_->{status} // '') ne '200' } @req), 0, 'every request answered 200');
	is(scalar(grep { !$_->{authorization}{present} || !$_->{authorization}{ok} } @req),
		0, 'every request carries the API key as Authorization: Bearer');
	is_deeply(
		[ sort keys %{ { map { $jsonpp->encode($_->{query}) => 1 } @req } } ],
		[ $jsonpp->encode({ format => 'json', update_format => 'insert_delete', array => 'true' }) ],
		'every request has ?format=json&update_format=insert_delete&array=true');
	is_deeply([ sort keys %{ { map { $_->{table} => 1 } @req } } ],
		[qw(public_items public_kinds sales_orders)], 'tables are named schema_table by default');
	is(scalar(grep { ($_->{content_type} // '') ne 'application/json' } @req),
		0, 'bodies are sent as application/json');
	is(scalar(grep { $_->{chunked} || $_->{expect_continue} } @req),
		0, 'no chunked bodies and no Expect: 100-continue');
	is(scalar(grep { $_->{method} ne 'POST' || $_->{http_version} ne '1.1' } @req),
		0, 'POST over HTTP/1.1');
	my %sockets = map { $_->{socket_id} => 1 } @req;
	my %ports   = map { $_->{remote_port} => 1 } @req;
	note(scalar(@req) . ' requests on ' . scalar(keys %sockets) . ' connections');
	cmp_ok(scalar(keys %ports), '<=', 2, 'the requests share a kept-alive connection (remote ports)');
	cmp_ok(scalar(grep { $_->{reused_connection} } @req),
		'>=', scalar(@req) - 2, 'all but the first request of a connection reuse it');
}

# ---------------------------------------------------------------------
# Large transactions are sent in chunks of feldera_max_rows
# ---------------------------------------------------------------------
{
	my $old_pid = pgs_status($node, 'postgres', 's_main')->{pid};
	$node->safe_psql('postgres',
		q{SELECT pgoutput_stream.alter_stream('s_main', options => '{"feldera_max_rows": "100"}')});
	ok( pgs_wait_for_status(
			$node, 'postgres', 's_main',
			"state = 'streaming' AND pid IS NOT NULL AND pid <> $old_pid"),
		's_main restarted with feldera_max_rows = 100');

	my $seq1 = $fake->last_seq;
	$node->safe_psql(
		'postgres', q{
BEGIN;
INSERT INTO public.items SELECT 900000, g, gen_random_uuid(), g, 'bulk' FROM generate_series(1, 250) g;
INSERT INTO sales.orders VALUES (900000, 'bulk', 1, now(), 'new');
COMMIT;
INSERT INTO public.items SELECT 900001, g, gen_random_uuid(), g, NULL FROM generate_series(1, 100) g;
UPDATE public.items SET qty = qty + 1000 WHERE order_id = 900000;
});
	ok(pgs_feldera_wait_equal($node, 'postgres', $fake, 'main', \@main_specs),
		'large transactions arrive whole');
	my @req = $fake->ingress('main', $seq1);
	is_deeply(
		[ sort map { "$_->{table}:$_->{events}" } @req ],
		[
			sort('public_items:100', 'public_items:100', 'public_items:50', 'sales_orders:1',
				'public_items:100',
				'public_items:100', 'public_items:100', 'public_items:50')
		],
		'250 rows in chunks of 100, 100 and 50; exactly 100 rows in one request; one request for one row'
	);
	is(scalar(grep { ($_->{status} // '') ne '200' } @req), 0, 'every chunk answered 200');
}

# ---------------------------------------------------------------------
# Table names: feldera_table_names = table, feldera_table_map (to a quoted
# mixed-case name), the feldera_tables allow-list
# ---------------------------------------------------------------------
my $n1 = pgs_feldera_spec('public.n1', key => ['id'],
	columns => [ [ id => 'int', 'INT', 'int' ], [ v => 'text', 'VARCHAR', 'text' ] ]);
my $n2 = pgs_feldera_spec('sales.n2', key => ['id'],
	columns => [ [ id => 'int', 'INT', 'int' ], [ v => 'text', 'VARCHAR', 'text' ] ]);
$node->safe_psql('postgres',
	pgs_feldera_ddl($n1) . pgs_feldera_ddl($n2) . q{
CREATE TABLE public.dup (id int PRIMARY KEY);
CREATE TABLE sales.dup (id int PRIMARY KEY);
CREATE PUBLICATION pub_names FOR TABLE public.n1, sales.n2;
CREATE PUBLICATION pub_dup FOR TABLE public.dup, sales.dup;
});
$fake->declare('plain', [ pgs_feldera_decl($n1, name => 'n1'), pgs_feldera_decl($n2, name => 'n2') ]);
$fake->declare('mapped',
	[ pgs_feldera_decl($n1, name => 'MixedCase', quoted => 1), pgs_feldera_decl($n2) ]);
# only sales_n2: a request for public_n1 would get 404 and fail the stream
$fake->declare('allow', [ pgs_feldera_decl($n2) ]);

ok( create_stream('s_plain', 'pub_names',
		{ feldera_pipeline => 'plain', feldera_table_names => 'table' }),
	's_plain (feldera_table_names = table) is streaming');
ok( create_stream('s_map', 'pub_names',
		{ feldera_pipeline => 'mapped', feldera_table_map => 'public.n1=MixedCase' }),
	's_map (feldera_table_map) is streaming');
ok( create_stream('s_allow', 'pub_names',
		{ feldera_pipeline => 'allow', feldera_tables => 'sales_n2' }),
	's_allow (feldera_tables) is streaming');

my $seq_names = $fake->last_seq;
$node->safe_psql(
	'postgres', q{
BEGIN;
INSERT INTO public.n1 SELECT g, 'one ' || g FROM generate_series(1, 5) g;
INSERT INTO sales.n2 SELECT g, 'two ' || g FROM generate_series(1, 5) g;
COMMIT;
UPDATE public.n1 SET v = 'changed' WHERE id = 2;
BEGIN;
DELETE FROM sales.n2 WHERE id = 3;
UPDATE public.n1 SET id = 10 WHERE id = 1;
COMMIT;
});
my $lsn_names = current_lsn();
ok( pgs_feldera_wait_equal(
		$node, 'postgres', $fake, 'plain', [ $n1, $n2 ],
		tables => { 'public.n1' => 'n1', 'sales.n2' => 'n2' }),
	'feldera_table_names = table: tables n1 and n2 equal');
ok( pgs_feldera_wait_equal(
		$node, 'postgres', $fake, 'mapped', [ $n1, $n2 ],
		tables => { 'public.n1' => '%22MixedCase%22' }),
	'feldera_table_map: public.n1 lands in "MixedCase", sales.n2 in sales_n2');
ok(pgs_feldera_wait_equal($node, 'postgres', $fake, 'allow', [$n2]),
	'feldera_tables: sales_n2 equal');
ok(pgs_wait_for_status($node, 'postgres', 's_allow', "confirmed_lsn >= '$lsn_names'"),
	's_allow is confirmed past the transaction that touched only a left-out table');
is_deeply(
	[ map { $_->{table} } $fake->ingress('allow', $seq_names) ],
	[ 'sales_n2', 'sales_n2' ],
	'feldera_tables: only the allowed table is sent, once per transaction touching it');
is_deeply(
	[ sort map { $_->{path} } $fake->ingress('mapped', $seq_names) ],
	[
		sort('/v0/pipelines/mapped/ingress/%22MixedCase%22',
			'/v0/pipelines/mapped/ingress/%22MixedCase%22',
			'/v0/pipelines/mapped/ingress/%22MixedCase%22',
			'/v0/pipelines/mapped/ingress/sales_n2',
			'/v0/pipelines/mapped/ingress/sales_n2')
	],
	'a mapped mixed-case name is sent quoted');
foreach my $s (qw(s_plain s_map s_allow))
{
	is(pgs_status($node, 'postgres', $s)->{state}, 'streaming', "$s is still streaming");
}

$node->safe_psql('postgres', q{
SELECT pgoutput_stream.drop_stream('s_plain'); SELECT pgoutput_stream.drop_stream('s_map');
SELECT pgoutput_stream.drop_stream('s_allow');
});

# ---------------------------------------------------------------------
# TRUNCATE: the stream fails by default; with feldera_truncate = skip it is
# ignored and the Feldera table keeps its rows
# ---------------------------------------------------------------------
{
	my $tr = pgs_feldera_spec('public.tr', key => ['id'],
		columns => [ [ id => 'int', 'INT', 'int' ], [ v => 'text', 'VARCHAR', 'text' ] ]);
	$node->safe_psql('postgres', pgs_feldera_ddl($tr) . q{
CREATE PUBLICATION pub_tr FOR TABLE public.tr;
});
	$fake->declare('trunc', [ pgs_feldera_decl($tr) ]);
	ok(create_stream('s_tr', 'pub_tr', { feldera_pipeline => 'trunc' }), 's_tr is streaming');
	$node->safe_psql('postgres', q{INSERT INTO public.tr VALUES (1, 'before'); INSERT INTO public.tr VALUES (2, 'a'), (3, 'b')});
	ok(pgs_feldera_wait_equal($node, 'postgres', $fake, 'trunc', [$tr]), 'rows before the TRUNCATE delivered');

	my $offset = pgs_log_offset($node);
	my $lsn = current_lsn();
	$node->safe_psql('postgres', 'TRUNCATE public.tr');
	ok(wait_failed('s_tr'), 'TRUNCATE: the stream is failed');
	is( pgs_status($node, 'postgres', 's_tr')->{last_error},
		'TRUNCATE of table "public.tr" cannot be sent to Feldera',
		'last_error names the table');
	ok($node->log_contains(qr/HINT:  Feldera has no TRUNCATE\. Set the stream option feldera_truncate to "skip"/, $offset),
		'the hint names the option feldera_truncate');
	cmp_ok(pgs_lsn_num(confirmed_lsn('s_tr')), '<=', pgs_lsn_num($lsn),
		'the slot is not confirmed past the TRUNCATE');

	$node->safe_psql('postgres', q{
SELECT pgoutput_stream.alter_stream('s_tr', options => '{"feldera_truncate": "skip"}');
SELECT pgoutput_stream.start_stream('s_tr');
});
	ok(pgs_wait_for_status($node, 'postgres', 's_tr', "state = 'streaming' AND pid IS NOT NULL"),
		'with feldera_truncate = skip the stream streams again');
	$node->safe_psql('postgres', q{INSERT INTO public.tr VALUES (10, 'after'), (11, 'after')});
	ok( pgs_wait_until(
			sub {
				join(',', map { $_->{id} } @{ $fake->rows('trunc', 'public_tr') }) eq '1,2,3,10,11';
			},
			'rows 10 and 11 in public_tr'),
		'the TRUNCATE was skipped: Feldera keeps the earlier rows and gets the new ones');
	ok(pgs_wait_for_status($node, 'postgres', 's_tr', "confirmed_lsn >= '" . current_lsn() . "'"),
		's_tr is confirmed past the skipped TRUNCATE');
	$node->safe_psql('postgres', q{SELECT pgoutput_stream.drop_stream('s_tr')});
}

# ---------------------------------------------------------------------
# Data Feldera rejects (NULL in a column Feldera declares NOT NULL): the
# stream is failed with Feldera's error code and message, the slot is not
# confirmed past that transaction, and start_stream() sends it again
# ---------------------------------------------------------------------
{
	my $bad = pgs_feldera_spec('public.bad', key => ['id'],
		columns => [ [ id => 'int', 'INT', 'int' ], [ v => 'text', 'VARCHAR', 'text' ] ]);
	$node->safe_psql('postgres', pgs_feldera_ddl($bad) . 'CREATE PUBLICATION pub_bad FOR TABLE public.bad;');
	$fake->declare('strict', [ pgs_feldera_decl($bad, columns => { v => { nullable => 0 } }) ]);
	ok(create_stream('s_bad', 'pub_bad', { feldera_pipeline => 'strict' }), 's_bad is streaming');
	$node->safe_psql('postgres', q{INSERT INTO public.bad VALUES (1, 'ok')});
	ok(pgs_wait_until(sub { @{ $fake->rows('strict', 'public_bad') } == 1 }, 'row 1'),
		'an acceptable row is delivered');
	ok(pgs_wait_for_status($node, 'postgres', 's_bad', "confirmed_lsn >= '" . current_lsn() . "'"),
		's_bad is confirmed past it');

	my $lsn = current_lsn();
	my $log_at = pgs_log_offset($node);
	$node->safe_psql('postgres', q{INSERT INTO public.bad VALUES (2, NULL)});
	ok(wait_failed('s_bad'), 'a row Feldera rejects: the stream is failed');
	my $err = pgs_status($node, 'postgres', 's_bad')->{last_error};
	like(
		$err,
		qr/^could not push 1 row\S* to Feldera table "public_bad": HTTP 400 ParseErrors: Errors parsing input data \(1 errors\) in field "v"$/,
		'last_error has the HTTP status, error_code ParseErrors, the first line of Feldera\'s message and the field');
	ok( pgs_wait_for_log($node, $log_at,
			qr/error parsing field 'v': invalid type: null, expected VARCHAR \(column is NOT NULL\)/),
		'the server log has the parse error of the field (Feldera\'s whole answer)');
	cmp_ok(pgs_lsn_num(confirmed_lsn('s_bad')), '<=', pgs_lsn_num($lsn),
		'the slot is not confirmed past the rejected transaction');
	is( $node->safe_psql('postgres',
			q{SELECT count(*) FROM pgoutput_stream.peek('s_bad', 10) WHERE subject = 'postgres.public.bad.insert' AND payload LIKE '%"id":2,%'}
		),
		'1',
		'peek still shows the rejected transaction');
	is(scalar(@{ $fake->rows('strict', 'public_bad') }), 1, 'Feldera has only the accepted row');
	ok(stays_down('s_bad', 2), 'the failed stream is not restarted');

	# the operator fixes the pipeline (a new, empty one) and starts again:
	# the rejected transaction is sent again, nothing confirmed before it is
	$fake->declare('strict', [ pgs_feldera_decl($bad) ]);
	$node->safe_psql('postgres', q{SELECT pgoutput_stream.start_stream('s_bad')});
	ok(pgs_wait_for_status($node, 'postgres', 's_bad', "state = 'streaming' AND pid IS NOT NULL"),
		'start_stream() starts the failed stream');
	$node->safe_psql('postgres', q{INSERT INTO public.bad VALUES (3, 'x')});
	ok( pgs_wait_until(
			sub {
				join(',', map { $_->{id} . ':' . ($_->{v} // 'NULL') } @{ $fake->rows('strict', 'public_bad') })
				  eq '2:NULL,3:x';
			},
			'rows 2 and 3'),
		'after start_stream() the rejected transaction and the next one are delivered, the confirmed one is not repeated'
	);
	$node->safe_psql('postgres', q{SELECT pgoutput_stream.drop_stream('s_bad')});
}

# ---------------------------------------------------------------------
# Values Feldera cannot represent: NaN stops the stream with an error that
# names table and column; nothing is confirmed past it
# ---------------------------------------------------------------------
{
	my $nan = pgs_feldera_spec('public.nan_t', key => ['id'],
		columns => [ [ id => 'int', 'INT', 'int' ], [ f => 'float8', 'DOUBLE', 'float' ] ]);
	$node->safe_psql('postgres', pgs_feldera_ddl($nan) . 'CREATE PUBLICATION pub_nan FOR TABLE public.nan_t;');
	$fake->declare('nan', [ pgs_feldera_decl($nan) ]);
	ok(create_stream('s_nan', 'pub_nan', { feldera_pipeline => 'nan' }), 's_nan is streaming');
	$node->safe_psql('postgres', q{INSERT INTO public.nan_t VALUES (1, 1.5)});
	ok(pgs_feldera_wait_equal($node, 'postgres', $fake, 'nan', [$nan]), 'a finite float is delivered');
	ok(pgs_wait_for_status($node, 'postgres', 's_nan', "confirmed_lsn >= '" . current_lsn() . "'"),
		's_nan is confirmed past it');

	my $lsn = current_lsn();
	$node->safe_psql('postgres', q{INSERT INTO public.nan_t VALUES (2, 'NaN'), (3, 2.5)});
	ok( pgs_wait_for_status(
			$node, 'postgres', 's_nan',
			q{last_error = 'a value of column "f" of table "public.nan_t" cannot be represented in Feldera'}),
		'NaN: last_error names the table and the column');
	ok(wait_failed('s_nan'), 'NaN: the stream is failed');
	ok(stays_down('s_nan', 2), 'NaN: the failed stream is not restarted');
	cmp_ok(pgs_lsn_num(confirmed_lsn('s_nan')), '<=', pgs_lsn_num($lsn),
		'the slot is not confirmed past the NaN');
	is(join(',', map { $_->{id} } @{ $fake->rows('nan', 'public_nan_t') }), '1',
		'nothing of the transaction with NaN reached Feldera');
	$node->safe_psql('postgres', q{SELECT pgoutput_stream.drop_stream('s_nan')});
}

# ---------------------------------------------------------------------
# Unchanged TOASTed values: refused with REPLICA IDENTITY DEFAULT (the
# error names the table and the fix), taken from the old row with FULL
# ---------------------------------------------------------------------
{
	my @cols = ([ id => 'int', 'INT', 'int' ], [ v => 'text', 'VARCHAR', 'text' ],
		[ big => 'text', 'VARCHAR', 'text' ]);
	my $toast_d = pgs_feldera_spec('public.toast_d', key => ['id'], columns => \@cols);
	my $toast_f = pgs_feldera_spec('public.toast_f', key => ['id'], columns => \@cols);
	$node->safe_psql('postgres', pgs_feldera_ddl($toast_d) . pgs_feldera_ddl($toast_f) . q{
ALTER TABLE public.toast_d ALTER COLUMN big SET STORAGE EXTERNAL;
ALTER TABLE public.toast_f ALTER COLUMN big SET STORAGE EXTERNAL;
ALTER TABLE public.toast_f REPLICA IDENTITY FULL;
CREATE PUBLICATION pub_toast_d FOR TABLE public.toast_d;
CREATE PUBLICATION pub_toast_f FOR TABLE public.toast_f;
});
	$fake->declare('toast_d', [ pgs_feldera_decl($toast_d) ]);
	$fake->declare('toast_f', [ pgs_feldera_decl($toast_f) ]);
	ok(create_stream('s_toast_d', 'pub_toast_d', { feldera_pipeline => 'toast_d' }), 's_toast_d is streaming');
	ok(create_stream('s_toast_f', 'pub_toast_f', { feldera_pipeline => 'toast_f' }), 's_toast_f is streaming');
	$node->safe_psql('postgres', q{
INSERT INTO public.toast_d VALUES (1, 'a', repeat('z', 5000)), (2, 'a', 'small');
INSERT INTO public.toast_f VALUES (1, 'a', repeat('z', 5000)), (2, 'a', 'small');
});
	ok(pgs_feldera_wait_equal($node, 'postgres', $fake, 'toast_d', [$toast_d]), 'toast_d: TOASTed rows inserted');
	ok(pgs_feldera_wait_equal($node, 'postgres', $fake, 'toast_f', [$toast_f]), 'toast_f: TOASTed rows inserted');

	my $offset = pgs_log_offset($node);
	my $lsn = current_lsn();
	$node->safe_psql('postgres', q{
UPDATE public.toast_d SET v = 'b';
UPDATE public.toast_f SET v = 'b';
UPDATE public.toast_f SET id = 3 WHERE id = 1;
});
	ok(pgs_feldera_wait_equal($node, 'postgres', $fake, 'toast_f', [$toast_f]),
		'REPLICA IDENTITY FULL: the unchanged TOASTed value is taken from the old row');
	ok( pgs_wait_for_status(
			$node, 'postgres', 's_toast_d',
			q{last_error = 'unchanged TOASTed value of column "big" of table "public.toast_d" cannot be sent to Feldera'}),
		'REPLICA IDENTITY DEFAULT: last_error names the column and the table');
	ok($node->log_contains(qr/HINT:  Run ALTER TABLE public\.toast_d REPLICA IDENTITY FULL/, $offset),
		'the hint names REPLICA IDENTITY FULL');
	ok(wait_failed('s_toast_d'), 'unchanged TOAST: the stream is failed');
	is( join('|', map { "$_->{id}:$_->{v}:" . length($_->{big} // '') } @{ $fake->rows('toast_d', 'public_toast_d') }),
		'1:a:5000|2:a:5',
		'no NULL reached Feldera for the unchanged TOASTed value');
	cmp_ok(pgs_lsn_num(confirmed_lsn('s_toast_d')), '<=', pgs_lsn_num($lsn),
		'the slot is not confirmed past the refused UPDATE');
	$node->safe_psql('postgres',
		q{SELECT pgoutput_stream.drop_stream('s_toast_d'); SELECT pgoutput_stream.drop_stream('s_toast_f');});
}

# ---------------------------------------------------------------------
# Tables left out with feldera_tables are not rendered at all: their NaN,
# unchanged TOAST and TRUNCATE do not stop the stream.  With the stream
# format 'feldera' (which the target ignores) a TRUNCATE of a sent table
# still fails the stream.
# ---------------------------------------------------------------------
{
	my $keep = pgs_feldera_spec('public.keep', key => ['id'],
		columns => [ [ id => 'int', 'INT', 'int' ], [ v => 'text', 'VARCHAR', 'text' ] ]);
	$node->safe_psql('postgres', pgs_feldera_ddl($keep) . q{
CREATE TABLE public.left_out (id int PRIMARY KEY, f float8, big text);
ALTER TABLE public.left_out ALTER COLUMN big SET STORAGE EXTERNAL;
CREATE PUBLICATION pub_left FOR TABLE public.keep, public.left_out;
});
	$fake->declare('left', [ pgs_feldera_decl($keep) ]);
	ok(create_stream('s_left', 'pub_left', { feldera_pipeline => 'left', feldera_tables => 'public_keep' }, 'feldera'),
		's_left (format feldera, feldera_tables) is streaming');
	my $seq = $fake->last_seq;
	$node->safe_psql('postgres', q{
INSERT INTO public.left_out VALUES (1, 'NaN', repeat('z', 5000));
BEGIN; INSERT INTO public.keep VALUES (1, 'one'); UPDATE public.left_out SET f = 'Infinity'; COMMIT;
TRUNCATE public.left_out;
INSERT INTO public.keep VALUES (2, 'two');
});
	ok(pgs_feldera_wait_equal($node, 'postgres', $fake, 'left', [$keep]), 'the allowed table is delivered');
	ok(pgs_wait_for_status($node, 'postgres', 's_left', "state = 'streaming' AND confirmed_lsn >= '" . current_lsn() . "'"),
		'NaN, unchanged TOAST and TRUNCATE of a left-out table do not stop the stream');
	is_deeply([ map { $_->{table} } $fake->ingress('left', $seq) ], [ 'public_keep', 'public_keep' ],
		'only the allowed table is sent');

	$node->safe_psql('postgres', 'TRUNCATE public.keep');
	ok(wait_failed('s_left'), 'format feldera: TRUNCATE of a sent table fails the stream');
	is(pgs_status($node, 'postgres', 's_left')->{last_error},
		'TRUNCATE of table "public.keep" cannot be sent to Feldera', 'last_error names the table');
	$node->safe_psql('postgres', q{SELECT pgoutput_stream.drop_stream('s_left')});
}

# ---------------------------------------------------------------------
# API key: hidden from non-superusers; a wrong key gets 401 InvalidApiKey
# and the stream is failed
# ---------------------------------------------------------------------
{
	$node->safe_psql('postgres', 'CREATE ROLE plain_user LOGIN');
	my ($ret, $stdout, $stderr) = $node->psql('postgres', 'SHOW pgoutput_stream.feldera_api_key',
		extra_params => [ '-U', 'plain_user' ]);
	isnt($ret, 0, 'a non-superuser cannot read feldera_api_key');
	unlike($stdout . $stderr, qr/\Q$api_key\E/, 'the key is not shown');

	my $kk = pgs_feldera_spec('public.kk', key => ['id'], columns => [ [ id => 'int', 'INT', 'int' ] ]);
	$node->safe_psql('postgres', pgs_feldera_ddl($kk) . 'CREATE PUBLICATION pub_key FOR TABLE public.kk;');
	$fake->declare('keyp', [ pgs_feldera_decl($kk) ]);
	$node->safe_psql('postgres',
		"ALTER SYSTEM SET pgoutput_stream.feldera_api_key = 'wrong-key'; SELECT pg_reload_conf();");
	ok($node->poll_query_until('postgres', 'SHOW pgoutput_stream.feldera_api_key', 'wrong-key'),
		'the wrong key is loaded');
	ok(create_stream('s_key', 'pub_key', { feldera_pipeline => 'keyp' }), 's_key is streaming');
	$node->safe_psql('postgres', 'INSERT INTO public.kk VALUES (1)');
	ok(wait_failed('s_key'), 'wrong API key: the stream is failed');
	like( pgs_status($node, 'postgres', 's_key')->{last_error},
		qr/^could not push 1 row\S* to Feldera table "public_kk": HTTP 401 InvalidApiKey: Invalid API key$/,
		'last_error has 401 InvalidApiKey');
	my @req = $fake->ingress('keyp', 0);
	is_deeply([ map { "$_->{status}:" . ($_->{authorization}{present} ? 1 : 0) . ($_->{authorization}{ok} ? 1 : 0) } @req ],
		['401:10'], 'one request, with a key the fake refused, and no retry');

	$node->safe_psql('postgres',
		'ALTER SYSTEM RESET pgoutput_stream.feldera_api_key; SELECT pg_reload_conf();');
	ok($node->poll_query_until('postgres', 'SHOW pgoutput_stream.feldera_api_key', $api_key),
		'the right key is loaded again');
	$node->safe_psql('postgres', q{SELECT pgoutput_stream.start_stream('s_key')});
	ok(pgs_feldera_wait_equal($node, 'postgres', $fake, 'keyp', [$kk]),
		'with the right key the row is delivered after start_stream()');
	$node->safe_psql('postgres', q{SELECT pgoutput_stream.drop_stream('s_key')});
}

# ---------------------------------------------------------------------
# The stream option feldera_url overrides pgoutput_stream.feldera_url; a
# trailing "/" is dropped
# ---------------------------------------------------------------------
{
	my $uu = pgs_feldera_spec('public.uu', key => ['id'], columns => [ [ id => 'int', 'INT', 'int' ] ]);
	$node->safe_psql('postgres', pgs_feldera_ddl($uu) . 'CREATE PUBLICATION pub_url FOR TABLE public.uu;');
	$fake->declare('urlp', [ pgs_feldera_decl($uu) ]);
	my $closed = PostgreSQL::Test::Cluster::get_free_port();
	ok(create_stream('s_url', 'pub_url', { feldera_pipeline => 'urlp', feldera_url => "http://127.0.0.1:$closed" }),
		's_url is streaming');
	$node->safe_psql('postgres', 'INSERT INTO public.uu VALUES (1)');
	ok(pgs_wait_for_status($node, 'postgres', 's_url', "state = 'waiting for target'"),
		'with feldera_url pointing to a closed port the stream waits');
	like(pgs_status($node, 'postgres', 's_url')->{last_error},
		qr/^could not push 1 row\S* to Feldera table "public_uu": .*\b$closed\b/,
		'last_error names the unreachable port');
	my $seq = $fake->last_seq;
	$node->safe_psql('postgres', "SELECT pgoutput_stream.alter_stream('s_url', options => '{\"feldera_url\": \"" . $fake->url . "//\"}')");
	ok(pgs_feldera_wait_equal($node, 'postgres', $fake, 'urlp', [$uu]), 'after alter_stream the row is delivered');
	is_deeply([ map { $_->{path} } $fake->ingress('urlp', $seq) ], ['/v0/pipelines/urlp/ingress/public_uu'],
		'the trailing slashes of feldera_url are dropped');
	ok(pgs_wait_for_status($node, 'postgres', 's_url', "state = 'streaming'"), 's_url is streaming');
	$node->safe_psql('postgres', q{SELECT pgoutput_stream.drop_stream('s_url')});
}

# ---------------------------------------------------------------------
# feldera_wait_completion: the slot is confirmed only once the completion
# tokens of the transaction report "complete"
# ---------------------------------------------------------------------
{
	my $wc = pgs_feldera_spec('public.wc', key => ['id'],
		columns => [ [ id => 'int', 'INT', 'int' ], [ v => 'text', 'VARCHAR', 'text' ] ]);
	my $wc2 = pgs_feldera_spec('public.wc2', key => ['id'], columns => [ [ id => 'int', 'INT', 'int' ] ]);
	$node->safe_psql('postgres', pgs_feldera_ddl($wc) . pgs_feldera_ddl($wc2)
		  . 'CREATE PUBLICATION pub_wc FOR TABLE public.wc, public.wc2;');
	$fake->declare('waitp', [ pgs_feldera_decl($wc), pgs_feldera_decl($wc2) ]);
	$fake->completion('complete');
	ok(create_stream('s_wc', 'pub_wc', { feldera_pipeline => 'waitp', feldera_wait_completion => 'on' }),
		's_wc (feldera_wait_completion) is streaming');
	my $seq = $fake->last_seq;
	$node->safe_psql('postgres', q{
BEGIN; INSERT INTO public.wc VALUES (1, 'a'); INSERT INTO public.wc2 VALUES (1); COMMIT;
INSERT INTO public.wc VALUES (2, 'b');
});
	ok(pgs_feldera_wait_equal($node, 'postgres', $fake, 'waitp', [ $wc, $wc2 ]), 'rows delivered');
	ok(pgs_wait_for_status($node, 'postgres', 's_wc', "confirmed_lsn >= '" . current_lsn() . "'"),
		'confirmed once complete');
	my @log = grep { ($_->{pipeline} // '') eq 'waitp' } @{ $fake->request_log($seq) };
	my @tokens = map { $_->{token} } grep { $_->{kind} eq 'ingress' } @log;
	my @polled = map { $_->{token} } grep { $_->{kind} eq 'completion_status' && $_->{status} == 200 } @log;
	is(scalar(@tokens), 3, 'three ingress requests');
	is_deeply([ sort @polled ], [ sort @tokens ], 'the completion status of every token was read');
	is(scalar(grep { $_->{kind} eq 'completion_status' && !$_->{authorization}{ok} } @log), 0,
		'completion_status requests carry the API key');

	# Feldera answers 202 "inprogress" while it processes the data
	$fake->completion('inprogress');
	$seq = $fake->last_seq;
	my $lsn = current_lsn();
	$node->safe_psql('postgres', q{INSERT INTO public.wc VALUES (3, 'c')});
	ok( pgs_wait_until(
			sub {
				scalar(grep { $_->{kind} eq 'completion_status' } @{ $fake->request_log($seq) }) >= 3;
			},
			'completion status polled'),
		'the completion status is polled');
	is(pgs_status($node, 'postgres', 's_wc')->{state}, 'streaming',
		'while in progress (202) the stream keeps streaming');
	cmp_ok(pgs_lsn_num(confirmed_lsn('s_wc')), '<=', pgs_lsn_num($lsn),
		'while in progress the slot is not confirmed past the transaction');
	$fake->completion('complete');
	ok(pgs_wait_for_status($node, 'postgres', 's_wc', "confirmed_lsn >= '" . current_lsn() . "'"),
		'once complete the slot is confirmed past the transaction');
	is(pgs_status($node, 'postgres', 's_wc')->{state}, 'streaming', 's_wc is streaming');
	ok(pgs_feldera_wait_equal($node, 'postgres', $fake, 'waitp', [ $wc, $wc2 ]), 'rows delivered');

	# 410: the token is from an earlier incarnation of the pipeline (it
	# restarted, data may be lost): the stream is failed
	$fake->completion('gone');
	$lsn = current_lsn();
	$node->safe_psql('postgres', q{INSERT INTO public.wc VALUES (4, 'd')});
	ok(wait_failed('s_wc'), '410 from /completion_status: the stream is failed');
	like(pgs_status($node, 'postgres', 's_wc')->{last_error},
		qr/^could not read Feldera completion status: HTTP 410 PipelineRestarted: Completion token was created by a previous incarnation/,
		'last_error has 410 PipelineRestarted');
	cmp_ok(pgs_lsn_num(confirmed_lsn('s_wc')), '<=', pgs_lsn_num($lsn),
		'the slot is not confirmed past the transaction');
	$fake->completion('complete');
	$node->safe_psql('postgres', q{SELECT pgoutput_stream.drop_stream('s_wc')});
}

# ---------------------------------------------------------------------
# The main stream is still healthy
# ---------------------------------------------------------------------
is(pgs_status($node, 'postgres', 's_main')->{state}, 'streaming', 's_main is still streaming');
ok(pgs_feldera_wait_equal($node, 'postgres', $fake, 'main', \@main_specs), 'main tables still equal');

# ---------------------------------------------------------------------
# Two tables mapped to one Feldera name: the stream is failed at start,
# before anything is sent.  (Last: a worker that crashes here takes the
# server down.)
# ---------------------------------------------------------------------
{
	my $offset = pgs_log_offset($node);
	my $crashed = sub { $node->log_contains(qr/was terminated by signal/, $offset) };
	# failed, or undef at once if a worker crashed
	my $failed = sub {
		my ($name) = @_;
		my $state = '';
		pgs_wait_until(
			sub {
				return 1 if $crashed->();
				my $st = eval { pgs_status($node, 'postgres', $name) };
				$state = $st ? $st->{state} . '/' . ($st->{pid} // 'no pid') : '?';
				return $st && $st->{state} eq 'failed' && !defined $st->{pid};
			},
			"stream $name failed");
		note("$name: $state");
		return !$crashed->() && $state eq 'failed/no pid';
	};

	$fake->declare('dup', [ { name => 'dup', columns => [ { name => 'id', type => 'INT' } ] } ]);
	$node->safe_psql('postgres',
		q{SELECT pgoutput_stream.create_stream('s_dup', 'pub_dup', targets => '{feldera}', options => '{"feldera_pipeline": "dup", "feldera_table_names": "table"}')}
	);
	ok($failed->('s_dup'), 'two tables named "dup": the stream is failed at start');
	ok(!$crashed->(), 'no worker crashed')
	  or diag('the worker of s_dup crashed: pgs_worker_fail() inside pgs_sink_feldera_create() runs worker_on_exit() with worker.nsinks already incremented and worker.sinks[0] == NULL');
	if (!$crashed->())
	{
		like(pgs_status($node, 'postgres', 's_dup')->{last_error},
			qr/^tables "(public|sales)\.dup" and "(public|sales)\.dup" both map to Feldera table "dup"$/,
			'last_error names both tables and the Feldera name');
		ok($node->log_contains(qr/HINT:  Map one of the tables to another name with the stream option feldera_table_map/, $offset),
			'the hint names feldera_table_map');

		$node->safe_psql('postgres',
			q{SELECT pgoutput_stream.create_stream('s_dup2', 'pub_names', targets => '{feldera}', options => '{"feldera_pipeline": "allow", "feldera_table_map": "public.n1=sales_n2"}')}
		);
		ok($failed->('s_dup2'), 'a table mapped onto the default name of another: failed at start');
		like(pgs_status($node, 'postgres', 's_dup2')->{last_error},
			qr/^tables "(public\.n1|sales\.n2)" and "(public\.n1|sales\.n2)" both map to Feldera table "sales_n2"$/,
			'last_error names both tables');
		is(scalar($fake->ingress('dup', 0)), 0, 'nothing was sent for s_dup');
		ok(!$crashed->(), 'no worker crashed');
		$node->safe_psql('postgres',
			q{SELECT pgoutput_stream.drop_stream('s_dup'); SELECT pgoutput_stream.drop_stream('s_dup2');});
	}
}

$node->stop('fast', fail_ok => 1);
$fake->stop;

done_testing();
