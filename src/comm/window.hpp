// window.hpp: one-sided communication (MPI RMA) as two RAII objects. It moves bytes and typed
// arrays; it knows nothing of networks.
//   Window        one MPI_Win_allocate segment per rank on a communicator, kept in a single
//                 MPI_Win_lock_all(MPI_MODE_NOCHECK) epoch for its whole life; MPI_Get/MPI_Put in
//                 chunks of at most INT_MAX bytes (byte offsets as MPI_Aint, counts as size_t),
//                 bounds-checked against every rank's segment size (gathered at creation: sizes
//                 before data).
//   SharedWindow  one MPI_Win_allocate_shared segment per node, allocated by the node's rank 0
//                 and mapped by every rank of the node (one read-only copy per node).
// Errors from MPI calls throw std::runtime_error("MPI_Xxx: <MPI error string>"); misuse (an
// empty window, an out-of-range rank or offset) throws std::invalid_argument or std::logic_error.
//
// Collective calls (every rank of the communicator, same order): the constructors, free(),
// barrier(), fence_node(), all_sizes(), the destructor of a live window, and move assignment
// into a live window (it frees the target first). An exception thrown on some ranks only must
// be agreed on (e.g. MpiSession::any) before live windows are destroyed, or the other ranks
// wait forever in MPI_Win_free. Transfers and flushes are for the thread that calls MPI
// (MPI_THREAD_FUNNELED), not for OpenMP workers.
//
// Open MPI 4.1 notes (Debian 12): MPI_Win_allocate goes through osc/rdma, which places the
// segments of the ranks of one node in a /dev/shm file (so /dev/shm must hold them all) named
// after the communicator's context id; two sibling communicators of one MPI_Comm_split share
// that id, so windows created on them at the same moment on one node can collide
// (open-mpi/ompi#9492, fixed in 5.0): create such windows one group at a time, or prefer one
// window on the parent communicator. MPI_Win_flush does not check its rank (an out-of-range
// rank crashes), which is why every rank is checked here before MPI sees it.
#pragma once

#include <mpi.h>

#include <climits>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

namespace sdnn {

// Collective over `comm`: every rank's `mine`, in rank order, on every rank (MPI_Allgather).
std::vector<std::size_t> all_sizes(MPI_Comm comm, std::size_t mine);

// Throws std::runtime_error("<call>: <MPI error string>") when `rc` is not MPI_SUCCESS.
void check_mpi(int rc, const char* call);

class Window {
 public:
  // The largest count one MPI_Get/MPI_Put takes (an int); longer transfers are split.
  static constexpr std::size_t max_chunk_bytes = static_cast<std::size_t>(INT_MAX);

  // An empty window: valid() is false, size() is 0, nothing to free.
  Window() noexcept = default;
  // Collective over `comm`: allocates `bytes` bytes on this rank (ranks may differ, 0 allowed;
  // with `same_size` every rank must pass the same value, checked, and MPI is told so), sets
  // MPI_ERRORS_RETURN on the window and opens the lock_all epoch. `comm` must outlive the window.
  Window(MPI_Comm comm, std::size_t bytes, bool same_size = false);
  ~Window();

  Window(const Window&) = delete;
  Window& operator=(const Window&) = delete;
  // Takes `other`'s window; `other` becomes empty. Not collective.
  Window(Window&& other) noexcept;
  // Frees this window first when it is live, which makes the assignment COLLECTIVE over this
  // window's communicator in that case (every rank must assign at the same point); into an
  // empty window it is local. Self-assignment does nothing. Returns *this.
  Window& operator=(Window&& other);

  // Collective: closes the epoch (MPI_Win_unlock_all) and frees the window (MPI_Win_free).
  // The window is empty afterwards; calling free() on an empty window does nothing.
  void free();

  std::byte* data() noexcept { return data_; }
  const std::byte* data() const noexcept { return data_; }
  template <class T>
  T* as() noexcept {
    return reinterpret_cast<T*>(data_);
  }
  template <class T>
  const T* as() const noexcept {
    return reinterpret_cast<const T*>(data_);
  }
  // This rank's segment, in bytes.
  std::size_t size() const noexcept { return size_; }
  // Rank `rank`'s segment, in bytes.
  std::size_t size_of(int rank) const;
  bool valid() const noexcept { return win_ != MPI_WIN_NULL; }
  MPI_Comm comm() const noexcept { return comm_; }
  MPI_Win handle() const noexcept { return win_; }
  int rank() const noexcept { return rank_; }
  int comm_size() const noexcept { return comm_size_; }
  // How many Windows hold an MPI window in this process (for leak checks).
  static int live_count() noexcept;

  // The largest count of one MPI call (default max_chunk_bytes); lowered in tests to exercise
  // chunking with small buffers. Must be in [1, max_chunk_bytes].
  void set_chunk_bytes(std::size_t bytes);
  std::size_t chunk_bytes() const noexcept { return chunk_bytes_; }

  // Start copying `bytes` bytes from byte `target_offset` of `target_rank`'s segment into
  // `destination` (MPI_Get). Complete with flush(target_rank)/flush_all()/flush_local*.
  // 0 bytes issues nothing. The range must lie within the target's segment.
  void get(void* destination, std::size_t bytes, int target_rank, std::size_t target_offset);
  // Start copying `bytes` bytes from `source` to byte `target_offset` of `target_rank`'s
  // segment (MPI_Put). `source` may be reused after flush_local/flush; the target sees the
  // data after flush plus a synchronisation with it (barrier()).
  void put(const void* source, std::size_t bytes, int target_rank, std::size_t target_offset);

