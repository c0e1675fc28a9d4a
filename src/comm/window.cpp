// window.cpp: RAII MPI windows (see window.hpp): creation with sizes gathered first, two
// backends (MPI_Win_allocate, MPI_Win_create over MPI_Alloc_mem) and the check that picks one,
// one lock_all epoch per window, chunked bounds-checked MPI_Get/MPI_Put, collective free.
#include "comm/window.hpp"

#include "comm/mpi_library.hpp"

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>

namespace sdnn {

namespace {

constexpr std::size_t max_aint = static_cast<std::size_t>(std::numeric_limits<MPI_Aint>::max());

std::atomic<int> live_windows{0};
std::atomic<int> live_shared_windows{0};

// An MPI_Info with the hints every window of sdnn gets; freed on scope exit.
class WindowInfo {
 public:
  explicit WindowInfo(bool same_size) {
    check_mpi(MPI_Info_create(&info_), "MPI_Info_create");
    int rc = MPI_Info_set(info_, "accumulate_ordering", "none");
    if (rc == MPI_SUCCESS && same_size) rc = MPI_Info_set(info_, "same_size", "true");
    if (rc != MPI_SUCCESS) {
      MPI_Info_free(&info_);
      check_mpi(rc, "MPI_Info_set");
    }
  }
  ~WindowInfo() { MPI_Info_free(&info_); }
  WindowInfo(const WindowInfo&) = delete;
  WindowInfo& operator=(const WindowInfo&) = delete;
  MPI_Info get() const { return info_; }

