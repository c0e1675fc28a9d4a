// test_idx.cpp: the idx3-ubyte reader (plain and gzip) and the MNIST-style resize on tiny
// handmade files with known output: sizes, column-major flattening, thresholding, a constant image
// that stays all ones, an all-zero image with no entries, the resize of smooth and blocky images
// against an independent naive DFT written here (real trigonometric interpolation, rows first),
// and the faults (wrong magic, truncated header or data, corrupt gzip, missing file).
#include <gtest/gtest.h>
#include <zlib.h>

#include <cmath>
#include <cstdio>
#include <set>
#include <string>
#include <vector>

#include "io/idx.hpp"
#include "io/input_error.hpp"
#include "test_support.hpp"

namespace sdnn {
namespace {

using test::read_text;
using test::TempDirectory;
using test::write_text;
constexpr double kPi = 3.14159265358979323846;

// An idx3-ubyte file's bytes: big-endian header, then the images.
std::string idx_bytes(std::uint32_t count, std::uint32_t rows, std::uint32_t cols, const std::vector<std::uint8_t>& pixels,
                      std::uint32_t magic = 0x00000803) {
  std::string out;
  for (std::uint32_t x : {magic, count, rows, cols})
    for (int shift = 24; shift >= 0; shift -= 8) out += static_cast<char>((x >> shift) & 0xff);
  out.append(pixels.begin(), pixels.end());
  return out;
}


void write_gzip(const std::string& path, const std::string& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())), static_cast<int>(bytes.size()));
  ASSERT_EQ(gzclose(f), Z_OK);
}

// The message of the InputError that reading `path` throws (a note in <> otherwise).
std::string error_of(const std::string& path) {
  return test::input_error_of([&] { read_idx_images(path); });
}

// The independent reference: real trigonometric interpolation of n samples at m points, straight
// from the naive DFT (cos and sin of 2*pi*j*k/n, no reduction), the Nyquist term written out.
std::vector<double> naive_resize(const std::vector<double>& x, std::size_t m) {
  const std::size_t n = x.size();
  std::vector<double> re(n, 0.0), im(n, 0.0);
  for (std::size_t k = 0; k < n; ++k)
    for (std::size_t j = 0; j < n; ++j) {
      re[k] += x[j] * std::cos(2 * kPi * j * k / n);
      im[k] -= x[j] * std::sin(2 * kPi * j * k / n);
    }
  const std::size_t common = std::min(n, m);
  std::vector<double> y(m);
  for (std::size_t j = 0; j < m; ++j) {
    const double t = static_cast<double>(j) / m;  // the output point, in periods
    double sum = re[0];
    for (std::size_t k = 1; 2 * k < common; ++k) sum += 2 * (re[k] * std::cos(2 * kPi * k * t) - im[k] * std::sin(2 * kPi * k * t));
    if (common % 2 == 0) {
      const std::size_t h = common / 2;
      if (m > n) sum += re[h] * std::cos(2 * kPi * h * t);             // +h and -h, half each
      else if (m < n) sum += 2 * re[h] * std::cos(2 * kPi * h * t);    // X[h] + X[-h] at the output's Nyquist
      else sum += re[h] * std::cos(2 * kPi * h * t);
    }
    y[j] = sum / n;
  }
  return y;
}

// A rows x cols image resized to side x side by the naive reference: rows first, then columns.
std::vector<double> naive_resize_image(const std::vector<std::uint8_t>& pixels, std::uint32_t rows, std::uint32_t cols,
                                       std::uint32_t side) {
  std::vector<double> wide(static_cast<std::size_t>(rows) * side);  // rows x side
  for (std::uint32_t i = 0; i < rows; ++i) {
    std::vector<double> row(pixels.begin() + i * cols, pixels.begin() + (i + 1) * cols);
    const std::vector<double> r = naive_resize(row, side);
    std::copy(r.begin(), r.end(), wide.begin() + static_cast<std::size_t>(i) * side);
  }
  std::vector<double> out(static_cast<std::size_t>(side) * side);
  for (std::uint32_t c = 0; c < side; ++c) {
    std::vector<double> column(rows);
    for (std::uint32_t i = 0; i < rows; ++i) column[i] = wide[static_cast<std::size_t>(i) * side + c];
    const std::vector<double> r = naive_resize(column, side);
    for (std::uint32_t k = 0; k < side; ++k) out[static_cast<std::size_t>(k) * side + c] = r[k];
  }
  return out;
}

