// Demo of the first op end to end on real MNIST digits: a sparse linear
// classifier whose connections (class, pixel) are fixed random index tuples
// and whose weights are learned through indexgrad::sparse_contract
// (forward and backward). Prints what it does, logs a CSV, reports test
// accuracy.
//
//   tools/install_deps.sh && bazel run //experiments:mnist_sparse_demo
//   bazel run //experiments:mnist_sparse_demo -- --connections=784 --steps=1000
#include <ATen/ATen.h>
#include <torch/optim/adam.h>

#include <cstdio>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_format.h"
#include "experiments/common/csv.h"
#include "experiments/common/main.h"
#include "experiments/common/progress.h"
#include "experiments/common/threads.h"
#include "kernels/sparse_contract/sparse_contract.h"
#include "datasets/idx.h"

ABSL_FLAG(std::string, data_dir, "",
          "folder holding mnist/ and fashion-mnist/ IDX files (default: "
          "$INDEXGRAD_DATA_DIR, else <workspace>/data)");
ABSL_FLAG(std::string, dataset, "mnist", "mnist or fashion-mnist");
ABSL_FLAG(int64_t, connections, 64,
          "random input pixels per class (1..784; 784 = a dense classifier)");
ABSL_FLAG(int64_t, steps, 400, "training steps (minibatches)");
ABSL_FLAG(int64_t, batch, 64, "minibatch size");
ABSL_FLAG(double, lr, 0.05, "Adam learning rate");
ABSL_FLAG(int64_t, seed, 0, "random seed (connections and minibatches)");
ABSL_FLAG(std::string, out_dir, "",
          "where metrics.csv goes (default <workspace>/out/mnist_sparse_demo)");

namespace {

// Flag values out of range: an error naming the flag and the value.
absl::Status CheckFlags(int64_t connections, int64_t steps, int64_t batch, double lr) {
  if (connections < 1 || connections > 784) {
    return absl::InvalidArgumentError(
        absl::StrFormat("--connections must be in [1, 784], got %d", connections));
  }
  if (steps < 0) return absl::InvalidArgumentError(absl::StrFormat("--steps must be >= 0, got %d", steps));
  if (batch < 1) return absl::InvalidArgumentError(absl::StrFormat("--batch must be >= 1, got %d", batch));
  if (!(lr > 0)) return absl::InvalidArgumentError(absl::StrFormat("--lr must be > 0, got %g", lr));
  return absl::OkStatus();
}

// The fraction of rows of logits [B, 10] whose argmax is the label [B].
double Accuracy(const at::Tensor& logits, const at::Tensor& labels) {
  return logits.argmax(1).eq(labels).to(at::kFloat).mean().item<double>();
}

// Index tuples (class, pixel): each class reads `connections` distinct
// random pixels (the global generator's draws). [10 * connections, 2]
at::Tensor RandomConnections(int64_t connections) {
  std::vector<at::Tensor> rows;
  for (int64_t c = 0; c < 10; ++c) {
    const at::Tensor pixels = at::randperm(784, at::kLong).slice(0, 0, connections);
    rows.push_back(at::stack({at::full_like(pixels, c), pixels}, 1));
  }
  return at::cat(rows, 0);
}

absl::Status Main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Trains a sparse random-connection linear classifier on MNIST through "
      "indexgrad::sparse_contract.");
  absl::ParseCommandLine(argc, argv);
  if (absl::StatusOr<int> threads = indexgrad::experiments::ApplyThreadsFlag(); !threads.ok()) {
    return threads.status();
  }
  namespace ig = indexgrad;
  const int64_t connections = absl::GetFlag(FLAGS_connections);
  const int64_t steps = absl::GetFlag(FLAGS_steps);
  const int64_t batch = absl::GetFlag(FLAGS_batch);
  const double lr = absl::GetFlag(FLAGS_lr);
  if (absl::Status st = CheckFlags(connections, steps, batch, lr); !st.ok()) return st;

  std::string data_dir = ig::experiments::UserPath(absl::GetFlag(FLAGS_data_dir));
  if (data_dir.empty()) data_dir = ig::data::DefaultDataDir();
  auto train = ig::data::LoadImageSet(data_dir, absl::GetFlag(FLAGS_dataset),
                                      ig::data::Split::kTrain);
  if (!train.ok()) return train.status();
  auto test = ig::data::LoadImageSet(data_dir, absl::GetFlag(FLAGS_dataset),
                                     ig::data::Split::kTest);
  if (!test.ok()) return test.status();
  std::printf("loaded %s from %s: %lld train, %lld test digits of 28x28\n",
              absl::GetFlag(FLAGS_dataset).c_str(), data_dir.c_str(),
              static_cast<long long>(train->images.size(0)),
              static_cast<long long>(test->images.size(0)));

  at::manual_seed(absl::GetFlag(FLAGS_seed));
  const at::Tensor tuples = RandomConnections(connections);
  const int64_t nnz = tuples.size(0);
  at::Tensor values = (at::randn({nnz}) * 0.01).requires_grad_();  // [nnz]
  at::Tensor bias = at::zeros({10}).requires_grad_();
  torch::optim::Adam optimizer({values, bias}, torch::optim::AdamOptions(lr));
  std::printf("sparse classifier: %lld index tuples (class, pixel), %.1f%% of "
              "the dense 10x784 matrix; learning their values with Adam\n",
              static_cast<long long>(nnz), 100.0 * nnz / 7840);

  auto logits_of = [&](const at::Tensor& images) {  // [B, 28, 28] -> [B, 10]
    const int64_t b = images.size(0);
    return ig::sparse_contract(tuples.unsqueeze(0), values.unsqueeze(0), {10},  // every row
                               images.reshape({b, 784})) +
           bias;
  };

  const std::string out_dir =
      ig::experiments::OutputDir(absl::GetFlag(FLAGS_out_dir), "mnist_sparse_demo");
  if (auto s = ig::experiments::MakeDirs(out_dir); !s.ok()) {
    return s;
  }
  auto csv = ig::experiments::CsvWriter::Open(out_dir + "/metrics.csv",
                                              {"step", "loss", "batch_accuracy"});
  if (!csv.ok()) return csv.status();

  ig::experiments::Progress progress("mnist_sparse_demo", steps);
  const int64_t n_train = train->images.size(0);
  for (int64_t step = 0; step < steps; ++step) {
    const at::Tensor pick = at::randint(n_train, {batch}, at::kLong);
    const at::Tensor logits = logits_of(train->images.index_select(0, pick));
    const at::Tensor labels = train->labels.index_select(0, pick);
    const at::Tensor loss = at::cross_entropy_loss(logits, labels);
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
    const double acc = Accuracy(logits, labels);
    csv->Row({static_cast<double>(step + 1), loss.item<double>(), acc});
    progress.Update(step + 1, absl::StrFormat("loss %.4f", loss.item<double>()));
  }
  const double seconds = progress.Finish();

  at::NoGradGuard no_grad;
  const double test_acc = Accuracy(logits_of(test->images), test->labels);
  std::printf("trained %lld steps in %.1f s; test accuracy %.4f on %lld "
              "digits (chance 0.10); metrics in %s\n",
              static_cast<long long>(steps), seconds, test_acc,
              static_cast<long long>(test->images.size(0)),
              csv->path().c_str());
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  return indexgrad::experiments::RunMain("mnist_sparse_demo", Main, argc, argv);
}
