"""cuda_library: compiles .cu files with nvcc into a cc_library.

The CUDA sources of this project hold only kernels and their launchers behind
a plain C++ interface (raw pointers, no torch headers), so each compiles in
about a second. The torch-facing host code (checks, guards, dispatch) is an
ordinary .cpp in a `cc_library` marked `target_compatible_with = CUDA_ONLY`.

Debian's LibTorch has no CUDA part, so on the CPU machine these targets are
compiled (with `--config=cuda`) but never linked into a binary; the GPU
build links them through CMakeLists.txt.
"""

NVCC = "/usr/local/cuda/bin/nvcc"

# sm_90 = H100 / H200, plus PTX for newer cards.
NVCC_FLAGS = " ".join([
    "-std=c++17",
    "-O3",
    "-ccbin /usr/bin/g++",
    "-Xcompiler -fPIC",
    "-gencode arch=compute_90,code=[sm_90,compute_90]",
    "-I.",
])

CUDA_ONLY = select({
    "//bazel:cuda_enabled": [],
    "//conditions:default": ["//bazel:incompatible"],
})

def cuda_library(name, srcs, hdrs = [], cu_deps = [], deps = [], **kwargs):
    """Compiles `srcs` (.cu) with nvcc; `cu_deps` are headers they include."""
    objs = []
    for src in srcs:
        obj = "_%s_%s.o" % (name, src.replace("/", "_").replace(".cu", ""))
        native.genrule(
            name = obj.replace(".o", "_nvcc"),
            srcs = [src] + hdrs + cu_deps,
            outs = [obj],
            cmd = "%s %s -c $(location %s) -o $@" % (NVCC, NVCC_FLAGS, src),
            target_compatible_with = CUDA_ONLY,
            message = "nvcc " + src,
        )
        objs.append(obj)
    native.cc_library(
        name = name,
        srcs = objs,
        hdrs = hdrs,
        deps = deps,
        target_compatible_with = CUDA_ONLY,
        **kwargs
    )
