// ML_HD marks small functions that both the host and CUDA kernels call (the counter-based RNG,
// parameter initialisation): __host__ __device__ under nvcc, nothing for the C++ compiler.
#pragma once

#ifdef __CUDACC__
#define ML_HD __host__ __device__
#else
#define ML_HD
#endif
