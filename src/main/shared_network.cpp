// shared_network.cpp: see shared_network.hpp.
//
// Segment layout: a header of 2 * layers uint64 (nnz of CSR and of CSC of each layer), then per
// layer: CSR offsets, CSR indices, CSR values, CSC offsets, CSC indices, CSC values, bias; each
// array starts at a multiple of 8 bytes.
#include "main/shared_network.hpp"

#include <cstring>

namespace sdnn {
namespace {

std::size_t aligned(std::size_t bytes) { return (bytes + 7) / 8 * 8; }

// Walks the arrays of every layer in segment order; visit(layer, csr_nnz, csc_nnz, offset of
// each of the 7 arrays).
template <class Visit>
std::size_t walk(const std::uint64_t* header, std::uint32_t layers, std::uint32_t neurons, Visit&& visit) {
  std::size_t at = aligned(2 * layers * sizeof(std::uint64_t));
  const std::size_t offsets_bytes = aligned((std::size_t{neurons} + 1) * sizeof(Offset));
  for (std::uint32_t l = 0; l < layers; ++l) {
    const std::uint64_t csr = header[2 * l], csc = header[2 * l + 1];
    std::size_t where[7];
    where[0] = at, at += offsets_bytes;
    where[1] = at, at += aligned(csr * sizeof(Index));
    where[2] = at, at += aligned(csr * sizeof(Value));
    where[3] = at, at += offsets_bytes;
    where[4] = at, at += aligned(csc * sizeof(Index));
    where[5] = at, at += aligned(csc * sizeof(Value));
    where[6] = at, at += aligned(std::size_t{neurons} * sizeof(Value));
    visit(l, where);
  }
  return at;
}

template <class T>
void put(std::byte* base, std::size_t at, const T* data, std::size_t count) {
  if (count > 0) std::memcpy(base + at, data, count * sizeof(T));
}

}  // namespace

SharedNetwork share_network(Network& network, std::uint32_t layers, std::uint32_t neurons) {
  SharedNetwork shared;
  // The leader knows the sizes; the others learn them from the header after the fence.
  std::vector<std::uint64_t> header(2 * layers, 0);
  for (std::uint32_t l = 0; l < network.size(); ++l) {
    header[2 * l] = network[l].weights_csr.nnz();
    header[2 * l + 1] = network[l].weights_csc.nnz();
  }
  const std::size_t bytes = walk(header.data(), layers, neurons, [](std::uint32_t, const std::size_t*) {});
  shared.window = SharedWindow(MPI_COMM_WORLD, network.empty() ? 0 : bytes);
  std::byte* base = shared.window.data();
  if (shared.window.is_node_leader()) {
    put(base, 0, header.data(), header.size());
    walk(header.data(), layers, neurons, [&](std::uint32_t l, const std::size_t* where) {
      const Layer& layer = network[l];
      put(base, where[0], layer.weights_csr.offsets.data(), std::size_t{neurons} + 1);
      put(base, where[1], layer.weights_csr.indices.data(), header[2 * l]);
      put(base, where[2], layer.weights_csr.values.data(), header[2 * l]);
      put(base, where[3], layer.weights_csc.offsets.data(), std::size_t{neurons} + 1);
      put(base, where[4], layer.weights_csc.indices.data(), header[2 * l + 1]);
      put(base, where[5], layer.weights_csc.values.data(), header[2 * l + 1]);
      put(base, where[6], layer.bias.data(), neurons);
    });
  }
  shared.window.fence_node();
  const auto* shared_header = reinterpret_cast<const std::uint64_t*>(base);
  Network views(layers);
  shared.bytes = walk(shared_header, layers, neurons, [&](std::uint32_t l, const std::size_t* where) {
    const auto at = [&](std::size_t offset) { return base + offset; };
    views[l].weights_csr = CsrMatrix::view(neurons, neurons, reinterpret_cast<const Offset*>(at(where[0])),
                                           reinterpret_cast<const Index*>(at(where[1])),
                                           reinterpret_cast<const Value*>(at(where[2])));
    views[l].weights_csc = CscMatrix::view(neurons, neurons, reinterpret_cast<const Offset*>(at(where[3])),
                                           reinterpret_cast<const Index*>(at(where[4])),
                                           reinterpret_cast<const Value*>(at(where[5])));
    const Value* bias = reinterpret_cast<const Value*>(at(where[6]));
    views[l].bias.assign(bias, bias + neurons);  // small: a private copy
    if (l < network.size())  // the leader's (small: each rank's own copy); the engine computes the others'
      views[l].column_groups = std::move(network[l].column_groups);
  });
  network = std::move(views);  // the leader's own copy goes here
  shared.ranks_on_node = shared.window.node_size();
  return shared;
}

}  // namespace sdnn
