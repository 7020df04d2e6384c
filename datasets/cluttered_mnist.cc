#include "datasets/cluttered_mnist.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <vector>

#include "absl/strings/str_cat.h"

namespace indexgrad {
namespace data {
namespace {

constexpr int64_t kDigitSide = 28;

// SplitMix64: a small counter-seeded generator, the same on every platform
// (std:: distributions are not).
class ImageRng {
 public:
  ImageRng(int64_t seed, int64_t stream, int64_t index)
      : state_(Mix(Mix(Mix(static_cast<uint64_t>(seed)) ^ static_cast<uint64_t>(stream)) ^
                   static_cast<uint64_t>(index))) {}
  // Uniform in [0, n), n >= 1 (multiply-shift; bias below 2^-40 here).
  int64_t Below(int64_t n) {
    state_ += 0x9e3779b97f4a7c15ULL;
    const uint64_t x = Mix(state_);
    return static_cast<int64_t>((static_cast<unsigned __int128>(x) * static_cast<uint64_t>(n)) >> 64);
  }

 private:
  static uint64_t Mix(uint64_t z) {
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  uint64_t state_;
};

// canvas[r0.., c0..] = min(255, canvas + src[sr0.., sc0..]) over a side x side block.
void AddClipped(uint8_t* canvas, int64_t canvas_side, int64_t r0, int64_t c0,
                const uint8_t* digit, int64_t sr0, int64_t sc0, int64_t side) {
  for (int64_t r = 0; r < side; ++r) {
    uint8_t* row = canvas + (r0 + r) * canvas_side + c0;
    const uint8_t* src = digit + (sr0 + r) * kDigitSide + sc0;
    for (int64_t c = 0; c < side; ++c) {
      row[c] = static_cast<uint8_t>(std::min(255, int(row[c]) + int(src[c])));
    }
  }
}

const char* SplitName(Split split) {
  switch (split) {
    case Split::kTrain: return "train";
    case Split::kValidation: return "validation";
    case Split::kTest: return "test";
    case Split::kTrainFull: break;
  }
  return "train-full";
}

std::string ShapeOf(const at::Tensor& t) {
  std::string s = "[";
  for (int64_t i = 0; i < t.dim(); ++i) absl::StrAppend(&s, i ? ", " : "", t.size(i));
  return s + "]";
}

bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

}  // namespace

absl::Status CheckClutterOptions(const ClutterOptions& o) {
  if (o.canvas < kDigitSide || o.canvas > 255) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cluttered MNIST: canvas must be in [28, 255], got ", o.canvas,
        " (positions are stored as bytes)"));
  }
  if (o.distractors < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("cluttered MNIST: distractors must be >= 0, got ", o.distractors));
  }
  if (o.distractor_size < 1 || o.distractor_size > kDigitSide) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cluttered MNIST: distractor_size must be in [1, 28], got ", o.distractor_size));
  }
  return absl::OkStatus();
}

absl::StatusOr<ClutteredSet> MakeCluttered(const at::Tensor& digits, const at::Tensor& labels,
                                           int64_t count, const ClutterOptions& o,
                                           int64_t stream) {
  if (absl::Status st = CheckClutterOptions(o); !st.ok()) return st;
  if (!digits.defined() || digits.scalar_type() != at::kByte || digits.dim() != 3 ||
      digits.size(1) != kDigitSide || digits.size(2) != kDigitSide || digits.size(0) < 1) {
    return absl::InvalidArgumentError(
        "MakeCluttered: digits must be a non-empty uint8 tensor [M, 28, 28]");
  }
  if (!labels.defined() || labels.dim() != 1 || labels.size(0) != digits.size(0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "MakeCluttered: labels must be [M] = [", digits.size(0), "]"));
  }
  if (count < 0) {
    return absl::InvalidArgumentError(absl::StrCat("MakeCluttered: count must be >= 0, got ", count));
  }
  const int64_t side = o.canvas, m = digits.size(0), nd = o.distractors, ds = o.distractor_size;
  const at::Tensor src = digits.contiguous();
  const at::Tensor lab = labels.to(at::kLong).contiguous();
  ClutteredSet out;
  out.images = at::zeros({count, side, side}, at::kByte);
  out.labels = at::empty({count}, at::kLong);
  out.positions = at::empty({count, 2}, at::kLong);
  out.digit_index = at::empty({count}, at::kLong);
  out.distractor_index = at::empty({count, nd}, at::kLong);
  const uint8_t* d = src.data_ptr<uint8_t>();
  auto* pos = out.positions.data_ptr<int64_t>();
  auto* di = out.digit_index.data_ptr<int64_t>();
  auto* dx = out.distractor_index.data_ptr<int64_t>();
  for (int64_t i = 0; i < count; ++i) {
    ImageRng rng(o.seed, stream, i);
    uint8_t* canvas = out.images.data_ptr<uint8_t>() + i * side * side;
    for (int64_t j = 0; j < nd; ++j) {
      const int64_t which = rng.Below(m);
      const int64_t sr = rng.Below(kDigitSide - ds + 1), sc = rng.Below(kDigitSide - ds + 1);
      const int64_t r = rng.Below(side - ds + 1), c = rng.Below(side - ds + 1);
      AddClipped(canvas, side, r, c, d + which * kDigitSide * kDigitSide, sr, sc, ds);
      dx[i * nd + j] = which;
    }
    const int64_t which = rng.Below(m);
    const int64_t r = rng.Below(side - kDigitSide + 1), c = rng.Below(side - kDigitSide + 1);
    AddClipped(canvas, side, r, c, d + which * kDigitSide * kDigitSide, 0, 0, kDigitSide);
    di[i] = which;
    pos[2 * i] = r;
    pos[2 * i + 1] = c;
  }
  out.labels = lab.index_select(0, out.digit_index);
  return out;
}

