#include "diff_masks/optimizer_state.h"

#include <sstream>
#include <string>
#include <type_traits>
#include <typeinfo>

#include <torch/optim/adam.h>
#include <torch/optim/adamw.h>
#include <torch/optim/sgd.h>

namespace indexgrad {
namespace diff_masks {

namespace {

template <typename Key>
Key StateKey(at::TensorImpl* impl) {
  if constexpr (std::is_same_v<Key, std::string>) {
    std::ostringstream key;  // what c10::guts::to_string(impl) gives
    key << impl;
    return key.str();
  } else {
    return static_cast<Key>(impl);
  }
}

}  // namespace

torch::optim::OptimizerParamState* FindOptimizerState(torch::optim::Optimizer& optimizer,
                                                      const at::Tensor& parameter) {
  auto& state = optimizer.state();
  using Key = std::decay_t<decltype(state.begin()->first)>;
  const auto it = state.find(StateKey<Key>(parameter.unsafeGetTensorImpl()));
  return it == state.end() ? nullptr : it->second.get();
}

void RestartMoments(MaskOperator& op, torch::optim::Optimizer& optimizer) {
  for (const MaskOperator::Rows& r : op.RestartedRows()) {
    torch::optim::OptimizerParamState* state = FindOptimizerState(optimizer, r.parameter);
    if (state == nullptr) continue;  // no step taken yet
    const auto clear = [&r](at::Tensor& moment) {
      if (moment.defined()) moment.index_fill_(0, r.rows, 0);
    };
    if (auto* adam = dynamic_cast<torch::optim::AdamParamState*>(state)) {
      clear(adam->exp_avg());
      clear(adam->exp_avg_sq());
      clear(adam->max_exp_avg_sq());
    } else if (auto* adamw = dynamic_cast<torch::optim::AdamWParamState*>(state)) {
      clear(adamw->exp_avg());
      clear(adamw->exp_avg_sq());
      clear(adamw->max_exp_avg_sq());
    } else if (auto* sgd = dynamic_cast<torch::optim::SGDParamState*>(state)) {
      clear(sgd->momentum_buffer());
    } else {
      TORCH_CHECK(false, "RestartMoments: optimizer state of type ",
                  typeid(*state).name(), " is not supported (Adam, AdamW, SGD)");
    }
  }
}

}  // namespace diff_masks
}  // namespace indexgrad
