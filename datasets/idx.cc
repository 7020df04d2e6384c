#include "datasets/idx.h"

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace indexgrad {
namespace data {
const char kMnistHowToCreate[] =
    "create it with `tools/install_deps.sh` (or `/usr/bin/python3 "
    "tools/prepare_data.py --data_dir <dir>`) from the repository root";

namespace {

constexpr const char* kHowToCreate = kMnistHowToCreate;

uint32_t BigEndian(const unsigned char* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) |
         (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}

}  // namespace

absl::StatusOr<at::Tensor> ReadIdx(const std::string& path,
                                   absl::string_view how_to_create) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("IDX file '", path, "' does not exist; ", how_to_create));
  }
  // A directory opens on Linux, and its "size" would size the buffer.
  std::error_code error;
  if (!std::filesystem::is_regular_file(path, error)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "IDX path '", path, "' is not a readable file (a directory?); ", how_to_create));
  }
  in.seekg(0, std::ios::end);
  std::vector<unsigned char> bytes(static_cast<size_t>(in.tellg()));
  in.seekg(0, std::ios::beg);
  in.read(reinterpret_cast<char*>(bytes.data()), bytes.size());
  if (bytes.size() < 4 || bytes[0] != 0 || bytes[1] != 0) {
    return absl::DataLossError(absl::StrCat(
        "IDX file '", path, "' is corrupt: it does not start with the IDX "
        "magic 0x0000; ", how_to_create));
  }
  if (bytes[2] != 0x08) {
    return absl::UnimplementedError(absl::StrCat(
        "IDX file '", path, "' has element type 0x", absl::Hex(bytes[2]),
        "; only unsigned bytes (0x08) are supported"));
  }
  const int rank = bytes[3];
  const size_t header = 4 + 4 * size_t(rank);
  if (rank == 0 || bytes.size() < header) {
    return absl::DataLossError(absl::StrCat("IDX file '", path,
                                            "' is corrupt: header of rank ",
                                            rank, " is truncated; ",
                                            how_to_create));
  }
  std::vector<int64_t> shape;
  size_t numel = 1;
  for (int d = 0; d < rank; ++d) {
    shape.push_back(BigEndian(&bytes[4 + 4 * d]));
    numel *= shape.back();
  }
  if (bytes.size() != header + numel) {
    return absl::DataLossError(absl::StrCat(
        "IDX file '", path, "' is corrupt: its header promises ", numel,
        " bytes of data, the file holds ", bytes.size() - header, "; ",
        how_to_create));
  }
  at::Tensor t = at::empty(shape, at::kByte);
  std::copy(bytes.begin() + header, bytes.end(), t.data_ptr<uint8_t>());
  return t;
}

absl::Status WriteIdx(const std::string& path, const at::Tensor& bytes) {
  if (!bytes.defined() || bytes.scalar_type() != at::kByte || bytes.dim() < 1 ||
      bytes.dim() > 255) {
    return absl::InvalidArgumentError(absl::StrCat(
        "WriteIdx('", path, "'): needs a uint8 tensor of rank 1..255"));
  }
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  std::vector<unsigned char> header = {0, 0, 0x08,
                                       static_cast<unsigned char>(bytes.dim())};
  for (int64_t s : bytes.sizes()) {
    const uint32_t v = static_cast<uint32_t>(s);
    for (int shift = 24; shift >= 0; shift -= 8) header.push_back((v >> shift) & 0xff);
  }
  const at::Tensor c = bytes.contiguous();
  out.write(reinterpret_cast<const char*>(header.data()), header.size());
  out.write(reinterpret_cast<const char*>(c.data_ptr<uint8_t>()), c.numel());
  out.close();
  if (!out) {
    return absl::InternalError(absl::StrCat("could not write IDX file '", path, "'"));
  }
  return absl::OkStatus();
}

absl::StatusOr<ImageSet> LoadImageSet(const std::string& data_dir,
                                      absl::string_view name, Split split) {
  if (name != "mnist" && name != "fashion-mnist") {
    return absl::InvalidArgumentError(absl::StrCat(
        "data set must be 'mnist' or 'fashion-mnist', got '", name, "'"));
  }
  const std::string prefix = absl::StrCat(
      data_dir, "/", name, "/", split == Split::kTest ? "t10k" : "train");
  absl::StatusOr<at::Tensor> images = ReadIdx(prefix + "-images-idx3-ubyte");
  if (!images.ok()) return images.status();
  absl::StatusOr<at::Tensor> labels = ReadIdx(prefix + "-labels-idx1-ubyte");
  if (!labels.ok()) return labels.status();
  if (images->dim() != 3 || labels->dim() != 1 ||
      images->size(0) != labels->size(0)) {
    return absl::DataLossError(absl::StrCat(
        "'", prefix, "-*' images and labels do not match: ", images->dim(),
        "-d images of ", images->size(0), " items, ", labels->dim(),
        "-d labels of ", labels->size(0), "; ", kHowToCreate));
  }
  if (labels->numel() > 0 && labels->max().item<int64_t>() > 9) {
    return absl::DataLossError(absl::StrCat("'", prefix,
                                            "-labels-idx1-ubyte' holds a "
                                            "label above 9; ",
                                            kHowToCreate));
  }
  at::Tensor im = *images;
  at::Tensor lab = *labels;
  if (split == Split::kTrain || split == Split::kValidation) {
    const int64_t n = im.size(0);
    if (n <= kValidationSize) {
      return absl::DataLossError(absl::StrCat(
          "'", prefix, "-images-idx3-ubyte' holds ", n,
          " items, too few to carve a validation split of ", kValidationSize,
          "; ", kHowToCreate));
    }
    const int64_t cut = n - kValidationSize;
    im = split == Split::kTrain ? im.slice(0, 0, cut) : im.slice(0, cut, n);
    lab = split == Split::kTrain ? lab.slice(0, 0, cut) : lab.slice(0, cut, n);
  }
  return ImageSet{im.to(at::kFloat).div_(255.0f), lab.to(at::kLong)};
}

std::string DefaultDataDir() {
  if (const char* dir = std::getenv("INDEXGRAD_DATA_DIR")) return dir;
  if (const char* ws = std::getenv("BUILD_WORKSPACE_DIRECTORY")) {
    return absl::StrCat(ws, "/data");
  }
  return "data";
}

}  // namespace data
}  // namespace indexgrad
