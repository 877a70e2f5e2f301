// main() for the fuzz targets outside libFuzzer: runs the target over every
// file named on the command line, or every file in a named directory (the
// seed corpus and the regressions of fuzz/), so that CTest replays them in
// every build (sanitizer presets included) without clang's fuzzer runtime.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  std::size_t ran = 0;
  auto run = [&ran](const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
    ++ran;
  };
  for (int i = 1; i < argc; ++i) {
    const fs::path arg(argv[i]);
    if (fs::is_directory(arg)) {
      for (const auto& e : fs::recursive_directory_iterator(arg)) {
        if (e.is_regular_file()) run(e.path());
      }
    } else if (fs::exists(arg)) {
      run(arg);
    }
  }
  std::cout << argv[0] << ": " << ran << " inputs, no crash\n";
  return ran > 0 ? 0 : 1;
}
