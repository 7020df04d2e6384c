// Cluttered MNIST: sizes and range, the digit at its recorded position,
// distractors from the split's own digits, determinism by seed, and clear
// errors for bad options and missing or corrupt files.
#include "datasets/cluttered_mnist.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "kernels/testing/scratch.h"

namespace indexgrad {
namespace data {
namespace {

// A data folder with an (empty) mnist/ inside.
std::string TempDir(const std::string& name) {
  const std::string dir = testing::ScratchDir(name);
  std::filesystem::create_directories(dir + "/mnist");
  return dir;
}

// Random digits with some pixels at 255 (clipping is exercised).
at::Tensor RandomDigits(int64_t m, int64_t seed) {
  at::manual_seed(seed);
  return at::randint(0, 256, {m, 28, 28}, at::kLong).to(at::kByte);
}

TEST(MakeCluttered, SizesRangeAndDigitAtItsPosition) {
  const at::Tensor digits = RandomDigits(20, 1);
  const at::Tensor labels = at::arange(20, at::kLong) % 10;
  ClutterOptions o;  // 100 x 100, 8 distractors
  absl::StatusOr<ClutteredSet> s = MakeCluttered(digits, labels, 50, o, 0);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->images.sizes(), at::IntArrayRef({50, 100, 100}));
  EXPECT_EQ(s->images.scalar_type(), at::kByte);
  EXPECT_EQ(s->distractor_index.sizes(), at::IntArrayRef({50, 8}));
  for (int64_t i = 0; i < 50; ++i) {
    const int64_t r = s->positions[i][0].item<int64_t>(), c = s->positions[i][1].item<int64_t>();
    ASSERT_GE(r, 0);
    ASSERT_LE(r, 72);
    ASSERT_GE(c, 0);
    ASSERT_LE(c, 72);
    const int64_t which = s->digit_index[i].item<int64_t>();
    EXPECT_EQ(s->labels[i].item<int64_t>(), which % 10);
    // Clipped sums only add: the crop at the position is >= the digit, and
    // the digit's 255s stay 255.
    const at::Tensor crop = s->images[i].slice(0, r, r + 28).slice(1, c, c + 28).to(at::kInt);
    const at::Tensor digit = digits[which].to(at::kInt);
    EXPECT_TRUE((crop >= digit).all().item<bool>()) << "image " << i;
  }
  // Without distractors the image is the digit on black, exactly.
  o.distractors = 0;
  s = MakeCluttered(digits, labels, 10, o, 0);
  ASSERT_TRUE(s.ok());
  for (int64_t i = 0; i < 10; ++i) {
    at::Tensor expected = at::zeros({100, 100}, at::kByte);
    const int64_t r = s->positions[i][0].item<int64_t>(), c = s->positions[i][1].item<int64_t>();
    expected.slice(0, r, r + 28).slice(1, c, c + 28).copy_(digits[s->digit_index[i].item<int64_t>()]);
    EXPECT_TRUE(s->images[i].equal(expected)) << "image " << i;
  }
}

TEST(MakeCluttered, DistractorsAreClippedCropsOfTheGivenDigits) {
  // One distractor, no digit contribution outside its box: every nonzero
  // pixel outside the digit's box comes from an 8 x 8 crop, so at most 64.
  const at::Tensor digits = RandomDigits(5, 2);
  ClutterOptions o;
  o.distractors = 1;
  absl::StatusOr<ClutteredSet> s = MakeCluttered(digits, at::zeros({5}, at::kLong), 30, o, 3);
  ASSERT_TRUE(s.ok());
  for (int64_t i = 0; i < 30; ++i) {
    at::Tensor im = s->images[i].clone();
    const int64_t r = s->positions[i][0].item<int64_t>(), c = s->positions[i][1].item<int64_t>();
    im.slice(0, r, r + 28).slice(1, c, c + 28).zero_();
    EXPECT_LE(im.ne(0).sum().item<int64_t>(), 64);
    const int64_t d = s->distractor_index[i][0].item<int64_t>();
    EXPECT_TRUE(d >= 0 && d < 5);
  }
}

TEST(MakeCluttered, DeterministicBySeedStreamAndIndex) {
  const at::Tensor digits = RandomDigits(30, 3);
  const at::Tensor labels = at::zeros({30}, at::kLong);
  ClutterOptions o;
  auto a = MakeCluttered(digits, labels, 40, o, 0);
  auto b = MakeCluttered(digits, labels, 40, o, 0);
  auto first = MakeCluttered(digits, labels, 10, o, 0);
  auto other_stream = MakeCluttered(digits, labels, 40, o, 1);
  o.seed = 7;
  auto other_seed = MakeCluttered(digits, labels, 40, o, 0);
  ASSERT_TRUE(a.ok() && b.ok() && first.ok() && other_stream.ok() && other_seed.ok());
  EXPECT_TRUE(a->images.equal(b->images));
  EXPECT_TRUE(a->positions.equal(b->positions));
  EXPECT_TRUE(a->images.slice(0, 0, 10).equal(first->images));
  EXPECT_FALSE(a->images.equal(other_stream->images));
  EXPECT_FALSE(a->images.equal(other_seed->images));
  // Positions spread over the canvas (not a constant).
  EXPECT_GT(std::set<int64_t>(a->positions.data_ptr<int64_t>(),
                              a->positions.data_ptr<int64_t>() + 80).size(), 20u);
}

TEST(MakeCluttered, BadOptionsNameTheField) {
  const at::Tensor digits = RandomDigits(3, 4);
  ClutterOptions o;
  o.canvas = 20;
  auto s = MakeCluttered(digits, at::zeros({3}, at::kLong), 1, o, 0);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("canvas must be in [28, 255], got 20"), std::string::npos);
  o = ClutterOptions();
  o.distractors = -1;
  s = MakeCluttered(digits, at::zeros({3}, at::kLong), 1, o, 0);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("distractors must be >= 0, got -1"), std::string::npos);
  s = MakeCluttered(digits.to(at::kFloat), at::zeros({3}, at::kLong), 1, ClutterOptions(), 0);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("uint8"), std::string::npos);
}

