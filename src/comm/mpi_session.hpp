// mpi_session.hpp: the MPI environment of the program (RAII init/finalize) and the few
// collectives the driver needs: agreeing on failure, gathering index lists and summing or
// maximising scalars. It moves numbers; it knows nothing of networks.
#pragma once

#include <mpi.h>

#include <cstdint>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

namespace sdnn {

// Thrown on the ranks that did not fail when another rank did (see MpiSession::agree): the
// failing rank's own exception carries the message.
struct PeerFailure : std::runtime_error {
  PeerFailure() : std::runtime_error("another rank failed") {}
};

// A rank's place among the ranks of `comm` that share its node (MPI_Comm_split_type
// MPI_COMM_TYPE_SHARED, keyed by the rank in `comm`). Collective over `comm`.
struct NodePlace {
  int rank = 0, size = 1;
};
NodePlace node_place(MPI_Comm comm);

class MpiSession {
 public:
  MpiSession(int* argc, char*** argv);
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  bool is_root() const { return rank_ == 0; }
  // This rank's place among the ranks of its node (shared-memory domain).
  int node_rank() const { return node_rank_; }
  int node_size() const { return node_size_; }

  // Collective: true on every rank when `failed` is true on any rank.
  bool any(bool failed) const;
  // Collective: when any rank passes a failure, rethrows it on that rank and throws PeerFailure
  // on the others; does nothing when none failed.
  void agree(const std::exception_ptr& failure) const;
  // Collective: the message of the lowest failing rank (failed ranks pass their message), on
  // every rank; "" when none failed.
  std::string first_failure(bool failed, const std::string& message) const;
  // Collective: the concatenation, in rank order, of every rank's list, on rank 0 (empty elsewhere).
  std::vector<std::uint32_t> gather_to_root(const std::vector<std::uint32_t>& mine) const;
  double sum(double mine) const;
  double max(double mine) const;
  std::uint64_t sum(std::uint64_t mine) const;
  void barrier() const;

 private:
  int rank_ = 0, size_ = 1, node_rank_ = 0, node_size_ = 1;
};

// A part of MPI_COMM_WORLD: the ranks that pass the same colour, ordered by key
// (MPI_Comm_split; freed by the destructor). Creating and freeing it are collective.
class SubCommunicator {
 public:
  SubCommunicator(int colour, int key);
  ~SubCommunicator();
  SubCommunicator(const SubCommunicator&) = delete;
  SubCommunicator& operator=(const SubCommunicator&) = delete;
  MPI_Comm comm() const { return comm_; }
  // Asked of MPI once, at creation (loops over peers call them often).
  int rank() const { return rank_; }
  int size() const { return size_; }
  // Collective over the part: element by element sum, minimum or maximum of every rank's values,
  // in place.
  void sum_in_place(std::vector<std::uint64_t>& values) const;
  void sum_in_place(std::vector<std::uint32_t>& values) const;
  void min_in_place(std::vector<std::uint8_t>& values) const;
  void max_in_place(std::vector<std::uint8_t>& values) const;
  std::uint64_t max(std::uint64_t mine) const;

 private:
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1;
};

}  // namespace sdnn
