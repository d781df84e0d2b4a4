#!/usr/bin/env bash
#
# test/fuzz/make-corpus.sh
#      Regenerate the seed corpus test/fuzz/corpus from real pgoutput
#      output: runs workload.sql on a throwaway PostgreSQL 15 instance
#      (wal_level logical) and writes one file per decoded transaction, in
#      the harness's input format (each message preceded by its length as
#      a 2-byte big-endian number; see fuzz_proto.c).
#
#          test/fuzz/make-corpus.sh [output directory]
#
#      The default output directory is test/fuzz/corpus, whose files named
#      v*-* are replaced (other files, e.g. crash reproducers, are kept).
#      Runs as root (the instance then runs as "postgres") or as any user
#      who can run initdb.
#
#      Files:
#        v1-NNN-TYPES   slot fz_v1, proto_version 1 with messages (what the
#                       extension decodes): one transaction each, taken
#                       with pg_logical_slot_get_binary_changes(..., 1, ...)
#                       so every decoding session, and so every file, starts
#                       with its own Relation messages
#        v1bin-NNN-...  proto_version 1 with binary 'true': column values
#                       in binary, which the extension never asks for
#        v2stream-...   proto_version 2 with streaming: the first messages
#                       and the stream commit of a streamed transaction,
#                       which the extension (proto_version 1) never gets
#      TYPES lists the message types of the file (B, R, I, ...).

set -euo pipefail
exec </dev/null

FZ_SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/pgs-corpus.XXXXXX")
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

out=${1:-$FZ_ROOT/test/fuzz/corpus}

cleanup()
{
	local rc=$?

	trap - EXIT
	fz_stop
	rm -rf "$FZ_SCRATCH"
	exit "$rc"
}
trap cleanup EXIT

fz_instance_paths
chmod 755 "$FZ_SCRATCH"
fz_chown_scratch
fz_initdb <<CONF
wal_level = logical
max_replication_slots = 10
max_wal_senders = 10
CONF
fz_start ""
fz_create_types
fz_psql postgres -c "CREATE DATABASE corpus TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C.UTF-8'"
fz_psql corpus -f - <"$FZ_HERE/workload.sql" >/dev/null

mkdir -p "$out"
rm -f "$out"/v1-* "$out"/v1bin-* "$out"/v2stream-*

# Write the hex-encoded messages on stdin (one per line) as one framed
# file named $1-NNN-TYPES in $out, NNN from $2.
frame()
{
	perl -e '
		my ($out, $prefix, $n) = @ARGV;
		my ($data, %types, @order) = ("");
		while (my $hex = <STDIN>) {
			chomp $hex;
			next if $hex eq "";
			my $msg = pack("H*", $hex);
			die "message of " . length($msg) . " bytes is too long\n" if length($msg) > 65535;
			my $t = substr($msg, 0, 1);
			push @order, $t unless $types{$t}++;
			$data .= pack("n", length $msg) . $msg;
		}
		exit 0 if $data eq "";
		my $name = sprintf("%s/%s-%03d-%s", $out, $prefix, $n, join("", @order));
		open(my $fh, ">:raw", $name) or die "$name: $!\n";
		print $fh $data;
		close $fh;
	' "$out" "$1" "$2"
}

opts="'proto_version', '1', 'publication_names', 'p', 'messages', 'true'"
n=0
while :; do
	hex=$(fz_psql corpus -At -c "SELECT encode(data, 'hex') FROM pg_logical_slot_get_binary_changes('fz_v1', NULL, 1, $opts)")
	[[ -n $hex ]] || break
	n=$((n + 1))
	# the large transaction is there for the streaming file below
	if ((${#hex} > 2 * 16384)); then
		fz_log "skipped transaction $n: ${#hex} hex digits"
		continue
	fi
	frame v1 "$n" <<<"$hex"
done
fz_log "wrote $n proto_version 1 files"

# binary values: the first transactions, with the first rows of alltypes
fz_psql corpus -At -c "SELECT encode(data, 'hex') FROM pg_logical_slot_peek_binary_changes('fz_bin', NULL, NULL, $opts, 'binary', 'true') LIMIT 11" |
	frame v1bin 1

# streaming: the start of the streamed transaction and its stream commit
fz_psql corpus -At -c "
	SET logical_decoding_work_mem = '64kB';
	WITH m AS (
		SELECT ordinality AS i, data FROM pg_logical_slot_peek_binary_changes('fz_v2', NULL, NULL,
			'proto_version', '2', 'publication_names', 'p', 'messages', 'true', 'streaming', 'on')
			WITH ORDINALITY),
	s AS (SELECT min(i) AS first FROM m WHERE get_byte(data, 0) = ascii('S'))
	SELECT encode(data, 'hex') FROM m, s
	WHERE i BETWEEN first AND first + 12
	   OR (i > first AND get_byte(data, 0) = ascii('c'))
	ORDER BY i" | frame v2stream 1

fz_log "corpus in $out: $(find "$out" -maxdepth 1 -type f | wc -l) files, $(du -sk "$out" | cut -f1) kB"
