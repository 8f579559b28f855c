#include "cli/tool.hpp"
#include "train/dpo_align.hpp"

int main(int argc, char** argv) { return bellows::cli::run_tool(argc, argv, bellows::train::dpo_align_tool_spec()); }
