
# Copyright (c) 2026, pgoutput_stream developers

=pod

=head1 NAME

PgsNatsUtil - nats-server instances and JetStream clients for the TAP tests
of the "nats" target

=head1 SYNOPSIS

  use FindBin;
  use lib "$FindBin::RealBin/../perl";
  use PgsNatsUtil;

  my $nats = PgsNatsUtil->new('n1');       # free loopback ports, own store
  $nats->start;                           # waits for /healthz
  ...
  my $dump = pgs_js_dump($nats->url, 'postgres_replication');
  is($dump->{count}, 42);
  $nats->stop;                            # SIGTERM, waitpid

=head1 DESCRIPTION

Every server runs from a generated configuration file on 127.0.0.1 with
JetStream enabled, its store in a directory of the test's temporary
directory, and its output appended to F<nats_NAME.log> in the TAP log
directory (kept after a failure).  Servers are started with fork/exec, so
their pid is known: C<stop> sends SIGTERM (or any signal) and waits for the
process.  A server stopped this way can be started again on the same ports
with the same store.  Servers still running when the test ends are killed.

JetStream is read with the Node.js scripts of F<test/nats> (npm "nats"):
F<js_dump.mjs> prints every message of a stream, F<js_admin.mjs> creates
streams and consumers and prints stream information.  The directory is found
relative to this module (F<../nats>), with its F<node_modules> installed by
C<npm ci> (test/run-tests.sh does that in its copy of the tree).

=cut

package PgsNatsUtil;

use strict;
use warnings;

use Carp;
use Exporter 'import';
use File::Basename qw(dirname);
use File::Spec;
use IO::Socket::INET;
use IPC::Run;
use JSON::PP;
use POSIX qw(WNOHANG);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);

use PgsTestUtil qw(pgs_new_node pgs_wait_until pgs_lsn_num);

our @EXPORT = qw(
  pgs_nats_node
  pgs_nats_cluster
  pgs_nats_wait_cluster
  pgs_http_get
  pgs_nats_dir
  pgs_node_run
  pgs_js_dump
  pgs_js_parse_dump
  pgs_js_admin
  pgs_js_stream_state
  pgs_js_wait_messages
  pgs_msg_payload
  pgs_msg_id_parts
  pgs_nats_tls_files
  pgs_subject_unescape
  pgs_wait_delivered
  pgs_js_problems
);

our $TIMEOUT = $PostgreSQL::Test::Utils::timeout_default;

my $json = JSON::PP->new->utf8->canonical->allow_bignum;

# Servers started and not stopped yet: pid => server
my %running;

# The directory of the Node.js clients
sub pgs_nats_dir
{
	return File::Spec->rel2abs(dirname(__FILE__) . '/../nats');
}