// A synthetic MNIST folder whose training, validation and test digits are
// constant images of 60, 7 and 101: each split's clutter can only hold sums
// of its own value (or 255 where clipped).
std::string SyntheticMnist(const std::string& name) {
  const std::string dir = TempDir(name);
  const int64_t train = kValidationSize + 20;
  at::Tensor train_images = at::full({train, 28, 28}, 60, at::kByte);
  train_images.slice(0, train - kValidationSize, train).fill_(7);
  const at::Tensor train_labels = (at::arange(train, at::kLong) % 10).to(at::kByte);
  EXPECT_TRUE(WriteIdx(dir + "/mnist/train-images-idx3-ubyte", train_images).ok());
  EXPECT_TRUE(WriteIdx(dir + "/mnist/train-labels-idx1-ubyte", train_labels).ok());
  EXPECT_TRUE(WriteIdx(dir + "/mnist/t10k-images-idx3-ubyte", at::full({30, 28, 28}, 101, at::kByte)).ok());
  EXPECT_TRUE(WriteIdx(dir + "/mnist/t10k-labels-idx1-ubyte", at::zeros({30}, at::kByte)).ok());
  return dir;
}

bool OnlyMultiplesOf(const at::Tensor& images, int v) {
  const at::Tensor x = images.to(at::kInt);
  return ((x.remainder(v) == 0) | (x == 255)).all().item<bool>();
}

TEST(LoadCluttered, GeneratesOnceFromEachSplitsOwnDigits) {
  const std::string dir = SyntheticMnist("clutter_splits");
  ClutterOptions o;
  o.canvas = 32;
  o.distractors = 3;
  auto train = LoadCluttered(dir, o, Split::kTrain, /*generate=*/true);
  ASSERT_TRUE(train.ok()) << train.status();
  auto val = LoadCluttered(dir, o, Split::kValidation, false);
  auto test = LoadCluttered(dir, o, Split::kTest, false);
  ASSERT_TRUE(val.ok() && test.ok());
  EXPECT_EQ(train->images.sizes(), at::IntArrayRef({60000, 32, 32}));
  EXPECT_EQ(val->images.size(0), 5000);
  EXPECT_EQ(test->images.size(0), 10000);
  EXPECT_TRUE(OnlyMultiplesOf(train->images.slice(0, 0, 2000), 60));
  EXPECT_TRUE(OnlyMultiplesOf(val->images, 7));
  EXPECT_TRUE(OnlyMultiplesOf(test->images, 101));
  // The split's own digits at the stored positions.
  for (int64_t i = 0; i < 20; ++i) {
    const int64_t r = test->positions[i][0].item<int64_t>(), c = test->positions[i][1].item<int64_t>();
    EXPECT_TRUE((test->images[i].slice(0, r, r + 28).slice(1, c, c + 28).to(at::kInt) >= 101)
                    .all().item<bool>());
  }
  // Labels of the training digits (i % 10) survive the round trip.
  EXPECT_LE(train->labels.max().item<int64_t>(), 9);
  EXPECT_GT(std::get<0>(at::_unique(train->labels)).size(0), 5);
}

TEST(LoadCluttered, MissingAndCorruptFilesNameFileAndCommand) {
  const std::string dir = TempDir("clutter_missing");
  ClutterOptions o;
  o.canvas = 60;
  o.distractors = 4;
  auto s = LoadCluttered(dir, o, Split::kTest, /*generate=*/false);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kNotFound);
  const std::string m(s.status().message());
  EXPECT_NE(m.find("cluttered-mnist-60-4/test-images-idx3-ubyte"), std::string::npos) << m;
  EXPECT_NE(m.find("bazel run //datasets:make_cluttered_mnist -- --canvas=60 --distractors=4"),
            std::string::npos) << m;
  // Generating without MNIST names the MNIST file and install_deps.
  s = LoadCluttered(dir, o, Split::kTest, /*generate=*/true);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(std::string(s.status().message()).find("mnist/train-images-idx3-ubyte"),
            std::string::npos);
  EXPECT_NE(std::string(s.status().message()).find("tools/install_deps.sh"), std::string::npos);

  // A truncated images file: data loss, naming it and the command.
  const std::string synth = SyntheticMnist("clutter_corrupt");
  o.canvas = 28;
  o.distractors = 0;
  ASSERT_TRUE(WriteCluttered(synth, o).ok());
  const std::string images = ClutteredDir(synth, o) + "/validation-images-idx3-ubyte";
  ASSERT_EQ(std::system(("truncate -s 1000 " + images).c_str()), 0);
  s = LoadCluttered(synth, o, Split::kValidation, /*generate=*/true);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(std::string(s.status().message()).find(images), std::string::npos);
  EXPECT_NE(std::string(s.status().message()).find("make_cluttered_mnist"), std::string::npos);
}

}  // namespace
}  // namespace data
}  // namespace indexgrad
