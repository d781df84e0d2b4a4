
# Copyright (c) 2026, pgoutput_stream developers

# The pgoutput reader and the formatters under libFuzzer (test/fuzz):
# test/fuzz/run.sh builds the harness with AddressSanitizer, starts a
# throwaway instance of its own and
#
#  - by default runs every file of the seed corpus (real pgoutput output)
#    once in a UTF8, a SQL_ASCII and a LATIN1 database: no crash, and the
#    corpus produced events in each;
#  - with PGS_TEST_LONG=1 fuzzes for PGS_FUZZ_SECONDS (default 600) and then
#    merges what it found into a work directory: no crash.
#
# Skipped when clang or libFuzzer's runtime is not installed.

use strict;
use warnings;

use FindBin;
use Test::More;

my $root = "$FindBin::RealBin/../..";
my $run = "$root/test/fuzz/run.sh";

my ($clang) = grep {
	my $c = $_;
	grep { -x "$_/$c" } split /:/, $ENV{PATH}
} qw(clang clang-14);
plan skip_all => 'clang is not installed (Debian package clang-14)'
  unless defined $clang;

my $resource_dir = `$clang -print-resource-dir 2>/dev/null`;
chomp $resource_dir;
my $fuzzer_rt = "$resource_dir/lib/linux/libclang_rt.fuzzer_no_main-x86_64.a";
plan skip_all =>
  "libFuzzer's runtime $fuzzer_rt is not installed (Debian package libclang-rt-14-dev)"
  unless -f $fuzzer_rt;

my $long = ($ENV{PGS_TEST_LONG} // '') eq '1';
my $fuzz_seconds = $ENV{PGS_FUZZ_SECONDS} // 600;
my $timeout = $long ? $fuzz_seconds + 900 : 300;

# run.sh starts its own instance: no PostgreSQL::Test::Cluster here.  Its
# scratch directory goes with the test's (CI=true: not kept).
local $ENV{CI} = 'true';
local $ENV{PGS_TEST_LONG} = $long ? '1' : '0';
note $long
  ? "fuzzing for $fuzz_seconds s (PGS_TEST_LONG=1)"
  : 'running the seed corpus (PGS_TEST_LONG=1 fuzzes)';
my $output = `timeout --kill-after=30 $timeout "$run" 2>&1`;
my $rc = $? >> 8;
note $output;

is($rc, 0, 'test/fuzz/run.sh reports no crash') or diag $output;
unlike($output, qr/CRASH INPUT/, 'no crash input was written');
if ($long)
{
	like(
		$output,
		qr/^\[[0-9:]+\] fuzz-0-fuzz_utf8: pgoutput_stream_fuzz: inputs=[1-9][0-9]* /m,
		'the fuzzer ran inputs');
	like($output, qr/MERGE-OUTER: \d+ new files/, 'the new inputs were merged');
}
else
{
	for my $db (qw(fuzz_utf8 fuzz_sql_ascii fuzz_latin1))
	{
		like(
			$output,
			qr/^\[[0-9:]+\] $db: pgoutput_stream_fuzz: inputs=\d+ .* events=[1-9]/m,
			"the corpus ran in database $db and produced events");
	}
}

done_testing();
