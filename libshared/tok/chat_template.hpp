// Rendering HF chat templates: the subset of Jinja2 that tokenizer_config.json chat templates
// use (Llama 3, Qwen2/ChatML, SmolLM, Mistral, Gemma style), with the environment transformers
// uses (trim_blocks, lstrip_blocks). Statements: if/elif/else, for (loop.index0/index/first/
// last/length, else), set (also ns.attr), raw text; expressions: literals, lists, dicts, names,
// .attr and [index] and [a:b], + - * / % ~, comparisons, in, and/or/not, is [not] <test>,
// filters (trim, length, upper, lower, tojson, string, default, join, first, last, capitalize,
// items, replace), calls raise_exception() and namespace(). Anything else is an error naming the
// construct, never a silent wrong rendering (tests compare with jinja2).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace bellows::tok {

class ChatTemplate {
 public:
  // Throws UsageError (naming `what`) when the template uses something outside the subset.
  ChatTemplate(const std::string& source, const std::string& what);
  ~ChatTemplate();
  ChatTemplate(ChatTemplate&&) noexcept;
  ChatTemplate& operator=(ChatTemplate&&) noexcept;
  // `context`: variables (messages, bos_token, eos_token, add_generation_prompt, ...).
  // Throws RuntimeError for raise_exception() and for errors while rendering.
  std::string render(const nlohmann::json& context) const;

  struct Node;
 private:
  std::vector<std::shared_ptr<Node>> body_;
  std::string what_;
};

}  // namespace bellows::tok
