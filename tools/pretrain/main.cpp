#include "cli/tool.hpp"
#include "train/pretrain.hpp"

int main(int argc, char** argv) { return bellows::cli::run_tool(argc, argv, bellows::train::pretrain_tool_spec()); }
