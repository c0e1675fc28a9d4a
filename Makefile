# sdnn: build, set-up, tests and benchmarks.
#   make run    installs missing Debian packages, builds, runs the default job
#   make test   installs missing Debian packages, builds, runs every test
#   make bench  runs the Google Benchmark microbenchmarks (then bench-mpi's)
#   make bench-mpi  runs the MPI microbenchmarks (bench/mpi/bench_mpi.cpp) under mpirun -np 2
#   make bench-build  builds every benchmark, runs none (CI)
#   make deps   installs what is missing (apt-get; sudo when not root); nothing when all is present
#   make peer-deps, make plot-deps  what bench/peers/build.sh and the scaling scripts need (GraphBLAS, gnuplot)
#   make clean  removes build outputs
#   make fuzz   libFuzzer runs of the TSV and archive readers (clang; packages by make fuzz-deps)
#   make test-arm  the kernel tests cross-built for AArch64 and run under qemu-user (packages by make arm-deps)
# Variables: ARCH (default empty: a baseline build whose SIMD kernels pick the CPU's best target
#   at run time, docs/simd.md; ARCH=-march=native builds for this CPU only), SAN (e.g.
#   SAN=address,undefined; built at -O1 unless OPT says otherwise), NP (ranks for run),
#   SDNN_QUICK=1 (make test: a smaller matrix of program runs, for slow sanitizer builds),
#   SDNN_REQUIRE_DATA=1 (make test: a skip for want of data, or any skip, fails; CI sets it),
#   FUZZ_SECONDS (make fuzz: seconds per target, default 60),
#   MPI=mpich (build and test against MPICH in build/mpich; docs/mpi.md).

PACKAGES := g++ make openmpi-bin libopenmpi-dev libboost-serialization-dev libgtest-dev libbenchmark-dev zlib1g-dev libarchive-dev libhwy-dev
CXX      := mpicxx
ARCH     ?=
OPT      ?= $(if $(SAN),-O1,-O3)
SAN      ?=
NPROC    := $(shell nproc 2>/dev/null || echo 2)
CXXFLAGS := -std=c++17 $(OPT) $(ARCH) -fopenmp -Wall -Wextra -Wpedantic -Wshadow -MMD -MP -Isrc -DOMPI_SKIP_MPICXX=1
LDFLAGS  := -fopenmp
ifneq ($(SAN),)
  # A report ends the program (UBSan would print and go on), so that a test fails on it.
  CXXFLAGS += -fsanitize=$(SAN) -fno-sanitize-recover=all -fno-omit-frame-pointer -g
  LDFLAGS  += -fsanitize=$(SAN)
  BUILD    := build/san
else
  BUILD    := build/release
endif
LIBS     := -lboost_serialization -lz -larchive -lhwy

# mpirun refuses root unless told; CI runs as root.
MPIRUN   := mpirun --oversubscribe $(if $(filter 0,$(shell id -u)),--allow-run-as-root,)
NP       ?= 2

# MPI=mpich: every target (sdnn, the test binaries, the benchmarks) built with MPICH's wrapper
# (mpicxx.mpich) into its own folder, build/mpich (build/mpich-san with SAN), and run under
# mpirun.mpich; make deps MPI=mpich installs MPICH's packages beside Open MPI, which stays the
# default mpicxx/mpirun (Debian's alternatives rank it first). ./sdnn is the last build asked for,
# as with SAN. MPI=openmpi (the default) changes nothing. See docs/mpi.md.
MPI ?= openmpi
ifeq ($(MPI),mpich)
  PACKAGES += mpich libmpich-dev
  CXX      := mpicxx.mpich
  CXXFLAGS += -DMPICH_SKIP_MPICXX=1
  BUILD    := build/mpich$(if $(SAN),-san,)
  MPIRUN   := mpirun.mpich
else ifneq ($(MPI),openmpi)
  $(error MPI must be openmpi or mpich, not '$(MPI)')
endif

