"""py_op_test: runs a Python test script against the built ops library.

The script runs under Debian's /usr/bin/python3 (python3-torch 1.13.1, the
same build as libtorch-dev) with the path of libindexgrad.so as argv[1].
"""

def py_op_test(name, script, size = "small", **kwargs):
    native.sh_test(
        name = name,
        size = size,
        srcs = ["//bazel:run_python_test.sh"],
        args = [
            "$(location %s)" % script,
            "$(location //kernels:libindexgrad.so)",
        ],
        data = [
            script,
            "//kernels:libindexgrad.so",
        ],
        **kwargs
    )
