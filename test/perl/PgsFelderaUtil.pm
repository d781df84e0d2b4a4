
# Copyright (c) 2026, pgoutput_stream developers

=pod

=head1 NAME

PgsFelderaUtil - the fake Feldera server and table comparisons for the TAP
tests of the "feldera" target

=head1 SYNOPSIS

  use FindBin;
  use lib "$FindBin::RealBin/../perl";
  use PgsFelderaUtil;

  my $fake = PgsFelderaUtil->new('f1', api_key => 'k');
  $fake->start;                              # waits for "listening PORT"
  my $spec = pgs_feldera_spec('public.t', key => ['id'],
      columns => [ [ id => 'int', 'INT', 'int' ], [ v => 'text', 'VARCHAR', 'text' ] ]);
  $node->safe_psql('postgres', pgs_feldera_ddl($spec));
  $fake->declare('p', [ pgs_feldera_decl($spec) ]);
  ...
  ok(pgs_feldera_wait_equal($node, 'postgres', $fake, 'p', [$spec]));
  $fake->stop;

=head1 DESCRIPTION

The fake (F<test/feldera/fake_feldera.mjs>, Node.js, no npm packages) runs
on 127.0.0.1 with a state file in the test's temporary directory, so that
it can be killed and started again on the same port with its tables.  Its
stderr goes to F<feldera_NAME.log> in the TAP log directory.  The control
API (F</_fake/...>) is used through HTTP::Tiny.

Table contents are compared in one canonical text form per value, computed
from PostgreSQL's text output on one side and from the fake's stored form
(README.md, "Stored rows have a canonical form") on the other.  A table
"spec" describes a table on both sides:

  {
    pg      => 'schema.table',         # PostgreSQL name
    feldera => 'schema_table',         # default Feldera name
    key     => [ 'id', ... ],          # primary key columns
    columns => [ { name, pg, feldera, kind, nullable }, ... ],
  }

where kind is one of bool int float real decimal text date time timestamp
timestamptz bytes uuid json (json: arrays, json, jsonb, compared as
canonical JSON).

=cut

package PgsFelderaUtil;

use strict;
use warnings;

use Carp;
use Exporter 'import';
use File::Basename qw(dirname);
use File::Spec;
use HTTP::Tiny;
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

use PgsTestUtil qw(pgs_wait_until);

our @EXPORT = qw(
  pgs_feldera_spec
  pgs_feldera_ddl
  pgs_feldera_decl
  pgs_feldera_pg_rows
  pgs_feldera_fake_rows
  pgs_feldera_diff
  pgs_feldera_wait_equal
);

our $TIMEOUT = $PostgreSQL::Test::Utils::timeout_default;

# Decoding: integers stay exact (int8 fits a Perl IV), floats are NVs
my $json = JSON::PP->new->utf8->allow_nonref;
# Canonical JSON text of decoded values (sorted keys)
my $canon_json = JSON::PP->new->utf8->canonical->allow_nonref;

# Fakes started and not stopped yet: "$fake" => fake
my %running;

=pod

=head2 The fake server

=over

=item PgsFelderaUtil->new($name, %params)

A fake Feldera (not started).  Parameters: api_key (requests then need
"Authorization: Bearer KEY"), port (default: a free port), keep_alive_ms.

=cut

sub new
{
	my ($class, $name, %params) = @_;
	my $base = PostgreSQL::Test::Utils::tempdir("feldera_$name");
	my $self = {
		name          => $name,
		port          => $params{port} // PostgreSQL::Test::Cluster::get_free_port(),
		api_key       => $params{api_key},
		keep_alive_ms => $params{keep_alive_ms},
		state_file    => "$base/state.json",
		logfile       => "$PostgreSQL::Test::Utils::log_path/feldera_$name.log",
		harness       => undef,
		http          => HTTP::Tiny->new(timeout => 30, keep_alive => 0),
	};
	return bless $self, $class;
}

