#include "ops/moe_dispatch/moe_dispatch.h"

#include "../harness.h"
#include "dispatch_case.h"

using namespace mltest;


NATIVE_TEST(moe_dispatch_places_each_kept_assignment_in_its_experts_rows) {
  ml::Rng rng(131);
  std::string out;
  for (const bool dropless : {false, true}) {
    const Dispatch p(rng, 29, 2, 5, dropless ? 1 << 20 : 9);
    std::vector<int64_t> offsets(5);
    const int64_t segment = 4;
    if (dropless) ml::cpu::segment_offsets(p.counts.data(), 5, segment, offsets.data());
    const int64_t slots = dropless ? p.assignments() + 5 * (segment - 1) : 5 * p.capacity;
    std::vector<int32_t> slot(p.assignments()), source(slots, 7);
    ml::cpu::place(p.expert.data(), p.kept.data(), p.rank.data(), dropless ? offsets.data() : nullptr, p.capacity,
                   p.assignments(), slots, slot.data(), source.data());
    int64_t used = 0;
    for (int64_t a = 0; a < p.assignments(); ++a) {
      if (!p.kept[a]) {
        EXPECT(slot[a] == -1, "dropped assignment ", a, " has slot ", slot[a]);
        continue;
      }
      const int64_t first = dropless ? offsets[p.expert[a]] : p.expert[a] * p.capacity;
      EXPECT(slot[a] == first + p.rank[a], "assignment ", a, ": slot ", slot[a], " vs ", first + p.rank[a]);
      EXPECT(source[slot[a]] == a, "slot ", slot[a], " points back to ", source[slot[a]], " not ", a);
      ++used;
    }
    for (int64_t s = 0; s < slots; ++s) used -= source[s] >= 0;
    EXPECT(used == 0, "slots without an assignment must be −1");
    if (dropless)
      for (int64_t e = 1; e < 5; ++e)
        EXPECT(offsets[e] % segment == 0 && offsets[e] - offsets[e - 1] >= p.counts[e - 1], "segment ", e);
    out += str(dropless ? "dropless" : "capacity", " ", p.assignments(), " assignments in ", slots, " slots; ");
  }
  return out;
}

// gather and combine are adjoint: ⟨gather(x, g), Y⟩ = ⟨x, combine(Y, g)⟩; gate_grad is the
// gradient of ⟨combine(O, g), dy⟩ in g.
NATIVE_TEST(moe_dispatch_gather_combine_are_adjoint_and_gate_grad_is_their_gradient) {
  ml::Rng rng(132);
  const int64_t d = 6;
  const Dispatch p(rng, 17, 2, 4, 6);
  const int64_t slots = 4 * p.capacity;
  std::vector<int32_t> slot(p.assignments()), source(slots);
  ml::cpu::place(p.expert.data(), p.kept.data(), p.rank.data(), nullptr, p.capacity, p.assignments(), slots,
                 slot.data(), source.data());
  auto x = random_vector(rng, p.tokens * d), Y = random_vector(rng, slots * d);
  auto gates = random_vector(rng, p.assignments());
  std::vector<double> gathered(slots * d), combined(p.tokens * d);
  ml::cpu::gather<double>(x.data(), gates.data(), source.data(), slots, p.tokens, d, gathered.data());
  ml::cpu::combine<double>(Y.data(), gates.data(), slot.data(), p.tokens, p.top_k, d, combined.data());
  const double left = dot(gathered, Y), right = dot(x, combined);
  EXPECT(std::abs(left - right) < 1e-12 * (std::abs(left) + 1), "⟨gather x, Y⟩ ", left, " vs ⟨x, combine Y⟩ ",
         right);
  for (int64_t s = 0; s < slots; ++s)
    if (source[s] < 0)
      for (int64_t j = 0; j < d; ++j) EXPECT(gathered[s * d + j] == 0.0, "empty slot ", s, " not zero");

  auto dy = random_vector(rng, p.tokens * d);
  std::vector<double> dgates(p.assignments());
  ml::cpu::gate_grad<double>(dy.data(), Y.data(), slot.data(), p.tokens, p.assignments(), d, dgates.data());
  auto loss = [&] {
    ml::cpu::combine<double>(Y.data(), gates.data(), slot.data(), p.tokens, p.top_k, d, combined.data());
    return dot(combined, dy);
  };
  return str("adjoint to ", std::abs(left - right), "; ") + check_gradients(loss, {{"gates", &gates, &dgates}}, rng);
}
