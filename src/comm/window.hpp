// window.hpp: one-sided communication (MPI RMA) as two RAII objects. It moves bytes and typed
// arrays; it knows nothing of networks.
//   Window        one segment per rank on a communicator, kept in a single
//                 MPI_Win_lock_all(MPI_MODE_NOCHECK) epoch for its whole life; MPI_Get/MPI_Put in
//                 chunks of at most INT_MAX bytes (byte offsets as MPI_Aint, counts as size_t),
//                 bounds-checked against every rank's segment size (gathered at creation: sizes
//                 before data). Two backends make the segments (WindowBackend): MPI_Win_allocate,
//                 or MPI_Win_create over MPI_Alloc_mem.
//   SharedWindow  one MPI_Win_allocate_shared segment per node, allocated by the node's rank 0
//                 and mapped by every rank of the node (one read-only copy per node).
// Errors from MPI calls throw std::runtime_error("MPI_Xxx: <MPI error string>"); misuse (an
// empty window, an out-of-range rank or offset) throws std::invalid_argument or std::logic_error.
//
// Check before trusting: every window is checked when it is created. Each rank writes a known
// pattern (a function of its rank, offset and window number) into the first and last bytes of its
// segment; every rank gets those bytes from its neighbours (the previous and next ranks that hold
// a segment) with MPI_Get, or, in a SharedWindow, reads them from the node's segment; one
// MPI_Allreduce agrees on the outcome. A mismatch means the MPI library's one-sided communication
// is broken (Debian 12's MPICH 4.0.2 gets wrong bytes from MPI_Win_allocate segments whose size
// is not a multiple of 16: pmodels/mpich#6110; see docs/mpi.md). With the automatic choice, the
// Window is then made again with MPI_Win_create over MPI_Alloc_mem, every later Window of the
// process uses that backend, and rank 0 of the communicator says so on one line on stderr; when
// that fails the check too, or the backend was chosen by hand, or a SharedWindow fails it, every
// rank of the communicator throws the same WindowCheckFailure, naming the MPI library and
// version and what was wrong. The check never throws on some ranks only.
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
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace sdnn {

// Collective over `comm`: every rank's `mine`, in rank order, on every rank (MPI_Allgather).
std::vector<std::size_t> all_sizes(MPI_Comm comm, std::size_t mine);

// Throws std::runtime_error("<call>: <MPI error string>") when `rc` is not MPI_SUCCESS.
void check_mpi(int rc, const char* call);

// The first line of MPI_Get_library_version, blanks squeezed (e.g. "MPICH Version: 4.0.2",
// "Open MPI v4.1.4, package: Debian OpenMPI, ...").
std::string mpi_library_version();

// How a Window's segments are made.
enum class WindowBackend {
  allocate,  // MPI_Win_allocate: MPI allocates (may place a node's segments in shared memory)
  create,    // MPI_Win_create over memory from MPI_Alloc_mem
};
// Which backend new Windows use. automatic: MPI_Win_allocate until a Window fails the check,
// MPI_Win_create over MPI_Alloc_mem from then on. allocate, create: that one, by hand (a failed
// check is then an error, not a switch).
enum class WindowBackendChoice { automatic, allocate, create };

// "MPI_Win_allocate" or "MPI_Win_create over MPI_Alloc_mem".
const char* to_string(WindowBackend backend);
// "auto", "allocate" or "create".
const char* to_string(WindowBackendChoice choice);
// "auto", "allocate" or "create"; throws std::invalid_argument naming the accepted words.
WindowBackendChoice parse_window_backend(const std::string& name);

// The choice for this process: set_window_backend (e.g. sdnn's --window-backend) wins; else the
// environment variable SDNN_WINDOW_BACKEND (auto|allocate|create; read at the first Window, a bad
// value throws std::invalid_argument there); else automatic. Setting it also forgets an
// automatic switch, so that MPI_Win_allocate is tried again. Not collective, but every rank of a
// communicator must choose alike (a Window throws std::invalid_argument on every rank otherwise).
void set_window_backend(WindowBackendChoice choice);
WindowBackendChoice window_backend_choice();
// The backend the next Window of this process will use.
WindowBackend window_backend();
// One line on the backend of the last Window this process created: which one and why (checked;
// chosen by hand; chosen by the check, with what MPI_Win_allocate got wrong); "" before any.
std::string window_backend_description();

// Thrown on every rank of the communicator when a window fails the check and no other backend
// may be tried; the message names the MPI library, its version and what was wrong.
struct WindowCheckFailure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// TEST-ONLY HOOK: makes the check of the named backends see wrong bytes, as a broken MPI library
// would (the last rank of the communicator flips every byte it got), so that tests can show the
// switch and the error without a broken library. `faults` is a sum of window_fault_* bits; 0
// turns it off. The environment variable SDNN_TEST_BREAK_WINDOW_CHECK (a comma-separated list
// of allocate, create, shared; read at the first Window) sets it for whole-program tests. Never
// set it in production: it makes sound windows fail.
constexpr unsigned window_fault_allocate = 1, window_fault_create = 2, window_fault_shared = 4;
void break_window_check_for_testing(unsigned faults);

class Window {
 public:
  // The largest count one MPI_Get/MPI_Put takes (an int); longer transfers are split.
  static constexpr std::size_t max_chunk_bytes = static_cast<std::size_t>(INT_MAX);

  // An empty window: valid() is false, size() is 0, nothing to free.
  Window() noexcept = default;
  // Collective over `comm`: allocates `bytes` bytes on this rank (ranks may differ, 0 allowed;
  // with `same_size` every rank must pass the same value, checked, and MPI is told so) with the
  // backend of window_backend(), sets MPI_ERRORS_RETURN on the window, opens the lock_all epoch
  // and checks the window (see the top of this file; may switch backend or throw
  // WindowCheckFailure on every rank). The segment's contents are undefined (the check leaves
  // its pattern in the first and last 8 bytes). `comm` must outlive the window.
  Window(MPI_Comm comm, std::size_t bytes, bool same_size = false);
  // Collective over `comm`: a window over `bytes` bytes of memory this rank already holds (e.g.
  // its part of a SharedWindow's node segment, so that the ranks of a node can also read each
  // other's segments in place), with MPI_Win_create, whatever window_backend() says; `memory`
  // must outlive the window (free() first). Checked as above, the check's pattern written into
  // the memory's first and last bytes; a failure throws WindowCheckFailure on every rank (no
  // other backend is tried). Every rank of `comm` must use this constructor (checked).
  // It leaves window_backend_description() as it was; a failed check's message names the memory
  // as "MPI_Win_create over <memory_name>".
  Window(MPI_Comm comm, std::byte* memory, std::size_t bytes, const std::string& memory_name);
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
  // The backend that made this window (meaningless when empty).
  WindowBackend backend() const noexcept { return backend_; }
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
  // One block of a target's segment: `bytes` bytes from byte `offset`.
  struct Block {
    std::size_t offset, bytes;
  };
  // Start copying `blocks` of `target_rank`'s segment into `destination`, back to back, in their
  // order: one MPI_Get of an indexed datatype per chunk of blocks (neighbouring blocks merged; a
  // block longer than the chunk limit goes in chunks of its own). Completed as get is. Every
  // block must lie within the target's segment; empty blocks are skipped.
  void get_blocks(void* destination, const std::vector<Block>& blocks, int target_rank);
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

  // Complete every operation this rank issued to `rank` (both ends) / to every rank. flush_all
  // and flush_local_all flush each target with operations outstanding one by one (MPI_Win_flush,
  // MPI_Win_flush_local): Debian's MPICH 4.0.2's MPI_Win_flush_all can return early.
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
  void note_pending(int rank);  // an operation to `rank` was issued: flush_all must flush it
  // Both public constructors: with callers_memory, the window is over `memory` (create), else
  // over the backend's.
  Window(MPI_Comm comm, std::size_t bytes, bool same_size, bool callers_memory, std::byte* memory,
         const std::string& memory_name);
  // Makes the MPI window with `backend` (MPI_Win_create over `callers`, when not null, instead of
  // memory of its own), sets its error handler, opens the epoch.
  void open(WindowBackend backend, MPI_Comm comm, std::size_t bytes, bool same_size, std::byte* callers);
  // The check (collective): "" when every rank got the right bytes, else what went wrong.
  std::string check(const std::vector<std::uint64_t>& window_numbers);

  MPI_Win win_ = MPI_WIN_NULL;
  MPI_Comm comm_ = MPI_COMM_NULL;
  WindowBackend backend_ = WindowBackend::allocate;
  void* allocated_ = nullptr;  // MPI_Alloc_mem's memory of the create backend, freed after the window
  std::byte* data_ = nullptr;
  std::size_t size_ = 0;
  std::vector<std::size_t> sizes_;  // every rank's segment, in bytes
  std::vector<int> pending_;         // targets given operations since the last flush_all (may repeat flushed ones)
  std::vector<char> is_pending_;     // per rank: operations issued and not flushed
  std::size_t chunk_bytes_ = max_chunk_bytes;
  int rank_ = 0, comm_size_ = 0;
};

class SharedWindow {
 public:
  SharedWindow() noexcept = default;
  // Collective over `comm`: splits it by node (MPI_Comm_split_type MPI_COMM_TYPE_SHARED; the node
  // communicator is owned by this object), the node's rank 0 allocates `bytes` bytes (the value
  // passed on the other ranks is ignored) and every rank of the node maps that segment
  // (MPI_Win_shared_query). Opens a lock_all epoch on the node window for its whole life.
  // Checked like a Window (the leader writes the pattern, every rank of the node reads it through
  // data(), one MPI_Allreduce over `comm`): a failure throws WindowCheckFailure on every rank of
  // `comm` (there is no other backend for shared windows).
  // Sizing::per_rank: `bytes` is each rank's part (the leader's value counts) and the leader
  // allocates node_size() x bytes, rank r's part at r x bytes, so that a caller needs no node
  // communicator of its own to size the segment.
  enum class Sizing { leader_total, per_rank };
  SharedWindow(MPI_Comm comm, std::size_t bytes, Sizing sizing = Sizing::leader_total);
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
  // Collective over `comm` (the communicator this window was made from): for each of its ranks,
  // the rank in `comm` of its node's leader (node rank 0) and its rank on its node, so that a rank
  // can tell the ranks of its own node (the same leader) and address any rank's part of a segment
  // laid out by node rank (its leader's, e.g. through a window the leaders expose). Throws
  // std::logic_error on an empty window (on every rank: the emptiness is the same everywhere).
  struct Places {
    std::vector<int> leader, node_rank;
  };
  Places places_of(MPI_Comm comm) const;
  MPI_Win handle() const noexcept { return win_; }
  // How many SharedWindows hold an MPI window in this process (for leak checks).
  static int live_count() noexcept;

  // Collective over the node: MPI_Win_sync, barrier, MPI_Win_sync. Stores into the segment
  // made by any rank of the node before it are visible to every rank of the node after it.
  void fence_node();

 private:
  void release() noexcept;
  // The check (collective over `comm`); throws WindowCheckFailure on every rank when it fails.
  void check(MPI_Comm comm, std::uint64_t window_number);

  MPI_Win win_ = MPI_WIN_NULL;
  MPI_Comm node_comm_ = MPI_COMM_NULL;
  std::byte* data_ = nullptr;
  std::size_t size_ = 0;
  int node_rank_ = 0, node_size_ = 0;
};

}  // namespace sdnn
