// SortLayer: the differentiable quicksort of Bloem et al. 2018 (section 3.3):
// log2 N half-permutation levels (kernels/half_permutation), each a sparse
// layer parametrised by the keys, composed as x_i = P^i(o(x_{i-1})) x_{i-1}.
//
//   SortLayer sorter(SortLayerOptions().num_samples(2));
//   SortOutput out = sorter->forward(keys, images);  // keys [b, n], images [b, n, 3, 28, 84]
//   at::Tensor loss = SortLoss(out, sorted_images, {SortLossOptions::Kind::kBce, /*intermediate=*/true});
//   sorter->eval();  out = sorter->forward(keys, images);  // exact sort + permutation
//
// Any n >= 1: inside, keys and values are padded to the next power of two N
// with keys that sort last (max key + 50 / temperature, so a real key and a
// padding key straddling a median are 25 / temperature from it: their
// proportions differ from the hard split by about exp(-25)) and zero values;
// the caller sees n. n = 1 is returned as it is.
// Training mode: level d (0-based) has 2^d buckets; seeds come from `seed`
// and a call counter (a buffer, so checkpoints keep it). Evaluation mode: the
// exact stable sort (HardSort), no sampling.
#pragma once

#include <torch/nn/pimpl.h>

#include <cstdint>

#include "sparse_hyper/sorting.h"

namespace indexgrad {
namespace sparse_hyper {

struct SortLayerOptions {
  // a: random balanced candidate vectors per bucket and level (besides
  // round(o')); the paper uses a = n.
  TORCH_ARG(int64_t, num_samples) = 2;
  // C of o' = sigmoid(C (x - median)); 10 in the paper.
  TORCH_ARG(double, temperature) = 10.0;
  TORCH_ARG(int64_t, seed) = 0;
};

class SortLayerImpl : public SortModuleImpl {
 public:
  explicit SortLayerImpl(SortLayerOptions options = {});

  SortOutput forward(const at::Tensor& keys, const at::Tensor& values) override;

  SortLayerOptions options;
  at::Tensor calls;  // [] int64 buffer: training calls so far (sampling seed)
};
TORCH_MODULE(SortLayer);

}  // namespace sparse_hyper
}  // namespace indexgrad
