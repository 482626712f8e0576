# cachette — build, run, test.
#
#   make            build build/cachette (release: -O2 -g)
#   make run        install missing packages, build, start on the defaults
#   make test       install missing packages, then every test: unit and
#                   integration (release), the same under ASan+UBSan, and the
#                   concurrency stress tests under TSan
#   make asan|tsan  build and run one sanitizer suite
#   make bench      HTTP benchmark against nginx (bench/http/run.sh)
#   make bench-store  the store alone: sharded rwlocks against one rwlock and
#                   one mutex, 1-8 threads (bench/store/run.sh)
#   make bench-peers  side-by-side benchmark against Gin, Webdis+Redis, nginx,
#                   Redis and memcached (bench/peers/run.sh)
#   make fuzz       every libFuzzer target for FUZZ_SECONDS (60) each (fuzz/)
#   make format     clang-format every C file
#
# A variant is one build directory: B=build (release), build/asan, build/tsan.
# TSan builds pass -Wno-tsan: GCC warns that TSan ignores atomic_thread_fence.
# The store's fences (src/store/ebr.c, table.c) order loads against stores for
# reclamation and rehash checks, never to make data visible to another thread,
# so TSan's model loses nothing by ignoring them.

B ?= build
SAN_FLAGS ?=
CC ?= gcc

CFLAGS_BASE := -std=gnu11 -Wall -Wextra -Werror -O2 -g -pthread -DH2O_USE_LIBUV=0 -Iinclude -Isrc
CFLAGS := $(CFLAGS_BASE) $(SAN_FLAGS) $(EXTRA_CFLAGS)
LDFLAGS := -pthread $(SAN_FLAGS)
SERVER_LIBS := -lh2o-evloop -lssl -lcrypto -ljansson -lz
TEST_LIBS := -lcmocka -lcurl

STORE_SRC := $(wildcard src/store/*.c)
CORE_SRC := $(wildcard src/cmd/*.c src/config.c src/log.c)
HTTP_SRC := $(wildcard src/http/*.c)
SUPPORT_SRC := $(wildcard tests/support/*.c)

obj = $(patsubst %.c,$(B)/obj/%.o,$(1))

STORE_LIB := $(B)/libcachette.a
SERVER := $(B)/cachette
UNIT_TESTS := $(patsubst tests/unit/%.c,$(B)/tests/%,$(wildcard tests/unit/*.c))
STRESS_TESTS := $(patsubst tests/stress/%.c,$(B)/tests/%,$(wildcard tests/stress/*.c))
INTEGRATION_TESTS := $(patsubst tests/integration/%.c,$(B)/tests/%,$(wildcard tests/integration/*.c))

.SECONDARY:

.PHONY: all deps run test asan tsan check-variant bench bench-store bench-peers fuzz format clean

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

$(B)/tests/%: $(B)/obj/tests/unit/%.o $(call obj,$(CORE_SRC) $(HTTP_SRC)) $(STORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(SERVER_LIBS) $(TEST_LIBS)

$(B)/tests/%: $(B)/obj/tests/stress/%.o $(STORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(TEST_LIBS)

$(B)/tests/%: $(B)/obj/tests/integration/%.o $(call obj,$(SUPPORT_SRC))
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(TEST_LIBS) -ljansson

run: deps $(SERVER)
	./$(SERVER)

# Each suite prints its own results, then tests/run.sh prints the totals.
test: deps
	@rm -f build/results.txt
	$(MAKE) --no-print-directory check-variant B=build SUITES="unit integration stress"
	$(MAKE) --no-print-directory check-variant B=build/asan SUITES="unit integration" \
		SAN_FLAGS="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
	$(MAKE) --no-print-directory check-variant B=build/tsan SUITES="unit stress" \
		SAN_FLAGS="-fsanitize=thread -fno-omit-frame-pointer -Wno-tsan"
	@tests/run.sh --total build/results.txt

asan:
	@rm -f build/results.txt
	$(MAKE) --no-print-directory check-variant B=build/asan SUITES="unit integration" \
		SAN_FLAGS="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
	@tests/run.sh --total build/results.txt

tsan:
	@rm -f build/results.txt
	$(MAKE) --no-print-directory check-variant B=build/tsan SUITES="unit stress" \
		SAN_FLAGS="-fsanitize=thread -fno-omit-frame-pointer -Wno-tsan"
	@tests/run.sh --total build/results.txt

check-variant: $(SERVER) $(UNIT_TESTS) $(STRESS_TESTS) $(INTEGRATION_TESTS)
	@CACHETTE_BIN=$(SERVER) tests/run.sh --variant $(B) --results build/results.txt \
		$(if $(findstring unit,$(SUITES)),$(UNIT_TESTS)) \
		$(if $(findstring integration,$(SUITES)),$(INTEGRATION_TESTS)) \
		$(if $(findstring stress,$(SUITES)),$(STRESS_TESTS))

bench: $(SERVER)
	@scripts/deps.sh bench
	bench/http/run.sh

bench-store:
	bench/store/run.sh

bench-peers: $(SERVER)
	@scripts/deps.sh peers
	bench/peers/run.sh

fuzz:
	@scripts/deps.sh fuzz
	fuzz/run.sh $${FUZZ_SECONDS:-60}

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build

-include $(shell find $(B)/obj -name '*.d' 2>/dev/null)