 private:
  MPI_Info info_ = MPI_INFO_NULL;
};

// For its lifetime, errors raised on `comm` come back as codes (then exceptions) instead of going
// to the communicator's handler, by default fatal; the handler is restored afterwards.
class ErrorsReturnedOn {
 public:
  explicit ErrorsReturnedOn(MPI_Comm comm) : comm_(comm) {
    check_mpi(MPI_Comm_get_errhandler(comm_, &previous_), "MPI_Comm_get_errhandler");
    check_mpi(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
  }
  ~ErrorsReturnedOn() {
    // SimGrid's SMPI answers MPI_ERRHANDLER_NULL for a communicator that has the default handler
    // (and warns when it is set back or freed): the standard's default is restored instead.
    if (previous_ == MPI_ERRHANDLER_NULL) {
      MPI_Comm_set_errhandler(comm_, MPI_ERRORS_ARE_FATAL);
      return;
    }
    MPI_Comm_set_errhandler(comm_, previous_);
    MPI_Errhandler_free(&previous_);
  }
  ErrorsReturnedOn(const ErrorsReturnedOn&) = delete;
  ErrorsReturnedOn& operator=(const ErrorsReturnedOn&) = delete;

 private:
  MPI_Comm comm_;
  MPI_Errhandler previous_ = MPI_ERRHANDLER_NULL;
};

std::string describe(std::size_t bytes, int rank, std::size_t offset) {
  return std::to_string(bytes) + " bytes at byte offset " + std::to_string(offset) + " of rank " +
         std::to_string(rank);
}

// The process's window backend: the choice, an automatic switch and why, the test-only faults,
// the number of windows made (part of the check's pattern) and what the last one used.
struct BackendState {
  bool choice_known = false;  // set by hand or read from SDNN_WINDOW_BACKEND
  bool faults_known = false;  // set by the hook or read from SDNN_TEST_BREAK_WINDOW_CHECK
  WindowBackendChoice choice = WindowBackendChoice::automatic;
  bool switched = false;    // automatic: MPI_Win_allocate failed the check, create from now on
  std::string switch_reason;
  unsigned faults = 0;
  std::uint64_t windows_made = 0;
  std::string last_description;
};

BackendState& raw_backend_state() {
  static BackendState state;
  return state;
}

// The state with the environment read (once; a bad value throws, and again next time).
BackendState& backend_state() {
  BackendState& state = raw_backend_state();
  if (!state.faults_known) {
    unsigned faults = 0;
    if (const char* text = std::getenv("SDNN_TEST_BREAK_WINDOW_CHECK")) {
      const std::string list = std::string(text) + ",";
      for (std::size_t at = 0, comma; (comma = list.find(',', at)) != std::string::npos; at = comma + 1) {
        const std::string word = list.substr(at, comma - at);
        if (word == "allocate") faults |= window_fault_allocate;
        else if (word == "create") faults |= window_fault_create;
        else if (word == "shared") faults |= window_fault_shared;
        else if (!word.empty())
          throw std::invalid_argument("SDNN_TEST_BREAK_WINDOW_CHECK: '" + word + "' is not allocate, create or shared");
      }
    }
    state.faults = faults;
    state.faults_known = true;
  }
  if (!state.choice_known) {
    if (const char* choice = std::getenv("SDNN_WINDOW_BACKEND")) {
      try {
        state.choice = parse_window_backend(choice);
      } catch (const std::invalid_argument& e) {
        throw std::invalid_argument(std::string("SDNN_WINDOW_BACKEND: ") + e.what());
      }
    }
    state.choice_known = true;
  }
  return state;
}

// The byte the check expects at `offset` of the segment of `rank` in its `window_number`-th
// window: a mix of all three (splitmix64), so that another rank's, another window's or another
// offset's bytes differ.
std::byte check_byte(int rank, std::uint64_t window_number, std::size_t offset) {
  std::uint64_t z = (static_cast<std::uint64_t>(rank) << 40) ^ (window_number << 20) ^ offset;
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  return static_cast<std::byte>(z & 0xffu);
}

// The checked bytes of a segment of `size` bytes: [0, 8) and [size - 8, size), or all of it
// when it holds at most 16 bytes. Returns the ranges as (offset, bytes) pairs.
std::vector<std::pair<std::size_t, std::size_t>> checked_ranges(std::size_t size) {
  constexpr std::size_t piece = 8;
  if (size <= 2 * piece) return {{0, size}};
  return {{0, piece}, {size - piece, piece}};
}

// The outcome of a check as one number, agreed with MPI_MIN: 2^63 - 1 when right, else the
// lowest failing reader, the rank it read and how many bytes were wrong. Every value stays
// below 2^63: Debian's MPICH 4.0.2 compares MPI_UINT64_T as signed in MPI_MIN and MPI_MAX.
constexpr std::uint64_t check_passed = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());

std::uint64_t encode_failure(int reader, int source, std::size_t wrong) {
  return (static_cast<std::uint64_t>(std::min(reader, (1 << 23) - 1)) << 40) |
         (static_cast<std::uint64_t>(std::min(source, (1 << 24) - 1)) << 16) | std::min<std::size_t>(wrong, 0xffff);
}

std::string describe_failure(std::uint64_t code, std::size_t checked, const char* source_name) {
  const auto reader = static_cast<int>(code >> 40), source = static_cast<int>((code >> 16) & 0xffffff);
  const auto wrong = static_cast<std::size_t>(code & 0xffff);
  return "rank " + std::to_string(reader) + " got " + std::to_string(wrong) + " wrong byte(s) of " +
         std::to_string(checked) + " from " + (source_name ? std::string(source_name) : "rank " + std::to_string(source));
}

std::string check_failure_message(const std::string& what) {
  return "this MPI library's one-sided communication returns wrong data (" + mpi_library_version() + "): " + what +
         " (see docs/mpi.md)";
}

}  // namespace

std::string mpi_library_version() {
  char text[MPI_MAX_LIBRARY_VERSION_STRING];
  int length = 0;
  if (MPI_Get_library_version(text, &length) != MPI_SUCCESS || length <= 0) return "an unknown MPI library";
  std::string line;
  for (int i = 0; i < length && text[i] != '\n' && text[i] != '\0'; ++i) {
    const bool blank = text[i] == ' ' || text[i] == '\t' || text[i] == '\r';
    if (!blank) line += text[i];
    else if (!line.empty() && line.back() != ' ') line += ' ';
  }
  while (!line.empty() && line.back() == ' ') line.pop_back();
  return line.empty() ? "an unknown MPI library" : line;
}

const char* to_string(WindowBackend backend) {
  return backend == WindowBackend::allocate ? "MPI_Win_allocate" : "MPI_Win_create over MPI_Alloc_mem";
}

const char* to_string(WindowBackendChoice choice) {
  switch (choice) {
    case WindowBackendChoice::allocate: return "allocate";
    case WindowBackendChoice::create: return "create";
    default: return "auto";
  }
}

WindowBackendChoice parse_window_backend(const std::string& name) {
  if (name == "auto") return WindowBackendChoice::automatic;
  if (name == "allocate") return WindowBackendChoice::allocate;
  if (name == "create") return WindowBackendChoice::create;
  throw std::invalid_argument("the window backend must be auto, allocate or create, not '" + name + "'");
}

void set_window_backend(WindowBackendChoice choice) {
  BackendState& state = raw_backend_state();  // by hand: SDNN_WINDOW_BACKEND is not read
  state.choice_known = true;
  state.choice = choice;
  state.switched = false;
  state.switch_reason.clear();
}

WindowBackendChoice window_backend_choice() { return backend_state().choice; }

WindowBackend window_backend() {
  const BackendState& state = backend_state();
  switch (state.choice) {
    case WindowBackendChoice::allocate: return WindowBackend::allocate;
    case WindowBackendChoice::create: return WindowBackend::create;
    default: return state.switched ? WindowBackend::create : WindowBackend::allocate;
  }
}

std::string window_backend_description() { return raw_backend_state().last_description; }

void break_window_check_for_testing(unsigned faults) {
  raw_backend_state().faults_known = true;
  raw_backend_state().faults = faults;
}

void check_mpi(int rc, const char* call) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  std::string message = std::string(call) + ": ";
  if (MPI_Error_string(rc, text, &length) == MPI_SUCCESS && length > 0)
    message.append(text, static_cast<std::size_t>(length));
  else
    message += "MPI error code " + std::to_string(rc);
  throw std::runtime_error(message);
}

std::vector<std::size_t> all_sizes(MPI_Comm comm, std::size_t mine) {
  if (comm == MPI_COMM_NULL) throw std::invalid_argument("all_sizes: MPI_COMM_NULL");
  int ranks = 0;
  check_mpi(MPI_Comm_size(comm, &ranks), "MPI_Comm_size");
  const std::uint64_t mine64 = mine;
  std::vector<std::uint64_t> all64(static_cast<std::size_t>(ranks));
  check_mpi(MPI_Allgather(&mine64, 1, MPI_UINT64_T, all64.data(), 1, MPI_UINT64_T, comm), "MPI_Allgather");
  return std::vector<std::size_t>(all64.begin(), all64.end());
}

// ---------------------------------------------------------------------------------------------
// Window

int Window::live_count() noexcept { return live_windows.load(); }

