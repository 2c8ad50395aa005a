// The layer tree on the CPU backend, compiled once here (lm.h declares these extern).
#include "cpu_backend.h"
#include "lm.h"

namespace ml {

template class LanguageModel<CpuBackend<float>>;
template class LanguageModel<CpuBackend<double>>;

}  // namespace ml
