#include "ops/cast/cast.h"

#include "../harness.h"

using namespace mltest;

NATIVE_TEST(cast_rounds_to_the_narrower_type) {
  const std::vector<double> x{1.0, 1.0 + 1e-12, -3.25};
  std::vector<float> y(3);
  ml::cpu::cast<double, float>(x.data(), y.data(), 3);
  EXPECT(y[0] == 1.0f && y[1] == 1.0f && y[2] == -3.25f, "got ", y[0], " ", y[1], " ", y[2]);
  std::vector<double> back(3);
  ml::cpu::cast<float, double>(y.data(), back.data(), 3);
  EXPECT(back[2] == -3.25, "round trip ", back[2]);
  return "double → float → double";
}
