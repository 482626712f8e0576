# cachette — build, run, test.
#
#   make            build build/cachette (release: -O2 -g -flto)
#   make run        install missing packages, build, start on the defaults
#   make cluster    N (3) nodes behind PROXY=haproxy|nginx|nutcracker on
#                   127.0.0.1:PROXY_PORT (8080), from deploy/'s configurations
#                   (scripts/cluster.sh; nutcracker: the nodes' Redis ports)
#   make test       install missing packages, then every test: unit,
#                   integration, cluster (HAProxy, nginx and twemproxy in
#                   front of real nodes), linearizability and a 60 s soak (release), the OpenAPI
#                   check on the responses those integration suites got, the integration
#                   suites with the server under valgrind (and the store's
#                   tests under memcheck), unit and
#                   integration under ASan+UBSan, and unit, integration (the
#                   server built with TSan) and the stress tests under TSan
#   make soak       the soak test alone for SOAK_SECONDS (1800): 64 connections
#                   of mixed load with evictions and expiry; zero errors, RSS
#                   and open fds flat (tests/soak/soak.c)
#   make linearizability  histories of concurrent clients checked for
#                   linearizability for LIN_SECONDS (300), every fault and every
#                   deliberate bug of tests/lin/bugs.txt (docs/RELIABILITY.md);
#                   make test runs short ones (tests/lin/test_linearizable.c)
#   make persist-kill-long  the crash-consistency test with PERSIST_KILLS (200)
#                   SIGKILLs under load with --append-log always: no
#                   acknowledged write lost (tests/integration/test_persist_kill.c)
#   make asan|tsan  build and run one sanitizer suite
#   make valgrind   the integration suites with the release server under
#                   valgrind memcheck (tests/valgrind/cachette): a memcheck
#                   error or a definite leak fails the test that stopped it;
#                   then the store's unit and stress tests under memcheck
#   make bench      HTTP benchmark against nginx (bench/http/run.sh)
#   make bench-instructions  instructions per request under callgrind
#                   (BASE_REV=<commit> beside that commit's build)
#   make bench-store  the store alone: sharded rwlocks against one rwlock and
#                   one mutex, 1-8 threads (bench/store/run.sh)
#   make bench-peers  side-by-side benchmark against Gin, Webdis+Redis, nginx,
#                   Redis and memcached (bench/peers/run.sh), then the Redis
#                   protocol beside Redis and Pogocache (bench/peers/resp.sh)
#   make bench-persist  persistence beside Redis 7 (bench/persist/run.sh):
#                   snapshot and load of 1M entries, req/s while snapshots
#                   run, SET req/s under each --append-log setting
#   make bench-cluster  the balancer's cost (bench/cluster/run.sh): CPU µs per
#                   request on the node and on HAProxy or nginx in front of it,
#                   against the node reached directly
#   make fuzz       every libFuzzer target for FUZZ_SECONDS (60) each (fuzz/)
#   make mutants    plant each plausible bug in tests/mutants.txt in a temporary
#                   worktree of HEAD and run the release unit, integration and
#                   stress suites against it; fails if any bug survives
#                   (scripts/mutants.sh; minutes, so not part of make test)
#   make clang      build with clang (no LTO) and run the unit, integration and
#                   stress suites: a second compiler's warnings (CI runs it)
#   make format     clang-format every C file
#   make deb        the Debian package (debian/, dpkg-buildpackage) in
#                   build/deb/, checked by lintian (scripts/deb.sh)
#   make deb-install-check  installs that package on this machine, checks the
#                   service's user, directories, unit and server, and purges
#                   it (scripts/deb-install-check.sh: for throwaway machines, CI)
#   make check-openapi  the release integration suites alone, recording every
#                   response, each then validated against docs/openapi.yaml,
#                   and the document linted (scripts/check-openapi.sh)
#   make check-deploy  the Prometheus rules (promtool check and test) and the
#                   Grafana dashboard of deploy/, against a running server's
#                   /metrics (scripts/check-deploy.sh; CI runs it)
#   make install    the server, its manual page, its systemd unit and
#                   settings file (SYSCONFDIR/default/cachette, kept if it
#                   exists), the store library (libcachette.a), its headers
#                   and cachette.pc under PREFIX (/usr/local), DESTDIR first
#                   when given (a staging root); make uninstall removes them
#                   but the settings file
#
# A variant is one build directory: B=build (release), build/asan, build/tsan.
# TSan builds pass -Wno-tsan (TSAN_NO_WARN, GCC only: clang has no such
# warning, nor the flag): GCC warns that TSan ignores atomic_thread_fence.
# The store's fences (src/store/ebr.c, table.c) order loads against stores for
# reclamation and rehash checks, never to make data visible to another thread,
# so TSan's model loses nothing by ignoring them.

