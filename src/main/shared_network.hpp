// shared_network.hpp: one copy of a read-only network per node (--share-network). The node's
// leader rank lays its layers (CSR and CSC weights, bias) out in an MPI shared-memory window;
// every rank of the node, the leader included, then holds views of that one copy, and the
// leader drops its own. Ranks other than the leader never build the network at all.
#pragma once

#include <cstdint>

#include "comm/mpi_session.hpp"
#include "comm/window.hpp"
#include "spmm/layer.hpp"

namespace sdnn {

struct SharedNetwork {
  SharedWindow window;          // keeps the node's copy alive; free()d collectively at the end
  std::uint64_t bytes = 0;      // bytes of the network on the node
  int ranks_on_node = 1;
};

// Collective over MPI_COMM_WORLD. On the node leader, `network` holds the layers (both formats);
// elsewhere it is empty. Afterwards every rank's `network` views the node's shared copy.
SharedNetwork share_network(Network& network, std::uint32_t layers, std::uint32_t neurons);

}  // namespace sdnn
