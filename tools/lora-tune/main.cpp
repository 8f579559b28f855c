#include "cli/tool.hpp"
#include "train/lora_tune.hpp"

int main(int argc, char** argv) { return bellows::cli::run_tool(argc, argv, bellows::train::lora_tune_tool_spec()); }
