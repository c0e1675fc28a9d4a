#!/usr/bin/env bash
# build.sh: builds the peer programs of bench/peers/ into build/peers/ (not part of `make test`
# nor `make bench`):
#   build/peers/graphblas_dnn   the four-call GraphBLAS inference, linked with the system
#                               SuiteSparse:GraphBLAS (Debian package libgraphblas-dev)
#   build/peers/write_problem   writes sdnn's generated problem as official TSV files; linked
#                               with sdnn's library objects (built with make's rule first)
# Installs libgraphblas-dev when missing (make peer-deps: apt-get, sudo when not root).
# Usage: bash bench/peers/build.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
make --no-print-directory peer-deps
CC=${CC:-gcc}
ARCH=${ARCH:--march=native}
mkdir -p build/peers
inc=; [ -f /usr/include/suitesparse/GraphBLAS.h ] && inc=-I/usr/include/suitesparse
$CC -std=c11 -O3 $ARCH -Wall -Wextra $inc -o build/peers/graphblas_dnn bench/peers/graphblas_dnn.c -lgraphblas -lm
# sdnn's library objects (the Makefile's LIB_SRC), built by make's own rule; ./sdnn is not touched.
shopt -s nullglob
objs=
for f in src/spmm/*.cpp src/io/*.cpp src/hash/*.cpp src/partition/*.cpp src/comm/*.cpp; do objs+=" build/release/${f%.cpp}.o"; done
make --no-print-directory -j"$(nproc)" $objs >/dev/null
# The libraries the library objects need, as the Makefile links them (LIBS := ...).
libs=$(sed -n 's/^LIBS *:= *//p' Makefile | head -1)
mpicxx -std=c++17 -O3 $ARCH -fopenmp -Wall -Wextra -Isrc -DOMPI_SKIP_MPICXX=1 \
  -o build/peers/write_problem bench/peers/write_problem.cpp $objs ${libs:--lboost_serialization}
echo "built build/peers/graphblas_dnn build/peers/write_problem"
