#include "cli/tool.hpp"
#include "inspect/inspect.hpp"

int main(int argc, char** argv) { return bellows::cli::run_tool(argc, argv, bellows::inspect::tool_spec()); }
