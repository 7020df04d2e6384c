#include "experiments/sort_mnist_run.h"

#include <torch/optim/adam.h>

#include <algorithm>
#include <fstream>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "baselines/relaxed_sort.h"
#include "experiments/common/summary.h"
#include "experiments/common/train_loop.h"
#include "kernels/half_permutation/half_permutation.h"
#include "sparse_hyper/sort_layer.h"

namespace indexgrad {
namespace experiments {

namespace sh = sparse_hyper;

namespace {

// The key network and the sorter as one module, so the checkpoint holds
// both (the quicksort's call counter included).
struct SortModelImpl : torch::nn::Module {
  SortModelImpl(sh::KeyNetwork k, std::shared_ptr<sh::SortModuleImpl> s)
      : keys(register_module("keys", k)), sorter(register_module("sorter", s)) {}
  sh::KeyNetwork keys;
  std::shared_ptr<sh::SortModuleImpl> sorter;
};

sh::SortBatch Slice(const sh::SortBatch& data, int64_t begin, int64_t end) {
  return {data.images.slice(0, begin, end), data.numbers.slice(0, begin, end),
          data.target.slice(0, begin, end)};
}

}  // namespace

absl::StatusOr<std::shared_ptr<sh::SortModuleImpl>> MakeSorter(const SortRunConfig& c) {
  if (c.method == "quicksort") {
    return std::shared_ptr<sh::SortModuleImpl>(
        std::make_shared<sh::SortLayerImpl>(sh::SortLayerOptions()
                                                .num_samples(c.num_samples)
                                                .temperature(c.temperature)
                                                .seed(c.seed)));
  }
  if (c.method == "neuralsort") {
    return std::shared_ptr<sh::SortModuleImpl>(std::make_shared<baselines::NeuralSortImpl>(c.tau));
  }
  if (c.method == "softsort") {
    return std::shared_ptr<sh::SortModuleImpl>(std::make_shared<baselines::SoftSortImpl>(c.tau));
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "method must be quicksort, neuralsort or softsort, got '", c.method, "'"));
}

// Keys on the network's device, metrics on the CPU.
sh::SortMetrics EvaluateKeys(sh::KeyNetwork& keys, const sh::SortBatch& data,
                             const c10::Device& device) {
  torch::NoGradGuard no_grad;
  const bool was_training = keys->is_training();
  keys->eval();
  std::vector<at::Tensor> perms;
  const int64_t total = data.numbers.size(0);
  for (int64_t b = 0; b < total; b += 100) {
    const at::Tensor k =
        keys->forward(data.images.slice(0, b, std::min(total, b + 100)).to(device));
    perms.push_back(std::get<1>(k.sort(/*stable=*/true, 1, false)).cpu());
  }
  keys->train(was_training);
  return sh::ComputeSortMetrics(data.numbers, at::cat(perms, 0));
}

absl::StatusOr<SortRunResult> RunSortMnist(const SortRunConfig& c, const sh::DigitPool& train,
                                           const sh::SortBatch& validation,
                                           const sh::SortBatch& test) {
  absl::StatusOr<std::shared_ptr<sh::SortModuleImpl>> sorter = MakeSorter(c);
  if (!sorter.ok()) return sorter.status();
  at::manual_seed(c.seed);
  std::mt19937_64 rng(static_cast<uint64_t>(c.seed) * 7919 + c.n);
  sh::KeyNetwork keys(sh::KeyNetworkOptions(c.digits).paper(c.paper_keynet));
  SortModelImpl model(keys, *sorter);
  model.to(c.device);  // before the optimizer takes the parameters
  torch::optim::Adam adam(keys->parameters(), torch::optim::AdamOptions(c.lr));

  SortRunResult result;
  result.config = c;
  result.name = absl::StrFormat("%s_n%d_s%d", c.method, c.n, c.seed);
  TrainLoopOptions loop;
  loop.label = absl::StrFormat("sort_mnist %s n=%d seed=%d", c.method, c.n, c.seed);
  loop.steps = c.steps;
  loop.eval_every = c.eval_every;
  loop.checkpoint_every = std::max<int64_t>(c.eval_every, 100);
  loop.checkpoint_path = c.run_dir + "/" + result.name + ".ckpt";
  loop.resume = c.resume;
  loop.csv_path = c.run_dir + "/" + result.name + ".csv";
  loop.train_columns = {"loss"};
  loop.eval_columns = {"val_exact", "val_elementwise", "val_spearman"};
  sh::SortLossOptions loss_options;
  loss_options.intermediate = c.intermediate;

  absl::StatusOr<TrainResult> r = RunTrainLoop(
      loop, model, adam,
      [&](int64_t) {
        const sh::SortBatch b = SampleSortBatch(train, c.batch, c.n, c.digits, rng);
        const at::Tensor images = b.images.to(c.device);
        const sh::SortOutput out = model.sorter->forward(keys->forward(images), images);
        const at::Tensor loss = sh::SortLoss(out, b.target.to(c.device), loss_options);
        adam.zero_grad();
        loss.backward();
        adam.step();
        return std::vector<double>{loss.item<double>()};
      },
      [&](int64_t, bool*) {
        const sh::SortMetrics m = EvaluateKeys(keys, validation, c.device);
        return std::vector<double>{m.exact, m.elementwise, m.spearman};
      });
  if (!r.ok()) return r.status();
  result.steps_done = r->steps_done;
  result.seconds = r->seconds;
  result.final_loss = r->last_train.empty() ? NAN : r->last_train[0];
  result.validation = EvaluateKeys(keys, validation, c.device);
  result.test = EvaluateKeys(keys, test, c.device);
  return result;
}

absl::Status WriteLevelsFigure(const SortRunConfig& c, const sh::SortBatch& data,
                               const std::string& path) {
  at::manual_seed(c.seed);
  sh::KeyNetwork keys(sh::KeyNetworkOptions(c.digits).paper(c.paper_keynet));
  sh::SortLayer sorter(sh::SortLayerOptions()
                           .num_samples(c.num_samples)
                           .temperature(c.temperature)
                           .seed(c.seed));
  torch::NoGradGuard no_grad;
  const sh::SortBatch one = Slice(data, 0, 1);
  keys->eval();  // batch statistics of one sequence would be meaningless
  const sh::SortOutput out = sorter->forward(keys->forward(one.images), one.images);
  if (out.steps.empty()) return absl::InvalidArgumentError("levels figure needs n >= 2");
  std::vector<at::Tensor> targets = sh::IntermediateTargets(out, one.target);
  const int64_t length = out.levels[0].size(1);
  // x_0 padded like the levels; t_0 = P_1^T t_1.
  std::vector<at::Tensor> xs = {at::cat({one.images, at::zeros_like(out.levels[0]).narrow(1, 0, length - c.n)}, 1)};
  for (const at::Tensor& x : out.levels) xs.push_back(x);
  targets.insert(targets.begin(), half_permutation_apply(out.steps[0].first, out.steps[0].second,
                                                         targets[0], /*transpose=*/true));
  // Each level: [1, N, 1, 28, W] -> one row image [28, N * W].
  auto row_image = [&](const at::Tensor& level) {
    return level[0].squeeze(1).permute({1, 0, 2}).reshape({28, -1});
  };
  std::vector<at::Tensor> rows;
  for (size_t i = 0; i < xs.size(); ++i) {
    const at::Tensor left = row_image(xs[i]);
    const at::Tensor gap = at::full({28, 14}, 0.5);
    rows.push_back(at::cat({left, gap, row_image(targets[i])}, 1));
    rows.push_back(at::full({4, rows.back().size(1)}, 0.5));
  }
  const at::Tensor grid = at::cat(rows, 0).clamp(0, 1).contiguous();
  std::ofstream f(path);
  if (!f) return absl::InternalError(absl::StrCat("cannot write '", path, "'"));
  const float* g = grid.data_ptr<float>();
  for (int64_t y = 0; y < grid.size(0); ++y) {
    for (int64_t x = 0; x < grid.size(1); ++x) {
      f << (x ? "," : "") << absl::StrFormat("%.3f", g[y * grid.size(1) + x]);
    }
    f << "\n";
  }
  return f ? absl::OkStatus() : absl::InternalError(absl::StrCat("writing '", path, "' failed"));
}

std::string SortSummaryMarkdown(const std::vector<SortRunResult>& runs) {
  std::map<std::pair<std::string, int64_t>, std::vector<const SortRunResult*>> groups;
  std::vector<std::pair<std::string, int64_t>> order;
  for (const SortRunResult& r : runs) {
    auto key = std::make_pair(r.config.method, r.config.n);
    if (!groups.count(key)) order.push_back(key);
    groups[key].push_back(&r);
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& key : order) {
    const auto& g = groups[key];
    auto stat = [&](auto get) {
      double lo = 1e300, hi = -1e300, sum = 0;
      for (const SortRunResult* r : g) {
        const double v = get(*r);
        lo = std::min(lo, v);
        hi = std::max(hi, v);
        sum += v;
      }
      return g.size() > 1 ? absl::StrFormat("%.3f (%.3f-%.3f)", sum / g.size(), lo, hi)
                          : absl::StrFormat("%.3f", sum);
    };
    double secs = 0;
    for (const SortRunResult* r : g) secs += r->seconds;
    rows.push_back({key.first, absl::StrCat(key.second), absl::StrCat(g[0]->config.digits),
                    absl::StrCat(g.size()), absl::StrCat(g[0]->steps_done),
                    stat([](const SortRunResult& r) { return r.test.exact; }),
                    stat([](const SortRunResult& r) { return r.test.elementwise; }),
                    stat([](const SortRunResult& r) { return r.test.spearman; }),
                    absl::StrFormat("%.0f", secs / g.size())});
  }
  return MarkdownTable({"method", "n", "digits", "seeds", "steps", "exact-match",
                        "element-wise", "Spearman", "wall time per run (s)"},
                       rows);
}

}  // namespace experiments
}  // namespace indexgrad
