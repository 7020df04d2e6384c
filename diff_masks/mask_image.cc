#include "diff_masks/mask_image.h"

#include <stb/stb_image.h>

#include <cctype>
#include <cstdint>
#include <cstdio>
#include <memory>

#include "absl/strings/str_cat.h"

namespace indexgrad {
namespace diff_masks {
namespace {

// Debian bookworm's stb_image (2022-09) reads 16-bit PGM samples
// little-endian, though the format is big-endian (fixed upstream later).
// Probed once on a 1-pixel image holding 256, so either version reads right.
bool Pnm16IsSwapped() {
  static const bool swapped = [] {
    const unsigned char pgm[] = {'P', '5', '\n', '1', ' ', '1', '\n', '6', '5',
                                 '5', '3', '5', '\n', 0x01, 0x00};
    int w = 0, h = 0, c = 0;
    stbi_us* p = stbi_load_16_from_memory(pgm, sizeof pgm, &w, &h, &c, 1);
    const bool result = p != nullptr && p[0] == 1;
    stbi_image_free(p);
    return result;
  }();
  return swapped;
}

// For a binary PGM/PPM (P5/P6): the offset of its first pixel byte, after
// the header's three numbers (comments allowed) and one whitespace; -1 for
// any other file. The file position is left where it was. stb_image does
// not notice a PNM file cut short (it returned garbage pixels), so the
// caller checks the pixel bytes are all there.
int64_t PnmDataOffset(FILE* file) {
  const long at = std::ftell(file);
  int64_t offset = -1;
  char magic[2] = {0, 0};
  if (std::fread(magic, 1, 2, file) == 2 && magic[0] == 'P' &&
      (magic[1] == '5' || magic[1] == '6')) {
    int numbers = 0, c = std::fgetc(file);
    while (c != EOF && numbers < 3) {
      if (c == '#') {
        while (c != EOF && c != '\n') c = std::fgetc(file);
      } else if (std::isdigit(c)) {
        while (c != EOF && std::isdigit(c)) c = std::fgetc(file);
        ++numbers;
        continue;  // c is the character after the number
      }
      c = std::fgetc(file);
    }
    // c is the single whitespace after the third number.
    if (numbers == 3 && c != EOF) offset = std::ftell(file);
  }
  std::fseek(file, at, SEEK_SET);
  return offset;
}

}  // namespace

absl::StatusOr<at::Tensor> LoadMaskImage(const std::string& path) {
  std::unique_ptr<FILE, int (*)(FILE*)> file(std::fopen(path.c_str(), "rb"),
                                             &std::fclose);
  if (!file) {
    return absl::NotFoundError(
        absl::StrCat("mask file ", path, ": cannot be opened"));
  }
  const bool wide = stbi_is_16_bit_from_file(file.get());
  const int64_t pnm_offset = PnmDataOffset(file.get());
  const bool pnm = pnm_offset >= 0;
  int width = 0, height = 0, channels = 0;
  void* pixels =
      wide ? static_cast<void*>(stbi_load_from_file_16(file.get(), &width,
                                                       &height, &channels, 1))
           : static_cast<void*>(
                 stbi_load_from_file(file.get(), &width, &height, &channels, 1));
  if (pixels == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("mask file ", path, ": not a readable image (",
                     stbi_failure_reason(), ")"));
  }
  std::unique_ptr<void, void (*)(void*)> owned(pixels, &stbi_image_free);
  if (pnm) {
    std::fseek(file.get(), 0, SEEK_END);
    const int64_t have = std::ftell(file.get()) - pnm_offset;
    const int64_t need = int64_t(width) * height * channels * (wide ? 2 : 1);
    if (have < need) {
      return absl::InvalidArgumentError(absl::StrCat(
          "mask file ", path, ": cut short (", have, " bytes of pixel data, a ",
          height, " x ", width, " image needs ", need, ")"));
    }
  }
  const bool swap = wide && pnm && Pnm16IsSwapped();
  at::Tensor mask = at::empty({height, width}, at::kFloat);
  float* out = mask.data_ptr<float>();
  for (int64_t i = 0; i < int64_t(height) * width; ++i) {
    if (wide) {
      uint16_t v = static_cast<const uint16_t*>(pixels)[i];
      if (swap) v = static_cast<uint16_t>((v >> 8) | (v << 8));
      out[i] = v >= 32768 ? 1 : 0;
    } else {
      out[i] = static_cast<const uint8_t*>(pixels)[i] >= 128 ? 1 : 0;
    }
  }
  return mask;
}

}  // namespace diff_masks
}  // namespace indexgrad
