// window.cpp: RAII MPI windows (see window.hpp): creation with sizes gathered first, one
// lock_all epoch per window, chunked bounds-checked MPI_Get/MPI_Put, collective free.
#include "comm/window.hpp"

#include "comm/mpi_library.hpp"

#include <algorithm>
#include <atomic>
#include <cstdint>
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

std::string describe(std::size_t bytes, int rank, std::size_t offset) {
  return std::to_string(bytes) + " bytes at byte offset " + std::to_string(offset) + " of rank " +
         std::to_string(rank);
}

}  // namespace

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

Window::Window(MPI_Comm comm, std::size_t bytes, bool same_size) {
  if (comm == MPI_COMM_NULL) throw std::invalid_argument("Window: MPI_COMM_NULL");
  // Sizes before data: every rank learns every size, so a bad size fails on every rank alike
  // (no rank is left waiting in MPI_Win_allocate).
  std::vector<std::size_t> sizes = all_sizes(comm, bytes);
  for (std::size_t r = 0; r < sizes.size(); ++r) {
    if (sizes[r] > max_aint)
      throw std::invalid_argument("Window: rank " + std::to_string(r) + " asked for " + std::to_string(sizes[r]) +
                                  " bytes, more than MPI_Aint holds");
    if (same_size && sizes[r] != sizes[0])
      throw std::invalid_argument("Window: same_size requested but rank " + std::to_string(r) + " asked for " +
                                  std::to_string(sizes[r]) + " bytes and rank 0 for " + std::to_string(sizes[0]));
  }
  check_mpi(MPI_Comm_rank(comm, &rank_), "MPI_Comm_rank");
  check_mpi(MPI_Comm_size(comm, &comm_size_), "MPI_Comm_size");

  WindowInfo info(same_size);
  void* base = nullptr;
  MPI_Win win = MPI_WIN_NULL;
  check_mpi(MPI_Win_allocate(static_cast<MPI_Aint>(bytes), 1, info.get(), comm, &base, &win), "MPI_Win_allocate");
  win_ = win;
  ++live_windows;
  comm_ = comm;
  data_ = static_cast<std::byte*>(base);
  size_ = bytes;
  sizes_ = std::move(sizes);
  if (mpi_is_simulated()) issued_to_.assign(static_cast<std::size_t>(comm_size_), 0);
  try {
    check_mpi(MPI_Win_set_errhandler(win_, MPI_ERRORS_RETURN), "MPI_Win_set_errhandler");
    check_mpi(MPI_Win_lock_all(MPI_MODE_NOCHECK, win_), "MPI_Win_lock_all");
  } catch (...) {
    release();
    throw;
  }
}

Window::~Window() { release(); }

Window::Window(Window&& other) noexcept
    : win_(std::exchange(other.win_, MPI_WIN_NULL)),
      comm_(std::exchange(other.comm_, MPI_COMM_NULL)),
      data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      sizes_(std::move(other.sizes_)),
      chunk_bytes_(std::exchange(other.chunk_bytes_, max_chunk_bytes)),
      rank_(std::exchange(other.rank_, 0)),
      comm_size_(std::exchange(other.comm_size_, 0)),
      issued_to_(std::move(other.issued_to_)) {
  other.sizes_.clear();
  other.issued_to_.clear();
}

Window& Window::operator=(Window&& other) {
  if (this == &other) return *this;
  free();  // collective when this window is live; if it throws, `other` is untouched
  win_ = std::exchange(other.win_, MPI_WIN_NULL);
  comm_ = std::exchange(other.comm_, MPI_COMM_NULL);
  data_ = std::exchange(other.data_, nullptr);
  size_ = std::exchange(other.size_, 0);
  sizes_ = std::move(other.sizes_);
  other.sizes_.clear();
  chunk_bytes_ = std::exchange(other.chunk_bytes_, max_chunk_bytes);
  rank_ = std::exchange(other.rank_, 0);
  comm_size_ = std::exchange(other.comm_size_, 0);
  issued_to_ = std::move(other.issued_to_);
  other.issued_to_.clear();
  return *this;
}

void Window::free() {
  if (win_ == MPI_WIN_NULL) return;
  // Empty this object first: whatever MPI answers, it no longer owns a window.
  MPI_Win win = std::exchange(win_, MPI_WIN_NULL);
  comm_ = MPI_COMM_NULL;
  data_ = nullptr;
  size_ = 0;
  sizes_.clear();
  issued_to_.clear();
  chunk_bytes_ = max_chunk_bytes;
  rank_ = comm_size_ = 0;
  --live_windows;
  const int unlocked = MPI_Win_unlock_all(win);
  const int freed = MPI_Win_free(&win);
  check_mpi(unlocked, "MPI_Win_unlock_all");
  check_mpi(freed, "MPI_Win_free");
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
  if (!issued_to_.empty()) issued_to_[static_cast<std::size_t>(target_rank)] = 1;
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

void Window::put(const void* source, std::size_t bytes, int target_rank, std::size_t target_offset) {
  check_range("put", bytes, target_rank, target_offset);
  if (bytes == 0) return;
  if (source == nullptr) throw std::invalid_argument("Window::put: null source");
  if (!issued_to_.empty()) issued_to_[static_cast<std::size_t>(target_rank)] = 1;
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
  if (!issued_to_.empty()) issued_to_[static_cast<std::size_t>(rank)] = 0;
}

void Window::flush_all() {
  require_valid("flush_all");
  if (issued_to_.empty()) {
    check_mpi(MPI_Win_flush_all(win_), "MPI_Win_flush_all");
    return;
  }
  for (std::size_t r = 0; r < issued_to_.size(); ++r)
    if (issued_to_[r]) flush(static_cast<int>(r));
}

void Window::flush_local(int rank) {
  check_range("flush_local", 0, rank, 0);
  check_mpi(MPI_Win_flush_local(rank, win_), "MPI_Win_flush_local");
}

void Window::flush_local_all() {
  require_valid("flush_local_all");
  check_mpi(MPI_Win_flush_local_all(win_), "MPI_Win_flush_local_all");
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

int SharedWindow::live_count() noexcept { return live_shared_windows.load(); }

SharedWindow::SharedWindow(MPI_Comm comm, std::size_t bytes) {
  if (comm == MPI_COMM_NULL) throw std::invalid_argument("SharedWindow: MPI_COMM_NULL");
  MPI_Comm node = MPI_COMM_NULL;
  check_mpi(MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node), "MPI_Comm_split_type");
  node_comm_ = node;
  try {
    check_mpi(MPI_Comm_set_errhandler(node_comm_, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
    check_mpi(MPI_Comm_rank(node_comm_, &node_rank_), "MPI_Comm_rank");
    check_mpi(MPI_Comm_size(node_comm_, &node_size_), "MPI_Comm_size");
    // Sizes before data: the whole node learns the leader's size, so a bad one fails everywhere.
    std::uint64_t leader_bytes = bytes;
    check_mpi(MPI_Bcast(&leader_bytes, 1, MPI_UINT64_T, 0, node_comm_), "MPI_Bcast");
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
  } catch (...) {
    release();
    throw;
  }
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