Window::Window(MPI_Comm comm, std::size_t bytes, bool same_size) : Window(comm, bytes, same_size, false, nullptr, "") {}

Window::Window(MPI_Comm comm, std::byte* memory, std::size_t bytes, const std::string& memory_name)
    : Window(comm, bytes, false, true, memory, memory_name) {}

Window::Window(MPI_Comm comm, std::size_t bytes, bool same_size, bool callers_memory, std::byte* memory,
               const std::string& memory_name) {
  if (comm == MPI_COMM_NULL) throw std::invalid_argument("Window: MPI_COMM_NULL");
  BackendState& state = backend_state();
  // Sizes before data, in one gather with each rank's backend and window number: every rank
  // learns every size and proposal, so a bad size or a disagreement fails on every rank alike (no
  // rank is left waiting in MPI_Win_allocate). The caller's memory is MPI_Win_create over it,
  // with no other backend to try (as if chosen by hand; bit 4 says so).
  const WindowBackend proposed = callers_memory ? WindowBackend::create : window_backend();
  const bool by_hand = callers_memory || state.choice != WindowBackendChoice::automatic;
  const bool no_memory = callers_memory && memory == nullptr && bytes > 0;  // refused on every rank below
  const std::uint64_t mine[3] = {bytes,
                                 static_cast<std::uint64_t>(proposed) | (by_hand ? 2u : 0u) | (callers_memory ? 4u : 0u) |
                                     (no_memory ? 8u : 0u),
                                 state.windows_made++};
  int ranks = 0;
  check_mpi(MPI_Comm_size(comm, &ranks), "MPI_Comm_size");
  std::vector<std::uint64_t> table(3 * static_cast<std::size_t>(ranks));
  check_mpi(MPI_Allgather(mine, 3, MPI_UINT64_T, table.data(), 3, MPI_UINT64_T, comm), "MPI_Allgather");
  std::vector<std::size_t> sizes(static_cast<std::size_t>(ranks));
  std::vector<std::uint64_t> window_numbers(static_cast<std::size_t>(ranks));
  bool any_create = false, any_by_hand = false, all_alike = true;
  for (std::size_t r = 0; r < sizes.size(); ++r) {
    sizes[r] = table[3 * r];
    window_numbers[r] = table[3 * r + 2];
    any_create |= (table[3 * r + 1] & 1u) != 0;
    any_by_hand |= (table[3 * r + 1] & 2u) != 0;
    all_alike &= table[3 * r + 1] == table[1];
    if (sizes[r] > max_aint)
      throw std::invalid_argument("Window: rank " + std::to_string(r) + " asked for " + std::to_string(sizes[r]) +
                                  " bytes, more than MPI_Aint holds");
    if (same_size && sizes[r] != sizes[0])
      throw std::invalid_argument("Window: same_size requested but rank " + std::to_string(r) + " asked for " +
                                  std::to_string(sizes[r]) + " bytes and rank 0 for " + std::to_string(sizes[0]));
  }
  bool any_callers = false, all_callers = true;
  for (std::size_t r = 0; r < sizes.size(); ++r) {
    any_callers |= (table[3 * r + 1] & 4u) != 0, all_callers &= (table[3 * r + 1] & 4u) != 0;
    if ((table[3 * r + 1] & 8u) != 0)
      throw std::invalid_argument("Window: rank " + std::to_string(r) + " gave no memory for its " +
                                  std::to_string(sizes[r]) + " bytes");
  }
  if (any_callers && !all_callers)
    throw std::invalid_argument("Window: some ranks gave their own memory and some did not");
  if (any_by_hand && !all_alike)
    throw std::invalid_argument("Window: the ranks chose different window backends (SDNN_WINDOW_BACKEND or "
                                "--window-backend must be the same on every rank)");
  // Automatic everywhere: one rank that has seen MPI_Win_allocate fail takes every rank along.
  WindowBackend backend = any_create ? WindowBackend::create : WindowBackend::allocate;
  int rank = 0;
  check_mpi(MPI_Comm_rank(comm, &rank), "MPI_Comm_rank");

  for (;;) {
    try {
      open(backend, comm, bytes, same_size, callers_memory ? memory : nullptr);
    } catch (const std::runtime_error& e) {
      release();
      if (state.switch_reason.empty() || by_hand) throw;
      // MPI_Win_allocate was found broken and MPI_Win_create cannot be made here either.
      throw WindowCheckFailure(check_failure_message(state.switch_reason + "; then " + e.what() +
                                                     "; no window backend can be trusted"));
    } catch (...) {
      release();
      throw;
    }
    rank_ = rank;
    comm_size_ = ranks;
    sizes_ = sizes;
    is_pending_.assign(sizes.size(), 0);
    const std::string wrong = check(window_numbers);
    if (wrong.empty()) break;
    release();
    const std::string failure = std::string(to_string(backend)) + ": " + wrong;
    if (!by_hand && backend == WindowBackend::allocate) {
      // The check's verdict is the same on every rank: all switch together.
      state.switched = true;
      state.switch_reason = failure;
      if (rank == 0)
        std::fprintf(stderr,
                     "sdnn: MPI_Win_allocate failed the one-sided check under %s (%s); windows use "
                     "MPI_Win_create over MPI_Alloc_mem from now on (see docs/mpi.md)\n",
                     mpi_library_version().c_str(), wrong.c_str());
      backend = WindowBackend::create;
      continue;
    }
    std::string what = failure;
    if (callers_memory) what = "MPI_Win_create over " + memory_name + ": " + wrong;
    else if (by_hand) what += " (chosen by hand: try another window backend)";
    else if (!state.switch_reason.empty()) what = state.switch_reason + "; then " + failure;
    throw WindowCheckFailure(check_failure_message(what + "; no window backend can be trusted"));
  }
  if (callers_memory)
    return;  // the backend chosen for this process is unchanged (window_backend_description)
  if (state.choice != WindowBackendChoice::automatic)
    state.last_description = std::string(to_string(backend_)) + " (chosen by hand, checked)";
  else if (backend_ == WindowBackend::create && !state.switch_reason.empty())
    state.last_description = std::string(to_string(backend_)) + " (checked; chosen by the check after " +
                             state.switch_reason + ")";
  else if (backend_ == WindowBackend::create)
    state.last_description = std::string(to_string(backend_)) + " (checked; another rank had switched)";
  else
    state.last_description = std::string(to_string(backend_)) + " (checked)";
}

