# pgoutput_stream: stream row changes from inside PostgreSQL (PGXS build)

MODULE_big = pgoutput_stream
OBJS = \
	src/pgoutput_stream.o \
	src/guc.o \
	src/shmem.o \
	src/launcher.o \
	src/worker.o \
	src/decoder.o \
	src/proto.o \
	src/event_id.o \
	src/snapshot.o \
	src/filter.o \
	src/format.o \
	src/value_text.o \
	src/format_json.o \
	src/format_debezium.o \
	src/format_feldera.o \
	src/subject.o \
	src/sink_log.o \
	src/stream_config.o \
	src/secrets.o \
	src/sql_api.o \
	src/peek.o \
	src/wakeup.o \
	src/ddl_guard.o \
	src/nats_sink.o \
	src/feldera_sink.o
SHLIB_LINK = -lnats -lcurl
PGFILEDESC = "pgoutput_stream - stream row changes to NATS JetStream and Feldera"

EXTENSION = pgoutput_stream
DATA := $(wildcard sql/pgoutput_stream--*.sql)
DOCS := $(wildcard docs/*.md)

# PostgreSQL's own headers are system headers: -Wextra findings in them are not ours
PG_CPPFLAGS = -I$(srcdir)/src -isystem $(includedir_server)
PG_CFLAGS = -Wall -Wextra

# Regression tests (pg_regress) run on a private, preloaded instance
REGRESS = create_extension api errors format_json format_types format_text format_debezium filters hostile trust_boundary peek pgtap_privileges
REGRESS_OPTS = --temp-config=$(srcdir)/test/regress.conf --temp-instance=tmp_check_regress \
	--inputdir=$(srcdir) --outputdir=$(CURDIR)/results_dir
NO_INSTALLCHECK =

# Worker life cycle tests (Perl TAP, PostgreSQL::Test::Cluster)
TAP_TESTS = 1
PROVE_TESTS = test/t/*.pl

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

EXTRA_CLEAN = results_dir tmp_check_regress

# PGXS does not track header dependencies: rebuild everything when a
# header of the extension changes
$(OBJS): $(wildcard $(srcdir)/src/*.h)