sub name       { return $_[0]->{name}; }
sub port       { return $_[0]->{port}; }
sub state_file { return $_[0]->{state_file}; }
sub logfile    { return $_[0]->{logfile}; }
sub running    { return defined $_[0]->{harness}; }
sub url        { return "http://127.0.0.1:$_[0]->{port}"; }

# node fake_feldera.mjs, found relative to this module
sub _script
{
	return File::Spec->rel2abs(dirname(__FILE__) . '/../feldera/fake_feldera.mjs');
}

=pod

=item $fake->start

Start the fake (same port and state file as before, if it ran already) and
wait for its "listening" line.  Returns the fake.

=cut

sub start
{
	my ($self) = @_;
	croak "fake feldera $self->{name} is already running" if $self->{harness};
	my @cmd = ($ENV{PGS_NODE} // 'node', _script(), '--port', $self->{port},
		'--state-file', $self->{state_file});
	push @cmd, '--api-key', $self->{api_key} if defined $self->{api_key};
	push @cmd, '--keep-alive-ms', $self->{keep_alive_ms}
	  if defined $self->{keep_alive_ms};

	my $out = '';
	my $timer = IPC::Run::timer($TIMEOUT);
	my $h = IPC::Run::start(\@cmd, '<', \undef, '>', \$out, '2>>', $self->{logfile}, $timer);
	$self->{harness} = $h;
	$self->{out}     = \$out;
	$running{"$self"} = $self;
	eval {
		until ($out =~ /listening (\d+)/)
		{
			croak "fake feldera $self->{name} exited at start (see $self->{logfile})"
			  unless $h->pumpable;
			$h->pump;
		}
		1;
	} or do {
		my $err = $@;
		$h->kill_kill;
		delete $running{"$self"};
		$self->{harness} = undef;
		croak "fake feldera $self->{name} did not start: $err";
	};
	$timer->reset;
	note("fake feldera $self->{name} listening on port $self->{port}");
	return $self;
}

=pod

=item $fake->stop($signal)

Send $signal (default TERM: the fake saves its state and exits; KILL: it
just dies, its state file holds every change it acknowledged) and wait for
the process.  Returns the seconds it took.

=cut