void Window::open(WindowBackend backend, MPI_Comm comm, std::size_t bytes, bool same_size, std::byte* callers) {
  WindowInfo info(same_size);
  const ErrorsReturnedOn errors_returned(comm);  // e.g. Open MPI 4.1 refuses MPI_Win_create on one process
  MPI_Win win = MPI_WIN_NULL;
  void* base = nullptr;
  if (backend == WindowBackend::allocate) {
    check_mpi(MPI_Win_allocate(static_cast<MPI_Aint>(bytes), 1, info.get(), comm, &base, &win), "MPI_Win_allocate");
  } else if (callers != nullptr) {
    base = callers;
    check_mpi(MPI_Win_create(base, static_cast<MPI_Aint>(bytes), 1, info.get(), comm, &win), "MPI_Win_create");
  } else {
    if (bytes > 0) check_mpi(MPI_Alloc_mem(static_cast<MPI_Aint>(bytes), MPI_INFO_NULL, &base), "MPI_Alloc_mem");
    const int rc = MPI_Win_create(base, static_cast<MPI_Aint>(bytes), 1, info.get(), comm, &win);
    if (rc != MPI_SUCCESS && base != nullptr) MPI_Free_mem(base);
    check_mpi(rc, "MPI_Win_create");
    allocated_ = base;
  }
  win_ = win;
  ++live_windows;
  backend_ = backend;
  comm_ = comm;
  data_ = static_cast<std::byte*>(base);
  size_ = bytes;
  check_mpi(MPI_Win_set_errhandler(win_, MPI_ERRORS_RETURN), "MPI_Win_set_errhandler");
  check_mpi(MPI_Win_lock_all(MPI_MODE_NOCHECK, win_), "MPI_Win_lock_all");
}

std::string Window::check(const std::vector<std::uint64_t>& window_numbers) {
  const int ranks = comm_size_;
  bool anything = false;
  for (std::size_t size : sizes_) anything |= size > 0;
  if (!anything) return "";  // no byte anywhere can be wrong
  for (const auto& [offset, bytes] : checked_ranges(size_))
    for (std::size_t i = offset; i < offset + bytes; ++i)
      data_[i] = check_byte(rank_, window_numbers[static_cast<std::size_t>(rank_)], i);
  barrier();
  // The neighbours: the nearest ranks before and after this one that hold a segment (this rank
  // itself when it is the only one), so that every segment is read by some rank.
  auto holder = [&](int step) {
    for (int k = 1; k <= ranks; ++k) {
      const int r = ((rank_ + step * k) % ranks + ranks) % ranks;
      if (sizes_[static_cast<std::size_t>(r)] > 0) return r;
    }
    return rank_;
  };
  std::vector<int> sources{holder(+1)};
  if (holder(-1) != sources[0]) sources.push_back(holder(-1));
  std::uint64_t outcome = check_passed;
  const bool faulty = (backend_state().faults & (backend_ == WindowBackend::allocate ? window_fault_allocate
                                                                                       : window_fault_create)) != 0 &&
                      rank_ == ranks - 1;
  std::vector<std::vector<std::byte>> got(sources.size());
  bool failed_call = false;
  for (std::size_t s = 0; s < sources.size(); ++s) {
    got[s].assign(16, std::byte{0});
    std::size_t at = 0;
    for (const auto& [offset, bytes] : checked_ranges(sizes_[static_cast<std::size_t>(sources[s])])) {
      failed_call |= MPI_Get(got[s].data() + at, static_cast<int>(bytes), MPI_BYTE, sources[s],
                             static_cast<MPI_Aint>(offset), static_cast<int>(bytes), MPI_BYTE, win_) != MPI_SUCCESS;
      at += bytes;
    }
  }
  for (int source : sources) failed_call |= MPI_Win_flush(source, win_) != MPI_SUCCESS;  // not flush_all: see flush_all()
  for (std::size_t s = 0; s < sources.size(); ++s) {
    const int source = sources[s];
    std::size_t at = 0, wrong = 0;
    for (const auto& [offset, bytes] : checked_ranges(sizes_[static_cast<std::size_t>(source)]))
      for (std::size_t i = offset; i < offset + bytes; ++i, ++at) {
        if (faulty) got[s][at] = ~got[s][at];
        wrong += got[s][at] != check_byte(source, window_numbers[static_cast<std::size_t>(source)], i);
      }
    if (failed_call) wrong = at;
    if (wrong > 0) outcome = std::min(outcome, encode_failure(rank_, source, wrong));
  }
  // One collective agrees; it also orders the gets before any owner overwrites its segment.
  std::uint64_t agreed = check_passed;
  check_mpi(MPI_Allreduce(&outcome, &agreed, 1, MPI_UINT64_T, MPI_MIN, comm_), "MPI_Allreduce");
  if (agreed == check_passed) return "";
  const int source = static_cast<int>((agreed >> 16) & 0xffffff);
  const std::size_t checked = std::min<std::size_t>(sizes_[static_cast<std::size_t>(source)], 16);
  return describe_failure(agreed, checked, nullptr);
}

