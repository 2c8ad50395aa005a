// Finding NCCL (dist/nccl_api.h) where it is not installed, as in CI: the places searched, in
// order, and an error that names each of them. On a machine with NCCL the load succeeds instead,
// and the test says so.
#include "dist/nccl_api.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <optional>

#include "../harness.h"
#include "core/error.h"

using namespace mltest;

namespace {

// Sets an environment variable (unsets it for nullopt) until the end of the scope.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, std::optional<std::string> value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value)
      setenv(name, value->c_str(), 1);
    else
      unsetenv(name);
  }
  ~ScopedEnv() {
    if (old_)
      setenv(name_, old_->c_str(), 1);
    else
      unsetenv(name_);
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

// The error api() throws, or nullopt when NCCL loaded.
std::optional<std::string> load_error() {
  try {
    ml::nccl::api();
    return std::nullopt;
  } catch (const ml::Error& e) {
    return std::string(e.what());
  }
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

// $MAMBALAB_NCCL_LIB, when set, is the only place looked at, and its failure names it. Loading
// sets NCCL_NVLS_ENABLE=0 whatever it was.
NATIVE_TEST(nccl_library_from_the_environment_alone) {
  const std::string path = "/nonexistent/mambalab-test/libnccl.so.2";
  ScopedEnv lib("MAMBALAB_NCCL_LIB", path);
  ScopedEnv nvls("NCCL_NVLS_ENABLE", "1");
  const ml::nccl::Search s = ml::nccl::search();
  EXPECT(s.candidates == std::vector<std::string>{path} && s.patterns.empty(), s.candidates.size(), " candidates");
  const auto error = load_error();
  EXPECT(error.has_value(), "a library that does not exist loaded");
  EXPECT(contains(*error, "NCCL: no library could be loaded; tried:\n  " + path + ": "), *error);
  EXPECT(contains(*error, "set MAMBALAB_NCCL_LIB to libnccl.so.2's path"), *error);
  EXPECT(std::string(std::getenv("NCCL_NVLS_ENABLE")) == "0", std::getenv("NCCL_NVLS_ENABLE"));
  return "only $MAMBALAB_NCCL_LIB tried, named in the error; NCCL_NVLS_ENABLE=0";
}

// Without it: libnccl.so.2 through the dynamic linker first, then the pip wheel's copy under
// each Python prefix; a file there that is not a library is named with dlopen's reason.
NATIVE_TEST(nccl_search_finds_pip_wheel_layouts) {
  const std::string venv = "/tmp/mambalab-test-venv-" + std::to_string(getpid());
  const std::string dir = venv + "/lib/python3.12/site-packages/nvidia/nccl/lib";
  for (size_t at = venv.size(); at != std::string::npos; at = dir.find('/', at + 1))
    mkdir(dir.substr(0, at).c_str(), 0700);
  mkdir(dir.c_str(), 0700);
  const std::string fake = dir + "/libnccl.so.2";
  std::ofstream(fake) << "not a shared library\n";
  ScopedEnv lib("MAMBALAB_NCCL_LIB", std::nullopt);
  ScopedEnv env("VIRTUAL_ENV", venv);
  const ml::nccl::Search s = ml::nccl::search();
  const std::string pattern = venv + "/lib/python3*/site-packages/nvidia/nccl/lib/libnccl.so.2";
  EXPECT(!s.candidates.empty() && s.candidates[0] == "libnccl.so.2", s.candidates.size(), " candidates");
  EXPECT(s.candidates.size() > 1 && s.candidates[1] == fake, "the venv's wheel is tried right after the linker's");
  EXPECT(std::count(s.patterns.begin(), s.patterns.end(), pattern) == 1, "pattern ", pattern, " not searched");
  EXPECT(std::count(s.patterns.begin(), s.patterns.end(), "/usr/lib/python3*/dist-packages/nvidia/nccl/lib/libnccl.so.2"),
         "Debian's dist-packages not searched");
  const auto error = load_error();
  unlink(fake.c_str());
  if (!error) return str("NCCL is installed here (", ml::nccl::api().library, "): the search order was checked, the error not");
  EXPECT(contains(*error, "\n  libnccl.so.2: "), *error);
  EXPECT(contains(*error, "\n  " + fake + ": "), *error);
  EXPECT(contains(*error, "searched for the pip wheel's copy") && contains(*error, "\n  " + pattern), *error);
  return str(s.candidates.size(), " files tried and ", s.patterns.size(), " wheel locations searched, all named");
}

NATIVE_TEST(nccl_version_names) {
  EXPECT(ml::nccl::version_name(22703) == "2.27.3", ml::nccl::version_name(22703));
  EXPECT(ml::nccl::version_name(21400) == "2.14.0", ml::nccl::version_name(21400));
  EXPECT(ml::nccl::version_name(2804) == "2.8.4", ml::nccl::version_name(2804));
  return "2.27.3, 2.14.0, 2.8.4";
}
