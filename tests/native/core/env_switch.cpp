#include "core/env_switch.h"

#include <cstdlib>

#include "../harness.h"

using namespace mltest;

NATIVE_TEST(switched_off_only_by_zero) {
  const char* name = "MAMBALAB_TEST_SWITCH";
  unsetenv(name);
  EXPECT(!ml::switched_off(name), "unset reads as off");
  setenv(name, "0", 1);
  EXPECT(ml::switched_off(name), "0 does not switch off");
  for (const char* on : {"1", "", "00", "off"}) {
    setenv(name, on, 1);
    EXPECT(!ml::switched_off(name), "'", on, "' switched off");
  }
  unsetenv(name);
  return "0 switches off; unset, 1, empty, 00 and off do not";
}