Window::~Window() { release(); }

Window::Window(Window&& other) noexcept
    : win_(std::exchange(other.win_, MPI_WIN_NULL)),
      comm_(std::exchange(other.comm_, MPI_COMM_NULL)),
      backend_(other.backend_),
      allocated_(std::exchange(other.allocated_, nullptr)),
      data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      sizes_(std::move(other.sizes_)),
      pending_(std::move(other.pending_)),
      is_pending_(std::move(other.is_pending_)),
      chunk_bytes_(std::exchange(other.chunk_bytes_, max_chunk_bytes)),
      rank_(std::exchange(other.rank_, 0)),
      comm_size_(std::exchange(other.comm_size_, 0)) {
  other.sizes_.clear();
  other.pending_.clear();
  other.is_pending_.clear();
}

Window& Window::operator=(Window&& other) {
  if (this == &other) return *this;
  free();  // collective when this window is live; if it throws, `other` is untouched
  win_ = std::exchange(other.win_, MPI_WIN_NULL);
  comm_ = std::exchange(other.comm_, MPI_COMM_NULL);
  backend_ = other.backend_;
  allocated_ = std::exchange(other.allocated_, nullptr);
  data_ = std::exchange(other.data_, nullptr);
  size_ = std::exchange(other.size_, 0);
  sizes_ = std::move(other.sizes_);
  other.sizes_.clear();
  pending_ = std::move(other.pending_);
  other.pending_.clear();
  is_pending_ = std::move(other.is_pending_);
  other.is_pending_.clear();
  chunk_bytes_ = std::exchange(other.chunk_bytes_, max_chunk_bytes);
  rank_ = std::exchange(other.rank_, 0);
  comm_size_ = std::exchange(other.comm_size_, 0);
  return *this;
}

void Window::free() {
  if (win_ == MPI_WIN_NULL) return;
  // Empty this object first: whatever MPI answers, it no longer owns a window.
  MPI_Win win = std::exchange(win_, MPI_WIN_NULL);
  void* allocated = std::exchange(allocated_, nullptr);
  comm_ = MPI_COMM_NULL;
  data_ = nullptr;
  size_ = 0;
  sizes_.clear();
  pending_.clear();
  is_pending_.clear();
  chunk_bytes_ = max_chunk_bytes;
  rank_ = comm_size_ = 0;
  --live_windows;
  const int unlocked = MPI_Win_unlock_all(win);
  const int freed = MPI_Win_free(&win);
  const int released = allocated ? MPI_Free_mem(allocated) : MPI_SUCCESS;  // after the window, never before
  check_mpi(unlocked, "MPI_Win_unlock_all");
  check_mpi(freed, "MPI_Win_free");
  check_mpi(released, "MPI_Free_mem");
}

void Window::release() noexcept {
  try {
    free();
  } catch (...) {
    // A destructor cannot report; the window is gone from this object either way.
  }
}

std::size_t Window::size_of(int rank) const {
  require_valid("size_of");
  if (rank < 0 || rank >= comm_size_)
    throw std::invalid_argument("Window::size_of: rank " + std::to_string(rank) + " outside [0, " +
                                std::to_string(comm_size_) + ")");
  return sizes_[static_cast<std::size_t>(rank)];
}

void Window::set_chunk_bytes(std::size_t bytes) {
  if (bytes == 0 || bytes > max_chunk_bytes)
    throw std::invalid_argument("Window::set_chunk_bytes: " + std::to_string(bytes) + " outside [1, " +
                                std::to_string(max_chunk_bytes) + "]");
  chunk_bytes_ = bytes;
}

std::size_t Window::element_bytes(std::size_t count, std::size_t element_size) {
  if (element_size != 0 && count > std::numeric_limits<std::size_t>::max() / element_size)
    throw std::invalid_argument("Window: " + std::to_string(count) + " elements of " + std::to_string(element_size) +
                                " bytes overflow size_t");
  return count * element_size;
}

void Window::require_valid(const char* what) const {
  if (win_ == MPI_WIN_NULL) throw std::logic_error(std::string("Window::") + what + " on an empty window");
}

void Window::check_range(const char* what, std::size_t bytes, int target_rank, std::size_t target_offset) const {
  require_valid(what);
  if (target_rank < 0 || target_rank >= comm_size_)
    throw std::invalid_argument(std::string("Window::") + what + ": rank " + std::to_string(target_rank) +
                                " outside [0, " + std::to_string(comm_size_) + ")");
  const std::size_t segment = sizes_[static_cast<std::size_t>(target_rank)];
  if (target_offset > segment || bytes > segment - target_offset)
    throw std::invalid_argument(std::string("Window::") + what + ": " + describe(bytes, target_rank, target_offset) +
                                " exceed its " + std::to_string(segment) + "-byte segment");
}

