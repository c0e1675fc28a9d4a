// commands.hpp: the subcommands of sdnn, dispatched from main() before the usual options.
//
//   sdnn generate --neurons N --layers L --seed S --out DIR [--inputs SOURCE] [--count M]
//       a RadiX-Net network in the official layout (DIR/neuronN/nN-lK.tsv) and, with --inputs,
//       DIR/sparse-images-N.tsv from `synthetic` or an MNIST-format idx3-ubyte file (.gz or not);
//   sdnn convert --network DIR --neurons N --layers L --input FILE [--inputs M] --out DIR2
//       the binary cache: DIR2/neuronN-lL.sdnn and DIR2/sparse-images-N-M.sdnn (io/archive.hpp).
// A subcommand runs on rank 0 (the other ranks wait); every file is written atomically. Exit
// status: 0 done, 1 bad input (one line "sdnn: error: ..."), 2 bad command line.
#pragma once

#include <string>
#include <vector>

#include "comm/mpi_session.hpp"

namespace sdnn {

// True when `name` (argv[1]) is a subcommand: "generate" or "convert".
bool is_subcommand(const std::string& name);

// Runs the subcommand args[0] with its options args[1..]; collective; returns the exit status.
int run_subcommand(const MpiSession& mpi, const std::vector<std::string>& args);

}  // namespace sdnn
