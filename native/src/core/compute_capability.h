// The compute capability of this thread's current CUDA device (major·10 + minor: 90 on H100 and
// H200), asked of the driver once per device. CUDA builds only.
#pragma once

namespace ml::cuda {

int current_compute_capability();

}  // namespace ml::cuda
