// The entry point every experiment main goes through:
//
//   int Main(int argc, char** argv) { ... }
//   int main(int argc, char** argv) {
//     return indexgrad::experiments::RunMain("identity", Main, argc, argv);
//   }
//
// A c10::Error escaping `body` (a TORCH_CHECK on a bad flag value, say
// --stddev_end=0) ends the program with "<program>: <message>" and exit
// status 1, instead of an uncaught exception and a stack trace.
#pragma once

namespace indexgrad {
namespace experiments {

int RunMain(const char* program, int (*body)(int, char**), int argc, char** argv);

}  // namespace experiments
}  // namespace indexgrad
