#include "cli/tool.hpp"
#include "gen/lm_generate.hpp"

int main(int argc, char** argv) { return bellows::cli::run_tool(argc, argv, bellows::gen::lm_generate_tool_spec()); }
