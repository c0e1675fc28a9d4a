// mpi_session.cpp: see mpi_session.hpp.
#include "comm/mpi_session.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <vector>

namespace sdnn {

MpiSession::MpiSession(int* argc, char*** argv) {
  int provided = 0;
  if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
    std::fprintf(stderr, "sdnn: MPI_Init_thread failed\n");
    std::exit(1);
  }
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
  const NodePlace node = node_place(MPI_COMM_WORLD);
  node_rank_ = node.rank;
  node_size_ = node.size;
}

NodePlace node_place(MPI_Comm comm) {
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm node = MPI_COMM_NULL;
  MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node);
  NodePlace place;
  MPI_Comm_rank(node, &place.rank);
  MPI_Comm_size(node, &place.size);
  MPI_Comm_free(&node);
  return place;
}

MpiSession::~MpiSession() { MPI_Finalize(); }

bool MpiSession::any(bool failed) const {
  int mine = failed ? 1 : 0, all = 0;
  MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_LOR, MPI_COMM_WORLD);
  return all != 0;
}

void MpiSession::agree(const std::exception_ptr& failure) const {
  if (!any(failure != nullptr)) return;
  if (failure) std::rethrow_exception(failure);
  throw PeerFailure();
}

std::string MpiSession::first_failure(bool failed, const std::string& message) const {
  int mine = failed ? rank_ : size_, first = size_;
  MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  if (first == size_) return "";
  std::uint64_t length = rank_ == first ? message.size() : 0;
  MPI_Bcast(&length, 1, MPI_UINT64_T, first, MPI_COMM_WORLD);
  std::string text = rank_ == first ? message : std::string(length, ' ');
  MPI_Bcast(text.data(), static_cast<int>(length), MPI_CHAR, first, MPI_COMM_WORLD);
  return text;
}

std::vector<std::uint32_t> MpiSession::gather_to_root(const std::vector<std::uint32_t>& mine) const {
  const int count = static_cast<int>(mine.size());
  std::vector<int> counts(is_root() ? size_ : 0), displacements;
  MPI_Gather(&count, 1, MPI_INT, counts.data(), 1, MPI_INT, 0, MPI_COMM_WORLD);
  std::vector<std::uint32_t> all;
  if (is_root()) {
    displacements.resize(size_);
    long long total = 0;
    for (int r = 0; r < size_; ++r) {
      displacements[r] = static_cast<int>(total);
      total += counts[r];
    }
    all.resize(static_cast<std::size_t>(total));
  }
  MPI_Gatherv(mine.data(), count, MPI_UINT32_T, all.data(), counts.data(), displacements.data(), MPI_UINT32_T, 0,
              MPI_COMM_WORLD);
  return all;
}

double MpiSession::sum(double mine) const {
  double all = 0;
  MPI_Allreduce(&mine, &all, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
  return all;
}

double MpiSession::max(double mine) const {
  double all = 0;
  MPI_Allreduce(&mine, &all, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  return all;
}

std::uint64_t MpiSession::sum(std::uint64_t mine) const {
  std::uint64_t all = 0;
  MPI_Allreduce(&mine, &all, 1, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
  return all;
}

void MpiSession::barrier() const { MPI_Barrier(MPI_COMM_WORLD); }

SubCommunicator::SubCommunicator(int colour, int key) {
  if (MPI_Comm_split(MPI_COMM_WORLD, colour, key, &comm_) != MPI_SUCCESS)
    throw std::runtime_error("MPI_Comm_split failed");
  MPI_Comm_rank(comm_, &rank_);
  MPI_Comm_size(comm_, &size_);
}

SubCommunicator::~SubCommunicator() {
  if (comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
}

namespace {

// An allreduce in place over `comm`; counts above INT_MAX are sent in pieces.
template <class T>
void reduce_in_place(std::vector<T>& values, MPI_Datatype type, MPI_Op op, MPI_Comm comm) {
  constexpr std::size_t piece = 1u << 30;
  for (std::size_t at = 0; at < values.size(); at += piece)
    if (MPI_Allreduce(MPI_IN_PLACE, values.data() + at, static_cast<int>(std::min(piece, values.size() - at)), type,
                      op, comm) != MPI_SUCCESS)
      throw std::runtime_error("MPI_Allreduce failed");
}

}  // namespace

void SubCommunicator::sum_in_place(std::vector<std::uint64_t>& values) const {
  reduce_in_place(values, MPI_UINT64_T, MPI_SUM, comm_);
}

void SubCommunicator::sum_in_place(std::vector<std::uint32_t>& values) const {
  reduce_in_place(values, MPI_UINT32_T, MPI_SUM, comm_);
}

void SubCommunicator::min_in_place(std::vector<std::uint8_t>& values) const {
  reduce_in_place(values, MPI_UINT8_T, MPI_MIN, comm_);
}

void SubCommunicator::max_in_place(std::vector<std::uint8_t>& values) const {
  reduce_in_place(values, MPI_UINT8_T, MPI_MAX, comm_);
}

std::uint64_t SubCommunicator::max(std::uint64_t mine) const {
  std::vector<std::uint64_t> one{mine};
  reduce_in_place(one, MPI_UINT64_T, MPI_MAX, comm_);
  return one[0];
}

}  // namespace sdnn
