// --disable-rules and --quality-param: the command-line face of text::QualityConfig.
#pragma once

#include <string>
#include <vector>

#include "text/quality.hpp"

namespace bellows::curate {

// Names accepted by --quality-param (the QualityConfig field names), with their defaults.
std::vector<std::pair<std::string, std::string>> quality_param_defaults();

// Builds the config from "--disable-rules a,b" (families or rule names) and "--quality-param
// NAME=VALUE" items. Throws UsageError naming the flag and the bad item.
text::QualityConfig quality_config(const std::string& disable_rules, const std::vector<std::string>& params);

}  // namespace bellows::curate
