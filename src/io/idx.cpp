// idx.cpp: idx3-ubyte reading (zlib for .gz), band-limited resize and binarization (see idx.hpp).
#include "io/idx.hpp"

#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <complex>
#include <cstdio>
#include <stdexcept>

#include "io/input_error.hpp"
#include "io/tsv.hpp"

namespace sdnn {
namespace {

constexpr std::uint32_t kIdx3Magic = 0x00000803;  // unsigned bytes, 3 dimensions
constexpr double kPi = 3.14159265358979323846;

// A file read through zlib: gzip data is inflated, any other content is passed through as is.
class GzipReader {
 public:
  explicit GzipReader(const std::string& path) : path_(path) {
    file_size(path);  // InputError when missing, unreadable or a directory
    file_ = gzopen(path.c_str(), "rb");
    if (file_ == nullptr) throw InputError(path, "cannot open");
    gzbuffer(file_, 1 << 17);
  }
  ~GzipReader() { gzclose_r(file_); }
  GzipReader(const GzipReader&) = delete;
  GzipReader& operator=(const GzipReader&) = delete;

  // Reads up to `size` bytes; returns how many (fewer only at the end of the data). A gzip stream
  // that is corrupt, or ends early or without its trailer, is an InputError.
  std::size_t read(void* out, std::size_t size) {
    std::size_t done = 0;
    while (done < size) {
      const unsigned piece = static_cast<unsigned>(std::min<std::size_t>(size - done, 1u << 30));
      const int n = gzread(file_, static_cast<char*>(out) + done, piece);
      int code = Z_OK;
      const char* message = n <= 0 ? gzerror(file_, &code) : "";
      if (n < 0 || code != Z_OK)  // Z_BUF_ERROR: the gzip stream ends early; others: bad data or CRC
        throw InputError(path_, std::string("corrupt or truncated gzip data (") + message + ")");
      if (n == 0) break;
      done += static_cast<std::size_t>(n);
    }
    return done;
  }

 private:
  std::string path_;
  gzFile file_ = nullptr;
};

std::uint32_t big_endian_u32(const unsigned char* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | std::uint32_t{p[3]};
}

// The resize of one image with both axes' matrices computed once.
class ImageResizer {
 public:
  ImageResizer(std::uint32_t rows, std::uint32_t cols, std::uint32_t side)
      : rows_(rows), cols_(cols), side_(side), along_rows_(fourier_resize_matrix(rows, side)),
        along_cols_(fourier_resize_matrix(cols, side)) {}

  // out: side x side, row by row; tmp: scratch.
  void resize(const std::uint8_t* pixels, std::vector<double>& out, std::vector<double>& tmp) const {
    // tmp (rows x side) = pixels * along_cols^T: each pixel row resized.
    tmp.assign(static_cast<std::size_t>(rows_) * side_, 0.0);
    for (std::uint32_t i = 0; i < rows_; ++i) {
      const std::uint8_t* p = pixels + static_cast<std::size_t>(i) * cols_;
      double* t = tmp.data() + static_cast<std::size_t>(i) * side_;
      for (std::uint32_t c = 0; c < side_; ++c) {
        const double* a = along_cols_.data() + static_cast<std::size_t>(c) * cols_;
        double sum = 0;
        for (std::uint32_t j = 0; j < cols_; ++j) sum += a[j] * p[j];
        t[c] = sum;
      }
    }
    // out (side x side) = along_rows * tmp: each column resized.
    out.assign(static_cast<std::size_t>(side_) * side_, 0.0);
    for (std::uint32_t r = 0; r < side_; ++r) {
      double* o = out.data() + static_cast<std::size_t>(r) * side_;
      const double* a = along_rows_.data() + static_cast<std::size_t>(r) * rows_;
      for (std::uint32_t i = 0; i < rows_; ++i) {
        const double w = a[i];
        const double* t = tmp.data() + static_cast<std::size_t>(i) * side_;
        for (std::uint32_t c = 0; c < side_; ++c) o[c] += w * t[c];
      }
    }
  }