B ?= build
SAN_FLAGS ?=
# Make's built-in default (cc) gives way to gcc; CC=clang on the command line still wins.
ifeq ($(origin CC),default)
CC := gcc
endif

# Link-time optimisation inlines the store's small accessors (entry.c, table.c)
# into the get path across modules: 5-7% on bench/store, which builds the same way.
# Fat objects keep machine code beside the LTO bytecode, so build/libcachette.a
# still links into programs built without LTO, or with clang. Clang has no fat
# objects (its LTO objects are bitcode only), so `make CC=clang` builds without LTO.
IS_CLANG := $(findstring clang,$(shell $(CC) --version 2>/dev/null))
LTO := $(if $(IS_CLANG),,-flto -ffat-lto-objects)
# How a program without LTO links (with GCC, not even the plugin that reads LTO bytecode).
NO_LTO := -fno-lto $(if $(IS_CLANG),,-fno-use-linker-plugin)
TSAN_NO_WARN := $(if $(IS_CLANG),,-Wno-tsan)
CFLAGS_BASE := -std=gnu11 -Wall -Wextra -Werror -O2 -g -pthread -DH2O_USE_LIBUV=0 -Iinclude -Isrc $(LTO)
CFLAGS := $(CFLAGS_BASE) $(SAN_FLAGS) $(EXTRA_CFLAGS)
# LTO compiles again at link time: the same optimisation and warnings apply there.
LDFLAGS := -pthread -O2 -Wall -Wextra -Werror $(LTO) $(SAN_FLAGS) $(EXTRA_LDFLAGS)
SERVER_LIBS := -lh2o-evloop -lssl -lcrypto -ljansson -lz -lsystemd
TEST_LIBS := -lcmocka -lcurl

