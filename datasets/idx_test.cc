// IDX reading: round trip of a written file, and clear errors for missing,
// truncated and malformed files.
#include "datasets/idx.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "kernels/testing/scratch.h"

namespace indexgrad {
namespace data {
namespace {

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
  const std::string path = testing::ScratchPath("small-idx3-ubyte");
  WriteBytes(path, SmallImages());
  absl::StatusOr<at::Tensor> t = ReadIdx(path);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->sizes(), at::IntArrayRef({2, 2, 3}));
  EXPECT_EQ(t->scalar_type(), at::kByte);
  EXPECT_EQ(t->index({1, 1, 2}).item<int64_t>(), 11);
  EXPECT_EQ(t->index({0, 1, 0}).item<int64_t>(), 3);
}

TEST(ReadIdx, MissingFileNamesFileAndCommand) {
  absl::StatusOr<at::Tensor> t = ReadIdx(testing::ScratchPath("does-not-exist"));
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(t.status().message().find("does-not-exist"), std::string::npos);
  EXPECT_NE(t.status().message().find("tools/install_deps.sh"),
            std::string::npos);
}

TEST(ReadIdx, ADirectoryIsAnErrorNotACrash) {
  const std::string dir = std::string(std::getenv("TEST_TMPDIR")) + "/idx_dir";
  std::filesystem::create_directories(dir);
  auto r = ReadIdx(dir, "run make_data");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(r.status().message(),
            "IDX path '" + dir + "' is not a readable file (a directory?); run make_data");
}

TEST(ReadIdx, TruncatedFileIsDataLoss) {
  std::vector<unsigned char> b = SmallImages();
  b.pop_back();
  const std::string path = testing::ScratchPath("truncated-idx3-ubyte");
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
  WriteBytes(testing::ScratchPath("bad-magic"), b);
  EXPECT_EQ(ReadIdx(testing::ScratchPath("bad-magic")).status().code(),
            absl::StatusCode::kDataLoss);
  b = SmallImages();
  b[2] = 0x0D;  // float32
  WriteBytes(testing::ScratchPath("float-idx"), b);
  EXPECT_EQ(ReadIdx(testing::ScratchPath("float-idx")).status().code(),
            absl::StatusCode::kUnimplemented);
}

TEST(LoadImageSet, ScalesAndChecksLabels) {
  const std::string dir = testing::ScratchPath("set");
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

TEST(LoadImageSet, ValidationIsTheLastItemsOfTraining) {
  const std::string dir = testing::ScratchPath("split");
  ASSERT_EQ(std::system(("mkdir -p " + dir + "/mnist").c_str()), 0);
  const int64_t n = kValidationSize + 3;
  std::vector<unsigned char> images = {0, 0, 8, 3};
  std::vector<unsigned char> labels = {0, 0, 8, 1};
  for (int shift : {24, 16, 8, 0}) {
    images.push_back((n >> shift) & 255);
    labels.push_back((n >> shift) & 255);
  }
  for (unsigned char d : {0, 0, 0, 1, 0, 0, 0, 1}) images.push_back(d);
  for (int64_t i = 0; i < n; ++i) {
    images.push_back(i % 256);  // pixel value = item index mod 256
    labels.push_back(i % 10);
  }
  WriteBytes(dir + "/mnist/train-images-idx3-ubyte", images);
  WriteBytes(dir + "/mnist/train-labels-idx1-ubyte", labels);
  absl::StatusOr<ImageSet> train = LoadImageSet(dir, "mnist", Split::kTrain);
  absl::StatusOr<ImageSet> val = LoadImageSet(dir, "mnist", Split::kValidation);
  absl::StatusOr<ImageSet> full = LoadImageSet(dir, "mnist", Split::kTrainFull);
  ASSERT_TRUE(train.ok() && val.ok() && full.ok());
  EXPECT_EQ(train->labels.size(0), 3);
  EXPECT_EQ(val->labels.size(0), kValidationSize);
  EXPECT_EQ(full->labels.size(0), n);
  EXPECT_EQ(val->labels[0].item<int64_t>(), 3);  // item 3 starts validation
  EXPECT_FLOAT_EQ(val->images.index({0, 0, 0}).item<float>(), 3.0f / 255.0f);
  EXPECT_EQ(train->labels[2].item<int64_t>(), 2);
}

}  // namespace
}  // namespace data
}  // namespace indexgrad
