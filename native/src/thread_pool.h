// A persistent pool of worker threads for the kernels.
//
// Threads are created once (and again only when the thread count changes), never per call: a
// training step issues hundreds of kernel calls and thread creation would cost more than many of
// them. The calling thread takes part in every job, so a pool of n threads has n - 1 workers.
//
// Work is handed out as numbered tasks claimed from an atomic counter. A task's result must depend
// only on its number, never on which thread ran it: that is what keeps every kernel's output
// identical for any thread count. The thread index passed to a task is for choosing scratch memory.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace tensile {

class ThreadPool {
 public:
  ThreadPool();
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // Total threads taking part in a job, the caller included (at least 1).
  int threads() const { return threads_; }
  void set_threads(int count);

  // Runs task(index, thread) for every index in [0, tasks) and returns when all are done.
  // thread is in [0, threads()). Runs inline when tasks <= 1 or the pool has one thread.
  template <typename Task>
  void run(int64_t tasks, Task&& task) {
    if (tasks <= 0) return;
    // A task that starts a job of its own runs it inline: the pool serves one job at a time.
    if (tasks == 1 || threads_ == 1 || inside_task_) {
      for (int64_t i = 0; i < tasks; ++i) task(i, 0);
      return;
    }
    using Callable = std::remove_reference_t<Task>;
    dispatch(tasks, &invoke<Callable>, const_cast<void*>(static_cast<const void*>(&task)));
  }

 private:
  using Trampoline = void (*)(void* context, int64_t task, int thread);

  template <typename Callable>
  static void invoke(void* context, int64_t task, int thread) {
    (*static_cast<Callable*>(context))(task, thread);
  }

  void dispatch(int64_t tasks, Trampoline function, void* context);
  void work_loop(int thread, uint64_t seen);
  void drain(int thread);
  void stop_workers();

  static thread_local bool inside_task_;

  int threads_ = 1;
  std::vector<std::thread> workers_;

  // The current job; written by the caller before generation_ is bumped.
  Trampoline function_ = nullptr;
  void* context_ = nullptr;
  int64_t tasks_ = 0;
  std::atomic<int64_t> next_task_{0};
  std::atomic<int> busy_workers_{0};

  std::atomic<uint64_t> generation_{0};
  std::atomic<bool> stopping_{false};
  std::mutex mutex_;
  std::condition_variable wake_;
};

// The process-wide pool every kernel uses.
ThreadPool& pool();

}  // namespace tensile