void Window::get(void* destination, std::size_t bytes, int target_rank, std::size_t target_offset) {
  check_range("get", bytes, target_rank, target_offset);
  if (bytes == 0) return;
  if (destination == nullptr) throw std::invalid_argument("Window::get: null destination");
  note_pending(target_rank);
  auto* out = static_cast<std::byte*>(destination);
  for (std::size_t done = 0; done < bytes;) {
    const std::size_t n = std::min(chunk_bytes_, bytes - done);
    const int count = static_cast<int>(n);
    check_mpi(MPI_Get(out + done, count, MPI_BYTE, target_rank, static_cast<MPI_Aint>(target_offset + done), count,
                      MPI_BYTE, win_),
              "MPI_Get");
    done += n;
  }
}

void Window::get_blocks(void* destination, const std::vector<Block>& blocks, int target_rank) {
  // Checked first, neighbours merged: runs[i] is a contiguous range of the target's segment.
  std::vector<Block> runs;
  runs.reserve(blocks.size());
  for (const Block& block : blocks) {
    check_range("get", block.bytes, target_rank, block.offset);
    if (block.bytes == 0) continue;
    if (!runs.empty() && runs.back().offset + runs.back().bytes == block.offset)
      runs.back().bytes += block.bytes;
    else
      runs.push_back(block);
  }
  if (runs.empty()) return;
  if (destination == nullptr) throw std::invalid_argument("Window::get_blocks: null destination");
  auto* out = static_cast<std::byte*>(destination);
  std::vector<int> lengths;
  std::vector<MPI_Aint> displacements;
  for (std::size_t r = 0; r < runs.size();) {
    if (runs[r].bytes >= chunk_bytes_ || r + 1 == runs.size()) {  // alone: a plain (chunked) get
      get(out, runs[r].bytes, target_rank, runs[r].offset);
      out += runs[r].bytes;
      ++r;
      continue;
    }
    // As many whole runs as the chunk limit holds, in one MPI_Get.
    lengths.clear();
    displacements.clear();
    std::size_t bytes = 0;
    for (; r < runs.size() && runs[r].bytes <= chunk_bytes_ - bytes; ++r) {
      lengths.push_back(static_cast<int>(runs[r].bytes));
      displacements.push_back(static_cast<MPI_Aint>(runs[r].offset));
      bytes += runs[r].bytes;
    }
    note_pending(target_rank);
    MPI_Datatype indexed = MPI_DATATYPE_NULL;
    check_mpi(MPI_Type_create_hindexed(static_cast<int>(lengths.size()), lengths.data(), displacements.data(), MPI_BYTE,
                                       &indexed),
              "MPI_Type_create_hindexed");
    // Freed right after the call: MPI keeps a datatype alive while operations use it.
    const int committed = MPI_Type_commit(&indexed);
    const int got = committed == MPI_SUCCESS
                        ? MPI_Get(out, static_cast<int>(bytes), MPI_BYTE, target_rank, 0, 1, indexed, win_)
                        : committed;
    MPI_Type_free(&indexed);
    check_mpi(committed, "MPI_Type_commit");
    check_mpi(got, "MPI_Get");
    out += bytes;
  }
}

void Window::put(const void* source, std::size_t bytes, int target_rank, std::size_t target_offset) {
  check_range("put", bytes, target_rank, target_offset);
  if (bytes == 0) return;
  if (source == nullptr) throw std::invalid_argument("Window::put: null source");
  note_pending(target_rank);
  const auto* in = static_cast<const std::byte*>(source);
  for (std::size_t done = 0; done < bytes;) {
    const std::size_t n = std::min(chunk_bytes_, bytes - done);
    const int count = static_cast<int>(n);
    check_mpi(MPI_Put(in + done, count, MPI_BYTE, target_rank, static_cast<MPI_Aint>(target_offset + done), count,
                      MPI_BYTE, win_),
              "MPI_Put");
    done += n;
  }
}

void Window::flush(int rank) {
  check_range("flush", 0, rank, 0);
  check_mpi(MPI_Win_flush(rank, win_), "MPI_Win_flush");
  is_pending_[static_cast<std::size_t>(rank)] = 0;  // pending_ drops it at the next flush_all
}

void Window::note_pending(int rank) {
  auto& pending = is_pending_[static_cast<std::size_t>(rank)];
  if (pending) return;
  pending = 1;
  pending_.push_back(rank);
  if (pending_.size() > 2 * is_pending_.size()) {  // flush(rank) leaves stale entries: rebuild
    pending_.clear();
    for (std::size_t r = 0; r < is_pending_.size(); ++r)
      if (is_pending_[r]) pending_.push_back(static_cast<int>(r));
  }
}

void Window::flush_all() {
  require_valid("flush_all");
  // One MPI_Win_flush per target with operations outstanding, not MPI_Win_flush_all: under
  // Debian's MPICH 4.0.2, MPI_Win_flush_all (and MPI_Win_flush_local_all) can return before every
  // get has arrived (about one run in five with 100 gets of 7 bytes to each neighbour of 3 ranks;
  // docs/mpi.md). The standard makes the two equivalent. It is cheaper under SimGrid's SMPI too,
  // whose MPI_Win_flush_all visits every rank's window (O(ranks) per call; docs/simulation.md).
  for (int rank : pending_)
    if (is_pending_[static_cast<std::size_t>(rank)]) {
      check_mpi(MPI_Win_flush(rank, win_), "MPI_Win_flush");
      is_pending_[static_cast<std::size_t>(rank)] = 0;
    }
  pending_.clear();
}

