# Thin wrappers around CMake/CTest. `make test` and `make demo` first install
# the Debian packages and the test-only npm packages the project needs.
BUILD ?= build
ASAN_BUILD ?= build-asan
JOBS ?= 2
# ctest's -j: twice the build's (4 on two cores; most of a test's time is spent waiting on
# servers and browsers, not computing). Tests wait for what they check rather than racing
# the clock, and the suites pass at 4 beside two busy loops; TEST_JOBS=$(JOBS) is the slower,
# gentler choice on a machine loaded harder than that. A test that keeps a core busy takes
# two slots (PROCESSORS in tests/CMakeLists.txt).
TEST_JOBS ?= $(shell echo $$(( $(JOBS) * 2 )))
CMAKE_FLAGS ?=

.PHONY: all deps build test test-pg test-asan test-asan-pg asan-build demo bench clean

all: build

deps:
	@scripts/install-deps.sh
	@cd tests && npm install --no-audit --no-fund --loglevel=error >/dev/null

build:
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

# Everything that runs on SQLite; the PostgreSQL-only tests (label pg) are test-pg's.
test: deps build
	@cd $(BUILD) && ctest --output-on-failure -j$(TEST_JOBS) -LE pg $(CTEST_ARGS)

# The integration suite again on PostgreSQL, plus the PostgreSQL-only tests (label pg:
# several nodes, database restarts, concurrent migrations): a throwaway cluster unless
# REFOLD_TEST_PG_URL names one.
PG_DIR ?= /tmp/refold-pg-test
PG_PORT ?= 55433
PG_LABELS = '^(integration|pg)$$'
SANITIZERS = ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
test-pg: deps build
	@scripts/pg-cluster.sh run $(PG_DIR) $(PG_PORT) \
		ctest --test-dir $(BUILD) --output-on-failure -j$(TEST_JOBS) -L $(PG_LABELS) $(CTEST_ARGS)

# The SQLite suite under AddressSanitizer + UndefinedBehaviorSanitizer.
asan-build: deps
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DREFOLD_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j$(JOBS)

test-asan: asan-build
	@cd $(ASAN_BUILD) && $(SANITIZERS) ctest --output-on-failure -j$(TEST_JOBS) -LE pg $(CTEST_ARGS)

# test-pg's suite under the sanitizers (the PostgreSQL driver, LISTEN/NOTIFY, outages).
test-asan-pg: asan-build
	@scripts/pg-cluster.sh run $(PG_DIR) $(PG_PORT) env $(SANITIZERS) \
		ctest --test-dir $(ASAN_BUILD) --output-on-failure -j$(TEST_JOBS) -L $(PG_LABELS) $(CTEST_ARGS)

demo: deps build
	@$(BUILD)/refold demo

bench: deps build
	@bench/run.sh $(BENCH_ARGS)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