std::vector<std::uint8_t> constant_image(std::uint8_t value) { return std::vector<std::uint8_t>(28 * 28, value); }

// A bright block (255) on rows [r0, r1) and columns [c0, c1), 0 elsewhere.
std::vector<std::uint8_t> block_image(int r0, int r1, int c0, int c1) {
  std::vector<std::uint8_t> image(28 * 28, 0);
  for (int r = r0; r < r1; ++r)
    for (int c = c0; c < c1; ++c) image[r * 28 + c] = 255;
  return image;
}

// A smooth image: a few low frequencies, values inside 0..255.
std::vector<std::uint8_t> smooth_image() {
  std::vector<std::uint8_t> image(28 * 28);
  for (int r = 0; r < 28; ++r)
    for (int c = 0; c < 28; ++c)
      image[r * 28 + c] = static_cast<std::uint8_t>(std::lround(
          127.5 + 70 * std::cos(2 * kPi * r / 28 + 0.3) * std::sin(2 * kPi * 2 * c / 28) + 50 * std::cos(2 * kPi * 3 * c / 28)));
  return image;
}

std::vector<std::uint8_t> concat(const std::vector<std::vector<std::uint8_t>>& images) {
  std::vector<std::uint8_t> all;
  for (const auto& image : images) all.insert(all.end(), image.begin(), image.end());
  return all;
}

// The features of input row `row`.
std::set<Index> features_of(const CsrMatrix& m, Index row) {
  return std::set<Index>(m.indices.begin() + m.begin(row), m.indices.begin() + m.end(row));
}

TEST(FourierResize, ConstantStaysConstantAtEverySize) {
  for (std::size_t m : {8, 16, 27, 28, 29, 32, 64, 128, 256}) {
    const std::vector<double> y = fourier_resize(std::vector<double>(28, 255.0), m);
    ASSERT_EQ(y.size(), m);
    for (double v : y) EXPECT_NEAR(v, 255.0, 1e-9) << "m = " << m;
  }
}

TEST(FourierResize, PassesThroughTheSamplesWhenUpsamplingByAnInteger) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<double> u(0, 255);
  std::vector<double> x(28);
  for (double& v : x) v = u(rng);
  for (std::size_t factor : {2, 4}) {
    const std::vector<double> y = fourier_resize(x, 28 * factor);
    for (std::size_t j = 0; j < 28; ++j) EXPECT_NEAR(y[j * factor], x[j], 1e-9);
  }
  // And a resize to the same size is the identity.
  const std::vector<double> same = fourier_resize(x, 28);
  for (std::size_t j = 0; j < 28; ++j) EXPECT_NEAR(same[j], x[j], 1e-9);
}

TEST(FourierResize, MatchesTheNaiveReferenceUpAndDownOddAndEven) {
  std::mt19937 rng(9);
  std::uniform_real_distribution<double> u(0, 255);
  for (std::size_t n : {28, 27, 8}) {
    std::vector<double> x(n);
    for (double& v : x) v = u(rng);
    for (std::size_t m : {4, 5, 16, 17, 28, 31, 32, 64, 256}) {
      const std::vector<double> mine = fourier_resize(x, m), reference = naive_resize(x, m);
      for (std::size_t j = 0; j < m; ++j) ASSERT_NEAR(mine[j], reference[j], 1e-8) << "n " << n << " m " << m << " j " << j;
    }
  }
}

TEST(FourierResize, MatrixColumnsAreResizedUnitVectors) {
  const std::vector<double> a = fourier_resize_matrix(28, 64);
  ASSERT_EQ(a.size(), 28u * 64u);
  std::vector<double> unit(28, 0.0);
  unit[5] = 1.0;
  const std::vector<double> column = naive_resize(unit, 64);
  for (std::size_t i = 0; i < 64; ++i) EXPECT_NEAR(a[i * 28 + 5], column[i], 1e-12);
}

TEST(ResizeImage, SmoothAndBlockImagesMatchTheNaiveReferenceAtEverySize) {
  for (const auto& image : {smooth_image(), block_image(3, 11, 17, 26)})
    for (std::uint32_t side : {16, 32, 64, 128, 256}) {
      const std::vector<double> mine = resize_image(image.data(), 28, 28, side);
      const std::vector<double> reference = naive_resize_image(image, 28, 28, side);
      ASSERT_EQ(mine.size(), static_cast<std::size_t>(side) * side);
      for (std::size_t k = 0; k < mine.size(); ++k) ASSERT_NEAR(mine[k], reference[k], 1e-8) << "side " << side << " at " << k;
    }
}

