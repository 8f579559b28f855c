#include "cli/tool.hpp"
#include "pack/tokenize_pack.hpp"

int main(int argc, char** argv) { return bellows::cli::run_tool(argc, argv, bellows::pack::tool_spec()); }
