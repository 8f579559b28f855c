#include "core/json_counters.hpp"

namespace bellows {

void sum_into(nlohmann::json& acc, const nlohmann::json& add) {
  if (!acc.is_object()) acc = nlohmann::json::object();
  for (auto& [k, v] : add.items()) {
    if (v.is_object()) {
      if (!acc[k].is_object()) acc[k] = nlohmann::json::object();
      sum_into(acc[k], v);
    } else if (v.is_number_float()) {
      acc[k] = acc.value(k, 0.0) + v.get<double>();
    } else if (v.is_number()) {
      acc[k] = (acc.contains(k) ? acc[k].get<uint64_t>() : 0) + v.get<uint64_t>();
    }
  }
}

}  // namespace bellows