 private:
  std::uint32_t rows_, cols_, side_;
  std::vector<double> along_rows_, along_cols_;  // side x rows, side x cols
};

}  // namespace

IdxImages read_idx_images(const std::string& path, std::uint32_t max_images) {
  GzipReader in(path);
  unsigned char header[16];
  const std::size_t got = in.read(header, sizeof header);
  if (got < 4 || big_endian_u32(header) != kIdx3Magic) {
    char seen[16] = "";
    if (got >= 4) std::snprintf(seen, sizeof seen, "0x%08x", big_endian_u32(header));
    throw InputError(path, std::string("not an idx3-ubyte image file (magic ") + (got >= 4 ? seen : "missing") +
                               ", expected 0x00000803)");
  }
  if (got < sizeof header) throw InputError(path, "truncated idx header (16 bytes expected)");
  IdxImages images;
  const std::uint32_t count = big_endian_u32(header + 4);
  images.rows = big_endian_u32(header + 8);
  images.cols = big_endian_u32(header + 12);
  if (images.rows == 0 || images.cols == 0 || images.rows > 4096 || images.cols > 4096)
    throw InputError(path, "idx images of " + std::to_string(images.rows) + " x " + std::to_string(images.cols) +
                               " pixels: expected 1 to 4096 per axis");
  images.count = max_images == 0 ? count : std::min(count, max_images);
  const std::size_t image_bytes = static_cast<std::size_t>(images.rows) * images.cols;
  images.pixels.resize(image_bytes * images.count);
  const std::size_t read = in.read(images.pixels.data(), images.pixels.size());
  if (read < images.pixels.size())
    throw InputError(path, "truncated: the header announces " + std::to_string(count) + " images of " +
                               std::to_string(images.rows) + " x " + std::to_string(images.cols) +
                               " pixels, the data ends in image " + std::to_string(read / image_bytes + 1));
  if (images.count == count) {  // read to the end, so that a gzip stream's CRC is checked too
    char extra = 0;
    if (in.read(&extra, 1) != 0) throw InputError(path, "unexpected data after the " + std::to_string(count) + " images");
  }
  return images;
}

std::vector<double> fourier_resize(const std::vector<double>& samples, std::size_t m) {
  const std::size_t n = samples.size();
  if (n == 0 || m == 0) throw std::invalid_argument("fourier_resize needs at least one sample in and out");
  // The exact DFT, angles reduced modulo n first so that large j*k lose no precision.
  std::vector<std::complex<double>> spectrum(n);
  for (std::size_t k = 0; k < n; ++k) {
    std::complex<double> sum = 0;
    for (std::size_t j = 0; j < n; ++j) sum += samples[j] * std::polar(1.0, -2 * kPi * static_cast<double>(j * k % n) / n);
    spectrum[k] = sum;
  }
  // Frequencies -h..h with h = (K-1)/2 are copied; an even K also has the Nyquist frequency K/2.
  const std::size_t k_common = std::min(n, m), h = (k_common - 1) / 2;
  std::vector<std::complex<double>> padded(m, 0.0);
  for (std::size_t f = 0; f <= h; ++f) padded[f] = spectrum[f];
  for (std::size_t f = 1; f <= h; ++f) padded[m - f] = spectrum[n - f];
  if (k_common % 2 == 0) {
    const std::size_t nyquist = k_common / 2;
    if (m > n) {  // the input's Nyquist bin becomes two bins, +n/2 and -n/2, half each
      padded[nyquist] += spectrum[nyquist] / 2.0;
      padded[m - nyquist] += spectrum[nyquist] / 2.0;
    } else if (m < n) {  // the output's Nyquist bin receives both X[m/2] and X[-m/2]
      padded[nyquist] = spectrum[nyquist] + spectrum[n - nyquist];
    } else {
      padded[nyquist] = spectrum[nyquist];
    }
  }
  // Inverse DFT of size m, scaled by 1/n (1/m for the inverse, m/n to keep the amplitude).
  std::vector<double> out(m);
  for (std::size_t j = 0; j < m; ++j) {
    std::complex<double> sum = 0;
    for (std::size_t k = 0; k < m; ++k) sum += padded[k] * std::polar(1.0, 2 * kPi * static_cast<double>(j * k % m) / m);
    out[j] = sum.real() / static_cast<double>(n);
  }
  return out;
}

std::vector<double> fourier_resize_matrix(std::size_t n, std::size_t m) {
  std::vector<double> matrix(m * n);
  std::vector<double> unit(n, 0.0);
  for (std::size_t j = 0; j < n; ++j) {
    unit[j] = 1.0;
    const std::vector<double> column = fourier_resize(unit, m);
    unit[j] = 0.0;
    for (std::size_t i = 0; i < m; ++i) matrix[i * n + j] = column[i];
  }
  return matrix;
}

std::vector<double> resize_image(const std::uint8_t* pixels, std::uint32_t rows, std::uint32_t cols,
                                 std::uint32_t side) {
  std::vector<double> out, tmp;
  ImageResizer(rows, cols, side).resize(pixels, out, tmp);
  return out;
}

std::uint32_t image_side(Index neurons) {
  const auto side = static_cast<std::uint32_t>(std::llround(std::sqrt(static_cast<double>(neurons))));
  if (neurons == 0 || static_cast<std::uint64_t>(side) * side != neurons)
    throw std::invalid_argument("image inputs need N = side * side neurons (1024, 4096, 16384, 65536, ...), not " +
                                std::to_string(neurons));
  return side;
}

CsrMatrix images_to_inputs(const IdxImages& images, std::uint32_t first, std::uint32_t count, Index neurons,
                           int threads, double threshold) {
  if (static_cast<std::uint64_t>(first) + count > images.count)
    throw std::invalid_argument("images_to_inputs: images beyond the file's count");
  const std::uint32_t side = image_side(neurons);
  const ImageResizer resizer(images.rows, images.cols, side);
  std::vector<std::vector<Index>> features(count);
#pragma omp parallel num_threads(std::max(1, threads))
  {
    std::vector<double> out, tmp;
#pragma omp for schedule(dynamic, 16)
    for (std::int64_t k = 0; k < static_cast<std::int64_t>(count); ++k) {
      resizer.resize(images.image(first + static_cast<std::uint32_t>(k)), out, tmp);
      std::vector<Index>& f = features[k];
      for (std::uint32_t c = 0; c < side; ++c)  // column-major: ascending features
        for (std::uint32_t r = 0; r < side; ++r)
          if (out[static_cast<std::size_t>(r) * side + c] / 255.0 > threshold) f.push_back(c * side + r);
    }
  }
  CsrMatrix inputs(count, neurons);
  for (std::uint32_t k = 0; k < count; ++k) inputs.offsets[k + 1] = inputs.offsets[k] + features[k].size();
  inputs.indices.resize(inputs.nnz());
  inputs.values.resize(inputs.nnz());
  for (std::uint32_t k = 0; k < count; ++k) {
    std::copy(features[k].begin(), features[k].end(), inputs.indices.begin() + static_cast<std::ptrdiff_t>(inputs.offsets[k]));
    std::fill(inputs.values.begin() + static_cast<std::ptrdiff_t>(inputs.offsets[k]),
              inputs.values.begin() + static_cast<std::ptrdiff_t>(inputs.offsets[k + 1]), 1.0f);
  }
  return inputs;
}

}  // namespace sdnn