  // Typed wrappers: `count` elements of T starting at element `first` of the target's segment
  // (byte offset first * sizeof(T)); overflow of the byte arithmetic is checked.
  template <class T>
  void get_elements(T* destination, std::size_t count, int target_rank, std::size_t first) {
    static_assert(std::is_trivially_copyable_v<T>, "RMA moves bytes");
    get(destination, element_bytes(count, sizeof(T)), target_rank, element_bytes(first, sizeof(T)));
  }
  template <class T>
  void put_elements(const T* source, std::size_t count, int target_rank, std::size_t first) {
    static_assert(std::is_trivially_copyable_v<T>, "RMA moves bytes");
    put(source, element_bytes(count, sizeof(T)), target_rank, element_bytes(first, sizeof(T)));
  }

  // Complete every operation this rank issued to `rank` (both ends) / to every rank.
  void flush(int rank);
  void flush_all();
  // Complete locally (buffers reusable; gets have arrived) to `rank` / to every rank.
  void flush_local(int rank);
  void flush_local_all();
  // MPI_Win_sync: reconcile this rank's view of its own segment (after peers put into it and a
  // synchronisation with them, or before peers get what this rank stored locally).
  void sync();
  // Collective: the synchronisation point. flush_all, sync, MPI_Barrier, sync: afterwards every
  // put issued anywhere before it, and every local store into a segment, is visible to all.
  void barrier();

 private:
  static std::size_t element_bytes(std::size_t count, std::size_t element_size);
  void check_range(const char* what, std::size_t bytes, int target_rank, std::size_t target_offset) const;
  void require_valid(const char* what) const;
  void release() noexcept;  // destructor path: frees, ignoring errors

  MPI_Win win_ = MPI_WIN_NULL;
  MPI_Comm comm_ = MPI_COMM_NULL;
  std::byte* data_ = nullptr;
  std::size_t size_ = 0;
  std::vector<std::size_t> sizes_;  // every rank's segment, in bytes
  std::size_t chunk_bytes_ = max_chunk_bytes;
  int rank_ = 0, comm_size_ = 0;
  // Under SimGrid's SMPI only (empty otherwise): which ranks this rank has issued gets or puts to
  // since it last flushed them. SMPI's MPI_Win_flush_all visits the window of every rank of the
  // communicator (simulated locks and waits: O(ranks) per call, O(ranks^2) per layer of the
  // job, which made 896 simulated ranks unaffordable), so flush_all flushes those ranks one by one
  // there: the same completion of this rank's operations.
  std::vector<char> issued_to_;
};

class SharedWindow {
 public:
  SharedWindow() noexcept = default;
  // Collective over `comm`: splits it by node (MPI_Comm_split_type MPI_COMM_TYPE_SHARED; the node
  // communicator is owned by this object), the node's rank 0 allocates `bytes` bytes (the value
  // passed on the other ranks is ignored) and every rank of the node maps that segment
  // (MPI_Win_shared_query). Opens a lock_all epoch on the node window for its whole life.
  SharedWindow(MPI_Comm comm, std::size_t bytes);
  ~SharedWindow();

  SharedWindow(const SharedWindow&) = delete;
  SharedWindow& operator=(const SharedWindow&) = delete;
  SharedWindow(SharedWindow&& other) noexcept;
  // Same rules as Window: collective over the node communicator when the target is live.
  SharedWindow& operator=(SharedWindow&& other);

  // Collective over the node: unlock_all, MPI_Win_free, MPI_Comm_free. Idempotent.
  void free();

  // The node's segment (the same memory on every rank of the node).
  std::byte* data() noexcept { return data_; }
  const std::byte* data() const noexcept { return data_; }
  template <class T>
  T* as() noexcept {
    return reinterpret_cast<T*>(data_);
  }
  template <class T>
  const T* as() const noexcept {
    return reinterpret_cast<const T*>(data_);
  }
  // The segment's size in bytes (the leader's `bytes`), on every rank of the node.
  std::size_t size() const noexcept { return size_; }
  bool valid() const noexcept { return win_ != MPI_WIN_NULL; }
  bool is_node_leader() const noexcept { return valid() && node_rank_ == 0; }
  int node_rank() const noexcept { return node_rank_; }
  int node_size() const noexcept { return node_size_; }
  MPI_Comm node_comm() const noexcept { return node_comm_; }
  MPI_Win handle() const noexcept { return win_; }
  // How many SharedWindows hold an MPI window in this process (for leak checks).
  static int live_count() noexcept;

  // Collective over the node: MPI_Win_sync, barrier, MPI_Win_sync. Stores into the segment
  // made by any rank of the node before it are visible to every rank of the node after it.
  void fence_node();

 private:
  void release() noexcept;

  MPI_Win win_ = MPI_WIN_NULL;
  MPI_Comm node_comm_ = MPI_COMM_NULL;
  std::byte* data_ = nullptr;
  std::size_t size_ = 0;
  int node_rank_ = 0, node_size_ = 0;
};

}  // namespace sdnn
