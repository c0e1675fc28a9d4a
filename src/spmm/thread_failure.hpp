// thread_failure.hpp: exceptions and OpenMP. An exception must not leave a parallel region, and a
// thread that leaves early must not strand the others at a barrier. ThreadFailure keeps the
// first exception any thread threw (guard), lets every thread see that one was thrown (failed,
// read after a barrier so that all threads agree) and rethrows it after the region.
#pragma once

#include <atomic>
#include <exception>

namespace sdnn {

// The first exception thrown on any thread of a parallel region, rethrown after it (an
// exception must not leave an OpenMP region, and threads waiting at a barrier must not hang).
class ThreadFailure {
 public:
  template <class Work>
  void guard(Work&& work) {
    try {
      work();
    } catch (...) {
#pragma omp critical(sdnn_thread_failure)
      if (!failure_) failure_ = std::current_exception();
      failed_ = true;
    }
  }
  bool failed() const { return failed_.load(); }
  void rethrow() const {
    if (failure_) std::rethrow_exception(failure_);
  }

 private:
  std::exception_ptr failure_;
  std::atomic<bool> failed_{false};
};

}  // namespace sdnn
