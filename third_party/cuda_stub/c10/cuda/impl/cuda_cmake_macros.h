// Debian's libtorch-dev omits this CMake-generated header; the c10/cuda
// headers include it. Used only when compile-checking CUDA host code.
#pragma once
#define C10_CUDA_BUILD_SHARED_LIBS
