#include "thread_pool.h"

#include <chrono>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace tensile {

namespace {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#else
  std::this_thread::yield();
#endif
}

// Workers wait this long for the next job before sleeping on the condition variable: kernel calls
// from a training loop arrive microseconds apart, and waking a sleeping thread costs about as much as
// a small kernel. The first kPauseTime they spin; after that they yield between checks, so that a
// thread sharing the core (the caller itself, on a busy machine) is not held up by the wait.
constexpr auto kSpinTime = std::chrono::microseconds(100);
constexpr auto kPauseTime = std::chrono::microseconds(20);
// pause instructions between clock reads while spinning.
constexpr int kPausesPerCheck = 32;

}  // namespace

thread_local bool ThreadPool::inside_task_ = false;

ThreadPool::ThreadPool() = default;

ThreadPool::~ThreadPool() { stop_workers(); }

void ThreadPool::stop_workers() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_.store(true);
    generation_.fetch_add(1);
  }
  wake_.notify_all();
  for (auto& worker : workers_) worker.join();
  workers_.clear();
  stopping_.store(false);
}

void ThreadPool::set_threads(int count) {
  if (count < 1) count = 1;
  if (count == threads_) return;
  stop_workers();
  threads_ = count;
  // The generation is read here, not in the new thread: a thread that started late would otherwise
  // take a job already dispatched for the one it waits for, and never report in.
  const uint64_t start = generation_.load(std::memory_order_acquire);
  for (int t = 1; t < count; ++t) workers_.emplace_back([this, t, start] { work_loop(t, start); });
}

void ThreadPool::drain(int thread) {
  inside_task_ = true;
  for (;;) {
    const int64_t task = next_task_.fetch_add(1, std::memory_order_relaxed);
    if (task >= tasks_) break;
    function_(context_, task, thread);
  }
  inside_task_ = false;
}

void ThreadPool::dispatch(int64_t tasks, Trampoline function, void* context) {
  function_ = function;
  context_ = context;
  tasks_ = tasks;
  next_task_.store(0, std::memory_order_relaxed);
  busy_workers_.store(static_cast<int>(workers_.size()), std::memory_order_relaxed);
  {
    // The lock orders the job fields before the generation bump for workers that sleep.
    std::lock_guard<std::mutex> lock(mutex_);
    generation_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_all();
  drain(0);
  // Every worker reports in, even one that found no task left, so that none can still be reading
  // this job's fields when the next dispatch overwrites them.
  // The wait is short unless a worker was descheduled; then yielding lets it run on this core.
  int spins = 0;
  while (busy_workers_.load(std::memory_order_acquire) != 0) {
    if (++spins < 4096) {
      cpu_relax();
    } else {
      std::this_thread::yield();
    }
  }
}

void ThreadPool::work_loop(int thread, uint64_t seen) {
  for (;;) {
    const auto start = std::chrono::steady_clock::now();
    while (generation_.load(std::memory_order_acquire) == seen) {
      const auto waited = std::chrono::steady_clock::now() - start;
      if (waited > kSpinTime) break;
      if (waited < kPauseTime) {
        for (int i = 0; i < kPausesPerCheck; ++i) cpu_relax();
      } else {
        std::this_thread::yield();
      }
    }
    if (generation_.load(std::memory_order_acquire) == seen) {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
    }
    seen = generation_.load(std::memory_order_acquire);
    if (stopping_.load()) return;
    drain(thread);
    busy_workers_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

ThreadPool& pool() {
  // Deliberately never destroyed: Node may run static destructors while an addon is still in use
  // by another environment, and the workers sleep harmlessly until the process exits.
  static ThreadPool* instance = new ThreadPool();
  return *instance;
}

}  // namespace tensile
