// commands.cpp: see commands.hpp.
#include "main/commands.hpp"

#include <cstdio>

namespace sdnn {

bool is_subcommand(const std::string& name) { return name == "generate" || name == "convert"; }

int run_subcommand(const MpiSession& mpi, const std::vector<std::string>& args) {
  if (mpi.is_root()) std::fprintf(stderr, "sdnn: error: '%s' is not implemented yet\n", args[0].c_str());
  return 2;
}

}  // namespace sdnn
