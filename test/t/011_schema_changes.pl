
# Copyright (c) 2026, pgoutput_stream developers

# Schema changes and logical messages through a real stream with the "nats"
# target, read back from JetStream:
#
#  (1) Relation events: one per table before its first change in a worker's
#      lifetime; not repeated by further transactions, nor after relation
#      cache invalidations that change nothing a Relation event shows
#      (VACUUM, ANALYZE, SET (fillfactor), CREATE INDEX, COMMENT, GRANT,
#      VACUUM FULL, SET DEFAULT, TRUNCATE, rolled back DDL, ADD then DROP of
#      a column); sent again after every change of what it shows
#      (columns, names, types, replica identity), and by a new worker.  A
#      raw pgoutput slot on the same WAL shows that pgoutput itself did
#      describe the tables again after those invalidations, so the "not
#      repeated" assertions can fail.
#  (2) DDL on a published table while the worker streams it: ADD COLUMN
#      with and without default, DROP COLUMN, RENAME COLUMN, ALTER COLUMN
#      TYPE (int -> bigint with a table rewrite, text -> varchar), RENAME
#      TABLE, DDL and DML in one transaction, DDL and DML rolled back, SET
#      SCHEMA.  The exact sequence of events (subjects and payload texts)
#      is checked: old columns before each DDL, new ones after, no row lost
#      or added, order kept.
#  (3) Logical messages: transactional ones in commit order with the row
#      changes of their transaction (and none from a rolled back one),
#      non-transactional ones at their WAL position (also from a rolled
#      back transaction), escaped message prefixes in subjects, binary and
#      large content, headers, commit order of concurrent transactions, no
#      message of another database; a second stream with only logical
#      messages (operations ["message"], no Begin/Commit); and the Node.js
#      consumer of docs/outbox.md, run as it is printed there.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";

use Digest::MD5 qw(md5_hex);
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PgsTestUtil;
use PgsNatsUtil;

my $nats = PgsNatsUtil->new('main')->start;

# autovacuum off: the only relation cache invalidations are the test's own
my $node = pgs_nats_node('main', $nats, conf => "autovacuum = off\n");
$node->start;

$node->safe_psql(
	'postgres', q{
CREATE EXTENSION pgoutput_stream;
CREATE TABLE rel_a (id int PRIMARY KEY, v text);
CREATE TABLE rel_b (id int PRIMARY KEY, v text);
CREATE TABLE evolve (id int PRIMARY KEY, a int, t text);
CREATE TABLE orders (id int PRIMARY KEY, status text);
CREATE TABLE private_orders (id int PRIMARY KEY);
CREATE PUBLICATION pub FOR TABLE rel_a, rel_b, evolve, orders;
CREATE DATABASE other;
SELECT pgoutput_stream.create_stream('s', 'pub', targets => '{nats}');
SELECT pgoutput_stream.create_stream('ob', 'pub', targets => '{nats}',
  options => '{"subject_prefix": "app", "nats_stream": "app_outbox",
               "operations": ["message"], "transaction_events": false}');
});
ok(pgs_wait_for_status($node, 'postgres', 's', "state = 'streaming' AND pid IS NOT NULL"),
	'stream s is streaming');
ok(pgs_wait_for_status($node, 'postgres', 'ob', "state = 'streaming' AND pid IS NOT NULL"),
	'stream ob (logical messages only) is streaming');

# pgoutput itself, on the same WAL as the stream: what it sends before the
# extension sees it
$node->safe_psql('postgres',
	"SELECT pg_create_logical_replication_slot('raw_pgoutput', 'pgoutput')");

my %oid = map { $_ => $node->safe_psql('postgres', "SELECT '$_'::regclass::oid") }
  qw(rel_a rel_b evolve orders);

my $json = JSON::PP->new->canonical->allow_bignum;

sub wal_lsn
{
	return $node->safe_psql('postgres', 'SELECT pg_current_wal_lsn()');
}

# Every message of the JetStream stream, once stream s delivered all that
# is committed
sub all_msgs
{
	my ($what) = @_;
	ok(pgs_wait_delivered($node, 'postgres', 's'), "$what: stream s delivered everything");
	my $dump = pgs_js_dump($nats->url, 'postgres_replication');
	is($dump->{count}, $dump->{last_seq}, "$what: every message of JetStream was read");
	return @{ $dump->{msgs} };
}

# The messages whose transaction (or non-transactional message) is at or
# after LSN $from and before $to (if given)
sub msgs_between
{
	my ($what, $from, $to) = @_;
	return grep {
		my $l = pgs_lsn_num($_->{headers}{'Pg-Commit-Lsn'});
		$l >= pgs_lsn_num($from) && (!defined $to || $l < pgs_lsn_num($to))
	} all_msgs($what);
}

# A message in short: BEGIN, COMMIT, "subject payload" for table events,
# "subject tx|non-tx content=...|base64=..." for logical messages
sub describe
{
	my ($m) = @_;
	my $op = $m->{headers}{'Pg-Operation'} // '';
	return uc($op) if $op eq 'begin' || $op eq 'commit';
	my ($data, $j) = pgs_msg_payload($m);
	return "$m->{subject} $data" unless $op eq 'message';
	my $msg = $j->{Message};
	my $content =
	  exists $msg->{content} ? "content=$msg->{content}" : "base64=$msg->{content_base64}";
	if (exists $msg->{content} && length($msg->{content}) > 200)
	{
		my $bytes = $msg->{content};
		utf8::encode($bytes);
		$content = 'length=' . length($msg->{content}) . ' md5=' . md5_hex($bytes);
	}
	return "$m->{subject} " . ($msg->{transactional} ? 'tx' : 'non-tx') . " $content";
}

