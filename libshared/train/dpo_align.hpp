// The dpo-align tool: preference alignment (DPO, IPO, hinge; optional RPO term) of a policy on
// preference pairs, with a LoRA adapter or every weight; the loop is train/trainer.hpp's.
#pragma once

#include "cli/app.hpp"

namespace bellows::train {

cli::ToolSpec dpo_align_tool_spec();

}  // namespace bellows::train
