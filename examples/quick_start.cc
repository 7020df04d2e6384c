// Quick start (README): a SparseLayer learns the 8 x 8 identity from
// examples, Bloem et al. 2018 section 3.1. Exits 0 when the rounded
// index tuples form exactly I. Built and run by //examples:quick_start_test.
#include <torch/torch.h>

#include <cstdio>

#include "sparse_hyper/sparse_layer.h"

int main() {
  using indexgrad::sparse_hyper::SparseLayer;
  using indexgrad::sparse_hyper::SparseLayerOptions;
  torch::manual_seed(0);
  const int64_t n = 8;
  // W is n x n with k = n nonzeros whose (row, column) positions are learned.
  SparseLayer layer(SparseLayerOptions(/*out_shape=*/{n}, /*in_shape=*/{n}, /*k=*/n)
                        .num_global(4).num_local(4).learn_values(false));
  torch::optim::Adam adam(layer->parameters(), torch::optim::AdamOptions(0.005));
  for (int step = 1; step <= 3000; ++step) {
    const torch::Tensor x = torch::randn({64, n});                // [batch, n]
    const torch::Tensor loss = torch::mse_loss(layer->forward(x), x);  // learn y = x
    adam.zero_grad();
    loss.backward();
    adam.step();
    if (step % 500 == 0) std::printf("step %4d  loss %.4f\n", step, loss.item<double>());
  }
  layer->eval();  // evaluation: the rounded means, no sampling
  const bool exact = layer->dense_rounded().equal(torch::eye(n));
  std::printf("rounded W is the identity: %s\n", exact ? "yes" : "no");
  return exact ? 0 : 1;
}
