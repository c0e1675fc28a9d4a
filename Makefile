# sdnn: build, set-up, tests and benchmarks.
#   make run    installs missing Debian packages, builds, runs the default job
#   make test   installs missing Debian packages, builds, runs every test
#   make bench  runs the Google Benchmark microbenchmarks
#   make deps   installs what is missing (apt-get; sudo when not root); nothing when all is present
#   make clean  removes build outputs
# Variables: ARCH (default -march=native), SAN (e.g. SAN=address,undefined), NP (ranks for run).

PACKAGES := g++ make openmpi-bin libopenmpi-dev libboost-serialization-dev libgtest-dev libbenchmark-dev zlib1g-dev
CXX      := mpicxx
ARCH     ?= -march=native
OPT      ?= -O3
SAN      ?=
NPROC    := $(shell nproc 2>/dev/null || echo 2)
CXXFLAGS := -std=c++17 $(OPT) $(ARCH) -fopenmp -Wall -Wextra -Wpedantic -Wshadow -MMD -MP -Isrc -DOMPI_SKIP_MPICXX=1
LDFLAGS  := -fopenmp
ifneq ($(SAN),)
  CXXFLAGS += -fsanitize=$(SAN) -fno-omit-frame-pointer -g
  LDFLAGS  += -fsanitize=$(SAN)
  BUILD    := build/san
else
  BUILD    := build/release
endif
LIBS     := -lboost_serialization -lz

# mpirun refuses root unless told; CI runs as root.
MPIRUN   := mpirun --oversubscribe $(if $(filter 0,$(shell id -u)),--allow-run-as-root,)
NP       ?= 2

LIB_SRC   := $(wildcard src/spmm/*.cpp src/io/*.cpp src/hash/*.cpp src/partition/*.cpp src/comm/*.cpp)
MAIN_SRC  := $(wildcard src/main/*.cpp)
TEST_SRC  := $(wildcard tests/*.cpp)
MPI_TEST_SRC := $(wildcard tests/mpi/*.cpp)
BENCH_SRC := $(wildcard bench/*.cpp)
LIB_OBJ   := $(LIB_SRC:%.cpp=$(BUILD)/%.o)
MAIN_OBJ  := $(MAIN_SRC:%.cpp=$(BUILD)/%.o)
TEST_OBJ  := $(TEST_SRC:%.cpp=$(BUILD)/%.o)
MPI_TEST_OBJ := $(MPI_TEST_SRC:%.cpp=$(BUILD)/%.o)
BENCH_OBJ := $(BENCH_SRC:%.cpp=$(BUILD)/%.o)

.PHONY: all deps build run test bench clean
all: sdnn

sdnn: $(BUILD)/sdnn
	cp $< $@

$(BUILD)/sdnn: $(MAIN_OBJ) $(LIB_OBJ)
	$(CXX) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/sdnn_tests: $(TEST_OBJ) $(LIB_OBJ)
	$(CXX) $(LDFLAGS) -o $@ $^ $(LIBS) -lgtest -lgtest_main -pthread

# MPI tests: their own main (tests/mpi/main.cpp initialises MPI), run under mpirun with 1-4 ranks.
$(BUILD)/sdnn_mpi_tests: $(MPI_TEST_OBJ) $(LIB_OBJ)
	$(CXX) $(LDFLAGS) -o $@ $^ $(LIBS) -lgtest -pthread

$(BUILD)/sdnn_bench: $(BENCH_OBJ) $(LIB_OBJ)
	$(CXX) $(LDFLAGS) -o $@ $^ $(LIBS) -lbenchmark -lbenchmark_main -pthread

$(BUILD)/%.o: %.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -c -o $@ $<

-include $(LIB_OBJ:.o=.d) $(MAIN_OBJ:.o=.d) $(TEST_OBJ:.o=.d) $(MPI_TEST_OBJ:.o=.d) $(BENCH_OBJ:.o=.d)

deps:
	@missing=""; \
	for p in $(PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "make deps: installing$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

build: deps
	@$(MAKE) --no-print-directory -j$(NPROC) sdnn $(BUILD)/sdnn_tests $(BUILD)/sdnn_mpi_tests

run: deps
	@$(MAKE) --no-print-directory -j$(NPROC) sdnn
	$(MPIRUN) -np $(NP) ./sdnn

test: deps
	@$(MAKE) --no-print-directory -j$(NPROC) sdnn $(BUILD)/sdnn_tests $(BUILD)/sdnn_mpi_tests
	SDNN_TEST_BINARY=$(BUILD)/sdnn_tests SDNN_MPI_TEST_BINARY=$(BUILD)/sdnn_mpi_tests MPIRUN="$(MPIRUN)" bash tests/run_all.sh

bench: deps
	@$(MAKE) --no-print-directory -j$(NPROC) sdnn $(BUILD)/sdnn_bench
	$(BUILD)/sdnn_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true

clean:
	rm -rf build sdnn