void Window::flush_local(int rank) {
  check_range("flush_local", 0, rank, 0);
  check_mpi(MPI_Win_flush_local(rank, win_), "MPI_Win_flush_local");
}

void Window::flush_local_all() {
  require_valid("flush_local_all");
  // Target by target, as flush_all (the targets stay pending: remote completion is still owed).
  for (int rank : pending_)
    if (is_pending_[static_cast<std::size_t>(rank)]) check_mpi(MPI_Win_flush_local(rank, win_), "MPI_Win_flush_local");
}

void Window::sync() {
  require_valid("sync");
  check_mpi(win_sync(win_), "MPI_Win_sync");
}

void Window::barrier() {
  flush_all();
  sync();
  check_mpi(MPI_Barrier(comm_), "MPI_Barrier");
  sync();
}

// ---------------------------------------------------------------------------------------------
// SharedWindow

namespace {

// SDNN_TEST_RANKS_PER_NODE (test-only): 0 when unset; a bad value throws.
int test_ranks_per_node() {
  const char* text = std::getenv("SDNN_TEST_RANKS_PER_NODE");
  if (text == nullptr || *text == '\0') return 0;
  char* end = nullptr;
  const long value = std::strtol(text, &end, 10);
  if (*end != '\0' || value < 1 || value > INT_MAX)
    throw std::invalid_argument(std::string("SDNN_TEST_RANKS_PER_NODE: '") + text + "' is not a positive number of ranks");
  return static_cast<int>(value);
}

}  // namespace

int SharedWindow::live_count() noexcept { return live_shared_windows.load(); }

