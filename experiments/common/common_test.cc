#include <c10/util/Exception.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <unistd.h>

#include <cstdio>

#include "experiments/common/csv.h"
#include "experiments/common/device.h"
#include "experiments/common/main.h"
#include "experiments/common/progress.h"
#include "experiments/common/summary.h"
#include "experiments/common/threads.h"

#include <ATen/Parallel.h>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"

ABSL_DECLARE_FLAG(int32_t, threads);

namespace indexgrad {
namespace experiments {
namespace {

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

#if defined(__GLIBC__)
// mmapped blocks in use after allocating a 64 MiB block (kept until freed).
size_t MmappedBlocksWithALargeBlock() {
  void* volatile block = std::malloc(size_t(64) << 20);
  const size_t blocks = mallinfo2().hblks;
  std::free(block);
  return blocks;
}
#endif

// A 64 MiB block comes from its own mmap by default and from the heap
// after KeepFreedMemory(), unless the environment says otherwise.
TEST(KeepFreedMemory, LargeBlocksComeFromTheHeap) {
#if defined(__GLIBC__)
  ASSERT_EQ(std::getenv("MALLOC_MMAP_MAX_"), nullptr);
  const size_t before = mallinfo2().hblks;
  EXPECT_EQ(MmappedBlocksWithALargeBlock(), before + 1);
  setenv("MALLOC_MMAP_MAX_", "65536", 1);  // the user's choice: left alone
  KeepFreedMemory();
  EXPECT_EQ(MmappedBlocksWithALargeBlock(), before + 1);
  unsetenv("MALLOC_MMAP_MAX_");
  KeepFreedMemory();
  EXPECT_EQ(MmappedBlocksWithALargeBlock(), before);
  // Freed, it stays with the process: the heap holds at least the block.
  EXPECT_GE(mallinfo2().arena, size_t(64) << 20);
  mallopt(M_MMAP_MAX, 65536);  // glibc's default again for the other tests
#else
  GTEST_SKIP() << "glibc only";
#endif
}

// The probe's output with GOMP_SPINCOUNT and OMP_WAIT_POLICY removed from
// the environment and `env` (NAME=value ...) added; "" when the probe is
// not built (CMake builds no probe).
std::string RunProbe(const std::string& env, const std::string& args = "--a 'b c'") {
  const std::string probe = "experiments/common/main_probe";
  if (access(probe.c_str(), X_OK) != 0) return "";
  const std::string command =
      "env -u GOMP_SPINCOUNT -u OMP_WAIT_POLICY " + env + " " + probe + " " + args;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return "popen failed";
  std::string out;
  char buffer[256];
  while (std::fgets(buffer, sizeof buffer, pipe) != nullptr) out += buffer;
  pclose(pipe);
  return out;
}

TEST(RunMain, ShortensOpenMpSpinsUnlessTheEnvironmentChose) {
  if (RunProbe("").empty()) GTEST_SKIP() << "main_probe not built (Bazel builds it)";
  // Re-executed with the variable set and the same arguments.
  EXPECT_EQ(RunProbe(""), "GOMP_SPINCOUNT=3000 --a b c\n");
  EXPECT_EQ(RunProbe("GOMP_SPINCOUNT=77"), "GOMP_SPINCOUNT=77 --a b c\n");
  EXPECT_EQ(RunProbe("OMP_WAIT_POLICY=active"), "GOMP_SPINCOUNT=(unset) --a b c\n");
}

TEST(RunMain, AnErrorStatusIsOneLineOnStderrAndExitStatusOne) {
  if (RunProbe("").empty()) GTEST_SKIP() << "main_probe not built (Bazel builds it)";
  // stderr joined to stdout, then the exit status.
  EXPECT_EQ(RunProbe("", "--fail 2>&1; echo \"exit $?\""),
            "main_probe: --fail was given\nexit 1\n");
  EXPECT_EQ(RunProbe("", "--ok; echo \"exit $?\""), "GOMP_SPINCOUNT=3000 --ok\nexit 0\n");
}

TEST(ApplyThreadsFlag, NegativeIsAnErrorNamingTheFlag) {
  absl::SetFlag(&FLAGS_threads, -2);
  const absl::StatusOr<int> bad = ApplyThreadsFlag();
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "--threads must be >= 0 (0: all hardware threads), got -2");
  absl::SetFlag(&FLAGS_threads, 1);
  ASSERT_TRUE(ApplyThreadsFlag().ok());
  EXPECT_EQ(*ApplyThreadsFlag(), 1);
  EXPECT_EQ(at::get_num_threads(), 1);
  absl::SetFlag(&FLAGS_threads, 0);
  EXPECT_GE(*ApplyThreadsFlag(), 1);  // all hardware threads
}

TEST(CsvWriter, WritesHeaderOnceAndAppendsOnResume) {
  const std::string dir = std::string(std::getenv("TEST_TMPDIR")) + "/a/b";
  ASSERT_TRUE(MakeDirs(dir).ok());
  const std::string path = dir + "/m.csv";
  {
    auto csv = CsvWriter::Open(path, {"step", "loss"});
    ASSERT_TRUE(csv.ok()) << csv.status();
    csv->Row({1, 0.5});
  }
  {
    auto csv = CsvWriter::Open(path, {"step", "loss"}, /*append=*/true);
    ASSERT_TRUE(csv.ok()) << csv.status();
    csv->Row({2, 0.25});
  }
  EXPECT_EQ(ReadAll(path), "step,loss\n1,0.5\n2,0.25\n");
  EXPECT_FALSE(CsvWriter::Open(path, {"step", "acc"}, true).ok());
}

TEST(FirstStepAtLeast, FindsTheFirstEvaluationRowAboveAThreshold) {
  const std::string dir = std::string(std::getenv("TEST_TMPDIR")) + "/first";
  ASSERT_TRUE(MakeDirs(dir).ok());
  const std::string path = dir + "/run.csv";
  std::ofstream(path) << "step,mse,iou\n1,0.5,\n50,0.2,0.8\n100,0.1,0.995\n150,0.1,1\n";
  EXPECT_EQ(*FirstStepAtLeast(path, "iou", 0.99), 100);
  EXPECT_EQ(*FirstStepAtLeast(path, "iou", 1.0), 150);
  EXPECT_EQ(*FirstStepAtLeast(path, "iou", 1.5), -1);
  EXPECT_EQ(*FirstStepAtLeast(path, "mse", 0.3), 1);
  auto missing_column = FirstStepAtLeast(path, "accuracy", 0.5);
  ASSERT_FALSE(missing_column.ok());
  EXPECT_NE(missing_column.status().message().find("no column 'accuracy'"), std::string::npos);
  EXPECT_FALSE(FirstStepAtLeast(dir + "/none.csv", "iou", 0.5).ok());
}

TEST(MarkdownTable, HeaderRuleAndRows) {
  const std::string md = MarkdownTable({"a", "bb"}, {{"1", "2"}, {"x", "y z"}});
  EXPECT_EQ(md, "| a | bb |\n|---|---|\n| 1 | 2 |\n| x | y z |\n");
  try {
    MarkdownTable({"a", "b"}, {{"1", "2"}, {"3"}});
    ADD_FAILURE() << "no error for a short row";
  } catch (const c10::Error& e) {
    EXPECT_EQ(e.msg(), "MarkdownTable: row 1 has 1 cells, the header 2");
  }
  const std::string dir = std::string(std::getenv("TEST_TMPDIR"));
  ASSERT_TRUE(WriteSummaryMarkdown(dir, md).ok());
  EXPECT_EQ(ReadAll(dir + "/summary.md"), md);
  EXPECT_EQ(WriteSummaryMarkdown(dir + "/no/such/dir", md).message(),
            "cannot write " + dir + "/no/such/dir/summary.md");
}

TEST(CsvWriter, UnwritablePathIsAnError) {
  auto csv = CsvWriter::Open("/proc/no/such/dir/x.csv", {"a"});
  ASSERT_FALSE(csv.ok());
  EXPECT_NE(csv.status().message().find("/proc/no/such/dir/x.csv"),
            std::string::npos);
}

TEST(UserPath, RelativePathsAreTakenFromWhereBazelRan) {
  ::setenv("BUILD_WORKING_DIRECTORY", "/home/me/project", 1);
  EXPECT_EQ(UserPath("out/x.pt"), "/home/me/project/out/x.pt");
  EXPECT_EQ(UserPath("/abs/x.pt"), "/abs/x.pt");
  EXPECT_EQ(UserPath(""), "");
  EXPECT_EQ(OutputDir("runs", "identity"), "/home/me/project/runs");
  ::unsetenv("BUILD_WORKING_DIRECTORY");
  EXPECT_EQ(UserPath("out/x.pt"), "out/x.pt");
}

TEST(ParseDevice, CpuCudaAndErrorsNamingTheFlag) {
  EXPECT_EQ(ParseDevice("cpu", 0)->type(), torch::kCPU);
  EXPECT_EQ(ParseDevice("cuda", 1)->type(), torch::kCUDA);
  EXPECT_EQ(ParseDevice("cuda:1", 2)->index(), 1);
  EXPECT_EQ(ParseDevice("gpu", 1).status().message(),
            "--device must be cpu, cuda or cuda:N, got 'gpu'");
  EXPECT_EQ(ParseDevice("cuda:x", 1).status().message(),
            "--device must be cpu, cuda or cuda:N, got 'cuda:x'");
  const absl::Status none = ParseDevice("cuda", 0).status();
  EXPECT_EQ(none.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(none.message().find("--device=cuda: 0 CUDA devices are visible"),
            std::string::npos)
      << none.message();
  EXPECT_FALSE(ParseDevice("cuda:2", 2).ok());
}

TEST(FormatDuration, MinutesAndHours) {
  EXPECT_EQ(FormatDuration(0), "0:00");
  EXPECT_EQ(FormatDuration(125), "2:05");
  EXPECT_EQ(FormatDuration(3723), "1:02:03");
}

}  // namespace
}  // namespace experiments
}  // namespace indexgrad
