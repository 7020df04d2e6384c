"""indexgrad_op: the BUILD block every op in kernels/<op>/ shares.

An op folder holds (torchvision's layout): <op>.cpp (schema, checks),
cpu/<op>_kernel.cpp, autograd/<op>_autograd.cpp, <op>.h, <op>_math.h (the
per-element code both devices run), cuda/<op>_kernel.cu + .h (the kernel
behind a plain C++ interface), cuda/<op>_cuda.cpp (the torch-facing CUDA
host entry), <op>_test.cc and, optionally, <op>_test.py. The macro makes:

  :<op>               the op library (CPU kernel, autograd, registration)
  :<op>_cuda_kernel   nvcc objects of cuda/<op>_kernel.cu
  :<op>_cuda          the CUDA host entry (only with --config=cuda)
  :<op>_test          the C++ test
  :<op>_python_test   the Python test (python_test = True)

Anything else (benchmarks, extra tests) is written out in the BUILD file.
"""

load("//bazel:cuda.bzl", "CUDA_ONLY", "cuda_library")
load("//bazel:python.bzl", "py_op_test")

def indexgrad_op(name, srcs, hdrs, cu_deps, test_deps = [], python_test = True):
    """Declares an op's library, CUDA parts and tests.

    Args:
      name: the op's name, also its folder's.
      srcs: the op library's sources (<op>.cpp, cpu/..., autograd/...).
      hdrs: its public headers (<op>.h, <op>_math.h, ...).
      cu_deps: headers cuda/<op>_kernel.cu includes.
      test_deps: further dependencies of <op>_test.
      python_test: whether <op>_test.py exists.
    """
    native.cc_library(
        name = name,
        srcs = srcs,
        hdrs = hdrs,
        visibility = ["//visibility:public"],
        deps = [
            "//kernels/common",
            "//third_party:torch",
        ],
        alwayslink = True,
    )
    cuda_library(
        name = name + "_cuda_kernel",
        srcs = ["cuda/%s_kernel.cu" % name],
        hdrs = ["cuda/%s_kernel.h" % name],
        cu_deps = cu_deps,
        deps = [":" + name],
    )
    native.cc_library(
        name = name + "_cuda",
        srcs = ["cuda/%s_cuda.cpp" % name],
        target_compatible_with = CUDA_ONLY,
        deps = [
            ":" + name,
            ":%s_cuda_kernel" % name,
            "//kernels/common:cuda_launch",
            "//third_party:cuda_headers",
        ],
        alwayslink = True,
    )
    native.cc_test(
        name = name + "_test",
        size = "small",
        srcs = ["%s_test.cc" % name],
        deps = [
            ":" + name,
            "//kernels/testing",
            "//third_party:gtest_main",
        ] + test_deps,
    )
    if python_test:
        py_op_test(
            name = name + "_python_test",
            script = "%s_test.py" % name,
        )