SharedWindow::SharedWindow(MPI_Comm comm, std::size_t bytes, Sizing sizing) {
  if (comm == MPI_COMM_NULL) throw std::invalid_argument("SharedWindow: MPI_COMM_NULL");
  MPI_Comm node = MPI_COMM_NULL;
  check_mpi(MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node), "MPI_Comm_split_type");
  node_comm_ = node;
  try {
    // Test-only: SDNN_TEST_RANKS_PER_NODE=K splits each node into "nodes" of K consecutive ranks,
    // so that the paths between nodes (gets from another node's leader) run on one machine.
    if (const int per_node = test_ranks_per_node(); per_node > 0) {
      int at = 0;
      check_mpi(MPI_Comm_rank(node_comm_, &at), "MPI_Comm_rank");
      MPI_Comm part = MPI_COMM_NULL;
      check_mpi(MPI_Comm_split(node_comm_, at / per_node, at, &part), "MPI_Comm_split");
      MPI_Comm_free(&node_comm_);
      node_comm_ = part;
    }
    check_mpi(MPI_Comm_set_errhandler(node_comm_, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
    check_mpi(MPI_Comm_rank(node_comm_, &node_rank_), "MPI_Comm_rank");
    check_mpi(MPI_Comm_size(node_comm_, &node_size_), "MPI_Comm_size");
    // Sizes before data: the whole node learns the leader's size, so a bad one fails everywhere.
    // The leader's window number goes along, for the check's pattern.
    // Per rank: node_size x bytes, or more than any MPI_Aint where that overflows (refused below).
    const auto ranks = static_cast<std::uint64_t>(node_size_);
    std::uint64_t total = bytes;
    if (sizing == Sizing::per_rank)
      total = bytes > std::numeric_limits<std::uint64_t>::max() / ranks ? std::numeric_limits<std::uint64_t>::max()
                                                                          : bytes * ranks;
    std::uint64_t leader[2] = {total, backend_state().windows_made++};
    check_mpi(MPI_Bcast(leader, 2, MPI_UINT64_T, 0, node_comm_), "MPI_Bcast");
    const std::uint64_t leader_bytes = leader[0], window_number = leader[1];
    if (leader_bytes > max_aint)
      throw std::invalid_argument("SharedWindow: the node leader asked for " + std::to_string(leader_bytes) +
                                  " bytes, more than MPI_Aint holds");
    WindowInfo info(false);
    void* base = nullptr;
    const MPI_Aint mine = node_rank_ == 0 ? static_cast<MPI_Aint>(leader_bytes) : 0;
    MPI_Win win = MPI_WIN_NULL;
    check_mpi(MPI_Win_allocate_shared(mine, 1, info.get(), node_comm_, &base, &win), "MPI_Win_allocate_shared");
    win_ = win;
    ++live_shared_windows;
    check_mpi(MPI_Win_set_errhandler(win_, MPI_ERRORS_RETURN), "MPI_Win_set_errhandler");
    MPI_Aint segment = 0;
    int unit = 0;
    void* leader_base = nullptr;
    check_mpi(MPI_Win_shared_query(win_, 0, &segment, &unit, &leader_base), "MPI_Win_shared_query");
    data_ = static_cast<std::byte*>(leader_base);
    size_ = static_cast<std::size_t>(segment);
    check_mpi(MPI_Win_lock_all(MPI_MODE_NOCHECK, win_), "MPI_Win_lock_all");
    check(comm, window_number);
  } catch (...) {
    release();
    throw;
  }
}

SharedWindow::Places SharedWindow::places_of(MPI_Comm comm) const {
  if (!valid()) throw std::logic_error("SharedWindow::places_of: an empty window");
  int rank = 0, ranks = 0;
  check_mpi(MPI_Comm_rank(comm, &rank), "MPI_Comm_rank");
  check_mpi(MPI_Comm_size(comm, &ranks), "MPI_Comm_size");
  int mine[2] = {rank, node_rank_};  // [0]: the leader's rank in comm, from the leader
  check_mpi(MPI_Bcast(&mine[0], 1, MPI_INT, 0, node_comm_), "MPI_Bcast");
  std::vector<int> all(2 * static_cast<std::size_t>(ranks));
  check_mpi(MPI_Allgather(mine, 2, MPI_INT, all.data(), 2, MPI_INT, comm), "MPI_Allgather");
  Places places;
  for (std::size_t r = 0; r < static_cast<std::size_t>(ranks); ++r)
    places.leader.push_back(all[2 * r]), places.node_rank.push_back(all[2 * r + 1]);
  return places;
}

void SharedWindow::check(MPI_Comm comm, std::uint64_t window_number) {
  // The leader writes the pattern; every rank of the node reads it where it will read the data.
  const auto ranges = checked_ranges(size_);
  if (node_rank_ == 0)
    for (const auto& [offset, bytes] : ranges)
      for (std::size_t i = offset; i < offset + bytes; ++i) data_[i] = check_byte(0, window_number, i);
  fence_node();
  int rank = 0, ranks = 0;
  check_mpi(MPI_Comm_rank(comm, &rank), "MPI_Comm_rank");
  check_mpi(MPI_Comm_size(comm, &ranks), "MPI_Comm_size");
  const bool faulty = (backend_state().faults & window_fault_shared) != 0 && rank == ranks - 1;
  std::size_t wrong = 0, checked = 0;
  for (const auto& [offset, bytes] : ranges)
    for (std::size_t i = offset; i < offset + bytes; ++i, ++checked) {
      std::byte seen = data_[i];
      if (faulty) seen = ~seen;
      wrong += seen != check_byte(0, window_number, i);
    }
  const std::uint64_t outcome = wrong > 0 ? encode_failure(rank, 0, wrong) : check_passed;
  std::uint64_t agreed = check_passed;
  check_mpi(MPI_Allreduce(&outcome, &agreed, 1, MPI_UINT64_T, MPI_MIN, comm), "MPI_Allreduce");
  fence_node();  // every rank has read before anyone stores data
  if (agreed == check_passed) return;
  // The failing rank's node may hold another size: name the count that rank checked.
  std::uint64_t failing_checked = (agreed >> 40) == static_cast<std::uint64_t>(rank) ? checked : 0;
  check_mpi(MPI_Allreduce(MPI_IN_PLACE, &failing_checked, 1, MPI_UINT64_T, MPI_MAX, comm), "MPI_Allreduce");
  throw WindowCheckFailure(check_failure_message(
      "MPI_Win_allocate_shared: " +
      describe_failure(agreed, static_cast<std::size_t>(failing_checked), "its node's shared segment") +
      "; shared windows have no other backend"));
}

SharedWindow::~SharedWindow() { release(); }

SharedWindow::SharedWindow(SharedWindow&& other) noexcept
    : win_(std::exchange(other.win_, MPI_WIN_NULL)),
      node_comm_(std::exchange(other.node_comm_, MPI_COMM_NULL)),
      data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      node_rank_(std::exchange(other.node_rank_, 0)),
      node_size_(std::exchange(other.node_size_, 0)) {}

SharedWindow& SharedWindow::operator=(SharedWindow&& other) {
  if (this == &other) return *this;
  free();  // collective over this window's node when it is live
  win_ = std::exchange(other.win_, MPI_WIN_NULL);
  node_comm_ = std::exchange(other.node_comm_, MPI_COMM_NULL);
  data_ = std::exchange(other.data_, nullptr);
  size_ = std::exchange(other.size_, 0);
  node_rank_ = std::exchange(other.node_rank_, 0);
  node_size_ = std::exchange(other.node_size_, 0);
  return *this;
}

void SharedWindow::free() {
  if (win_ == MPI_WIN_NULL && node_comm_ == MPI_COMM_NULL) return;
  MPI_Win win = std::exchange(win_, MPI_WIN_NULL);
  MPI_Comm node = std::exchange(node_comm_, MPI_COMM_NULL);
  data_ = nullptr;
  size_ = 0;
  node_rank_ = node_size_ = 0;
  int unlocked = MPI_SUCCESS, freed = MPI_SUCCESS, comm_freed = MPI_SUCCESS;
  if (win != MPI_WIN_NULL) {
    --live_shared_windows;
    unlocked = MPI_Win_unlock_all(win);
    freed = MPI_Win_free(&win);
  }
  if (node != MPI_COMM_NULL) comm_freed = MPI_Comm_free(&node);
  check_mpi(unlocked, "MPI_Win_unlock_all");
  check_mpi(freed, "MPI_Win_free");
  check_mpi(comm_freed, "MPI_Comm_free");
}

void SharedWindow::release() noexcept {
  try {
    free();
  } catch (...) {
    // A destructor cannot report; the window is gone from this object either way.
  }
}

void SharedWindow::fence_node() {
  if (win_ == MPI_WIN_NULL) throw std::logic_error("SharedWindow::fence_node on an empty window");
  check_mpi(win_sync(win_), "MPI_Win_sync");
  check_mpi(MPI_Barrier(node_comm_), "MPI_Barrier");
  check_mpi(win_sync(win_), "MPI_Win_sync");
}

}  // namespace sdnn
