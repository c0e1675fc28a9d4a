// graphblas_dnn.c: the Graph Challenge sparse DNN inference with SuiteSparse:GraphBLAS, the peer
// that bench/peers/compare.sh runs next to sdnn on the same files.
//
// Reads official-format TSV (1-based triplets row<TAB>col<TAB>value): the layers DIR/nN-l1.tsv ..
// nN-lL.tsv and the input file (an M x N matrix whatever the file holds). Each layer is the
// challenge's four whole-matrix calls:
//     Y = Y * W                   GrB_mxm, GrB_PLUS_TIMES_SEMIRING_FP32
//     Y = Y + bias                GrB_apply bind-second PLUS: existing entries only
//     Y = select (Y > 0)          GrB_select GrB_VALUEGT_FP32: non-positive entries dropped
//     Y = min (Y, 32)             GrB_apply bind-second MIN
// Only the layer loop is timed (it ends with GrB_wait, so no pending work escapes the clock).
// Prints the categories (rows of Y_L holding any entry), read and inference times, the rate
// (inputs x connections of all layers / inference time), an optional check against a truth file
// (one 1-based row per line), and last a line "summary key=value ..." like sdnn's.
//
// Usage: graphblas_dnn --network DIR --neurons N --layers L --input FILE [--inputs M]
//                      [--bias B] [--threads T] [--truth FILE]
// Exit status: 0 when fine (and the truth matches, when given), 1 on a failed check or bad input,
// 2 on a bad command line.
#define _POSIX_C_SOURCE 200809L
#include <GraphBLAS.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHECK(call)                                                                    \
  do {                                                                                 \
    GrB_Info info_ = (call);                                                           \
    if (info_ != GrB_SUCCESS && info_ != GrB_NO_VALUE) {                               \
      fprintf(stderr, "graphblas_dnn: error: %s failed (GrB_Info %d) at %s:%d\n", #call, \
              (int)info_, __FILE__, __LINE__);                                         \
      exit(1);                                                                         \
    }                                                                                  \
  } while (0)

static void die(const char* what, const char* path, long line) {
  if (line > 0)
    fprintf(stderr, "graphblas_dnn: error: %s:%ld: %s\n", path, line, what);
  else
    fprintf(stderr, "graphblas_dnn: error: %s: %s\n", path, what);
  exit(1);
}

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

// The whole file as one NUL-terminated buffer.
static char* slurp(const char* path) {
  FILE* f = fopen(path, "rb");
  if (!f) die(strerror(errno), path, 0);
  if (fseek(f, 0, SEEK_END) != 0) die("cannot seek", path, 0);
  long size = ftell(f);
  if (size < 0) die("cannot size", path, 0);
  rewind(f);
  char* text = malloc((size_t)size + 1);
  if (!text) die("out of memory", path, 0);
  if (size > 0 && fread(text, 1, (size_t)size, f) != (size_t)size) die("short read", path, 0);
  text[size] = '\0';
  fclose(f);
  return text;
}

// Reads triplets into an nrows x ncols FP32 matrix; 1-based indices, checked against the sizes.
// With skip_outside, rows beyond nrows are ignored (an input file cut to its first M rows).
static GrB_Matrix read_tsv(const char* path, GrB_Index nrows, GrB_Index ncols, int skip_outside) {
  char* text = slurp(path);
  size_t cap = 1 << 16, n = 0;
  GrB_Index* I = malloc(cap * sizeof(GrB_Index));
  GrB_Index* J = malloc(cap * sizeof(GrB_Index));
  float* X = malloc(cap * sizeof(float));
  long line = 0;
  char* p = text;
  while (*p) {
    ++line;
    char* end;
    if (*p == '\n' || (*p == '\r' && p[1] == '\n')) {  // empty line
      p += (*p == '\r') ? 2 : 1;
      continue;
    }
    errno = 0;
    unsigned long long r = strtoull(p, &end, 10);
    if (end == p || *end != '\t') die("malformed row index", path, line);
    p = end + 1;
    unsigned long long c = strtoull(p, &end, 10);
    if (end == p || *end != '\t') die("malformed column index", path, line);
    p = end + 1;
    float v = strtof(p, &end);
    if (end == p || !isfinite(v) || errno == ERANGE) die("malformed value", path, line);
    p = end;
    if (*p == '\r') ++p;
    if (*p == '\n') ++p;
    else if (*p) die("text after the value", path, line);
    if (r < 1 || c < 1 || c > ncols) die("index out of range", path, line);
    if (r > nrows) {
      if (skip_outside) continue;
      die("row index out of range", path, line);
    }
    if (n == cap) {
      cap *= 2;
      I = realloc(I, cap * sizeof(GrB_Index));
      J = realloc(J, cap * sizeof(GrB_Index));
      X = realloc(X, cap * sizeof(float));
      if (!I || !J || !X) die("out of memory", path, line);
    }
    I[n] = r - 1;
    J[n] = c - 1;
    X[n] = v;
    ++n;
  }
  free(text);
  if (n == 0) die("no entries", path, 0);
  GrB_Matrix A;
  CHECK(GrB_Matrix_new(&A, GrB_FP32, nrows, ncols));
  // Duplicates are an error in the official format: FIRST keeps one, the count below catches it.
  CHECK(GrB_Matrix_build_FP32(A, I, J, X, n, GrB_FIRST_FP32));
  GrB_Index stored;
  CHECK(GrB_Matrix_nvals(&stored, A));
  if (stored != n) die("duplicate entries", path, 0);
  free(I);
  free(J);
  free(X);
  return A;
}

