// Test helper: renders a chat template with libshared's renderer.
//   render-chat-template TEMPLATE_FILE CONTEXT_JSON_FILE    (prints the rendering, no newline added)
// Exit 2 for a template outside the supported subset, 1 for raise_exception or a render error.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "core/error.hpp"
#include "tok/chat_template.hpp"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: render-chat-template TEMPLATE CONTEXT.json\n");
    return 2;
  }
  std::ifstream t(argv[1]), c(argv[2]);
  std::stringstream ts, cs;
  ts << t.rdbuf();
  cs << c.rdbuf();
  try {
    bellows::tok::ChatTemplate tpl(ts.str(), argv[1]);
    std::cout << tpl.render(nlohmann::json::parse(cs.str()));
  } catch (const bellows::UsageError& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
