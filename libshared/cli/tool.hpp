// The harness every tools/*/main.cpp calls: parse, set up logging and the distributed context,
// run, and map whatever went wrong to one line and a documented exit code. A failing rank takes
// the whole job down with its message instead of leaving the others hanging in a collective.
#pragma once

#include "cli/app.hpp"

namespace bellows::cli {

int run_tool(int argc, char** argv, const ToolSpec& spec);

}  // namespace bellows::cli
