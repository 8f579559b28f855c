// Counters kept as JSON objects (nested by stage, rule, reason...), summed across ranks.
#pragma once

#include <nlohmann/json.hpp>

namespace bellows {

// Adds every number of `add` into `acc`, recursing into objects; other values are ignored.
void sum_into(nlohmann::json& acc, const nlohmann::json& add);

}  // namespace bellows
