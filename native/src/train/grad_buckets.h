// Data parallel: which ranges of the flat gradient buffer a rank sums over the ranks, and when,
// so that the sums start while the backward still runs (train/step.h). The backward finishes the
// gradients from the end of the buffer towards its start (nn/lm.h: LanguageModel::backward tells
// each offset from which on they are final); as DDP does, the finished gradients wait until at
// least a bucket's bytes of them are ready, then are summed together. Buckets only group the
// elements: each is summed elementwise over the ranks, so any bucketing gives the same sums.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "../core/error.h"

namespace ml {

// Elements [begin, end) of the flat gradient buffer.
struct GradRange {
  int64_t begin, end;
  int64_t size() const { return end - begin; }
};

class GradientBuckets {
 public:
  // `summed`: the ranges to sum, ascending and apart (the whole buffer, or the ranges between
  // tensors that are not summed). bucket_bytes: the least bytes of summed gradients a bucket
  // holds, the last one aside; 0: one bucket, when the backward has ended.
  GradientBuckets(std::vector<GradRange> summed, int64_t element_bytes, int64_t bucket_bytes)
      : summed_(std::move(summed)), element_bytes_(element_bytes), bucket_bytes_(bucket_bytes) {
    ML_CHECK(bucket_bytes >= 0, "data parallel: a bucket of ", bucket_bytes, " bytes");
    for (size_t i = 0; i < summed_.size(); ++i)
      ML_CHECK(summed_[i].begin <= summed_[i].end && (i == 0 || summed_[i - 1].end <= summed_[i].begin),
               "data parallel: gradient ranges out of order");
    waiting_end_ = summed_.empty() ? 0 : summed_.back().end;
  }

  // The gradients from `offset` on are final: the ranges of the bucket to sum now (ascending),
  // or none while fewer than a bucket's bytes wait. Offset 0 (the backward has ended) hands out
  // whatever waits. Offsets only decrease.
  std::vector<GradRange> final_from(int64_t offset) {
    ML_CHECK(offset <= waiting_end_, "data parallel: gradients final from ", offset, " after ", waiting_end_);
    std::vector<GradRange> bucket;
    int64_t elements = 0;
    for (const GradRange& r : summed_) {
      const GradRange part{std::max(r.begin, offset), std::min(r.end, waiting_end_)};
      if (part.size() > 0) bucket.push_back(part), elements += part.size();
    }
    const bool full = bucket_bytes_ > 0 && elements * element_bytes_ >= bucket_bytes_;
    if (offset > 0 && !full) return {};
    waiting_end_ = offset;
    return bucket;
  }

 private:
  std::vector<GradRange> summed_;
  int64_t element_bytes_, bucket_bytes_;
  int64_t waiting_end_;  // the gradients from here on have been handed out
};

}  // namespace ml