# A program on PATH, or in the sbin directories Debian puts servers in
sub _find_program
{
	my ($name, $env) = @_;
	return $ENV{$env} if $env && $ENV{$env};
	foreach my $dir (split(/:/, $ENV{PATH} // ''), '/usr/sbin', '/usr/bin', '/sbin',
		'/usr/local/bin', '/usr/local/sbin')
	{
		return "$dir/$name" if $dir ne '' && -x "$dir/$name";
	}
	croak "$name not found on PATH";
}

=pod

=head2 Servers

=over

=item PgsNatsUtil->new($name, %params)

A nats-server (not started).  Parameters:

  conf    => extra configuration text (authorization { ... }, tls { ... })
  cluster => text of a cluster { } block (see pgs_nats_cluster)
  port, monitor_port => ports (default: free ports)

=cut

sub new
{
	my ($class, $name, %params) = @_;
	my $base = PostgreSQL::Test::Utils::tempdir("nats_$name");
	my $self = {
		name => $name,
		port => $params{port} // PostgreSQL::Test::Cluster::get_free_port(),
		monitor_port => $params{monitor_port}
		  // PostgreSQL::Test::Cluster::get_free_port(),
		store   => "$base/js",
		conffile => "$base/nats.conf",
		logfile => "$PostgreSQL::Test::Utils::log_path/nats_$name.log",
		extra   => $params{conf} // '',
		cluster => $params{cluster} // '',
		scheme  => $params{scheme} // 'nats',
		pid     => undef,
	};
	bless $self, $class;
	$self->write_conf;
	return $self;
}

sub name         { return $_[0]->{name}; }
sub port         { return $_[0]->{port}; }
sub monitor_port { return $_[0]->{monitor_port}; }
sub store_dir    { return $_[0]->{store}; }
sub logfile      { return $_[0]->{logfile}; }
sub pid          { return $_[0]->{pid}; }
sub conffile     { return $_[0]->{conffile}; }

# nats://127.0.0.1:PORT (or with the scheme given to new)
sub url
{
	my ($self, $scheme) = @_;
	return ($scheme // $self->{scheme}) . "://127.0.0.1:$self->{port}";
}

=pod

=item $nats->set_conf($text)

Replace the extra configuration text (takes effect at the next start).

=cut

sub set_conf
{
	my ($self, $text) = @_;
	$self->{extra} = $text;
	$self->write_conf;
}

sub write_conf
{
	my ($self) = @_;
	my $conf = <<"EOF";
server_name: "$self->{name}"
listen: "127.0.0.1:$self->{port}"
http: "127.0.0.1:$self->{monitor_port}"
jetstream {
  store_dir: "$self->{store}"
  max_memory_store: 256MB
  max_file_store: 2GB
}
$self->{cluster}
$self->{extra}
EOF
	open my $fh, '>', $self->{conffile} or croak "could not write $self->{conffile}: $!";
	print $fh $conf;
	close $fh;
}

=pod

=item $nats->start(%params)

Start the server and wait until /healthz answers "ok" (with
wait => 'js-enabled' only until JetStream is enabled: for a cluster whose
other members are not up yet).  Returns the server.

=cut

sub start
{
	my ($self, %params) = @_;
	croak "nats server $self->{name} is already running" if $self->{pid};
	my $prog = _find_program('nats-server', 'PGS_NATS_SERVER');

	my $pid = fork();
	croak "fork failed: $!" unless defined $pid;
	if ($pid == 0)
	{
		open(STDIN, '<', '/dev/null');
		open(STDOUT, '>>', $self->{logfile}) or POSIX::_exit(127);
		open(STDERR, '>&', \*STDOUT) or POSIX::_exit(127);
		exec($prog, '-c', $self->{conffile}) or POSIX::_exit(127);
	}
	$self->{pid} = $pid;
	$running{$pid} = $self;
	note("nats server $self->{name} started, pid $pid, port $self->{port}, monitor $self->{monitor_port}");

	my $path = ($params{wait} // '') eq 'js-enabled'
	  ? '/healthz?js-enabled-only=true' : '/healthz';
	my $ok = pgs_wait_until(
		sub {
			croak "nats server $self->{name} exited at start (see $self->{logfile})"
			  if waitpid($pid, WNOHANG) == $pid;
			my ($status) = pgs_http_get($self->{monitor_port}, $path);
			return defined $status && $status == 200;
		},
		"nats server $self->{name} to be healthy");
	croak "nats server $self->{name} did not become healthy" unless $ok;
	return $self;
}

=pod

=item $nats->stop($signal)

Send $signal (default TERM) and wait for the process to end.  Returns the
seconds it took.

=cut

sub stop
{
	my ($self, $signal) = @_;
	my $pid = $self->{pid};
	return 0 unless $pid;
	my $start = time();
	kill($signal // 'TERM', $pid);
	my $deadline = time() + $TIMEOUT;
	while (waitpid($pid, WNOHANG) == 0)
	{
		if (time() > $deadline)
		{
			diag("nats server $self->{name} did not stop; killing it");
			kill('KILL', $pid);
			waitpid($pid, 0);
			last;
		}
		usleep(20_000);
	}
	delete $running{$pid};
	$self->{pid} = undef;
	my $took = time() - $start;
	note(sprintf("nats server %s stopped (%s) in %.2f s", $self->{name}, $signal // 'TERM', $took));
	return $took;
}

=pod

=item $nats->varz, $nats->jsz, $nats->connz

The decoded JSON of a monitoring endpoint (undef if it does not answer).

=cut

sub _monitor_json
{
	my ($self, $path) = @_;
	my ($status, $body) = pgs_http_get($self->{monitor_port}, $path);
	return undef unless defined $status && $status == 200;
	return eval { $json->decode($body) };
}

sub varz  { return $_[0]->_monitor_json('/varz'); }
sub jsz   { return $_[0]->_monitor_json($_[1] // '/jsz'); }
sub connz { return $_[0]->_monitor_json('/connz?auth=true'); }

=pod

=item $nats->client_names

The names of the clients connected to this server.

=cut

sub client_names
{
	my ($self) = @_;
	my $c = $self->connz or return ();
	return map { $_->{name} // '' } @{ $c->{connections} // [] };
}

=pod

=item $nats->log_contains($regex)

Whether the server's log matches.

=cut

sub log_contains
{
	my ($self, $re) = @_;
	return slurp_file($self->{logfile}) =~ $re;
}

END
{
	# servers of a test that died
	foreach my $pid (keys %running)
	{
		kill('KILL', $pid);
		waitpid($pid, 0);
	}
}

=pod

=item pgs_nats_node($name, $nats, %params)

A node of pgs_new_node (PgsTestUtil) whose nats target publishes to the
server $nats, with an ack timeout of 2 s and retries at most 1 s apart;
$params{conf} is appended to these settings, other parameters are passed
on.

=cut

sub pgs_nats_node
{
	my ($name, $nats, %params) = @_;
	my $conf = "pgoutput_stream.nats_url = '@{[ $nats->url ]}'\n"
	  . "pgoutput_stream.nats_ack_timeout = '2s'\n"
	  . "pgoutput_stream.nats_max_retry_delay = '1s'\n"
	  . ($params{conf} // '');
	return pgs_new_node($name, %params, conf => $conf);
}

=pod

=item pgs_nats_cluster($n, %params)

$n servers (not started) forming one cluster "c" on loopback, each with
its own name (c1, c2, ...), ports and store.  %params as for new (conf is
given to every server).  Start them with start(wait => 'js-enabled'), then
wait with pgs_nats_wait_cluster.

=cut

sub pgs_nats_cluster
{
	my ($n, %params) = @_;
	my @cports = map { PostgreSQL::Test::Cluster::get_free_port() } 1 .. $n;
	my @servers;
	for my $i (0 .. $n - 1)
	{
		my $routes = join(', ',
			map { "\"nats-route://127.0.0.1:$cports[$_]\"" } grep { $_ != $i } 0 .. $n - 1);
		my $prefix = $params{prefix} // 'c';
		push @servers,
		  PgsNatsUtil->new(
			"$prefix" . ($i + 1),
			conf    => $params{conf},
			cluster => "cluster {\n  name: \"$prefix\"\n  listen: \"127.0.0.1:$cports[$i]\"\n  routes: [ $routes ]\n}\n");
	}
	return @servers;
}

=pod

=item pgs_nats_wait_cluster(@servers)

Wait until every server of the cluster sees a JetStream meta leader and
the whole cluster as peers.  Returns true if it did.

=cut

sub pgs_nats_wait_cluster
{
	my (@servers) = @_;
	my $n = scalar(@servers);
	return pgs_wait_until(
		sub {
			foreach my $s (grep { $_->pid } @servers)
			{
				my $jsz = $s->jsz or return 0;
				my $meta = $jsz->{meta_cluster} or return 0;
				return 0 unless $meta->{leader};
				return 0 unless ($meta->{cluster_size} // 0) >= $n;
				my ($status) = pgs_http_get($s->monitor_port, '/healthz');
				return 0 unless defined $status && $status == 200;
			}
			return 1;
		},
		'the JetStream meta leader of the nats cluster');
}

=pod

=back

=head2 Clients

=over

=item pgs_http_get($port, $path)

GET http://127.0.0.1:$port$path with HTTP/1.0: (status, body), or () if
the server does not answer within 5 seconds.

=cut

sub pgs_http_get
{
	my ($port, $path) = @_;
	my $sock = IO::Socket::INET->new(
		PeerAddr => '127.0.0.1',
		PeerPort => $port,
		Proto    => 'tcp',
		Timeout  => 5) or return ();
	my $response = '';
	my $ok = eval {
		local $SIG{ALRM} = sub { die "timeout\n" };
		alarm(5);
		print $sock "GET $path HTTP/1.0\r\nHost: 127.0.0.1:$port\r\nConnection: close\r\n\r\n";
		while (1)
		{
			my $n = sysread($sock, my $buf, 65536);
			last if !defined $n || $n == 0;
			$response .= $buf;
		}
		alarm(0);
		1;
	};
	alarm(0);
	close $sock;
	return () unless $ok;
	my ($head, $body) = split /\r\n\r\n/, $response, 2;
	return () unless defined $head && $head =~ m{^HTTP/\d\.\d (\d+)};
	return ($1, $body // '');
}

=pod

=item pgs_node_run($script, \@args, %params)

Run node on test/nats/$script with @args: (exit code, stdout, stderr).
Dies if it takes longer than timeout (default: the TAP timeout).

=cut

sub pgs_node_run
{
	my ($script, $args, %params) = @_;
	my $node = _find_program('node', 'PGS_NODE');
	my $dir = pgs_nats_dir();
	my ($out, $err) = ('', '');
	my @cmd = ($node, "$dir/$script", @$args);
	my $h = IPC::Run::start(\@cmd, '<', \undef, '>', \$out, '2>', \$err,
		IPC::Run::timeout($params{timeout} // $TIMEOUT));
	eval { $h->finish; };
	if ($@)
	{
		$h->kill_kill;
		croak "node $script timed out: $@\nstderr: $err";
	}
	return ($h->result(0), $out, $err);
}

# The client options of js_dump.mjs / js_admin.mjs: %auth with user,
# password, token, tls_ca
sub _auth_args
{
	my (%auth) = @_;
	my @args;
	push @args, '--user', $auth{user}, $auth{password} if defined $auth{user};
	push @args, '--token', $auth{token} if defined $auth{token};
	push @args, '--tls-ca', $auth{tls_ca} if defined $auth{tls_ca};
	return @args;
}

=pod

=item pgs_js_dump($url, $stream, %auth)

Every message of the JetStream stream, read with js_dump.mjs.  Returns a
hash reference:

  msgs     => [ { seq, subject, id, headers => {..}, data_raw }, ... ]
  count    => number of messages read
  last_seq => last sequence of the stream when it was read

Lines are parsed with a regular expression (JSON::PP is too slow for tens
of thousands of messages): data_raw is the still JSON-escaped payload; use
pgs_msg_payload for the payload text or its decoded JSON.  %auth: user and
password, token, tls_ca.

Lines of 60,000 characters or more (large payloads) are parsed by a scanner
instead: the regular expression repeats a group once per character, and Perl
gives up on a group repeated more than 65,534 times ("Complex regular
subexpression recursion limit"), which made such lines unparsable.

js_dump.mjs pulls 100 messages at a time.  If they add up to more than the
64 MB nats-server lets a client have pending (for example 100 messages of
about 1 MB), the server drops messages of the "slow consumer" and the read
stalls until it times out.  Read such streams in bounded pulls and parse
the lines with pgs_js_parse_dump (see t/014_large_transactions.pl).

=cut

my $str_re = qr/"((?:[^"\\]|\\.)*)"/s;

# Lines shorter than this cannot repeat the group of $str_re more than the
# 65,534 times Perl allows
my $regex_max_line = 60_000;

sub pgs_js_dump
{
	my ($url, $stream, %auth) = @_;
	my ($rc, $out, $err);

	# JetStream may not answer for a moment, e.g. while a cluster elects
	# a new leader (and an ordered consumer created meanwhile may stall):
	# try again for a while
	my $deadline = time() + $TIMEOUT;
	while (1)
	{
		($rc, $out, $err) = eval {
			pgs_node_run('js_dump.mjs', [ $url, $stream, _auth_args(%auth) ], timeout => 30);
		};
		($rc, $err) = (-1, $@) if $@;
		last if $rc == 0 || time() > $deadline;
		note("js_dump.mjs $url $stream failed ($rc), trying again: "
			  . (split /\n/, $err)[0]);
		usleep(500_000);
	}
	croak "js_dump.mjs $url $stream failed ($rc): $err" if $rc != 0;
	return pgs_js_parse_dump($out, $err);
}

=pod

=item pgs_js_parse_dump($out, $err)

Parse the output $out of js_dump.mjs (or of a reader that prints the same
lines) into the hash reference pgs_js_dump returns; $err (its standard
error, if any) is shown when the summary line is missing.

=cut

sub pgs_js_parse_dump
{
	my ($out, $err) = @_;
	my @msgs;
	my $summary;
	foreach my $line (split /\n/, $out)
	{
		if (length($line) >= $regex_max_line && $line =~ /^\{"seq":/)
		{
			push @msgs, _parse_long_dump_line($line);
		}
		elsif ($line =~ /^\{"seq":(\d+),"subject":$str_re,"id":(?:null|$str_re),"headers":\{(.*)\},"data":$str_re\}\z/s)
		{
			my %m = (seq => $1, subject => _unjson($2), id => (defined $3 ? _unjson($3) : undef),
				data_raw => $5);
			my $h = $4;
			my %headers;
			while ($h =~ /\G$str_re:$str_re,?/gc)
			{
				$headers{ _unjson($1) } = _unjson($2);
			}
			croak "could not parse the headers of: $line" if (pos($h) // 0) != length($h);
			$m{headers} = \%headers;
			push @msgs, \%m;
		}
		elsif ($line =~ /^\{"count"/)
		{
			$summary = $json->decode($line);
		}
		else
		{
			croak "unexpected output of js_dump.mjs: $line";
		}
	}
	croak "js_dump.mjs printed no summary: " . substr($out, -500) . ' ' . ($err // '')
	  unless $summary;
	return { msgs => \@msgs, count => $summary->{count}, last_seq => $summary->{last_seq} };
}

# The end of the JSON string body that starts at offset $start of $$text
# (just after its opening quote): the offset of its closing quote, or -1.
# A quote closes the string if an even number of backslashes precede it.
sub _json_string_end
{
	my ($text, $start) = @_;
	my $q = $start;
	while (1)
	{
		$q = index($$text, '"', $q);
		return -1 if $q < 0;
		my $bs = 0;
		$bs++ while $q - $bs - 1 >= $start && substr($$text, $q - $bs - 1, 1) eq '\\';
		return $q unless $bs % 2;
		$q++;
	}
}

# A line of js_dump.mjs too long for the regular expression of pgs_js_dump,
# parsed piece by piece into the same hash
sub _parse_long_dump_line
{
	my ($line) = @_;
	my $p = 0;
	my $bad = sub {
		croak "unexpected output of js_dump.mjs at offset $p ($_[0]): "
		  . substr($line, 0, 200) . '...';
	};
	my $lit = sub {
		my ($t) = @_;
		$bad->("expected '$t'") unless substr($line, $p, length($t)) eq $t;
		$p += length($t);
	};
	my $str = sub {
		$lit->('"');
		my $end = _json_string_end(\$line, $p);
		$bad->('unterminated string') if $end < 0;
		my $body = substr($line, $p, $end - $p);
		$p = $end + 1;
		return $body;
	};

	my %m;
	$lit->('{"seq":');
	$bad->('sequence') unless substr($line, $p, 24) =~ /^(\d+)/;
	$m{seq} = $1;
	$p += length($1);
	$lit->(',"subject":');
	$m{subject} = _unjson($str->());
	$lit->(',"id":');
	if (substr($line, $p, 4) eq 'null')
	{
		$p += 4;
		$m{id} = undef;
	}
	else
	{
		$m{id} = _unjson($str->());
	}
	$lit->(',"headers":{');
	my %headers;
	while (substr($line, $p, 1) ne '}')
	{
		my $k = _unjson($str->());
		$lit->(':');
		$headers{$k} = _unjson($str->());
		$p++ if substr($line, $p, 1) eq ',';
	}
	$lit->('},"data":');
	$m{data_raw} = $str->();
	$lit->('}');
	$bad->('trailing text') if $p != length($line);
	$m{headers} = \%headers;
	return \%m;
}

my %json_escape = ('"' => '"', '\\' => '\\', '/' => '/', b => "\b", f => "\f",
	n => "\n", r => "\r", t => "\t");

# The value of a JSON string body (without its quotes); fast path for
# strings without escapes.  Long strings (large payloads) are unescaped
# with a substitution: JSON::PP takes about 0.2 s per MB.  Surrogate
# escapes and malformed input are left to JSON::PP.
sub _unjson
{
	my ($s) = @_;
	return $s unless $s =~ /\\/;
	if (length($s) > 4096 && $s !~ /\\u[dD][89a-fA-F]/)
	{
		my $chars = $s;
		if (utf8::decode($chars))
		{
			my $ok = 1;
			$chars =~ s{\\(?:u([0-9a-fA-F]{4})|(["\\/bfnrt])|(.|\z))}
				{ defined $1 ? chr(hex($1)) : defined $2 ? $json_escape{$2} : do { $ok = 0; '' } }gse;
			return $chars if $ok;
		}
	}
	return JSON::PP->new->utf8->allow_nonref->decode(qq{"$s"});
}

=pod

=item pgs_msg_payload($msg)

The payload of a message of pgs_js_dump as text (Perl characters).  In list
context, also its decoded JSON (undef if it is not JSON).

=cut

sub pgs_msg_payload
{
	my ($msg) = @_;
	$msg->{data} //= _unjson($msg->{data_raw});
	return $msg->{data} unless wantarray;
	$msg->{json} //= eval { JSON::PP->new->allow_bignum->decode($msg->{data}) };
	return ($msg->{data}, $msg->{json});
}

=pod

=item pgs_msg_id_parts($id)

The parts of an event's Nats-Msg-Id
"<slot>:t<timeline>[s<snapshot attempt>]:<commit lsn>:<position>[:r<relid>]"
(see src/event_id.c): (slot, commit LSN text, position, relid or undef,
timeline, snapshot attempt or 0); () if it does not have that form.

=cut

sub pgs_msg_id_parts
{
	my ($id) = @_;
	return ()
	  unless defined $id
	  && $id =~ m{^([a-z0-9_]+):t(\d+)(?:s(\d+))?:([0-9A-F]+/[0-9A-F]+):(\d+)(?::r(\d+))?\z};
	return ($1, $4, $5, $6, $2, $3 // 0);
}

=pod

=item pgs_js_problems($msgs, $slot, %params)

Check messages of pgs_js_dump written by one stream (slot $slot) as its
only writer, and return a list of problems (empty if none):

  - every message has a Nats-Msg-Id
    "<slot>:t<tli>[s<attempt>]:<commit lsn>:<position>[:r<relid>]" whose
    commit LSN is its Pg-Commit-Lsn header, and no id occurs twice;
  - commit order: (commit LSN, snapshot rows before changes, snapshot
    attempt, position, relation events first) grows strictly from message
    to message (relation events of one position, before a TRUNCATE of
    several tables, may follow each other);
  - every message but the first is chained to its predecessor
    (Nats-Expected-Last-Msg-Id);
  - transactions are whole: a Begin at position 0, then positions without
    gaps (with the parameter filtered true, which a stream with filters
    needs: positions count the changes before the stream's filters, so
    growing positions), ending with the Commit; other commit LSNs hold one
    message (a non-transactional logical message);
  - heartbeats ("<slot>:t<tli>:<lsn>:hb<time>") are chained like the rest, and
    otherwise not checked, unless the parameter heartbeats is true: then a
    message whose Pg-Operation header is "heartbeat" is one too (and may
    not be the first message chained to something), and each is checked
    further: its subject ends in ".heartbeat", its id is
    "<slot>:t<tli>:<lsn>:hb<time>" with the LSN of its Pg-Lsn header, its payload
    is {"Heartbeat":{"confirmed_lsn": that LSN, "time": ...}}, and
    heartbeat LSNs do not go backwards (true without crash restarts).

=cut

# Whether message $m is chained to the one before it: by that message's id
# (Nats-Expected-Last-Msg-Id), or, for the first message a worker publishes
# after connecting, by its stream sequence (Nats-Expected-Last-Sequence).
sub _chained
{
	my ($m, $prev_id, $prev_seq) = @_;
	my $by_id  = $m->{headers}{'Nats-Expected-Last-Msg-Id'};
	my $by_seq = $m->{headers}{'Nats-Expected-Last-Sequence'};
	return 1 if defined $by_id && $by_id eq $prev_id;
	return 1 if !defined $by_id && defined $by_seq && defined $prev_seq && $by_seq == $prev_seq;
	return 0;
}

sub pgs_js_problems
{
	my ($msgs, $slot, %params) = @_;
	my (@problems, %seen, @prev_key, %groups);
	my ($prev_id, $prev_hb, $prev_seq);
	foreach my $m (@$msgs)
	{
		my $id = $m->{id} // '';

		# a heartbeat (stream option heartbeat_interval): chained, outside
		# transactions
		if ($id =~ m{^\Q$slot\E:t\d+:[0-9A-F]+/[0-9A-F]+:hb\d+\z}
			|| ($params{heartbeats} && ($m->{headers}{'Pg-Operation'} // '') eq 'heartbeat'))
		{
			push @problems, "message $m->{seq}: Nats-Msg-Id $id seen before" if $seen{$id}++;
			my $expected = $m->{headers}{'Nats-Expected-Last-Msg-Id'};
			push @problems, "message $m->{seq}: heartbeat chained to "
			  . ($expected // '(nothing)') . ", not " . ($prev_id // '(nothing)')
			  if defined $prev_id && !_chained($m, $prev_id, $prev_seq);
			push @problems, "message $m->{seq}: the first message is chained to $expected"
			  if $params{heartbeats} && !defined $prev_id && defined $expected;
			push @problems, _heartbeat_problems($m, $slot, \$prev_hb) if $params{heartbeats};
			$prev_id  = $id;
			$prev_seq = $m->{seq};
			next;
		}
		my ($s, $lsn, $pos, $relid, $tli, $attempt) = pgs_msg_id_parts($id);
		if (!defined $s || $s ne $slot)
		{
			push @problems, "message $m->{seq}: bad Nats-Msg-Id '$id'";
			next;
		}
		push @problems, "message $m->{seq}: Nats-Msg-Id $id seen before (message $seen{$id})"
		  if $seen{$id};
		$seen{$id} //= $m->{seq};
		my $hdr_lsn = $m->{headers}{'Pg-Commit-Lsn'} // '';
		push @problems, "message $m->{seq}: id $id but Pg-Commit-Lsn $hdr_lsn"
		  if $hdr_lsn ne $lsn;

		# Relation events take the position of the change they describe;
		# a TRUNCATE of several tables is one change after several of them
		my @key = (pgs_lsn_num($lsn), $attempt ? 0 : 1, $attempt, $pos, defined $relid ? 0 : 1);
		if (@prev_key)
		{
			my $cmp = 0;
			$cmp ||= $key[$_] <=> $prev_key[$_] for 0 .. $#key;
			$cmp = 1 if $cmp == 0 && defined $relid;
			push @problems, "message $m->{seq}: $id is not after $prev_id" if $cmp <= 0;
		}
		@prev_key = @key;

		my $expected = $m->{headers}{'Nats-Expected-Last-Msg-Id'};
		if (defined $prev_id)
		{
			push @problems,
			  "message $m->{seq}: chained to " . ($expected // '(nothing)') . ", not $prev_id"
			  if !_chained($m, $prev_id, $prev_seq);
		}
		elsif (defined $expected)
		{
			push @problems, "message $m->{seq}: the first message is chained to $expected";
		}
		$prev_id  = $id;
		$prev_seq = $m->{seq};

		next if defined $relid;
		push @{ $groups{"$lsn#$attempt"} }, [ $pos, $m->{headers}{'Pg-Operation'} // '' ];
	}
	foreach my $lsn (sort keys %groups)
	{
		my @g = @{ $groups{$lsn} };
		if ($g[0][1] ne 'begin')
		{
			push @problems, "commit LSN $lsn: " . scalar(@g) . " messages without a Begin"
			  unless @g == 1 && $g[0][1] eq 'message';
			next;
		}
		for my $i (0 .. $#g)
		{
			# positions count changes before the filters: gaps where they
			# left changes out
			my $ok = $params{filtered} ? ($i == 0 ? $g[$i][0] == 0 : $g[$i][0] > $g[$i - 1][0])
			  : $g[$i][0] == $i;
			if (!$ok)
			{
				push @problems, "commit LSN $lsn: position $g[$i][0] where $i was expected";
				last;
			}
		}
		push @problems, "commit LSN $lsn: ends with $g[-1][1], not commit"
		  if $g[-1][1] ne 'commit';
	}
	return @problems;
}

# The problems of heartbeat message $m of slot $slot (see pgs_js_problems);
# $$prev_hb is the LSN of the heartbeat before it, updated
sub _heartbeat_problems
{
	my ($m, $slot, $prev_hb) = @_;
	my $seq = $m->{seq};
	my $id = $m->{id} // '';
	my $lsn = $m->{headers}{'Pg-Lsn'} // '';
	my @problems;
	push @problems, "message $seq: heartbeat on subject $m->{subject}"
	  unless $m->{subject} =~ /\.heartbeat\z/;
	push @problems, "message $seq: heartbeat id $id"
	  unless $id =~ m{^\Q$slot\E:t\d+:\Q$lsn\E:hb\d+\z} && $lsn =~ m{^[0-9A-F]+/[0-9A-F]+\z};
	my $payload = eval { JSON::PP->new->decode(scalar pgs_msg_payload($m)) };
	if (!$payload || ref($payload->{Heartbeat}) ne 'HASH')
	{
		push @problems, "message $seq: heartbeat payload is not {\"Heartbeat\":{...}}";
	}
	else
	{
		my $hb = $payload->{Heartbeat};
		push @problems, "message $seq: heartbeat confirmed_lsn "
		  . ($hb->{confirmed_lsn} // 'missing') . " but Pg-Lsn $lsn"
		  if ($hb->{confirmed_lsn} // '') ne $lsn;
		push @problems, "message $seq: heartbeat time " . ($hb->{time} // 'missing')
		  unless ($hb->{time} // '') =~ /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z$/;
	}
	if ($lsn =~ m{/})
	{
		push @problems, "message $seq: heartbeat LSN $lsn is before $$prev_hb"
		  if defined $$prev_hb && pgs_lsn_num($lsn) < pgs_lsn_num($$prev_hb);
		$$prev_hb = $lsn;
	}
	return @problems;
}

=pod

=item pgs_js_admin($url, \%auth, @command)

Run js_admin.mjs with @command (see the script): its output decoded as
JSON, or undef and the error text if it failed.

=cut

sub pgs_js_admin
{
	my ($url, $auth, @command) = @_;
	my ($rc, $out, $err) = pgs_node_run('js_admin.mjs', [ $url, _auth_args(%{ $auth // {} }), '--', @command ]);
	return (undef, $err) if $rc != 0;
	return ($json->decode($out), '');
}

=pod

=item pgs_js_stream_state($nats, $stream)

The state of a JetStream stream ({ messages, first_seq, last_seq, ... })
from the monitoring endpoint /jsz of the server $nats, or undef if the
server does not know the stream (yet).

=cut

sub pgs_js_stream_state
{
	my ($nats, $stream) = @_;
	my $jsz = $nats->jsz('/jsz?accounts=true&streams=true') or return undef;
	foreach my $acc (@{ $jsz->{account_details} // [] })
	{
		foreach my $sd (@{ $acc->{stream_detail} // [] })
		{
			return $sd->{state} if $sd->{name} eq $stream;
		}
	}
	return undef;
}

=pod

=item pgs_js_wait_messages($nats, $stream, $n, $timeout)

Wait until the JetStream stream holds at least $n messages (monitoring
endpoint).  Returns true if it did.

=cut

sub pgs_js_wait_messages
{
	my ($nats, $stream, $n, $timeout) = @_;
	my $last = 0;
	my $ok = pgs_wait_until(
		sub {
			my $st = pgs_js_stream_state($nats, $stream) or return 0;
			$last = $st->{messages};
			return $last >= $n;
		},
		"$n messages in JetStream stream $stream",
		$timeout);
	diag("JetStream stream $stream holds $last messages") unless $ok;
	return $ok;
}

=pod

=item pgs_subject_unescape($token)

The name a subject token stands for (percent-decoding, "%00" is the empty
name), as a Perl character string.

=cut

sub pgs_subject_unescape
{
	my ($token) = @_;
	return '' if $token eq '%00';
	(my $bytes = $token) =~ s/%([0-9A-F]{2})/chr(hex($1))/ge;
	utf8::decode($bytes);
	return $bytes;
}

=pod

=item pgs_nats_tls_files($dir)

A CA and a server certificate signed by it for 127.0.0.1 and localhost,
made with openssl in $dir: a hash reference with ca, cert, key (and
other_ca: a second, unrelated CA).

=cut

sub pgs_nats_tls_files
{
	my ($dir) = @_;
	my $openssl = _find_program('openssl', 'PGS_OPENSSL');
	my %f = (
		ca => "$dir/ca.pem", ca_key => "$dir/ca.key",
		cert => "$dir/server.pem", key => "$dir/server.key",
		other_ca => "$dir/other_ca.pem", other_ca_key => "$dir/other_ca.key");
	open my $fh, '>', "$dir/san.ext" or croak $!;
	print $fh "subjectAltName = IP:127.0.0.1, DNS:localhost\n"
	  . "basicConstraints = CA:FALSE\n"
	  . "keyUsage = digitalSignature, keyEncipherment\n"
	  . "extendedKeyUsage = serverAuth\n";
	close $fh;
	my @steps = (
		[ $openssl, 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2',
		  '-subj', '/CN=pgoutput_stream test CA', '-keyout', $f{ca_key}, '-out', $f{ca} ],
		[ $openssl, 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2',
		  '-subj', '/CN=unrelated CA', '-keyout', $f{other_ca_key}, '-out', $f{other_ca} ],
		[ $openssl, 'req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1',
		  '-keyout', $f{key}, '-out', "$dir/server.csr" ],
		[ $openssl, 'x509', '-req', '-in', "$dir/server.csr", '-CA', $f{ca},
		  '-CAkey', $f{ca_key}, '-CAcreateserial', '-days', '2',
		  '-extfile', "$dir/san.ext", '-out', $f{cert} ]);
	foreach my $cmd (@steps)
	{
		my ($out, $err) = ('', '');
		IPC::Run::run($cmd, '<', \undef, '>', \$out, '2>', \$err)
		  or croak "@$cmd failed: $err";
	}
	chmod 0644, values %f;
	return \%f;
}

=pod

=item pgs_wait_delivered($node, $dbname, $stream, $timeout)

Wait until $stream confirmed its slot up to the current WAL write position
of $node: with the nats target, everything committed so far is then
acknowledged by JetStream.  Returns true if it was.

=cut

sub pgs_wait_delivered
{
	my ($node, $dbname, $stream, $timeout) = @_;
	my $lsn;

	# (errors are retried: the server may be in a crash restart)
	return pgs_wait_until(
		sub {
			my ($out, $err) = ('', '');
			$node->psql($dbname, 'SELECT pg_current_wal_lsn()', stdout => \$out, stderr => \$err)
			  unless defined $lsn;
			$lsn //= $out if $out =~ m{^[0-9A-F]+/[0-9A-F]+\z};
			return 0 unless defined $lsn;
			$out = '';
			$node->psql($dbname,
				"SELECT confirmed_lsn >= '$lsn' FROM pgoutput_stream.stream_status WHERE name = '$stream'",
				stdout => \$out, stderr => \$err);
			return $out eq 't';
		},
		"stream $stream confirmed up to the WAL position of the call",
		$timeout);
}

=pod

=back

=cut

1;
