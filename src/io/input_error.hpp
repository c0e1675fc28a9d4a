// input_error.hpp: the one error type of sdnn for bad input. Its message names the file and,
// where there is one, the line: "path:line: what went wrong". The program prints it on one line
// and exits non-zero on every rank.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace sdnn {

class InputError : public std::runtime_error {
 public:
  InputError(const std::string& path, std::uint64_t line, const std::string& what)
      : std::runtime_error(path + ":" + std::to_string(line) + ": " + what) {}
  InputError(const std::string& path, const std::string& what) : std::runtime_error(path + ": " + what) {}
};

}  // namespace sdnn
