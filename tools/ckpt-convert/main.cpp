#include "cli/tool.hpp"
#include "formats/convert.hpp"

int main(int argc, char** argv) { return bellows::cli::run_tool(argc, argv, bellows::formats::ckpt_convert_tool_spec()); }