sub stop
{
	my ($self, $signal) = @_;
	my $h = $self->{harness} or return 0;
	my $start = time();
	$h->signal($signal // 'TERM');
	eval { $h->finish; 1 } or $h->kill_kill;
	delete $running{"$self"};
	$self->{harness} = undef;
	my $took = time() - $start;
	note(sprintf("fake feldera %s stopped (%s) in %.2f s", $self->{name}, $signal // 'TERM', $took));
	return $took;
}

# One request to the fake: (status, decoded body or raw text)
sub _request
{
	my ($self, $method, $path, $body) = @_;
	my %opt;
	if (defined $body)
	{
		$opt{content} = $json->encode($body);
		$opt{headers} = { 'content-type' => 'application/json' };
	}
	my $res = $self->{http}->request($method, $self->url . $path, \%opt);
	my $decoded = eval { $json->decode($res->{content}) };
	return ($res->{status}, $decoded // $res->{content});
}

# A control request that must succeed: the decoded answer
sub _control
{
	my ($self, $method, $path, $body) = @_;
	my ($status, $answer) = $self->_request($method, $path, $body);
	croak "fake feldera $self->{name}: $method $path answered $status: "
	  . (ref $answer ? $json->encode($answer) : $answer)
	  unless $status == 200;
	return $answer;
}

=pod

=item $fake->declare($pipeline, \@tables)

Declare (or replace, emptied) a pipeline with the given table declarations
(see pgs_feldera_decl).

=item $fake->rows($pipeline, $table)

The stored rows of a table (array reference), sorted by primary key.

=item $fake->fault(\%fault)

Queue a fault (status/count, reset, delay_ms/count, pause, clear).

=item $fake->pending_faults

The answer of GET /_fake/faults: {faults, paused, completion}.

=item $fake->completion($mode)

complete, inprogress or gone.

=item $fake->request_log($since)

The request log entries with seq > $since (default 0).

=item $fake->last_seq

The seq of the latest log entry (0 if none).

=item $fake->violations, $fake->restart_pipeline($p), $fake->reset_state

=cut

sub declare
{
	my ($self, $pipeline, $tables) = @_;
	return $self->_control('POST', "/_fake/pipelines/$pipeline", { tables => $tables });
}

sub rows
{
	my ($self, $pipeline, $table) = @_;
	return $self->_control('GET', "/_fake/pipelines/$pipeline/tables/$table")->{rows};
}

sub fault
{
	my ($self, $fault) = @_;
	return $self->_control('POST', '/_fake/faults', $fault);
}

sub pending_faults
{
	my ($self) = @_;
	return $self->_control('GET', '/_fake/faults');
}

sub completion
{
	my ($self, $mode) = @_;
	return $self->_control('POST', '/_fake/completion', { mode => $mode });
}

sub request_log
{
	my ($self, $since) = @_;
	return $self->_control('GET', '/_fake/log?since=' . ($since // 0));
}

sub last_seq
{
	my ($self) = @_;
	my $log = $self->request_log(0);
	return @$log ? $log->[-1]{seq} : 0;
}

sub violations
{
	my ($self) = @_;
	return $self->_control('GET', '/_fake/violations')->{violations};
}

sub restart_pipeline
{
	my ($self, $pipeline) = @_;
	return $self->_control('POST', "/_fake/pipelines/$pipeline/restart");
}

sub reset_state
{
	my ($self, $pipeline) = @_;
	return $self->_control('POST', '/_fake/reset_state',
		defined $pipeline ? { pipeline => $pipeline } : {});
}

=pod

=item $fake->ingress($pipeline, $since, %filter)

The log entries of ingress requests to $pipeline with seq > $since;
%filter keeps only entries whose fields have the given values.

=cut

sub ingress
{
	my ($self, $pipeline, $since, %filter) = @_;
	my @out;
  ENTRY:
	foreach my $e (@{ $self->request_log($since) })
	{
		next unless $e->{kind} eq 'ingress' && ($e->{pipeline} // '') eq $pipeline;
		foreach my $k (keys %filter)
		{
			next ENTRY unless defined $e->{$k} && $e->{$k} eq $filter{$k};
		}
		push @out, $e;
	}
	return @out;
}

=pod

=back

=head2 Tables

=over

=item pgs_feldera_spec($pg_name, key => [...], columns => [[name, pgtype, felderatype, kind, nullable], ...], feldera => $name)

A table spec (see DESCRIPTION).  The Feldera name defaults to
schema_table.

=cut

sub pgs_feldera_spec
{
	my ($pg, %params) = @_;
	my ($schema, $table) = split /\./, $pg, 2;
	my @cols = map {
		{
			name     => $_->[0],
			pg       => $_->[1],
			feldera  => $_->[2],
			kind     => $_->[3],
			nullable => $_->[4] // 1,
		}
	} @{ $params{columns} };
	return {
		pg      => $pg,
		feldera => $params{feldera} // "${schema}_$table",
		key     => $params{key},
		columns => \@cols,
	};
}

=pod

=item pgs_feldera_ddl($spec)

CREATE TABLE for the PostgreSQL side.

=cut

sub pgs_feldera_ddl
{
	my ($spec) = @_;
	my @defs = map { "$_->{name} $_->{pg}" } @{ $spec->{columns} };
	push @defs, 'PRIMARY KEY (' . join(', ', @{ $spec->{key} }) . ')';
	return "CREATE TABLE $spec->{pg} (" . join(', ', @defs) . ");\n";
}

=pod

=item pgs_feldera_decl($spec, %override)

The fake's declaration of the table: name (override with name =>, quoted
=> 1 for a quoted name), columns with their Feldera types, primary key.
Override a column with columns => { name => {type, nullable} }.

=cut

sub pgs_feldera_decl
{
	my ($spec, %override) = @_;
	my %colov = %{ $override{columns} // {} };
	my $decl = {
		name    => $override{name} // $spec->{feldera},
		columns => [
			map {
				my $c = $colov{ $_->{name} } // {};
				{
					name     => $_->{name},
					type     => $c->{type} // $_->{feldera},
					nullable => ($c->{nullable} // $_->{nullable})
					? JSON::PP::true
					: JSON::PP::false,
				}
			} @{ $spec->{columns} }
		],
		primary_key => $spec->{key},
	};
	$decl->{quoted} = JSON::PP::true if $override{quoted};
	return $decl;
}

# Fractional seconds as the fake stores them: none, or 6 digits
sub _frac6
{
	my ($text) = @_;
	$text =~ s/\.(\d+)$/my $f = substr($1 . '000000', 0, 6); $f =~ m{^0+$} ? '' : ".$f"/e;
	return $text;
}

sub _float
{
	my ($v) = @_;
	my $n = 0 + $v;
	return '0' if $n == 0;
	return sprintf('%.17g', $n);
}

sub _real
{
	my ($v) = @_;
	my $n = unpack('f', pack('f', 0 + $v));
	return '0' if $n == 0;
	return sprintf('%.9g', $n);
}

# The canonical text of one value; $side is 'pg' (the text form selected
# by pgs_feldera_pg_rows) or 'fake' (the fake's stored JSON value)
sub _canon
{
	my ($kind, $v, $side) = @_;
	return '<NULL>' unless defined $v;
	if ($kind eq 'bool')
	{
		return $v ? 'true' : 'false';
	}
	if ($kind eq 'float') { return _float($v); }
	if ($kind eq 'real')  { return _real($v); }
	if ($kind eq 'time' || $kind eq 'timestamp' || $kind eq 'timestamptz')
	{
		return $side eq 'pg' ? _frac6($v) : "$v";
	}
	if ($kind eq 'bytes')
	{
		return join(',', @$v) if $side eq 'fake';
		my $hex = $v;
		return join(',', map { hex } ($hex =~ /(..)/g));
	}
	if ($kind eq 'json')
	{
		return $canon_json->encode(_numbers($v));
	}
	return "$v";
}

# Numbers inside JSON values as canonical floats/integers, so that 1.50 and
# 1.5 compare equal (jsonb keeps the scale, the fake keeps the text)
sub _numbers
{
	my ($v) = @_;
	if (ref $v eq 'ARRAY') { return [ map { _numbers($_) } @$v ]; }
	if (ref $v eq 'HASH')
	{
		return { map { $_ => _numbers($v->{$_}) } keys %$v };
	}
	return $v if !defined $v || ref $v;
	# numbers decoded by JSON::PP have no string flag
	my $b = B::svref_2object(\$v);
	return $v if $b->FLAGS & B::SVf_POK();
	return 0 + $v;
}

use B ();

# SQL expression giving the value of a column in the form _canon('pg') takes
sub _pg_expr
{
	my ($col) = @_;
	my $n = $col->{name};
	my $k = $col->{kind};
	return $n if $k eq 'bool' || $k eq 'json';
	return "($n AT TIME ZONE 'UTC')::text" if $k eq 'timestamptz';
	return "encode($n, 'hex')" if $k eq 'bytes';
	return "$n\::text";
}

sub _key_text
{
	my ($spec, $row) = @_;
	return join("\x1f", map { $row->{$_} } @{ $spec->{key} });
}

=pod

=item pgs_feldera_pg_rows($node, $dbname, $spec)

The PostgreSQL table as a hash reference: key text => { column => canonical
text }.

=cut

sub pgs_feldera_pg_rows
{
	my ($node, $dbname, $spec) = @_;
	my $obj = join(', ',
		map { "'$_->{name}', " . _pg_expr($_) } @{ $spec->{columns} });
	my $out = $node->safe_psql($dbname,
		"SELECT coalesce(json_agg(json_build_object($obj)), '[]') FROM $spec->{pg}");
	my %rows;
	foreach my $r (@{ $json->decode($out) })
	{
		my %c = map { $_->{name} => _canon($_->{kind}, $r->{ $_->{name} }, 'pg') }
		  @{ $spec->{columns} };
		$rows{ _key_text($spec, \%c) } = \%c;
	}
	return \%rows;
}

=pod

=item pgs_feldera_fake_rows($fake, $pipeline, $spec, $table)

The fake's table ($table, default the spec's Feldera name) in the same form.
Columns the fake does not store are missing.

=cut

sub pgs_feldera_fake_rows
{
	my ($fake, $pipeline, $spec, $table) = @_;
	my %rows;
	foreach my $r (@{ $fake->rows($pipeline, $table // $spec->{feldera}) })
	{
		my %c = map { $_->{name} => _canon($_->{kind}, $r->{ $_->{name} }, 'fake') }
		  grep { exists $r->{ $_->{name} } } @{ $spec->{columns} };
		$rows{ _key_text($spec, \%c) } = \%c;
	}
	return \%rows;
}

=pod

=item pgs_feldera_diff($want, $got, $limit)

Differences between two tables in the form above, as a list of lines (at
most $limit, default 10, plus a count).

=cut

sub pgs_feldera_diff
{
	my ($want, $got, $limit) = @_;
	$limit //= 10;
	my @diff;
	foreach my $k (sort keys %$want)
	{
		if (!exists $got->{$k})
		{
			push @diff, "missing row " . _show($want->{$k});
			next;
		}
		foreach my $c (sort keys %{ $want->{$k} })
		{
			my $w = $want->{$k}{$c};
			my $g = $got->{$k}{$c} // '<absent>';
			push @diff, "row [$k] column $c: want $w, got $g" if $w ne $g;
		}
	}
	foreach my $k (sort keys %$got)
	{
		push @diff, "unexpected row " . _show($got->{$k}) unless exists $want->{$k};
	}
	my $n = scalar @diff;
	@diff = (@diff[ 0 .. $limit - 1 ], "... $n differences in all") if $n > $limit;
	return @diff;
}

sub _show
{
	my ($row) = @_;
	my $text = join(', ', map { "$_=$row->{$_}" } sort keys %$row);
	return length($text) > 300 ? substr($text, 0, 300) . '...' : $text;
}

=pod

=item pgs_feldera_wait_equal($node, $dbname, $fake, $pipeline, \@specs, %params)

Wait until every table of @specs has the same rows in PostgreSQL and in the
fake (table names: the specs' Feldera names, or tables => { pg name =>
Feldera name }).  Returns true if they became equal; otherwise reports the
differences.  timeout => seconds.

=cut

sub pgs_feldera_wait_equal
{
	my ($node, $dbname, $fake, $pipeline, $specs, %params) = @_;
	my %names = %{ $params{tables} // {} };
	my @diff;
	my $ok = pgs_wait_until(
		sub {
			@diff = ();
			foreach my $spec (@$specs)
			{
				my $want = pgs_feldera_pg_rows($node, $dbname, $spec);
				my $got = pgs_feldera_fake_rows($fake, $pipeline, $spec,
					$names{ $spec->{pg} });
				push @diff, map { "$spec->{pg}: $_" } pgs_feldera_diff($want, $got);
			}
			return !@diff;
		},
		"the Feldera tables of pipeline $pipeline to equal PostgreSQL's",
		$params{timeout});
	diag(join("\n", @diff)) unless $ok;
	return $ok;
}

=pod

=back

=cut

END
{
	foreach my $fake (values %running)
	{
		eval { $fake->{harness}->kill_kill; 1 };
	}
}

1;
