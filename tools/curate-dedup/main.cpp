#include "cli/tool.hpp"
#include "curate/curate.hpp"

int main(int argc, char** argv) { return bellows::cli::run_tool(argc, argv, bellows::curate::tool_spec()); }
