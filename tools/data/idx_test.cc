// IDX reading: round trip of a written file, and clear errors for missing,
// truncated and malformed files.
#include "tools/data/idx.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

namespace indexgrad {
namespace data {
namespace {

std::string TempPath(const std::string& name) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  return std::string(tmp ? tmp : "/tmp") + "/" + name;
}

void WriteBytes(const std::string& path, const std::vector<unsigned char>& b) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(b.data()), b.size());
}

// A 2 x 2 x 3 image file holding 0..11.
std::vector<unsigned char> SmallImages() {
  std::vector<unsigned char> b = {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 3};
  for (unsigned char v = 0; v < 12; ++v) b.push_back(v);
  return b;
}

TEST(ReadIdx, RoundTrip) {
  const std::string path = TempPath("small-idx3-ubyte");
  WriteBytes(path, SmallImages());
  absl::StatusOr<at::Tensor> t = ReadIdx(path);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->sizes(), at::IntArrayRef({2, 2, 3}));
  EXPECT_EQ(t->scalar_type(), at::kByte);
  EXPECT_EQ(t->index({1, 1, 2}).item<int64_t>(), 11);
  EXPECT_EQ(t->index({0, 1, 0}).item<int64_t>(), 3);
}

TEST(ReadIdx, MissingFileNamesFileAndCommand) {
  absl::StatusOr<at::Tensor> t = ReadIdx(TempPath("does-not-exist"));
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(t.status().message().find("does-not-exist"), std::string::npos);
  EXPECT_NE(t.status().message().find("tools/install_deps.sh"),
            std::string::npos);
}

TEST(ReadIdx, TruncatedFileIsDataLoss) {
  std::vector<unsigned char> b = SmallImages();
  b.pop_back();
  const std::string path = TempPath("truncated-idx3-ubyte");
  WriteBytes(path, b);
  absl::StatusOr<at::Tensor> t = ReadIdx(path);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(t.status().message().find("promises 12 bytes"), std::string::npos)
      << t.status();
}

TEST(ReadIdx, BadMagicAndTypeAreErrors) {
  std::vector<unsigned char> b = SmallImages();
  b[0] = 7;
  WriteBytes(TempPath("bad-magic"), b);
  EXPECT_EQ(ReadIdx(TempPath("bad-magic")).status().code(),
            absl::StatusCode::kDataLoss);
  b = SmallImages();
  b[2] = 0x0D;  // float32
  WriteBytes(TempPath("float-idx"), b);
  EXPECT_EQ(ReadIdx(TempPath("float-idx")).status().code(),
            absl::StatusCode::kUnimplemented);
}

TEST(LoadImageSet, ScalesAndChecksLabels) {
  const std::string dir = TempPath("set");
  ASSERT_EQ(std::system(("mkdir -p " + dir + "/mnist").c_str()), 0);
  WriteBytes(dir + "/mnist/t10k-images-idx3-ubyte",
             {0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, 0, 255});
  WriteBytes(dir + "/mnist/t10k-labels-idx1-ubyte", {0, 0, 8, 1, 0, 0, 0, 1, 7});
  absl::StatusOr<ImageSet> set = LoadImageSet(dir, "mnist", Split::kTest);
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_FLOAT_EQ(set->images.index({0, 0, 1}).item<float>(), 1.0f);
  EXPECT_EQ(set->labels[0].item<int64_t>(), 7);
  // Label 12 is corrupt.
  WriteBytes(dir + "/mnist/t10k-labels-idx1-ubyte", {0, 0, 8, 1, 0, 0, 0, 1, 12});
  EXPECT_EQ(LoadImageSet(dir, "mnist", Split::kTest).status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(LoadImageSet(dir, "cifar", Split::kTest).status().code(),
            absl::StatusCode::kInvalidArgument);
  // The training split was never written.
  EXPECT_EQ(LoadImageSet(dir, "mnist", Split::kTrain).status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace data
}  // namespace indexgrad
