/*
 * The chip's single-precision FMA peak for `npm run bench:conv`: a register-only loop of independent
 * fused multiply-adds (no loads or stores), on 1..N threads. bench/conv.ts compiles it with the
 * system C compiler (cc -O2 -march=native -pthread) into a temporary directory and runs it.
 *
 * Usage: fma-peak THREADS SECONDS_PER_TRY TRIES
 * Prints one JSON object: {"isa", "lanes", "threads", "gflops", "wall_gflops"}: gflops is the best
 * try's sum over threads of each thread's FLOPs per second of its own CPU time
 * (CLOCK_THREAD_CPUTIME_ID), so time the thread spends descheduled by other processes on a shared
 * machine does not count; wall_gflops is the best try's total FLOPs over wall-clock time. 2 FLOPs per
 * lane per FMA.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#if defined(__AVX512F__) || defined(__FMA__)
#include <immintrin.h>
#endif

#define ACCUMULATORS 12

#if defined(__AVX512F__)
#define ISA "avx512"
#define LANES 16
typedef __m512 vec;
#define SET1(v) _mm512_set1_ps(v)
#define FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
static float first_lane(vec v) { return _mm512_cvtss_f32(v); }
#elif defined(__FMA__)
#define ISA "avx2-fma"
#define LANES 8
typedef __m256 vec;
#define SET1(v) _mm256_set1_ps(v)
#define FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
static float first_lane(vec v) { return _mm256_cvtss_f32(v); }
#else
/* Anything else: GCC's vector extension; with -ffp-contract=fast the compiler fuses where it can. */
#define ISA "generic-vector"
#define LANES 4
typedef float vec __attribute__((vector_size(16)));
#define SET1(v) ((vec){v, v, v, v})
#define FMA(a, b, c) ((a) * (b) + (c))
static float first_lane(vec v) { return v[0]; }
#endif

static volatile float sink;

struct job {
  long iterations;
  double cpu_seconds;
};

static double cpu_now(void) {
  struct timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

static void *spin(void *argument) {
  struct job *job = argument;
  long iterations = job->iterations;
  double start = cpu_now();
  /* Twelve named accumulators (not an array, which the compiler may keep in memory): enough
   * independent chains to cover the FMA latency on two pipes. */
  vec a0 = SET1(1.000f), a1 = SET1(1.001f), a2 = SET1(1.002f), a3 = SET1(1.003f);
  vec a4 = SET1(1.004f), a5 = SET1(1.005f), a6 = SET1(1.006f), a7 = SET1(1.007f);
  vec a8 = SET1(1.008f), a9 = SET1(1.009f), a10 = SET1(1.010f), a11 = SET1(1.011f);
  const vec m = SET1(0.9999999f), c = SET1(1e-7f);
  for (long i = 0; i < iterations; i++) {
    a0 = FMA(a0, m, c), a1 = FMA(a1, m, c), a2 = FMA(a2, m, c), a3 = FMA(a3, m, c);
    a4 = FMA(a4, m, c), a5 = FMA(a5, m, c), a6 = FMA(a6, m, c), a7 = FMA(a7, m, c);
    a8 = FMA(a8, m, c), a9 = FMA(a9, m, c), a10 = FMA(a10, m, c), a11 = FMA(a11, m, c);
  }
  vec total = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11;
  sink = first_lane(total);
  job->cpu_seconds = cpu_now() - start;
  return NULL;
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

#define FLOPS(iterations) (2.0 * LANES * ACCUMULATORS * (double)(iterations))

/* Runs `threads` threads; returns the wall-clock GFLOP/s and stores the CPU-time one in *cpu_gflops. */
static double run(int threads, long iterations, double *cpu_gflops) {
  pthread_t ids[256];
  struct job jobs[256];
  double start = now();
  for (int t = 0; t < threads; t++) {
    jobs[t].iterations = iterations;
    pthread_create(&ids[t], NULL, spin, &jobs[t]);
  }
  for (int t = 0; t < threads; t++) pthread_join(ids[t], NULL);
  double wall = now() - start;
  *cpu_gflops = 0;
  for (int t = 0; t < threads; t++) *cpu_gflops += FLOPS(iterations) / jobs[t].cpu_seconds / 1e9;
  return FLOPS(iterations) * threads / wall / 1e9;
}

int main(int argc, char **argv) {
  int threads = argc > 1 ? atoi(argv[1]) : 1;
  double seconds = argc > 2 ? atof(argv[2]) : 0.3;
  int tries = argc > 3 ? atoi(argv[3]) : 5;
  if (threads < 1 || threads > 256) threads = 1;
  long iterations = 1 << 16;
  double cpu;
  while (FLOPS(iterations) / run(1, iterations, &cpu) / 1e9 < seconds / 4) iterations *= 2;
  iterations = (long)(iterations * (seconds / (FLOPS(iterations) / run(1, iterations, &cpu) / 1e9)));
  double best = 0, best_wall = 0;
  for (int i = 0; i < tries; i++) {
    double wall = run(threads, iterations, &cpu);
    if (cpu > best) best = cpu;
    if (wall > best_wall) best_wall = wall;
  }
  printf("{\"isa\": \"%s\", \"lanes\": %d, \"threads\": %d, \"gflops\": %.2f, \"wall_gflops\": %.2f}\n", ISA,
         LANES, threads, best, best_wall);
  return 0;
}