TEST(ImageSide, SquaresOnly) {
  EXPECT_EQ(image_side(1024), 32u);
  EXPECT_EQ(image_side(65536), 256u);
  EXPECT_THROW(image_side(2048), std::invalid_argument);
  EXPECT_THROW(image_side(0), std::invalid_argument);
}

class IdxFiles : public ::testing::Test {
 protected:
  TempDirectory dir;
  // Four images: all 255, all 0, a block in the top-right corner, smooth.
  std::vector<std::vector<std::uint8_t>> images{constant_image(255), constant_image(0), block_image(0, 9, 16, 28),
                                                smooth_image()};
  std::string plain = dir.file("images-idx3-ubyte"), gzip = dir.file("images-idx3-ubyte.gz");
  void SetUp() override {
    const std::string bytes = idx_bytes(4, 28, 28, concat(images));
    write_text(plain, bytes);
    write_gzip(gzip, bytes);
  }
};

TEST_F(IdxFiles, HeaderAndPixels) {
  const IdxImages read = read_idx_images(plain);
  EXPECT_EQ(read.count, 4u);
  EXPECT_EQ(read.rows, 28u);
  EXPECT_EQ(read.cols, 28u);
  EXPECT_EQ(read.pixels, concat(images));
  const IdxImages first_two = read_idx_images(plain, 2);
  EXPECT_EQ(first_two.count, 2u);
  EXPECT_EQ(first_two.pixels, concat({images[0], images[1]}));
  EXPECT_EQ(read_idx_images(plain, 100).count, 4u);  // more than it holds: all
}

TEST_F(IdxFiles, GzipAndPlainGiveTheSame) {
  const IdxImages a = read_idx_images(plain), b = read_idx_images(gzip);
  EXPECT_EQ(a.count, b.count);
  EXPECT_EQ(a.pixels, b.pixels);
  for (Index n : {1024u, 4096u}) {
    const CsrMatrix x = images_to_inputs(a, 0, a.count, n, 1), y = images_to_inputs(b, 0, b.count, n, 2);
    EXPECT_EQ(x.offsets, y.offsets);
    EXPECT_EQ(x.indices, y.indices);
  }
}

TEST_F(IdxFiles, InputsOfEverySizeConstantAndEmptyImages) {
  const IdxImages read = read_idx_images(gzip);
  for (Index n : {1024u, 4096u, 16384u, 65536u}) {
    const CsrMatrix inputs = images_to_inputs(read, 0, 4, n, 2);
    ASSERT_EQ(inputs.rows(), 4u);
    ASSERT_EQ(inputs.cols(), n);
    EXPECT_EQ(inputs.end(0) - inputs.begin(0), n) << "an image of 255 stays all ones";
    EXPECT_EQ(inputs.end(1) - inputs.begin(1), 0u) << "an all-zero image has no entry";
    for (Offset p = 0; p < inputs.nnz(); ++p) ASSERT_EQ(inputs.values[p], 1.0f);
    for (Index r = 0; r < 4; ++r)
      for (Offset p = inputs.begin(r) + 1; p < inputs.end(r); ++p) ASSERT_LT(inputs.indices[p - 1], inputs.indices[p]);
  }
}