LIB_SRC   := $(wildcard src/spmm/*.cpp src/io/*.cpp src/hash/*.cpp src/partition/*.cpp src/comm/*.cpp)
MAIN_SRC  := $(wildcard src/main/*.cpp)
TEST_SRC  := $(wildcard tests/*.cpp)
MPI_TEST_SRC := $(wildcard tests/mpi/*.cpp)
BENCH_SRC := $(wildcard bench/*.cpp)
BENCH_MPI_SRC := bench/mpi/bench_mpi.cpp
LIB_OBJ   := $(LIB_SRC:%.cpp=$(BUILD)/%.o)
MAIN_OBJ  := $(MAIN_SRC:%.cpp=$(BUILD)/%.o)
TEST_OBJ  := $(TEST_SRC:%.cpp=$(BUILD)/%.o)
MPI_TEST_OBJ := $(MPI_TEST_SRC:%.cpp=$(BUILD)/%.o)
BENCH_OBJ := $(BENCH_SRC:%.cpp=$(BUILD)/%.o)
BENCH_MPI_OBJ := $(BENCH_MPI_SRC:%.cpp=$(BUILD)/%.o)
BENCH_MPI_ARGS := --benchmark_repetitions=3 --benchmark_report_aggregates_only=true

.PHONY: all deps fuzz-deps build run test bench bench-build bench-mpi fuzz tsan clean sdnn
all: sdnn

# Phony: ./sdnn is the binary of the last build asked for (a SAN build replaces it, the next
# plain build puts the release binary back).
sdnn: $(BUILD)/sdnn
	@cmp -s $< $@ || cp $< $@

$(BUILD)/sdnn: $(MAIN_OBJ) $(LIB_OBJ)
	$(CXX) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/sdnn_tests: $(TEST_OBJ) $(LIB_OBJ)
	$(CXX) $(LDFLAGS) -o $@ $^ $(LIBS) -lgtest -lgtest_main -pthread

# MPI tests: their own main (tests/mpi/main.cpp initialises MPI), run under mpirun with 1-4 ranks.
# The MPI tests also run the data x model strategy (tests/mpi/test_strategy_model.cpp; on one
# column block it runs the data strategy's engine loop, row_engine.cpp) and the
# pipeline's split of the layers (tests/mpi/test_pipeline_split.cpp).
$(BUILD)/sdnn_mpi_tests: $(MPI_TEST_OBJ) $(LIB_OBJ) $(BUILD)/src/main/strategy_model.o $(BUILD)/src/main/strategy_pipeline.o \
                         $(BUILD)/src/main/row_engine.o
	$(CXX) $(LDFLAGS) -o $@ $^ $(LIBS) -lgtest -pthread

# The end-to-end tests' tool (tests/tools/sdnn_check.cpp): random problems with a bias per neuron,
# and the serial reference compared with sdnn --out-activations.
$(BUILD)/sdnn_check: $(BUILD)/tests/tools/sdnn_check.o $(LIB_OBJ)
	$(CXX) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/sdnn_bench: $(BENCH_OBJ) $(LIB_OBJ)
	$(CXX) $(LDFLAGS) -o $@ $^ $(LIBS) -lbenchmark -lbenchmark_main -pthread

# MPI microbenchmarks: their own main (MPI init, rank 0 reports), run under mpirun.
$(BUILD)/sdnn_bench_mpi: $(BENCH_MPI_OBJ) $(LIB_OBJ)
	$(CXX) $(LDFLAGS) -o $@ $^ $(LIBS) -lbenchmark -pthread

$(BUILD)/%.o: %.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -c -o $@ $<

-include $(BUILD)/tests/tools/sdnn_check.d $(LIB_OBJ:.o=.d) $(MAIN_OBJ:.o=.d) $(TEST_OBJ:.o=.d) $(MPI_TEST_OBJ:.o=.d) $(BENCH_OBJ:.o=.d) $(BENCH_MPI_OBJ:.o=.d)
# dense_rows.cpp and bench_peak.cpp include themselves once per SIMD target (Highway's
# foreach_target.h), which leaves GCC's -MMD list with the .cpp alone: the headers they read are
# named here, for every build.
DENSE_ROWS_HEADERS := $(wildcard src/spmm/*.hpp)
$(BUILD)/src/spmm/dense_rows.o build/sim/src/spmm/dense_rows.o build/tsan/src/spmm/dense_rows.o: $(DENSE_ROWS_HEADERS)
$(BUILD)/bench/bench_peak.o: src/spmm/simd_targets.hpp bench/bench_support.hpp
# Sanitizer builds (SAN, make tsan): the kernel's lambdas are not forced inline
# (src/spmm/dense_rows.cpp says why).
ifneq ($(SAN),)
$(BUILD)/src/spmm/dense_rows.o: CXXFLAGS += -DSDNN_KERNEL_LAMBDA=HWY_ATTR
endif
build/tsan/src/spmm/dense_rows.o: TSAN_FLAGS += -DSDNN_KERNEL_LAMBDA=HWY_ATTR

# $(call install,PACKAGES): installs those that are missing with apt-get (sudo when not root),
# waiting up to 10 minutes for another apt or dpkg to let go of the lock instead of failing.
define install
	@missing=""; \
	for p in $(1); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "make $@: installing$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq $$missing; \
	fi
endef

deps:
	$(call install,$(PACKAGES))

build: deps
	@$(MAKE) --no-print-directory -j$(NPROC) sdnn $(BUILD)/sdnn_tests $(BUILD)/sdnn_mpi_tests $(BUILD)/sdnn_check

run: deps
	@$(MAKE) --no-print-directory -j$(NPROC) sdnn
	$(MPIRUN) -np $(NP) ./sdnn

test: deps
	@$(MAKE) --no-print-directory -j$(NPROC) sdnn $(BUILD)/sdnn_tests $(BUILD)/sdnn_mpi_tests $(BUILD)/sdnn_check
	SDNN_TEST_BINARY=$(BUILD)/sdnn_tests SDNN_MPI_TEST_BINARY=$(BUILD)/sdnn_mpi_tests SDNN_CHECK_BINARY=$(BUILD)/sdnn_check \
	  MPIRUN="$(MPIRUN)" SDNN_SAN="$(SAN)" SDNN_QUICK="$(SDNN_QUICK)" SDNN_REQUIRE_DATA="$(SDNN_REQUIRE_DATA)" \
	  bash tests/run_all.sh

bench: deps
	@$(MAKE) --no-print-directory -j$(NPROC) sdnn $(BUILD)/sdnn_bench $(BUILD)/sdnn_bench_mpi
	$(BUILD)/sdnn_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
	$(MPIRUN) -np 2 $(BUILD)/sdnn_bench_mpi $(BENCH_MPI_ARGS)

# Builds every benchmark without running one (CI: bench/ must keep compiling).
bench-build: deps
	@$(MAKE) --no-print-directory -j$(NPROC) $(BUILD)/sdnn_bench $(BUILD)/sdnn_bench_mpi

bench-mpi: deps
	@$(MAKE) --no-print-directory -j$(NPROC) $(BUILD)/sdnn_bench_mpi
	$(MPIRUN) -np 2 $(BUILD)/sdnn_bench_mpi $(BENCH_MPI_ARGS)

# SimGrid's SMPI (docs/simulation.md): the same sources built by smpicxx into build/sim (sdnn and
# the MPI microbenchmarks), run by smpirun on a simulated cluster (bench/platforms/*.xml).
#   make sim-deps  installs libsimgrid-dev (not part of make deps)
#   make sim       builds build/sim/sdnn and build/sim/sdnn_bench_mpi
#   make sim-test  the official data on 2 and 8 simulated ranks, the three strategies (tests/sim_tests.sh)
# make test builds and runs the same SMPI tests when smpicxx is installed (not in SAN builds).
SIM_PACKAGES := libsimgrid-dev
SIM_BUILD    := build/sim
SIM_FLAGS    := -std=c++17 -O3 $(ARCH) -fopenmp -Wall -Wextra -Wpedantic -Wshadow -MMD -MP -Isrc
SIM_LIB_OBJ  := $(LIB_SRC:%.cpp=$(SIM_BUILD)/%.o)
SIM_MAIN_OBJ := $(MAIN_SRC:%.cpp=$(SIM_BUILD)/%.o)
SIM_BENCH_OBJ := $(BENCH_MPI_SRC:%.cpp=$(SIM_BUILD)/%.o)
SMPICXX      := $(shell command -v smpicxx 2>/dev/null)

$(SIM_BUILD)/%.o: %.cpp
	@mkdir -p $(dir $@)
	smpicxx $(SIM_FLAGS) -c -o $@ $<

$(SIM_BUILD)/sdnn: $(SIM_MAIN_OBJ) $(SIM_LIB_OBJ)
	smpicxx -fopenmp -o $@ $^ $(LIBS)

$(SIM_BUILD)/sdnn_bench_mpi: $(SIM_BENCH_OBJ) $(SIM_LIB_OBJ)
	smpicxx -fopenmp -o $@ $^ $(LIBS) -lbenchmark -pthread

-include $(SIM_LIB_OBJ:.o=.d) $(SIM_MAIN_OBJ:.o=.d) $(SIM_BENCH_OBJ:.o=.d)

.PHONY: sim-deps sim sim-build sim-test peer-deps plot-deps
sim-deps:
	$(call install,$(SIM_PACKAGES))

# What the benchmark scripts need beyond make deps: the peer engine (bench/peers/build.sh) and
# gnuplot for the plots (bench/scaling*.sh).
peer-deps:
	$(call install,libgraphblas-dev)
plot-deps:
	$(call install,gnuplot-nox)

sim-build:
	@$(MAKE) --no-print-directory -j$(NPROC) $(SIM_BUILD)/sdnn $(SIM_BUILD)/sdnn_bench_mpi

sim: deps sim-deps
	@$(MAKE) --no-print-directory sim-build

sim-test: sim
	@$(MAKE) --no-print-directory -j$(NPROC) sdnn
	@result=$$(mktemp); echo "0 1 0" > $$result; bash tests/sim_tests.sh $$result; \
	  read -r p f s < $$result; rm -f $$result; echo "sim tests: $$p passed, $$f failed, $$s skipped"; [ "$$f" -eq 0 ]

# make test: the SMPI build too, when SimGrid is installed (tests/sim_tests.sh skips otherwise).
test: $(if $(and $(SMPICXX),$(if $(SAN),,yes)),sim-build)

# Fuzzing, apart from make test and its packages: libFuzzer targets of the readers (no MPI in
# them), built by clang with ASan and UBSan, each run FUZZ_SECONDS seconds on a copy of the
# seeds (tests/fuzz/run.sh). A crash fails the target and leaves its input in build/fuzz/.
FUZZ_PACKAGES := clang libclang-rt-dev libomp-dev
FUZZ_CXX      ?= clang++
FUZZ_SECONDS  ?= 60
FUZZ_FLAGS    := -std=c++17 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
                 -fno-omit-frame-pointer -fopenmp -Wall -Wextra -Wpedantic -Wshadow -Isrc
FUZZ_HEADERS  := $(wildcard src/io/*.hpp src/spmm/*.hpp)

# The TSV readers read gzip and tar streams too (io/compressed), which use io/archive's file check.
FUZZ_IO_SRC   := src/io/tsv.cpp src/io/compressed.cpp src/io/archive.cpp src/io/output_file.cpp
FUZZ_IO_LIBS  := -lboost_serialization -lz -larchive

build/fuzz/fuzz_tsv: tests/fuzz/fuzz_tsv.cpp $(FUZZ_IO_SRC) $(FUZZ_HEADERS)
	@mkdir -p $(dir $@)
	$(FUZZ_CXX) $(FUZZ_FLAGS) -o $@ tests/fuzz/fuzz_tsv.cpp $(FUZZ_IO_SRC) $(FUZZ_IO_LIBS)

build/fuzz/fuzz_archive: tests/fuzz/fuzz_archive.cpp $(FUZZ_IO_SRC) $(FUZZ_HEADERS)
	@mkdir -p $(dir $@)
	$(FUZZ_CXX) $(FUZZ_FLAGS) -o $@ tests/fuzz/fuzz_archive.cpp $(FUZZ_IO_SRC) $(FUZZ_IO_LIBS)

fuzz-deps:
	$(call install,$(FUZZ_PACKAGES))

fuzz: deps fuzz-deps
	@$(MAKE) --no-print-directory -j$(NPROC) sdnn build/fuzz/fuzz_tsv build/fuzz/fuzz_archive
	FUZZ_SECONDS=$(FUZZ_SECONDS) bash tests/fuzz/run.sh

# ThreadSanitizer over the OpenMP code (make tsan): the GoogleTest suite without MPI (src/comm
# and src/main are not in it), built by clang against LLVM's libomp with its TSan support
# (libarcher, which tells TSan about OpenMP's barriers, tasks and locks), the kernel, engine and
# reader tests run with 2 and 3 threads. GCC's libgomp is not instrumented, so a TSan build of the
# mpicxx (GCC) binaries would report OpenMP's own synchronisation as races.
TSAN_SRC    := $(wildcard src/spmm/*.cpp src/io/*.cpp src/hash/*.cpp src/partition/*.cpp) $(TEST_SRC)
TSAN_OBJ    := $(TSAN_SRC:%.cpp=build/tsan/%.o)
TSAN_FLAGS  := -std=c++17 -O1 -g -fsanitize=thread -fopenmp -Wall -Wextra -Wpedantic -Wshadow -MMD -MP -Isrc
# Every suite that runs OpenMP code: the engine and kernels, the split multiply of the model
# strategy, the readers (TSV, archives, idx: the loading's parallel parts), the generator, hashing.
# make tsan fails when a pattern of the filter matches no test (a renamed suite would otherwise
# drop out of it silently).
TSAN_FILTER ?= Engine.*:ThreadFailureTest.*:Networks/EngineRandom.*:Kernels.*:Shapes/KernelsRandom.*:SplitMultiply.*:PullPlan.*:TsvFiles.*:CompressedFiles.*:TarNetwork.*:Archives.*:IdxFiles.*:Generate.*:HashMatrix.*:HashNetwork.*:HashInference.*:Reuse.*:ReuseEngine.*:Targets/DenseEveryTarget.*

build/tsan/%.o: %.cpp
	@mkdir -p $(dir $@)
	$(FUZZ_CXX) $(TSAN_FLAGS) -c -o $@ $<

build/tsan/sdnn_tests: $(TSAN_OBJ)
	$(FUZZ_CXX) -fsanitize=thread -fopenmp -o $@ $^ -lboost_serialization -lz -larchive -lhwy -lgtest -lgtest_main -pthread

-include $(TSAN_OBJ:.o=.d)

tsan: deps fuzz-deps
	@$(MAKE) --no-print-directory -j$(NPROC) build/tsan/sdnn_tests
	@for pattern in $$(echo '$(TSAN_FILTER)' | tr ':' ' '); do \
	  build/tsan/sdnn_tests --gtest_list_tests --gtest_filter="$$pattern" | grep -q '^  ' || \
	    { echo "make tsan: the filter pattern '$$pattern' matches no test"; exit 1; }; \
	done
	TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 ignore_noninstrumented_modules=1" OMP_TOOL_LIBRARIES=$$(clang++ -print-resource-dir)/../../libarcher.so \
	  OMP_NUM_THREADS=3 build/tsan/sdnn_tests --gtest_filter='$(TSAN_FILTER)' --gtest_brief=1

# AArch64 under qemu-user (make test-arm; docs/simd.md, 'ARM'): the MPI-free tests of the kernels
# cross-compiled by Debian's aarch64 GCC into build/arm64 and run by qemu-aarch64 on emulated
# CPUs. Sources: the kernels, hashing, the partition plans and the generator (no MPI, no readers);
# tests: kernels, formats, engine, split multiply, reuse, hashing, generator, pull plans.
#   make arm-deps   adds Debian's arm64 architecture (dpkg --add-architecture) and installs the
#                   cross compiler, qemu-user and the arm64 builds of the libraries (apt-get, as
#                   make deps; the install updates the package lists, the new architecture's too)
#   make test-arm   builds build/arm64/sdnn_tests; runs all of it (ARM_FULL_TESTS) on ARM_FULL_CPU
#                   (NEON only, so that the engine's layers are not run through qemu's slow SVE
#                   emulation), then the kernel tests (ARM_KERNEL_TESTS) on each other CPU of ARM_CPUS, each of them
#                   on every SIMD target the kernel compiled and that CPU supports (as on x86)
# The kernel compiles NEON and the SVE targets (SVE, SVE2, SVE_256, SVE2_128). ARM_CPUS: each
# emulated CPU, a slash, and the SIMD targets the kernel tests must list there (joined by +, in
# LC_ALL=C order); a CPU that lists others fails. Cortex-A57 (ARMv8.0: NEON), Neoverse N1
# (ARMv8.2, as Graviton 2), A64FX (SVE, 512-bit vectors), max (every feature qemu emulates, SVE2
# among them) with SVE vectors of 128, 256 and 2048 bits (SVE2_128 and SVE_256 are Highway's
# targets for those exact widths).
ARM_PACKAGES := g++-aarch64-linux-gnu qemu-user libhwy-dev:arm64 libgtest-dev:arm64 libgomp1:arm64 libstdc++-12-dev:arm64
ARM_BUILD    := build/arm64
ARM_CXX      := aarch64-linux-gnu-g++
ARM_FLAGS    := -std=c++17 -O3 -fopenmp -Wall -Wextra -Wpedantic -Wshadow -MMD -MP -Isrc
ARM_TESTS    := kernels sparse_matrix engine split_multiply reuse hash generate pull_plan
ARM_SRC      := $(wildcard src/spmm/*.cpp src/hash/*.cpp src/partition/*.cpp) src/io/generate.cpp \
                $(ARM_TESTS:%=tests/test_%.cpp)
ARM_OBJ      := $(ARM_SRC:%.cpp=$(ARM_BUILD)/%.o)
ARM_FULL_CPU ?= neoverse-n1/NEON
ARM_FULL_TESTS ?= *
ARM_CPUS     ?= cortex-a57/NEON a64fx/NEON+SVE max,sve128=on/NEON+SVE+SVE2+SVE2_128 \
                max,sve256=on/NEON+SVE+SVE2+SVE_256 max,sve2048=on/NEON+SVE+SVE2
ARM_KERNEL_TESTS := Targets/DenseEveryTarget.*:Kernels.*:Shapes/KernelsRandom.*
# glibc's own string functions in their generic build: on a64fx glibc picks its SVE ones, which
# qemu emulates slowly (the kernel tests took 4 times longer there; the kernel's targets come
# from the CPU's features, which this does not change).
QEMU_ARM     := GLIBC_TUNABLES=glibc.cpu.name=generic qemu-aarch64

$(ARM_BUILD)/%.o: %.cpp
	@mkdir -p $(dir $@)
	$(ARM_CXX) $(ARM_FLAGS) -c -o $@ $<

$(ARM_BUILD)/sdnn_tests: $(ARM_OBJ)
	$(ARM_CXX) -fopenmp -o $@ $^ -lhwy -lgtest -lgtest_main -pthread

-include $(ARM_OBJ:.o=.d)
$(ARM_BUILD)/src/spmm/dense_rows.o: $(DENSE_ROWS_HEADERS)

.PHONY: arm-deps arm-build test-arm
arm-deps:
	@dpkg --print-foreign-architectures | grep -qx arm64 || { \
	  echo "make $@: adding the arm64 architecture"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO dpkg --add-architecture arm64; }
	$(call install,$(ARM_PACKAGES))

arm-build: arm-deps
	@$(MAKE) --no-print-directory -j$(NPROC) $(ARM_BUILD)/sdnn_tests

# Each CPU: the SIMD targets its kernel tests run (sorted; other than those expected is a
# failure), then the tests.
test-arm: arm-build
	@failed=0; start=$$(date +%s); \
	run_on() { \
	  cpu=$${1%%/*}; expected=$$(echo "$${1#*/}" | tr '+' ' '); \
	  targets=$$($(QEMU_ARM) -cpu $$cpu $(ARM_BUILD)/sdnn_tests --gtest_list_tests --gtest_filter='Targets/DenseEveryTarget.*' | \
	    sed -n 's|^  [A-Za-z]*/\([A-Za-z0-9_]*\).*|\1|p' | LC_ALL=C sort -u | tr '\n' ' ' | sed 's/ $$//'); \
	  echo "make test-arm: qemu-aarch64 -cpu $$cpu, tests '$$2', SIMD targets: $${targets:-none}"; \
	  if [ "$$targets" != "$$expected" ]; then \
	    echo "make test-arm: -cpu $$cpu should offer the SIMD targets '$$expected', not '$${targets:-none}'"; failed=1; fi; \
	  $(QEMU_ARM) -cpu $$cpu $(ARM_BUILD)/sdnn_tests --gtest_brief=1 --gtest_filter="$$2" || failed=1; \
	}; \
	run_on '$(ARM_FULL_CPU)' '$(ARM_FULL_TESTS)'; \
	for cpu in $(ARM_CPUS); do run_on $$cpu '$(ARM_KERNEL_TESTS)'; done; \
	echo "make test-arm: the runs under qemu took $$(( $$(date +%s) - start )) s"; \
	if [ $$failed -eq 0 ]; then echo "make test-arm: passed"; else echo "make test-arm: FAILED"; exit 1; fi

clean:
	rm -rf build sdnn
