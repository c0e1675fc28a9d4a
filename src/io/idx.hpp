// idx.hpp: MNIST-format image files (idx3-ubyte, gzipped or not) turned into challenge inputs
// (SPEC.md, 'Files': images resized to sqrt(N) x sqrt(N), binarized, flattened column-major).
//
// - read_idx_images: the header (magic 0x00000803, image count, rows, columns, all big-endian)
//   and the pixels; a .gz file is inflated with zlib (detected by content, not by name).
// - fourier_resize: band-limited (Fourier) interpolation of n samples to m samples: the exact DFT
//   of the n samples, the spectrum zero-padded (m > n) or truncated (m < n) to m bins, an even
//   n's Nyquist bin split in half between +n/2 and -n/2 when padding, an even m's Nyquist bin
//   given both X[m/2] and X[-m/2] when truncating, then the inverse DFT scaled by 1/n, so that a
//   constant signal keeps its value (full scale stays 255). The map is linear and real; an image
//   is resized one axis at a time with its matrix (fourier_resize_matrix).
// - images_to_inputs: each image resized to side x side (side = sqrt(N)), a pixel set when
//   value / 255 > threshold (0.725), feature = c * side + r (0-based; r the pixel row, c the
//   pixel column), one input row per image. Results do not depend on the thread count.
// Faults (missing file, bad magic, bad gzip, truncation) throw InputError naming the file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "spmm/sparse_matrix.hpp"

namespace sdnn {

inline constexpr double kMnistThreshold = 0.725;  // of full scale (SPEC.md, 'Files')

struct IdxImages {
  std::uint32_t count = 0, rows = 0, cols = 0;
  std::vector<std::uint8_t> pixels;  // count images, each rows x cols, row by row (the file's order)

  const std::uint8_t* image(std::uint32_t i) const { return pixels.data() + static_cast<std::size_t>(i) * rows * cols; }
};

// The first `max_images` images of an idx3-ubyte file (all when 0 or more than it holds).
IdxImages read_idx_images(const std::string& path, std::uint32_t max_images = 0);

// `samples` (n of them) band-limited-resized to m samples (see above). n, m >= 1.
std::vector<double> fourier_resize(const std::vector<double>& samples, std::size_t m);

// The m x n matrix (row by row) of fourier_resize: column j is the resize of the j-th unit vector.
std::vector<double> fourier_resize_matrix(std::size_t n, std::size_t m);

// A rows x cols image (row by row) resized to side x side (row by row), one axis at a time.
std::vector<double> resize_image(const std::uint8_t* pixels, std::uint32_t rows, std::uint32_t cols,
                                 std::uint32_t side);

// The side of an N-neuron image: sqrt(N); throws std::invalid_argument when N is not a square.
std::uint32_t image_side(Index neurons);

// Images [first, first + count) as `count` x N inputs (values 1), the resize above.
CsrMatrix images_to_inputs(const IdxImages& images, std::uint32_t first, std::uint32_t count, Index neurons,
                           int threads, double threshold = kMnistThreshold);

}  // namespace sdnn