static void usage(void) {
  fputs("Usage: graphblas_dnn --network DIR --neurons N --layers L --input FILE [--inputs M]\n"
        "                     [--bias B] [--threads T] [--truth FILE]\n"
        "  --inputs M   input rows (default 60000); rows beyond M in the file are ignored\n"
        "  --bias B     bias of every neuron (default -0.3 - 0.025*log2(N/1024): -0.3, -0.35,\n"
        "               -0.4, -0.45 for N = 1024, 4096, 16384, 65536)\n"
        "  --threads T  GraphBLAS threads (GxB_NTHREADS; default: GraphBLAS's own choice)\n"
        "  --truth FILE official categories, one 1-based row per line: prints Challenge: PASS|FAIL\n",
        stderr);
}

int main(int argc, char** argv) {
  const char *network = NULL, *input = NULL, *truth = NULL;
  long neurons = 0, layers = 0, inputs = 60000, threads = 0;
  double bias = NAN;
  for (int a = 1; a < argc; ++a) {
    const char* key = argv[a];
    if (!strcmp(key, "--help") || !strcmp(key, "-h")) {
      usage();
      return 0;
    }
    if (a + 1 >= argc) {
      fprintf(stderr, "graphblas_dnn: error: %s needs a value\n", key);
      usage();
      return 2;
    }
    const char* value = argv[++a];
    char* end;
    if (!strcmp(key, "--network")) network = value;
    else if (!strcmp(key, "--input")) input = value;
    else if (!strcmp(key, "--truth")) truth = value;
    else if (!strcmp(key, "--bias")) bias = strtod(value, &end);
    else if (!strcmp(key, "--neurons")) neurons = strtol(value, &end, 10);
    else if (!strcmp(key, "--layers")) layers = strtol(value, &end, 10);
    else if (!strcmp(key, "--inputs")) inputs = strtol(value, &end, 10);
    else if (!strcmp(key, "--threads")) threads = strtol(value, &end, 10);
    else {
      fprintf(stderr, "graphblas_dnn: error: unknown option %s\n", key);
      usage();
      return 2;
    }
  }
  if (!network || !input || neurons < 1 || layers < 1 || inputs < 1 || threads < 0) {
    fprintf(stderr, "graphblas_dnn: error: --network, --input, --neurons and --layers are required (positive)\n");
    usage();
    return 2;
  }
  if (isnan(bias)) bias = -0.3 - 0.025 * log2((double)neurons / 1024.0);

  CHECK(GrB_init(GrB_NONBLOCKING));
  if (threads > 0) CHECK(GxB_set(GxB_NTHREADS, (int)threads));
  int used_threads = 0;
  CHECK(GxB_get(GxB_NTHREADS, &used_threads));

  // Read the network and the input (not timed as inference).
  double start = now_s();
  GrB_Matrix* W = malloc((size_t)layers * sizeof(GrB_Matrix));
  GrB_Index connections = 0;
  size_t path_len = strlen(network) + 64;
  char* path = malloc(path_len);
  for (long l = 0; l < layers; ++l) {
    snprintf(path, path_len, "%s/n%ld-l%ld.tsv", network, neurons, l + 1);
    W[l] = read_tsv(path, (GrB_Index)neurons, (GrB_Index)neurons, 0);
    GrB_Index nv;
    CHECK(GrB_Matrix_nvals(&nv, W[l]));
    connections += nv;
    CHECK(GrB_Matrix_wait(W[l], GrB_MATERIALIZE));
  }
  GrB_Matrix Y = read_tsv(input, (GrB_Index)inputs, (GrB_Index)neurons, 1);
  CHECK(GrB_Matrix_wait(Y, GrB_MATERIALIZE));
  const double read_s = now_s() - start;

  // The layer loop: the four calls, timed.
  const float b = (float)bias, ymax = 32.0f;
  start = now_s();
  for (long l = 0; l < layers; ++l) {
    CHECK(GrB_mxm(Y, NULL, NULL, GrB_PLUS_TIMES_SEMIRING_FP32, Y, W[l], NULL));
    CHECK(GrB_Matrix_apply_BinaryOp2nd_FP32(Y, NULL, NULL, GrB_PLUS_FP32, Y, b, NULL));
    CHECK(GrB_Matrix_select_FP32(Y, NULL, NULL, GrB_VALUEGT_FP32, Y, 0.0f, NULL));
    CHECK(GrB_Matrix_apply_BinaryOp2nd_FP32(Y, NULL, NULL, GrB_MIN_FP32, Y, ymax, NULL));
  }
  CHECK(GrB_Matrix_wait(Y, GrB_MATERIALIZE));
  const double infer_s = now_s() - start;
  const double rate = (double)inputs * (double)connections / infer_s;

  // Categories: the rows holding any entry (a reduction of each row), ascending.
  GrB_Vector alive;
  CHECK(GrB_Vector_new(&alive, GrB_FP32, (GrB_Index)inputs));
  CHECK(GrB_Matrix_reduce_Monoid(alive, NULL, NULL, GrB_PLUS_MONOID_FP32, Y, NULL));
  GrB_Index categories;
  CHECK(GrB_Vector_nvals(&categories, alive));
  GrB_Index* rows = malloc((categories + 1) * sizeof(GrB_Index));
  float* sums = malloc((categories + 1) * sizeof(float));
  GrB_Index got = categories;
  CHECK(GrB_Vector_extractTuples_FP32(rows, sums, &got, alive));
  double checksum = 0;  // sum of all final values, in double (comparable with sdnn's only roughly)
  for (GrB_Index k = 0; k < got; ++k) checksum += sums[k];

  const char* challenge = "none";
  if (truth) {
    char* text = slurp(truth);
    char* p = text;
    GrB_Index k = 0;
    int same = 1;
    for (;;) {
      while (*p == '\n' || *p == '\r') ++p;
      if (!*p) break;
      char* end;
      unsigned long long r = strtoull(p, &end, 10);
      if (end == p) die("malformed row number", truth, 0);
      p = end;
      if (k >= got || rows[k] + 1 != r) same = 0;
      ++k;
    }
    if (k != got) same = 0;
    free(text);
    challenge = same ? "PASS" : "FAIL";
  }

  printf("SuiteSparse:GraphBLAS %d.%d.%d, %d threads\n", GxB_IMPLEMENTATION_MAJOR, GxB_IMPLEMENTATION_MINOR,
         GxB_IMPLEMENTATION_SUB, used_threads);
  printf("Problem: %ld neurons, %ld layers, %ld inputs, %llu connections, bias %g\n", neurons, layers, inputs,
         (unsigned long long)connections, bias);
  printf("Read: %.3f s\n", read_s);
  printf("Inference: %.6f s\n", infer_s);
  printf("Rate: %.4e edges/s\n", rate);
  printf("Categories: %llu\n", (unsigned long long)got);
  if (truth) printf("Challenge: %s\n", challenge);
  printf("summary engine=graphblas neurons=%ld layers=%ld inputs=%ld threads=%d read_s=%.6f infer_s=%.6f "
         "rate=%.6e categories=%llu checksum=%.17g challenge=%s\n",
         neurons, layers, inputs, used_threads, read_s, infer_s, rate, (unsigned long long)got, checksum, challenge);

  for (long l = 0; l < layers; ++l) GrB_Matrix_free(&W[l]);
  GrB_Matrix_free(&Y);
  GrB_Vector_free(&alive);
  free(W);
  free(path);
  free(rows);
  free(sums);
  GrB_finalize();
  return strcmp(challenge, "FAIL") == 0 ? 1 : 0;
}
