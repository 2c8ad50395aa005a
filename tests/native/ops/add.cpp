#include "ops/add/add.h"

#include "../harness.h"

using namespace mltest;

NATIVE_TEST(add_into_adds_elementwise) {
  const std::vector<double> x = {1.5, -2, 0.25}, y0 = {0.5, 3, -0.25};
  auto y = y0;
  ml::cpu::add_into<double>(x.data(), y.data(), 3);
  for (int i = 0; i < 3; ++i) EXPECT(y[i] == x[i] + y0[i], "element ", i, ": ", y[i]);
  return std::string("3 sums exact");
}
