#include "harness.h"

int main(int argc, char** argv) { return mltest::run_all(argc, argv); }