STORE_SRC := $(wildcard src/store/*.c)
CORE_SRC := $(wildcard src/cmd/*.c src/net/*.c src/persist/*.c src/resp/*.c src/config.c src/log.c src/stats.c src/sweeper.c)
HTTP_SRC := $(wildcard src/http/*.c)
SUPPORT_SRC := $(wildcard tests/support/*.c)

obj = $(patsubst %.c,$(B)/obj/%.o,$(1))

STORE_LIB := $(B)/libcachette.a
SERVER := $(B)/cachette
UNIT_TESTS := $(patsubst tests/unit/%.c,$(B)/tests/%,$(wildcard tests/unit/*.c))
STRESS_TESTS := $(patsubst tests/stress/%.c,$(B)/tests/%,$(wildcard tests/stress/*.c))
INTEGRATION_TESTS := $(patsubst tests/integration/%.c,$(B)/tests/%,$(wildcard tests/integration/*.c))
SOAK_TESTS := $(patsubst tests/soak/%.c,$(B)/tests/%,$(wildcard tests/soak/*.c))
CLUSTER_TESTS := $(patsubst tests/cluster/%.c,$(B)/tests/%,$(wildcard tests/cluster/*.c))
INSTALL_TESTS := $(patsubst tests/install/%.c,$(B)/tests/%,$(wildcard tests/install/*.c))
EMBED_TEST := $(B)/tests/test_embed
# The linearizability check (tests/lin/): the checker needs only libc; the recorder and its
# scenarios talk to a live server through tests/support.
LIN_SRC := tests/lin/history.c tests/lin/lincheck.c
LIN_RUN_SRC := tests/lin/recorder.c tests/lin/scenario.c
UNIT_TESTS += $(B)/tests/test_lincheck
LIN_TESTS := $(B)/tests/test_linearizable

.SECONDARY:

.PHONY: install uninstall check-deploy deb deb-install-check
.PHONY: all deps run cluster test check-openapi asan tsan valgrind soak check-variant check-valgrind bench bench-instructions bench-store bench-peers bench-persist bench-cluster fuzz mutants clang format clean

all: $(SERVER)

deps:
	@scripts/deps.sh

$(B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(STORE_LIB): $(call obj,$(STORE_SRC))
	ar rcs $@ $^

$(SERVER): $(call obj,src/main.c $(CORE_SRC) $(HTTP_SRC)) $(STORE_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(SERVER_LIBS)

$(B)/tests/%: $(B)/obj/tests/unit/%.o $(call obj,$(CORE_SRC) $(HTTP_SRC) tests/support/procfs.c) $(STORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(SERVER_LIBS) $(TEST_LIBS)

# Built the way an embedding program would link the library: no LTO, no plugin.
$(EMBED_TEST): tests/embed/test_embed.c $(STORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -Wall -Wextra -Werror -O2 -g -Iinclude $(SAN_FLAGS) $(NO_LTO) \
		-o $@ $^ -pthread -lcmocka

$(B)/tests/test_lincheck: $(call obj,tests/lin/test_lincheck.c $(LIN_SRC))
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -lcmocka

$(B)/tests/lincheck: $(call obj,tests/lin/lincheck_main.c $(LIN_SRC))
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^

$(B)/tests/test_linearizable $(B)/tests/linearizability: $(B)/tests/%: $(call obj,tests/lin/%.c $(LIN_SRC) $(LIN_RUN_SRC) $(SUPPORT_SRC))
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(TEST_LIBS) -ljansson

$(B)/tests/%: $(B)/obj/tests/stress/%.o $(STORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(TEST_LIBS)

$(B)/tests/%: $(B)/obj/tests/integration/%.o $(call obj,$(SUPPORT_SRC))
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(TEST_LIBS) -ljansson

$(B)/tests/%: $(B)/obj/tests/cluster/%.o $(call obj,$(SUPPORT_SRC))
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(TEST_LIBS) -ljansson

$(B)/tests/%: $(B)/obj/tests/soak/%.o $(call obj,$(SUPPORT_SRC))
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(TEST_LIBS) -ljansson

$(B)/tests/%: $(B)/obj/tests/install/%.o $(call obj,$(SUPPORT_SRC))
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(TEST_LIBS) -ljansson

run: deps $(SERVER)
	./$(SERVER)

# N nodes behind PROXY (haproxy, nginx or nutcracker) on 127.0.0.1:PROXY_PORT, the nodes on the ports after it.
N ?= 3
PROXY ?= haproxy
PROXY_PORT ?= 8080
cluster: deps $(SERVER)
	N='$(N)' PROXY='$(PROXY)' PROXY_PORT='$(PROXY_PORT)' CACHETTE_BIN=$(SERVER) scripts/cluster.sh run

# Each suite prints its own results, then tests/run.sh prints the totals.
test: deps
	@rm -f build/results.txt
	@rm -f build/responses.jsonl
	$(MAKE) --no-print-directory check-variant B=build SUITES="unit integration stress cluster install lin soak" \
		RESPONSE_LOG=build/responses.jsonl
	-@scripts/check-openapi.sh build/responses.jsonl build/results.txt
	$(MAKE) --no-print-directory check-valgrind
	$(MAKE) --no-print-directory check-variant B=build/asan SUITES="unit integration" \
		SAN_FLAGS="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
	$(MAKE) --no-print-directory check-variant B=build/tsan SUITES="unit integration stress" \
		SAN_FLAGS="-fsanitize=thread -fno-omit-frame-pointer $(TSAN_NO_WARN)"
	@tests/run.sh --total build/results.txt

asan:
	@rm -f build/results.txt
	$(MAKE) --no-print-directory check-variant B=build/asan SUITES="unit integration" \
		SAN_FLAGS="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
	@tests/run.sh --total build/results.txt

tsan:
	@rm -f build/results.txt
	$(MAKE) --no-print-directory check-variant B=build/tsan SUITES="unit integration stress" \
		SAN_FLAGS="-fsanitize=thread -fno-omit-frame-pointer $(TSAN_NO_WARN)"
	@tests/run.sh --total build/results.txt

valgrind: deps
	@rm -f build/results.txt
	$(MAKE) --no-print-directory check-valgrind
	@tests/run.sh --total build/results.txt

check-variant: $(SERVER) $(UNIT_TESTS) $(EMBED_TEST) $(STRESS_TESTS) $(INTEGRATION_TESTS) $(if $(findstring soak,$(SUITES)),$(SOAK_TESTS)) \
		$(if $(findstring cluster,$(SUITES)),$(CLUSTER_TESTS)) $(if $(findstring install,$(SUITES)),$(INSTALL_TESTS)) \
		$(if $(findstring lin,$(SUITES)),$(LIN_TESTS) $(B)/tests/lincheck)
	@CACHETTE_BIN=$(SERVER) SOAK_SECONDS=60 CACHETTE_TEST_RESPONSE_LOG=$(RESPONSE_LOG) \
		tests/run.sh --variant $(B) --results build/results.txt \
		$(if $(findstring unit,$(SUITES)),$(UNIT_TESTS) $(EMBED_TEST)) \
		$(if $(findstring integration,$(SUITES)),$(INTEGRATION_TESTS)) \
		$(if $(findstring stress,$(SUITES)),$(STRESS_TESTS)) \
		$(if $(findstring cluster,$(SUITES)),$(CLUSTER_TESTS)) \
		$(if $(findstring install,$(SUITES)),$(INSTALL_TESTS)) \
		$(if $(findstring lin,$(SUITES)),$(LIN_TESTS)) \
		$(if $(findstring soak,$(SUITES)),$(SOAK_TESTS))

# The store's own tests run under memcheck too: entries live in the store's
# slabs, which tell memcheck what is free through its client requests.
MEMCHECK_TESTS := $(addprefix $(B)/tests/,test_slab test_ebr test_store test_store_race)
check-valgrind: $(SERVER) $(INTEGRATION_TESTS) $(MEMCHECK_TESTS)
	@CACHETTE_BIN=tests/valgrind/cachette VALGRIND_SERVER=$(SERVER) tests/run.sh --variant valgrind \
		--results build/results.txt $(INTEGRATION_TESTS)
	@tests/run.sh --variant memcheck --results build/results.txt $(MEMCHECK_TESTS)

# Run directly rather than through tests/run.sh, so each 5 s row shows as it
# is taken. The LSan suppressions matter only for an ASan build (B=build/asan
# SAN_FLAGS=...), where RSS is printed but not checked.
soak: $(SERVER) $(SOAK_TESTS)
	CACHETTE_BIN=$(SERVER) SOAK_SECONDS=$${SOAK_SECONDS:-1800} \
		LSAN_OPTIONS=suppressions=tests/lsan.supp:print_suppressions=0 $(SOAK_TESTS)

# The linearizability check at length: LIN_SECONDS (300) of histories of LIN_HISTORY_SECONDS (10),
# every scenario and every deliberate bug of tests/lin/bugs.txt (tests/lin/linearizability.c).
.PHONY: linearizability
linearizability: deps $(SERVER) $(B)/tests/linearizability $(B)/tests/lincheck
	CACHETTE_BIN=$(SERVER) LIN_SECONDS=$${LIN_SECONDS:-300} $(B)/tests/linearizability

# test_persist_kill at length: 200 SIGKILLs with --append-log always (make test runs 20).
.PHONY: persist-kill-long
persist-kill-long: $(SERVER) $(B)/tests/test_persist_kill
	CACHETTE_BIN=$(SERVER) PERSIST_KILLS=$${PERSIST_KILLS:-200} $(B)/tests/test_persist_kill

bench: $(SERVER)
	@scripts/deps.sh bench
	bench/http/run.sh

bench-instructions: $(SERVER)
	@scripts/deps.sh bench
	bench/http/instructions.sh

bench-store:
	bench/store/run.sh

bench-peers: $(SERVER)
	@scripts/deps.sh peers
	bench/peers/run.sh

bench-persist: $(SERVER)
	@scripts/deps.sh peers
	bench/persist/run.sh

bench-cluster: $(SERVER)
	@scripts/deps.sh bench
	bench/cluster/run.sh

deb:
	@scripts/deps.sh deb
	scripts/deb.sh

deb-install-check: deb
	scripts/deb-install-check.sh

# docs/openapi.yaml against every response the release build's integration suites receive, and linted.
check-openapi: deps $(SERVER) $(INTEGRATION_TESTS)
	@rm -f build/results.txt build/responses.jsonl
	@CACHETTE_BIN=$(SERVER) CACHETTE_TEST_RESPONSE_LOG=build/responses.jsonl tests/run.sh --variant $(B) \
		--results build/results.txt $(INTEGRATION_TESTS)
	@scripts/check-openapi.sh build/responses.jsonl build/results.txt
	@tests/run.sh --total build/results.txt

check-deploy: $(SERVER)
	@scripts/deps.sh deploy
	CACHETTE_BIN=$(SERVER) scripts/check-deploy.sh

fuzz:
	@scripts/deps.sh fuzz
	fuzz/run.sh $${FUZZ_SECONDS:-60}

# MUTANTS="3 sieve-and-for-or" runs only those; MUTANTS_FILTER=regex those whose id or file matches.
mutants: deps
	scripts/mutants.sh $(MUTANTS)

clang:
	@scripts/deps.sh fuzz
	@rm -f build/results.txt
	$(MAKE) --no-print-directory check-variant CC=clang B=build/clang SUITES="unit integration stress"
	@tests/run.sh --total build/results.txt

# Where make install puts things; DESTDIR (a staging root) goes before each.
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
MANDIR ?= $(PREFIX)/share/man
UNITDIR ?= $(PREFIX)/lib/systemd/system
SYSCONFDIR ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
VERSION := $(shell sed -n 's/^\#define CACHETTE_VERSION "\(.*\)"/\1/p' src/config.c)
MANPAGE := $(B)/cachette.1
ENVFILE := $(B)/cachette.default

# The manual page's and the settings file's flags come from the binary's --help (scripts/help-table.sh).
$(MANPAGE): $(SERVER) docs/cachette.1.in scripts/manpage.sh scripts/help-table.sh
	scripts/manpage.sh $(SERVER) docs/cachette.1.in > $@.tmp && mv $@.tmp $@

$(ENVFILE): $(SERVER) scripts/envfile.sh scripts/help-table.sh
	scripts/envfile.sh $(SERVER) > $@.tmp && mv $@.tmp $@

install: $(SERVER) $(STORE_LIB) $(MANPAGE) $(ENVFILE)
	install -d '$(DESTDIR)$(BINDIR)' '$(DESTDIR)$(LIBDIR)' '$(DESTDIR)$(INCLUDEDIR)/cachette' '$(DESTDIR)$(PKGCONFIGDIR)' \
		'$(DESTDIR)$(MANDIR)/man1' '$(DESTDIR)$(UNITDIR)' '$(DESTDIR)$(SYSCONFDIR)/default'
	install -m 755 $(SERVER) '$(DESTDIR)$(BINDIR)/cachette'
	install -m 644 $(MANPAGE) '$(DESTDIR)$(MANDIR)/man1/cachette.1'
	sed -e 's|@BINDIR@|$(BINDIR)|' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|' deploy/systemd/cachette.service.in \
		> '$(DESTDIR)$(UNITDIR)/cachette.service'
	chmod 644 '$(DESTDIR)$(UNITDIR)/cachette.service'
	[ -e '$(DESTDIR)$(SYSCONFDIR)/default/cachette' ] || install -m 600 $(ENVFILE) '$(DESTDIR)$(SYSCONFDIR)/default/cachette'
	install -m 644 $(STORE_LIB) '$(DESTDIR)$(LIBDIR)/libcachette.a'
	install -m 644 include/cachette/*.h '$(DESTDIR)$(INCLUDEDIR)/cachette/'
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' \
		-e 's|@VERSION@|$(VERSION)|' deploy/pkgconfig/cachette.pc.in > '$(DESTDIR)$(PKGCONFIGDIR)/cachette.pc'
	chmod 644 '$(DESTDIR)$(PKGCONFIGDIR)/cachette.pc'

uninstall:
	rm -f '$(DESTDIR)$(BINDIR)/cachette' '$(DESTDIR)$(LIBDIR)/libcachette.a' '$(DESTDIR)$(PKGCONFIGDIR)/cachette.pc' \
		'$(DESTDIR)$(MANDIR)/man1/cachette.1' '$(DESTDIR)$(UNITDIR)/cachette.service'
	rm -f $(addprefix '$(DESTDIR)$(INCLUDEDIR)/cachette/',$(notdir $(wildcard include/cachette/*.h)))
	rmdir '$(DESTDIR)$(INCLUDEDIR)/cachette' 2>/dev/null || true

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build

-include $(shell find $(B)/obj -name '*.d' 2>/dev/null)