int64_t ClutteredSplitSize(Split split) {
  switch (split) {
    case Split::kTrain: return 60000;
    case Split::kValidation: return kValidationSize;
    case Split::kTest: return 10000;
    case Split::kTrainFull: break;
  }
  return 0;
}

std::string ClutteredDir(const std::string& data_dir, const ClutterOptions& o) {
  return absl::StrCat(data_dir, "/cluttered-mnist-", o.canvas, "-", o.distractors);
}

std::string ClutteredHowToCreate(const ClutterOptions& o) {
  return absl::StrCat("create it with `bazel run //datasets:make_cluttered_mnist -- --canvas=",
                      o.canvas, " --distractors=", o.distractors, " --seed=", o.seed,
                      "` from the repository root (it needs the MNIST files of "
                      "`tools/install_deps.sh`)");
}

absl::Status WriteCluttered(const std::string& data_dir, const ClutterOptions& o) {
  if (absl::Status st = CheckClutterOptions(o); !st.ok()) return st;
  // The MNIST files first: a missing one is named with its own command.
  std::vector<ImageSet> sources;
  for (Split split : {Split::kTrain, Split::kValidation, Split::kTest}) {
    absl::StatusOr<ImageSet> mnist = LoadImageSet(data_dir, "mnist", split);
    if (!mnist.ok()) return mnist.status();
    sources.push_back(*mnist);
  }
  const std::string dir = ClutteredDir(data_dir, o);
  if (!Exists(dir) && mkdir(dir.c_str(), 0755) != 0) {
    return absl::InternalError(absl::StrCat("could not create folder '", dir, "'"));
  }
  int64_t stream = 0;
  for (Split split : {Split::kTrain, Split::kValidation, Split::kTest}) {
    const ImageSet* mnist = &sources[stream];
    const at::Tensor bytes = (mnist->images * 255.0f).round_().to(at::kByte);
    absl::StatusOr<ClutteredSet> set =
        MakeCluttered(bytes, mnist->labels, ClutteredSplitSize(split), o, stream++);
    if (!set.ok()) return set.status();
    const std::string prefix = absl::StrCat(dir, "/", SplitName(split));
    // Labels and positions first: the images file completes a split.
    for (const auto& [name, t] :
         {std::make_pair("-labels-idx1-ubyte", set->labels.to(at::kByte)),
          std::make_pair("-positions-idx2-ubyte", set->positions.to(at::kByte)),
          std::make_pair("-images-idx3-ubyte", set->images)}) {
      if (absl::Status st = WriteIdx(prefix + name, t); !st.ok()) return st;
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<ClutteredSet> LoadCluttered(const std::string& data_dir, const ClutterOptions& o,
                                           Split split, bool generate) {
  if (absl::Status st = CheckClutterOptions(o); !st.ok()) return st;
  if (split == Split::kTrainFull) {
    return absl::InvalidArgumentError(
        "cluttered MNIST has no kTrainFull split (train, validation or test)");
  }
  const std::string dir = ClutteredDir(data_dir, o);
  const std::string prefix = absl::StrCat(dir, "/", SplitName(split));
  if (generate) {
    bool missing = false;
    for (const char* s : {"train", "validation", "test"}) {
      for (const char* f : {"-images-idx3-ubyte", "-labels-idx1-ubyte", "-positions-idx2-ubyte"}) {
        missing = missing || !Exists(absl::StrCat(dir, "/", s, f));
      }
    }
    if (missing) {
      std::fprintf(stderr, "cluttered MNIST: generating %s (canvas %lld, %lld distractors, seed %lld)\n",
                   dir.c_str(), static_cast<long long>(o.canvas),
                   static_cast<long long>(o.distractors), static_cast<long long>(o.seed));
      if (absl::Status st = WriteCluttered(data_dir, o); !st.ok()) return st;
    }
  }
  const std::string how = ClutteredHowToCreate(o);
  ClutteredSet set;
  absl::StatusOr<at::Tensor> images = ReadIdx(prefix + "-images-idx3-ubyte", how);
  if (!images.ok()) return images.status();
  absl::StatusOr<at::Tensor> labels = ReadIdx(prefix + "-labels-idx1-ubyte", how);
  if (!labels.ok()) return labels.status();
  absl::StatusOr<at::Tensor> positions = ReadIdx(prefix + "-positions-idx2-ubyte", how);
  if (!positions.ok()) return positions.status();
  const int64_t n = images->size(0);
  if (images->dim() != 3 || images->size(1) != o.canvas || images->size(2) != o.canvas) {
    return absl::DataLossError(absl::StrCat("'", prefix, "-images-idx3-ubyte' is not [N, ",
                                            o.canvas, ", ", o.canvas, "] images; ", how));
  }
  if (labels->dim() != 1 || labels->size(0) != n || positions->dim() != 2 ||
      positions->size(0) != n || positions->size(1) != 2) {
    return absl::DataLossError(absl::StrCat("'", prefix, "-*' files disagree: ", n,
                                            " images, labels ", ShapeOf(*labels),
                                            ", positions ", ShapeOf(*positions), "; ", how));
  }
  if (n > 0 && (labels->max().item<int64_t>() > 9 ||
                positions->max().item<int64_t>() > o.canvas - kDigitSide)) {
    return absl::DataLossError(absl::StrCat("'", prefix,
                                            "-*' hold a label above 9 or a position "
                                            "outside the canvas; ", how));
  }
  set.images = *images;
  set.labels = labels->to(at::kLong);
  set.positions = positions->to(at::kLong);
  return set;
}

}  // namespace data
}  // namespace indexgrad
