# fpgaserve top-level targets. `make test` and `make run` are the project's contract (README.md).
BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= $(shell nproc)
CTEST_JOBS ?= 2
SHARED_DIR ?= $(abspath ../shared)

.PHONY: all deps configure build test run bench clean format

all: build

deps:
	@scripts/install-deps.sh

$(BUILD_DIR)/CMakeCache.txt:
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)

configure: $(BUILD_DIR)/CMakeCache.txt

build: deps configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

test: build
	@scripts/install-s3rver.sh
	ctest --test-dir $(BUILD_DIR) -j $(CTEST_JOBS) --output-on-failure

run: build
	@scripts/run-demo.sh $(BUILD_DIR)/fpgaserve $(SHARED_DIR)/data/banknote_authentication.csv

bench: build
	bench/run.sh $(BUILD_DIR)

clean:
	rm -rf $(BUILD_DIR)

format:
	find src tests -name '*.cc' -o -name '*.h' | xargs clang-format -i
