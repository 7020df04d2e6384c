#!/usr/bin/python3
"""Binary mask images from Fashion-MNIST, for mask_recovery's `file:` targets.

  /usr/bin/python3 tools/fashion_masks.py OUT_DIR [--size=32] [--indices=0,1,2]

Reads Debian's dataset-fashion-mnist (tools/install_deps.sh installs it;
/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz), thresholds
each chosen test image at half its range (>= 128 on), pads it to SIZE x SIZE
(centred) and writes OUT_DIR/fashion_<index>.pgm (8-bit binary PGM, 0 or
255). These are targets the mask operators were never tuned on:

  bazel run //experiments:mask_recovery -- --operators=gaussian \\
      --targets=file:$PWD/out/fashion/fashion_0.pgm,file:$PWD/out/fashion/fashion_1.pgm
"""

import argparse
import gzip
import os
import struct
import sys

IMAGES = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir")
    ap.add_argument("--size", type=int, default=32, help="output side (>= 28)")
    ap.add_argument("--indices", default="0,1,2",
                    help="comma-separated Fashion-MNIST test image indices")
    ap.add_argument("--images", default=IMAGES, help="IDX images file (.gz)")
    a = ap.parse_args()
    if a.size < 28:
        sys.exit(f"--size must be >= 28, got {a.size}")
    if not os.path.exists(a.images):
        sys.exit(f"{a.images} not found: run tools/install_deps.sh "
                 "(Debian's dataset-fashion-mnist)")
    with gzip.open(a.images, "rb") as f:
        data = f.read()
    magic, count, rows, cols = struct.unpack(">IIII", data[:16])
    if magic != 2051 or len(data) != 16 + count * rows * cols:
        sys.exit(f"{a.images}: not an IDX image file (magic {magic}, {len(data)} bytes)")
    os.makedirs(a.out_dir, exist_ok=True)
    pad_r, pad_c = (a.size - rows) // 2, (a.size - cols) // 2
    indices = []
    for text in a.indices.split(","):
        try:
            indices.append(int(text))
        except ValueError:
            sys.exit(f"--indices: '{text}' is not an integer")
        if not 0 <= indices[-1] < count:
            sys.exit(f"--indices: {indices[-1]} is outside [0, {count})")
    for i in indices:
        pixels = data[16 + i * rows * cols:16 + (i + 1) * rows * cols]
        out = bytearray(a.size * a.size)
        for r in range(rows):
            for c in range(cols):
                if pixels[r * cols + c] >= 128:
                    out[(r + pad_r) * a.size + c + pad_c] = 255
        path = os.path.join(a.out_dir, f"fashion_{i}.pgm")
        with open(path, "wb") as f:
            f.write(b"P5\n%d %d\n255\n" % (a.size, a.size) + bytes(out))
        print(f"{path}: {sum(1 for v in out if v)} pixels on")


if __name__ == "__main__":
    main()