TEST_F(IdxFiles, ThresholdAndColumnMajorFlatteningMatchTheNaiveReference) {
  const IdxImages read = read_idx_images(plain);
  for (Index n : {1024u, 4096u}) {
    const std::uint32_t side = image_side(n);
    const CsrMatrix inputs = images_to_inputs(read, 0, 4, n, 2);
    for (Index k : {2u, 3u}) {
      const std::vector<double> value = naive_resize_image(images[k], 28, 28, side);
      std::set<Index> expected;
      std::size_t near_threshold = 0;
      for (std::uint32_t r = 0; r < side; ++r)
        for (std::uint32_t c = 0; c < side; ++c) {
          const double v = value[static_cast<std::size_t>(r) * side + c] / 255.0;
          if (std::abs(v - kMnistThreshold) < 1e-9) ++near_threshold;
          if (v > kMnistThreshold) expected.insert(c * side + r);  // feature = c * side + r
        }
      ASSERT_EQ(near_threshold, 0u) << "a pixel too close to the threshold to compare";
      EXPECT_EQ(features_of(inputs, k), expected) << "image " << k << " N " << n;
      EXPECT_FALSE(expected.empty());
    }
    // The block sits in the top-right corner (pixel rows 0..8, columns 16..27): its features are
    // small rows r and large columns c, so large multiples of side; a row-major flattening
    // (r * side + c) would put them below side * side / 3.
    for (Index f : features_of(inputs, 2)) {
      const std::uint32_t c = f / side, r = f % side;
      EXPECT_LT(r, side * 10 / 28 + 2) << "feature " << f;
      EXPECT_GT(c, side * 15 / 28 - 2) << "feature " << f;
    }
  }
}

TEST_F(IdxFiles, ResultsDoNotDependOnThreadsOrChunks) {
  const IdxImages read = read_idx_images(plain);
  const CsrMatrix all = images_to_inputs(read, 0, 4, 4096, 1);
  const CsrMatrix threaded = images_to_inputs(read, 0, 4, 4096, 3);
  EXPECT_EQ(all.indices, threaded.indices);
  const CsrMatrix tail = images_to_inputs(read, 2, 2, 4096, 2);
  EXPECT_EQ(features_of(tail, 0), features_of(all, 2));
  EXPECT_EQ(features_of(tail, 1), features_of(all, 3));
  EXPECT_THROW(images_to_inputs(read, 3, 2, 4096, 1), std::invalid_argument);
  EXPECT_THROW(images_to_inputs(read, 0, 1, 2048, 1), std::invalid_argument);
}

TEST_F(IdxFiles, WrongMagicTruncatedCorruptAndMissing) {
  const std::string bytes = idx_bytes(4, 28, 28, concat(images));
  write_text(dir.file("labels"), idx_bytes(4, 28, 28, concat(images), 0x00000801));
  EXPECT_NE(error_of(dir.file("labels")).find("not an idx3-ubyte image file (magic 0x00000801"), std::string::npos)
      << error_of(dir.file("labels"));
  write_text(dir.file("short-header"), bytes.substr(0, 10));
  EXPECT_NE(error_of(dir.file("short-header")).find("truncated idx header"), std::string::npos);
  write_text(dir.file("empty"), "");
  EXPECT_NE(error_of(dir.file("empty")).find("magic missing"), std::string::npos);
  write_text(dir.file("short-data"), bytes.substr(0, bytes.size() - 100));
  EXPECT_NE(error_of(dir.file("short-data")).find("truncated: the header announces 4 images of 28 x 28 pixels, the data ends in image 4"),
            std::string::npos)
      << error_of(dir.file("short-data"));
  write_gzip(dir.file("short-data.gz"), bytes.substr(0, bytes.size() - 1));
  EXPECT_NE(error_of(dir.file("short-data.gz")).find("truncated"), std::string::npos);
  // A gzip stream cut in the middle, and one with a damaged body.
  const std::string gz = read_text(gzip);
  write_text(dir.file("cut.gz"), gz.substr(0, gz.size() / 2));
  EXPECT_NE(error_of(dir.file("cut.gz")).find(dir.file("cut.gz") + ": "), std::string::npos) << error_of(dir.file("cut.gz"));
  EXPECT_EQ(error_of(dir.file("cut.gz")).find("<"), std::string::npos) << error_of(dir.file("cut.gz"));
  std::string damaged = gz;
  for (std::size_t k = 20; k < damaged.size() - 8; k += 7) damaged[k] = static_cast<char>(damaged[k] ^ 0x5a);
  write_text(dir.file("damaged.gz"), damaged);
  EXPECT_EQ(error_of(dir.file("damaged.gz")).find("<"), std::string::npos) << error_of(dir.file("damaged.gz"));
  write_text(dir.file("huge"), idx_bytes(1, 100000, 28, {}));
  EXPECT_NE(error_of(dir.file("huge")).find("expected 1 to 4096 per axis"), std::string::npos);
  EXPECT_NE(error_of(dir.file("missing")).find("cannot open"), std::string::npos);
  EXPECT_NE(error_of(dir.path()).find("directory"), std::string::npos);
}

}  // namespace
}  // namespace sdnn
