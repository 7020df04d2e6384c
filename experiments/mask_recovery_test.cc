// The mask-recovery experiment's library: targets from --targets entries
// (built-in and mask files, with clear errors), one run that recovers a
// small target, writes its CSV and resumes, and the summary table.
#include "experiments/mask_recovery_run.h"

#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "experiments/common/csv.h"
#include "kernels/testing/scratch.h"

namespace indexgrad {
namespace experiments {
namespace {

// A binary PGM of h x w pixels, `on` where column < w / 2.
std::string WriteLeftHalfPgm(const std::string& dir, const std::string& name, int h, int w) {
  const std::string path = dir + "/" + name;
  std::ofstream out(path, std::ios::binary);
  out << "P5\n" << w << " " << h << "\n255\n";
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) out.put(static_cast<char>(x < w / 2 ? 255 : 0));
  }
  return path;
}

TEST(ParseMaskTarget, BuiltInKindsFilesAndErrors) {
  auto builtin = ParseMaskTarget("disc", 16);
  ASSERT_TRUE(builtin.ok()) << builtin.status();
  EXPECT_EQ(builtin->name, "disc");
  EXPECT_EQ(builtin->kind, diff_masks::TargetKind::kDisc);
  EXPECT_FALSE(builtin->mask.defined());

  const std::string dir = testing::ScratchDir("mask_targets");
  const std::string path = WriteLeftHalfPgm(dir, "my mask.pgm", 8, 8);
  auto file = ParseMaskTarget("file:" + path, 8);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->name, "file-my-mask");
  ASSERT_EQ(file->mask.sizes(), at::IntArrayRef({8, 8}));
  EXPECT_EQ(file->mask.sum().item<double>(), 32.0);
  EXPECT_EQ(file->mask[0][3].item<double>(), 1.0);
  EXPECT_EQ(file->mask[0][4].item<double>(), 0.0);

  const auto message = [](const absl::StatusOr<MaskTarget>& t) {
    return std::string(t.status().message());
  };
  auto wrong_size = ParseMaskTarget("file:" + path, 16);
  ASSERT_FALSE(wrong_size.ok());
  EXPECT_EQ(message(wrong_size), "mask file " + path +
                                     " is 8 x 8 pixels, but --size is 16 (masks are --size x "
                                     "--size)");
  auto empty = ParseMaskTarget("file:", 8);
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(message(empty), "file: needs a path (file:PATH)");
  auto unknown = ParseMaskTarget("square", 8);
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(message(unknown).find("square"), std::string::npos) << message(unknown);
  EXPECT_NE(message(unknown).find("(or file:PATH for a mask image)"), std::string::npos);
  auto missing = ParseMaskTarget("file:" + dir + "/none.png", 8);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(message(missing).find(dir + "/none.png"), std::string::npos) << message(missing);
}

MaskRecoverySetup SmallSetup(const std::string& out_dir) {
  MaskRecoverySetup s;
  s.size = 8;
  s.steps = 400;
  s.snap_every = 200;
  s.eval_every = 50;
  s.ops = {"gaussian"};
  s.learning_rates = {{"gaussian", 0.1}};
  s.out_dir = out_dir;
  EXPECT_TRUE(MakeDirs(out_dir + "/runs").ok());
  EXPECT_TRUE(MakeDirs(out_dir + "/masks").ok());
  return s;
}

TEST(RunMaskRecovery, GaussianRecoversASmallFileTargetWritesAndResumes) {
  const std::string dir = testing::ScratchDir("mask_recovery_run");
  MaskRecoverySetup s = SmallSetup(dir + "/out");
  auto target = ParseMaskTarget("file:" + WriteLeftHalfPgm(dir, "half.pgm", 8, 8), 8);
  ASSERT_TRUE(target.ok());
  s.targets = {*target};
  auto run = RunMaskRecovery(s, "gaussian", *target, 0);
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->op, "gaussian");
  EXPECT_EQ(run->target, "file-half");
  EXPECT_EQ(run->iou, 1.0);
  EXPECT_EQ(run->index_iou, 1.0);
  EXPECT_GT(run->steps_to_099, 0);
  EXPECT_LE(run->steps_to_099, 400);
  std::ifstream csv(s.out_dir + "/runs/gaussian_file-half_s0.csv");
  std::string header;
  std::getline(csv, header);
  EXPECT_EQ(header, "step,mse,iou,accuracy,index_iou");
  EXPECT_TRUE(std::ifstream(s.out_dir + "/masks/gaussian_file-half_s0_target.csv").good());
  EXPECT_TRUE(std::ifstream(s.out_dir + "/masks/gaussian_file-half_s0_000200.csv").good());
  // A rerun resumes at the end: the same scores, the same first step at 0.99.
  auto again = RunMaskRecovery(s, "gaussian", *target, 0);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->iou, run->iou);
  EXPECT_EQ(again->steps_to_099, run->steps_to_099);
  // An operator the factory does not have is an error, not a crash.
  EXPECT_FALSE(RunMaskRecovery(s, "dense", *target, 0).ok());

  const std::string table = MaskRecoverySummaryMarkdown(s, {*run, *again});
  EXPECT_NE(table.find("| operator | target | final IoU (per seed) |"), std::string::npos) << table;
  EXPECT_NE(table.find("| gaussian | file-half | 1.000, 1.000 | 1.000, 1.000 | " +
                       std::to_string(run->steps_to_099) + ", " +
                       std::to_string(run->steps_to_099) + " |"),
            std::string::npos)
      << table;
}

}  // namespace
}  // namespace experiments
}  // namespace indexgrad