# The relation events pgoutput sent for $table in [$from, $to) of the WAL,
# read from the raw slot
sub raw_relation_count
{
	my ($table, $from, $to) = @_;
	return $node->safe_psql(
		'postgres', qq{
SELECT count(*) FROM pg_logical_slot_peek_binary_changes('raw_pgoutput', NULL, NULL,
    'proto_version', '1', 'publication_names', 'pub')
WHERE get_byte(data, 0) = ascii('R')
  AND (get_byte(data, 1)::bigint << 24 | get_byte(data, 2) << 16
       | get_byte(data, 3) << 8 | get_byte(data, 4)) = $oid{$table}
  AND lsn >= '$from' AND lsn < '$to'});
}

sub is_list
{
	my ($got, $expected, $name) = @_;
	is_deeply($got, $expected, $name) or do
	{
		# (as UTF-8: contents may have non-ASCII characters)
		my $text = "got:\n  " . join("\n  ", @$got) . "\nexpected:\n  " . join("\n  ", @$expected);
		utf8::encode($text);
		diag($text);
	};
}

# "schema.table" or "table" (in public) as (schema, table)
sub qual
{
	my ($name) = @_;
	return $name =~ /^(.*)\.(.*)\z/ ? ($1, $2) : ('public', $name);
}

# Expected payload texts
sub rel_json
{
	my ($name, $oid, $ri, @cols) = @_;
	my ($schema, $table) = qual($name);
	return qq({"Relation":{"relation_id":$oid,"schema":"$schema","table":"$table","replica_identity":"$ri","columns":[)
	  . join(',', map { qq({"name":"$_->[0]","type_id":$_->[1],"flags":$_->[2]}) } @cols) . ']}}';
}

# ---------------------------------------------------------------------
# (1) Relation events: once per table and worker, again after schema changes
# ---------------------------------------------------------------------

# The relation events of $table among @msgs, each with the message after it
sub relations_of
{
	my ($table, @msgs) = @_;
	my @r;
	for my $i (0 .. $#msgs)
	{
		next unless $msgs[$i]{subject} eq "postgres.public.$table.relation";
		push @r, [ $msgs[$i], $msgs[ $i + 1 ] ];
	}
	return @r;
}

sub count_subject
{
	my ($subject, @msgs) = @_;
	return scalar(grep { $_->{subject} eq $subject } @msgs);
}

# Each relation event is followed by a change of its table at the same
# position of the same transaction (Nats-Msg-Id <slot>:<lsn>:<pos>:r<relid>
# then <slot>:<lsn>:<pos>)
sub relation_before_change
{
	my ($rels, $table, $name) = @_;
	my @bad;
	foreach my $r (@$rels)
	{
		my ($rel, $next) = @$r;
		my (undef, $lsn, $pos, $relid) = pgs_msg_id_parts($rel->{id});
		my (undef, $nlsn, $npos, $nrelid) = pgs_msg_id_parts($next ? $next->{id} : undef);
		push @bad, "$rel->{id} followed by " . ($next ? "$next->{subject} $next->{id}" : 'nothing')
		  unless $next
		  && $next->{subject} =~ /^postgres\.public\.\Q$table\E\.(insert|update|delete)\z/
		  && ($relid // '') eq $oid{$table}
		  && !defined $nrelid && $nlsn eq $lsn && $npos == $pos;
	}
	ok(!@bad, $name) or diag(join("\n", @bad));
}

my $l1 = wal_lsn();

# many transactions, then one with both tables
$node->safe_psql('postgres',
	join('', map { "INSERT INTO rel_a VALUES ($_, 'a$_');\n" } 1 .. 30)
	  . "UPDATE rel_a SET v = 'a1 updated' WHERE id = 1;\n"
	  . "BEGIN; INSERT INTO rel_a VALUES (31, 'a31'); INSERT INTO rel_b VALUES (1, 'b1'), (2, 'b2'); COMMIT;\n"
);
my $l2 = wal_lsn();
{
	my @msgs = msgs_between('1a', $l1, $l2);
	my @ra = relations_of('rel_a', @msgs);
	is(scalar(@ra), 1, '1a: one relation event of rel_a for 31 transactions that change it');
	is(pgs_msg_payload($ra[0][0]),
		rel_json('rel_a', $oid{rel_a}, 'd', [ 'id', 23, 1 ], [ 'v', 25, 0 ]),
		'1a: it describes rel_a');
	my ($first) = grep { $_->{subject} =~ /^postgres\.public\.rel_a\.(insert|update)\z/ } @msgs;
	is($ra[0][1], $first, '1a: it comes right before the first change of rel_a');
	relation_before_change(\@ra, 'rel_a', '1a: at the position of that change');
	my @rb = relations_of('rel_b', @msgs);
	is(scalar(@rb), 1, '1a: one relation event of rel_b');
	relation_before_change(\@rb, 'rel_b', '1a: right before the first insert of rel_b');
	is(pgs_msg_payload($rb[0][1]) =~ /"id":1,/ ? 1 : 0, 1, '1a: the insert of row 1');
	is(count_subject('postgres.public.rel_a.insert', @msgs), 31, '1a: 31 inserts of rel_a');
	is(count_subject('postgres.public.rel_a.update', @msgs), 1, '1a: 1 update of rel_a');
	is(count_subject('postgres.public.rel_b.insert', @msgs), 2, '1a: 2 inserts of rel_b');
	is(count_subject('postgres.transactions.commit.event', @msgs), 32, '1a: 32 transactions');
}

# Relation cache invalidations that change nothing a relation event shows
$node->safe_psql(
	'postgres', q{
VACUUM rel_a;
INSERT INTO rel_a VALUES (32, 'after VACUUM');
ANALYZE rel_a;
INSERT INTO rel_a VALUES (33, 'after ANALYZE');
ALTER TABLE rel_a SET (fillfactor = 90);
INSERT INTO rel_a VALUES (34, 'after SET (fillfactor = 90)');
CREATE INDEX rel_a_v ON rel_a (v);
INSERT INTO rel_a VALUES (35, 'after CREATE INDEX');
COMMENT ON TABLE rel_a IS 'a comment';
GRANT SELECT ON rel_a TO PUBLIC;
INSERT INTO rel_a VALUES (36, 'after COMMENT and GRANT');
ALTER TABLE rel_a ALTER COLUMN v SET DEFAULT 'default v';
INSERT INTO rel_a (id) VALUES (37);
VACUUM FULL rel_a;
INSERT INTO rel_a VALUES (38, 'after VACUUM FULL');
UPDATE rel_a SET v = 'a2 updated' WHERE id = 2;
DELETE FROM rel_a WHERE id = 3;
BEGIN;
ALTER TABLE rel_a ADD COLUMN tmp int;
INSERT INTO rel_a VALUES (999, 'rolled back', 1);
ROLLBACK;
INSERT INTO rel_a VALUES (39, 'after a rolled back ADD COLUMN');
TRUNCATE rel_b;
INSERT INTO rel_b VALUES (1, 'b1 after TRUNCATE');
});
my $l3 = wal_lsn();
{
	my $raw = raw_relation_count('rel_a', $l2, $l3);
	note("pgoutput described rel_a $raw times after invalidations without schema change");
	cmp_ok($raw, '>=', 5,
		'1b: pgoutput itself describes rel_a again after those invalidations');
	$raw = raw_relation_count('rel_b', $l2, $l3);
	note("pgoutput described rel_b $raw times after TRUNCATE");
	cmp_ok($raw, '>=', 1, '1b: pgoutput itself describes rel_b again after TRUNCATE');
	my @msgs = msgs_between('1b', $l2, $l3);
	my @ra = (relations_of('rel_a', @msgs), relations_of('rel_b', @msgs));
	is(scalar(@ra), 0,
		'1b: no relation event after VACUUM, ANALYZE, SET (fillfactor), CREATE INDEX, COMMENT, GRANT, SET DEFAULT, VACUUM FULL, rolled back DDL, TRUNCATE'
	) or diag(join("\n", map { describe($_->[0]) . ' before ' . describe($_->[1]) } @ra));
	is_list(
		[ map { describe($_) } grep { $_->{subject} =~ /^postgres\.public\.rel_b\./ } @msgs ],
		[
			"postgres.public.rel_b.truncate "
			  . qq({"Truncate":{"relation_id":$oid{rel_b},"schema":"public","table":"rel_b","cascade":false,"restart_identity":false}}),
			"postgres.public.rel_b.insert "
			  . qq({"Insert":{"relation_id":$oid{rel_b},"schema":"public","table":"rel_b","new_tuple":{"id":1,"v":"b1 after TRUNCATE"}}}),
		],
		'1b: the TRUNCATE of rel_b and the insert after it');
	is_list(
		[ map { describe($_) } grep { $_->{subject} =~ /^postgres\.public\.rel_a\./ } @msgs ],
		[
			(map { "postgres.public.rel_a.insert " . qq({"Insert":{"relation_id":$oid{rel_a},"schema":"public","table":"rel_a","new_tuple":{"id":$_->[0],"v":"$_->[1]"}}}) }
				[ 32, 'after VACUUM' ], [ 33, 'after ANALYZE' ], [ 34, 'after SET (fillfactor = 90)' ],
				[ 35, 'after CREATE INDEX' ], [ 36, 'after COMMENT and GRANT' ], [ 37, 'default v' ],
				[ 38, 'after VACUUM FULL' ]),
			"postgres.public.rel_a.update " . qq({"Update":{"relation_id":$oid{rel_a},"schema":"public","table":"rel_a","old_tuple":null,"new_tuple":{"id":2,"v":"a2 updated"}}}),
			"postgres.public.rel_a.delete " . qq({"Delete":{"relation_id":$oid{rel_a},"schema":"public","table":"rel_a","old_tuple":{"id":3}}}),
			"postgres.public.rel_a.insert " . qq({"Insert":{"relation_id":$oid{rel_a},"schema":"public","table":"rel_a","new_tuple":{"id":39,"v":"after a rolled back ADD COLUMN"}}}),
		],
		'1b: every change of rel_a arrived, with the same columns');
}

# Changes of what a relation event shows
$node->safe_psql(
	'postgres',
	"ALTER TABLE rel_a ADD COLUMN w int;\n"
	  . "INSERT INTO rel_a VALUES (40, 'a40', 400);\n"
	  . join('', map { "INSERT INTO rel_a VALUES ($_, 'a$_', $_);\n" } 41 .. 50)
	  . q{
VACUUM rel_a;
INSERT INTO rel_a VALUES (51, 'a51', 51);
ALTER TABLE rel_a REPLICA IDENTITY FULL;
UPDATE rel_a SET w = 1 WHERE id = 40;
DELETE FROM rel_a WHERE id = 41;
ALTER TABLE rel_a RENAME COLUMN v TO v2;
INSERT INTO rel_a VALUES (52, 'a52', 52);
ALTER TABLE rel_a RENAME COLUMN v2 TO v;
INSERT INTO rel_a VALUES (53, 'a53', 53);
ALTER TABLE rel_a ADD COLUMN x int;
ALTER TABLE rel_a DROP COLUMN x;
INSERT INTO rel_a VALUES (54, 'a54', 54);
});
my $l4 = wal_lsn();
my $rel_a_full = rel_json('rel_a', $oid{rel_a}, 'f', [ 'id', 23, 1 ], [ 'v', 25, 1 ], [ 'w', 23, 1 ]);
{
	my $raw = raw_relation_count('rel_a', $l3, $l4);
	note("pgoutput described rel_a $raw times in 1c");
	cmp_ok($raw, '>=', 6, '1c: pgoutput describes rel_a more often than the stream should');
	my @msgs = msgs_between('1c', $l3, $l4);
	my @ra = relations_of('rel_a', @msgs);
	is_list(
		[ map { pgs_msg_payload($_->[0]) . ' before ' . $_->[1]{subject} } @ra ],
		[
			rel_json('rel_a', $oid{rel_a}, 'd', [ 'id', 23, 1 ], [ 'v', 25, 0 ], [ 'w', 23, 0 ])
			  . ' before postgres.public.rel_a.insert',
			"$rel_a_full before postgres.public.rel_a.update",
			rel_json('rel_a', $oid{rel_a}, 'f', [ 'id', 23, 1 ], [ 'v2', 25, 1 ], [ 'w', 23, 1 ])
			  . ' before postgres.public.rel_a.insert',
			"$rel_a_full before postgres.public.rel_a.insert",
		],
		'1c: one relation event after ADD COLUMN, REPLICA IDENTITY FULL, and each RENAME COLUMN; none for further transactions, VACUUM, or ADD+DROP of a column'
	);
	relation_before_change(\@ra, 'rel_a', '1c: each right before the change it describes');
	my @first_new = grep { pgs_msg_payload($_) =~ /"id":(?:40|52|53),/ } @msgs;
	is_list(
		[ map { $_->{subject} . ' ' . (pgs_msg_payload($_) =~ /"new_tuple":(\{[^}]*\})/)[0] } @first_new ],
		[
			'postgres.public.rel_a.insert {"id":40,"v":"a40","w":400}',
			'postgres.public.rel_a.update {"id":40,"v":"a40","w":1}',
			'postgres.public.rel_a.insert {"id":52,"v2":"a52","w":52}',
			'postgres.public.rel_a.insert {"id":53,"v":"a53","w":53}',
		],
		'1c: the changes use the columns of the relation event before them');
	is(count_subject('postgres.public.rel_a.insert', @msgs), 15, '1c: 15 inserts of rel_a');
	my ($del) = grep { $_->{subject} eq 'postgres.public.rel_a.delete' } @msgs;
	like(pgs_msg_payload($del), qr/"old_tuple":\{"id":41,"v":"a41","w":41\}/,
		'1c: with REPLICA IDENTITY FULL, the delete has the whole old row');
}

# A new worker describes the tables again
$node->safe_psql('postgres', "SELECT pgoutput_stream.stop_stream('s')");
ok(pgs_wait_for_status($node, 'postgres', 's', "state = 'stopped' AND pid IS NULL"),
	'1d: stream s stopped');
$node->safe_psql('postgres', "SELECT pgoutput_stream.start_stream('s')");
ok(pgs_wait_for_status($node, 'postgres', 's', "state = 'streaming' AND pid IS NOT NULL"),
	'1d: stream s streams again, in a new worker');
$node->safe_psql(
	'postgres', q{
INSERT INTO rel_a VALUES (60, 'a60', 60);
INSERT INTO rel_b VALUES (3, 'b3');
INSERT INTO rel_a VALUES (61, 'a61', 61);
});
my $l5 = wal_lsn();
{
	my @msgs = msgs_between('1d', $l4, $l5);
	my @ra = relations_of('rel_a', @msgs);
	my @rb = relations_of('rel_b', @msgs);
	is_list([ map { scalar pgs_msg_payload($_->[0]) } @ra, @rb ],
		[ $rel_a_full, rel_json('rel_b', $oid{rel_b}, 'd', [ 'id', 23, 1 ], [ 'v', 25, 0 ]) ],
		'1d: the new worker describes rel_a and rel_b once each');
	relation_before_change(\@ra, 'rel_a', '1d: rel_a right before its first change');
	relation_before_change(\@rb, 'rel_b', '1d: rel_b right before its first change');
	is(count_subject('postgres.public.rel_a.insert', @msgs), 2, '1d: 2 inserts of rel_a');
}

# ---------------------------------------------------------------------
# (2) DDL on a published table while the worker streams it
# ---------------------------------------------------------------------
my $eoid = $oid{evolve};

sub r_ev
{
	my ($name, @cols) = @_;
	my ($schema, $table) = qual($name);
	return "postgres.$schema.$table.relation " . rel_json($name, $eoid, 'd', @cols);
}

sub i_ev
{
	my ($name, $tuple) = @_;
	my ($schema, $table) = qual($name);
	return "postgres.$schema.$table.insert "
	  . qq({"Insert":{"relation_id":$eoid,"schema":"$schema","table":"$table","new_tuple":$tuple}});
}

sub u_ev
{
	my ($name, $tuple) = @_;
	my ($schema, $table) = qual($name);
	return "postgres.$schema.$table.update "
	  . qq({"Update":{"relation_id":$eoid,"schema":"$schema","table":"$table","old_tuple":null,"new_tuple":$tuple}});
}

sub d_ev
{
	my ($name, $key) = @_;
	my ($schema, $table) = qual($name);
	return "postgres.$schema.$table.delete "
	  . qq({"Delete":{"relation_id":$eoid,"schema":"$schema","table":"$table","old_tuple":$key}});
}

my @B = ('BEGIN');
my @C = ('COMMIT');
my @steps = (
	[
		'before any DDL', q{
BEGIN;
INSERT INTO evolve VALUES (1, 10, 'one'), (2, 20, 'two');
COMMIT;
UPDATE evolve SET a = 11 WHERE id = 1;
},
		[
			@B, r_ev('evolve', [ 'id', 23, 1 ], [ 'a', 23, 0 ], [ 't', 25, 0 ]),
			i_ev('evolve', '{"id":1,"a":10,"t":"one"}'), i_ev('evolve', '{"id":2,"a":20,"t":"two"}'), @C,
			@B, u_ev('evolve', '{"id":1,"a":11,"t":"one"}'), @C
		],
		1
	],
	[
		'ADD COLUMN without default', q{
ALTER TABLE evolve ADD COLUMN c int;
INSERT INTO evolve VALUES (3, 30, 'three', 300);
UPDATE evolve SET a = 21 WHERE id = 2;
},
		[
			@B, r_ev('evolve', [ 'id', 23, 1 ], [ 'a', 23, 0 ], [ 't', 25, 0 ], [ 'c', 23, 0 ]),
			i_ev('evolve', '{"id":3,"a":30,"t":"three","c":300}'), @C,
			@B, u_ev('evolve', '{"id":2,"a":21,"t":"two","c":null}'), @C
		],
		0
	],
	[
		'ADD COLUMN with a default', q{
ALTER TABLE evolve ADD COLUMN d text DEFAULT 'dflt';
INSERT INTO evolve (id, a, t, c) VALUES (4, 40, 'four', 400);
UPDATE evolve SET c = 301 WHERE id = 3;
},
		[
			@B,
			r_ev('evolve', [ 'id', 23, 1 ], [ 'a', 23, 0 ], [ 't', 25, 0 ], [ 'c', 23, 0 ], [ 'd', 25, 0 ]),
			i_ev('evolve', '{"id":4,"a":40,"t":"four","c":400,"d":"dflt"}'), @C,
			@B, u_ev('evolve', '{"id":3,"a":30,"t":"three","c":301,"d":"dflt"}'), @C
		],
		1
	],
	[
		'DROP COLUMN', q{
ALTER TABLE evolve DROP COLUMN t;
INSERT INTO evolve VALUES (5, 50, 500, 'five');
UPDATE evolve SET a = 12 WHERE id = 1;
},
		[
			@B, r_ev('evolve', [ 'id', 23, 1 ], [ 'a', 23, 0 ], [ 'c', 23, 0 ], [ 'd', 25, 0 ]),
			i_ev('evolve', '{"id":5,"a":50,"c":500,"d":"five"}'), @C,
			@B, u_ev('evolve', '{"id":1,"a":12,"c":null,"d":"dflt"}'), @C
		],
		0
	],
	[
		'RENAME COLUMN', q{
ALTER TABLE evolve RENAME COLUMN a TO amount;
INSERT INTO evolve VALUES (6, 60, 600, 'six');
UPDATE evolve SET amount = 13 WHERE id = 1;
},
		[
			@B, r_ev('evolve', [ 'id', 23, 1 ], [ 'amount', 23, 0 ], [ 'c', 23, 0 ], [ 'd', 25, 0 ]),
			i_ev('evolve', '{"id":6,"amount":60,"c":600,"d":"six"}'), @C,
			@B, u_ev('evolve', '{"id":1,"amount":13,"c":null,"d":"dflt"}'), @C
		],
		1
	],
	[
		'ALTER COLUMN TYPE int -> bigint (table rewrite)', q{
ALTER TABLE evolve ALTER COLUMN amount TYPE bigint;
INSERT INTO evolve VALUES (7, 5000000000, 700, 'seven');
UPDATE evolve SET amount = amount + 4294967296 WHERE id = 2;
},
		[
			@B, r_ev('evolve', [ 'id', 23, 1 ], [ 'amount', 20, 0 ], [ 'c', 23, 0 ], [ 'd', 25, 0 ]),
			i_ev('evolve', '{"id":7,"amount":5000000000,"c":700,"d":"seven"}'), @C,
			@B, u_ev('evolve', '{"id":2,"amount":4294967317,"c":null,"d":"dflt"}'), @C
		],
		0
	],
	[
		'ALTER COLUMN TYPE text -> varchar', q{
ALTER TABLE evolve ALTER COLUMN d TYPE varchar(40);
INSERT INTO evolve VALUES (8, 80, 800, 'eight');
UPDATE evolve SET d = 'four, as varchar' WHERE id = 4;
},
		[
			@B, r_ev('evolve', [ 'id', 23, 1 ], [ 'amount', 20, 0 ], [ 'c', 23, 0 ], [ 'd', 1043, 0 ]),
			i_ev('evolve', '{"id":8,"amount":80,"c":800,"d":"eight"}'), @C,
			@B, u_ev('evolve', '{"id":4,"amount":40,"c":400,"d":"four, as varchar"}'), @C
		],
		1
	],
	[
		'RENAME TABLE', q{
ALTER TABLE evolve RENAME TO evolved;
INSERT INTO evolved VALUES (9, 90, 900, 'nine');
UPDATE evolved SET c = 302 WHERE id = 3;
DELETE FROM evolved WHERE id = 5;
},
		[
			@B, r_ev('evolved', [ 'id', 23, 1 ], [ 'amount', 20, 0 ], [ 'c', 23, 0 ], [ 'd', 1043, 0 ]),
			i_ev('evolved', '{"id":9,"amount":90,"c":900,"d":"nine"}'), @C,
			@B, u_ev('evolved', '{"id":3,"amount":30,"c":302,"d":"dflt"}'), @C,
			@B, d_ev('evolved', '{"id":5}'), @C
		],
		0
	],
	[
		'DDL and DML in one transaction', q{
BEGIN;
INSERT INTO evolved VALUES (10, 100, 1000, 'ten');
ALTER TABLE evolved ADD COLUMN e boolean DEFAULT true;
INSERT INTO evolved VALUES (11, 110, 1100, 'eleven', false);
UPDATE evolved SET e = false WHERE id = 10;
ALTER TABLE evolved DROP COLUMN c;
INSERT INTO evolved VALUES (12, 120, 'twelve');
UPDATE evolved SET amount = 111 WHERE id = 11;
COMMIT;
},
		[
			@B,
			i_ev('evolved', '{"id":10,"amount":100,"c":1000,"d":"ten"}'),
			r_ev('evolved', [ 'id', 23, 1 ], [ 'amount', 20, 0 ], [ 'c', 23, 0 ], [ 'd', 1043, 0 ], [ 'e', 16, 0 ]),
			i_ev('evolved', '{"id":11,"amount":110,"c":1100,"d":"eleven","e":false}'),
			u_ev('evolved', '{"id":10,"amount":100,"c":1000,"d":"ten","e":false}'),
			r_ev('evolved', [ 'id', 23, 1 ], [ 'amount', 20, 0 ], [ 'd', 1043, 0 ], [ 'e', 16, 0 ]),
			i_ev('evolved', '{"id":12,"amount":120,"d":"twelve","e":true}'),
			u_ev('evolved', '{"id":11,"amount":111,"d":"eleven","e":false}'),
			@C
		],
		1
	],
	[
		'DDL and DML rolled back', q{
BEGIN;
ALTER TABLE evolved ADD COLUMN zz int;
INSERT INTO evolved VALUES (98, 1, 'rolled back', true, 1);
ALTER TABLE evolved RENAME TO gone;
INSERT INTO gone VALUES (99, 1, 'rolled back', true, 1);
ROLLBACK;
INSERT INTO evolved VALUES (13, 130, 'thirteen');
},
		[ @B, i_ev('evolved', '{"id":13,"amount":130,"d":"thirteen","e":true}'), @C ],
		0
	],
	[
		'SET SCHEMA', q{
CREATE SCHEMA app;
ALTER TABLE evolved SET SCHEMA app;
INSERT INTO app.evolved VALUES (14, 140, 'fourteen');
DELETE FROM app.evolved WHERE id = 13;
},
		[
			@B, r_ev('app.evolved', [ 'id', 23, 1 ], [ 'amount', 20, 0 ], [ 'd', 1043, 0 ], [ 'e', 16, 0 ]),
			i_ev('app.evolved', '{"id":14,"amount":140,"d":"fourteen","e":true}'), @C,
			@B, d_ev('app.evolved', '{"id":13}'), @C
		],
		0
	]);

my $ddl_start = wal_lsn();
my @step_lsns;
my @all_expected;
foreach my $step (@steps)
{
	my ($name, $sql, $expected, $wait) = @$step;
	push @step_lsns, wal_lsn();
	$node->safe_psql('postgres', $sql);

	# the worker has decoded and delivered it before the next DDL (or not,
	# when the next DDL comes right away)
	ok(pgs_wait_delivered($node, 'postgres', 's'), "2: delivered up to: $name") if $wait;
	push @all_expected, @$expected;
}
push @step_lsns, wal_lsn();
{
	my @msgs = msgs_between('2', $ddl_start);
	for my $i (0 .. $#steps)
	{
		my @m = grep {
			my $l = pgs_lsn_num($_->{headers}{'Pg-Commit-Lsn'});
			$l >= pgs_lsn_num($step_lsns[$i]) && $l < pgs_lsn_num($step_lsns[ $i + 1 ])
		} @msgs;
		is_list([ map { describe($_) } @m ], $steps[$i][2], "2: events of step: $steps[$i][0]");
	}
	is_list([ map { describe($_) } @msgs ], \@all_expected,
		'2: all events of the DDL steps, nothing lost or added, in order');

	# the rows the events describe are the rows of the table
	my %rows;
	foreach my $m (@msgs)
	{
		my (undef, $j) = pgs_msg_payload($m);
		if (my $e = $j->{Insert} // $j->{Update}) { $rows{ $e->{new_tuple}{id} } = 1; }
		if (my $e = $j->{Delete}) { delete $rows{ $e->{old_tuple}{id} }; }
	}
	is(join(',', sort { $a <=> $b } keys %rows),
		$node->safe_psql('postgres', "SELECT string_agg(id::text, ',' ORDER BY id) FROM app.evolved"),
		'2: the rows the events leave are those of the table');
	my (undef, $last) = pgs_msg_payload((grep { $_->{subject} =~ /\.evolved\.update\z/ } @msgs)[-1]);
	is_deeply($last->{Update}{new_tuple},
		$json->decode($node->safe_psql('postgres', 'SELECT row_to_json(r) FROM app.evolved r WHERE id = 11')),
		'2: the last update carries the row as the table has it');
}

# ---------------------------------------------------------------------
# (3) Logical messages
# ---------------------------------------------------------------------
# (48 000 bytes: pgs_js_dump cannot parse payloads of more than about 64 kB)
my $big = join('', map { sprintf('%07d ', $_) } 1 .. 6000);
my $msg_start = wal_lsn();
my ($xid1) = split /\n/, $node->safe_psql(
	'postgres', q{
BEGIN;
SELECT txid_current();
INSERT INTO orders VALUES (1, 'placed');
SELECT pg_logical_emit_message(true, 'outbox', '{"order":1}');
COMMIT;
});
$node->safe_psql(
	'postgres', q{
BEGIN;
INSERT INTO orders VALUES (2, 'placed');
SELECT pg_logical_emit_message(true, 'outbox', '{"order":2}');
ROLLBACK;
SELECT pg_logical_emit_message(false, 'audit', 'x');
BEGIN;
INSERT INTO orders VALUES (3, 'placed');
SELECT pg_logical_emit_message(false, 'audit', 'during the transaction of order 3');
SELECT pg_logical_emit_message(true, 'my.app', 'between orders 3 and 4');
INSERT INTO orders VALUES (4, 'placed');
COMMIT;
BEGIN;
SELECT pg_logical_emit_message(false, 'audit', 'from a rolled back transaction');
INSERT INTO orders VALUES (5, 'placed');
ROLLBACK;
BEGIN;
INSERT INTO private_orders VALUES (1);
SELECT pg_logical_emit_message(true, U&'my app/\00FC', 'y');
SELECT pg_logical_emit_message(true, '', 'empty prefix');
COMMIT;
BEGIN;
SELECT pg_logical_emit_message(true, 'bin', '\x00ff'::bytea);
SELECT pg_logical_emit_message(true, 'bin', '\xc328ff'::bytea);
SELECT pg_logical_emit_message(true, 'bin', convert_to(U&'caf\00E9 \2713', 'UTF8'));
SELECT pg_logical_emit_message(true, 'text', E'line 1\nline 2\t"quoted" \\\\ {}');
COMMIT;
});
$node->safe_psql('postgres', "SELECT pg_logical_emit_message(true, 'big', '$big')");

# two transactions that commit in the other order than they began
my $bg = $node->background_psql('postgres');
$bg->query_safe('BEGIN');
$bg->query_safe("INSERT INTO orders VALUES (10, 'placed')");
$bg->query_safe(q{SELECT pg_logical_emit_message(true, 'outbox', '{"order":10}')});
$node->safe_psql(
	'postgres', q{
BEGIN;
INSERT INTO orders VALUES (11, 'placed');
SELECT pg_logical_emit_message(true, 'outbox', '{"order":11}');
COMMIT;
});
$bg->query_safe('COMMIT');
$bg->quit;

# another database
$node->safe_psql(
	'other', q{
SELECT pg_logical_emit_message(true, 'outbox', '{"order":"other database"}');
SELECT pg_logical_emit_message(false, 'outbox', 'other database');
});

my @outbox_msgs;
{
	my $oo = $oid{orders};
	my $ins = sub {
		my ($id) = @_;
		return "postgres.public.orders.insert "
		  . qq({"Insert":{"relation_id":$oo,"schema":"public","table":"orders","new_tuple":{"id":$id,"status":"placed"}}});
	};
	my @msgs = msgs_between('3', $msg_start);
	is_list(
		[ map { describe($_) } @msgs ],
		[
			@B,
			"postgres.public.orders.relation "
			  . rel_json('orders', $oo, 'd', [ 'id', 23, 1 ], [ 'status', 25, 0 ]),
			$ins->(1),
			'postgres.messages.outbox tx content={"order":1}',
			@C,
			'postgres.messages.audit non-tx content=x',
			'postgres.messages.audit non-tx content=during the transaction of order 3',
			@B,
			$ins->(3),
			'postgres.messages.my%2Eapp tx content=between orders 3 and 4',
			$ins->(4),
			@C,
			'postgres.messages.audit non-tx content=from a rolled back transaction',
			@B,
			"postgres.messages.my%20app%2F%C3%BC tx content=y",
			'postgres.messages.%00 tx content=empty prefix',
			@C,
			@B,
			'postgres.messages.bin tx base64=AP8=',
			'postgres.messages.bin tx base64=wyj/',
			"postgres.messages.bin tx content=caf\x{e9} \x{2713}",
			qq{postgres.messages.text tx content=line 1\nline 2\t"quoted" \\ {}},
			@C,
			@B,
			'postgres.messages.big tx length=' . length($big) . ' md5=' . md5_hex($big),
			@C,
			@B,
			$ins->(11),
			'postgres.messages.outbox tx content={"order":11}',
			@C,
			@B,
			$ins->(10),
			'postgres.messages.outbox tx content={"order":10}',
			@C,
		],
		'3: messages and row changes in commit order; none from rolled back transactions unless non-transactional; escaped prefixes; binary content in base64; none from another database'
	);

	# headers and payload details
	my (@bad, $begin);
	foreach my $m (@msgs)
	{
		my $h = $m->{headers};
		my (undef, $j) = pgs_msg_payload($m);
		$begin = $j->{Begin} if $j->{Begin};
		next unless $j->{Message};
		my $msg = $j->{Message};
		my $where = "message $m->{seq} ($m->{subject})";
		my @tok = split /\./, $m->{subject};
		push @bad, "$where: subject is not postgres.messages.<one token>" unless @tok == 3;
		push @bad, "$where: token $tok[2] does not unescape to the prefix"
		  if pgs_subject_unescape($tok[2]) ne $msg->{prefix};
		push @bad, "$where: Pg-Operation " . ($h->{'Pg-Operation'} // '(none)')
		  unless ($h->{'Pg-Operation'} // '') eq 'message';
		push @bad, "$where: Pg-Schema or Pg-Table set"
		  if exists $h->{'Pg-Schema'} || exists $h->{'Pg-Table'};
		push @bad, "$where: payload lsn $msg->{lsn} but Pg-Lsn $h->{'Pg-Lsn'}"
		  if $msg->{lsn} ne $h->{'Pg-Lsn'};
		my ($slot, $lsn, $pos, $relid) = pgs_msg_id_parts($m->{id});
		if ($msg->{transactional})
		{
			push @bad, "$where: Pg-Xid " . ($h->{'Pg-Xid'} // '(none)') . ", Begin xid $begin->{xid}"
			  if ($h->{'Pg-Xid'} // '') ne $begin->{xid};
			push @bad, "$where: Pg-Commit-Lsn $h->{'Pg-Commit-Lsn'}, Begin lsn $begin->{lsn}"
			  if $h->{'Pg-Commit-Lsn'} ne $begin->{lsn};
			push @bad, "$where: no Pg-Commit-Time" unless $h->{'Pg-Commit-Time'};
			push @bad, "$where: id $m->{id}"
			  unless ($slot // '') eq 'pgs_s' && $lsn eq $begin->{lsn} && $pos > 0 && !defined $relid;
		}
		else
		{
			push @bad, "$where: Pg-Xid or Pg-Commit-Time on a non-transactional message"
			  if exists $h->{'Pg-Xid'} || exists $h->{'Pg-Commit-Time'};
			push @bad, "$where: Pg-Commit-Lsn $h->{'Pg-Commit-Lsn'}, not its own LSN"
			  if $h->{'Pg-Commit-Lsn'} ne $msg->{lsn};
			push @bad, "$where: id $m->{id}"
			  unless ($slot // '') eq 'pgs_s' && $lsn eq $msg->{lsn} && $pos == 0 && !defined $relid;
		}
	}
	is_deeply(\@bad, [], '3: headers, ids and lsn of every logical message') or diag(join("\n", @bad));

	@outbox_msgs = grep { $_->{subject} eq 'postgres.messages.outbox' } @msgs;

	# the stream with only logical messages and no Begin/Commit: the same
	# messages under its own prefix, nothing else
	ok(pgs_wait_delivered($node, 'postgres', 'ob'), '3: stream ob delivered everything');
	my $dump = pgs_js_dump($nats->url, 'app_outbox');
	my @expected = map { my $d = $_; $d =~ s/^postgres\./app./; $d }
	  map { describe($_) } grep { $_->{headers}{'Pg-Operation'} eq 'message' } @msgs;
	is_list([ map { describe($_) } @{ $dump->{msgs} } ], \@expected,
		'3: a stream with operations ["message"] and transaction_events false holds just the logical messages, in the same order'
	);
	my %seen;
	is(scalar(grep { $seen{ $_->{id} // '' }++ } @{ $dump->{msgs} }), 0,
		'3: ... with distinct message ids');
	note("ob: $_->{subject} " . $json->encode($_->{headers}) . ' ' . pgs_msg_payload($_))
	  foreach grep { $_->{subject} eq 'app.messages.outbox' } @{ $dump->{msgs} };
	is($outbox_msgs[0]{headers}{'Pg-Xid'}, $xid1,
		'3: Pg-Xid of the outbox message is the xid of its transaction');

	# shown with prove -v, for docs/outbox.md
	foreach my $m (grep { $_->{headers}{'Pg-Commit-Lsn'} eq $outbox_msgs[0]{headers}{'Pg-Commit-Lsn'} }
		@msgs)
	{
		note("$m->{seq} $m->{subject} " . $json->encode($m->{headers}) . ' ' . pgs_msg_payload($m));
	}
	note("non-transactional: $_->{subject} " . $json->encode($_->{headers}) . ' ' . pgs_msg_payload($_))
	  foreach grep { $_->{subject} eq 'postgres.messages.audit' } @msgs;
}

# The consumer of docs/outbox.md, as it is printed there, run from
# test/nats (where npm "nats" is installed) until it printed the three
# outbox messages
{
	my $doc = slurp_file("$FindBin::RealBin/../../docs/outbox.md");
	my ($code) = $doc =~ m{```js\n(// outbox_consumer\.mjs.*?)```}s;
	ok($code, 'docs/outbox.md has the consumer outbox_consumer.mjs');
	$code //= 'process.exit(1);';
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[ PgsNatsUtil::_find_program('node', 'PGS_NODE'), '--input-type=module', '-e', $code ],
		'<', \undef, '>', \$out, '2>', \$err,
		init => sub { chdir(pgs_nats_dir()) or die "chdir: $!"; $ENV{NATS_URL} = $nats->url; },
		IPC::Run::timeout(30));
	eval { $h->pump until ($out =~ tr/\n//) >= 3 || !$h->pumpable; };
	my $pump_err = $@;
	$h->kill_kill;
	note("consumer output:\n$out\nstderr: $err\n$pump_err");
	my @lines = split /\n/, $out;
	my @ids = map { $_->{headers}{'Nats-Msg-Id'} } @outbox_msgs;
	my @xids = map { $_->{headers}{'Pg-Xid'} } @outbox_msgs;
	is_list(
		\@lines,
		[
			"$ids[0] xid $xids[0]: { order: 1 }",
			"$ids[1] xid $xids[1]: { order: 11 }",
			"$ids[2] xid $xids[2]: { order: 10 }"
		],
		'the consumer of docs/outbox.md gets the outbox messages in commit order, with their ids');
}

# ---------------------------------------------------------------------
# The whole JetStream stream
# ---------------------------------------------------------------------
{
	my @msgs = all_msgs('end');
	my @p = pgs_js_problems(\@msgs, 'pgs_s');
	ok(!@p, 'unique message ids, commit order, chained, whole transactions')
	  or diag(join("\n", @p[ 0 .. ($#p > 19 ? 19 : $#p) ]));
}

$node->safe_psql('postgres', "SELECT pg_drop_replication_slot('raw_pgoutput')");
ok(!$node->log_contains(qr/terminated by signal|PANIC/), 'no process of the server crashed');
$node->stop;
$nats->stop;

done_testing();
