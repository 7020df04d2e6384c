// A test's scratch space: the per-test TEST_TMPDIR that Bazel (and the CMake
// build's ctest) gives every test, else /tmp.
//
//   const std::string file = testing::ScratchPath("mask.png");  // nothing made
//   const std::string dir = testing::ScratchDir("runs");        // empty folder
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>

namespace indexgrad {
namespace testing {

inline std::string ScratchPath(const std::string& name) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  return std::string(tmp ? tmp : "/tmp") + "/" + name;
}

// ScratchPath(name) as an empty folder (emptied if a test made it before).
inline std::string ScratchDir(const std::string& name) {
  const std::string dir = ScratchPath(name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace testing
}  // namespace indexgrad
