#include "tok/chat_template.hpp"

#include <algorithm>
#include <cctype>
#include <functional>
#include <map>

#include "core/error.hpp"

namespace bellows::tok {
using nlohmann::json;

namespace {

// ---- expressions ------------------------------------------------------------------------------

struct Tok {
  enum Kind { name, str, num, op, end } kind = end;
  std::string text;
  double number = 0;
  bool is_int = false;
};

std::vector<Tok> lex_expr(const std::string& s, const std::string& what) {
  std::vector<Tok> out;
  size_t i = 0;
  while (i < s.size()) {
    char c = s[i];
    if (std::isspace(static_cast<unsigned char>(c))) {
      ++i;
      continue;
    }
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      size_t j = i;
      while (j < s.size() && (std::isalnum(static_cast<unsigned char>(s[j])) || s[j] == '_')) ++j;
      out.push_back({Tok::name, s.substr(i, j - i)});
      i = j;
    } else if (std::isdigit(static_cast<unsigned char>(c))) {
      size_t j = i;
      bool dot = false;
      while (j < s.size() && (std::isdigit(static_cast<unsigned char>(s[j])) || (s[j] == '.' && !dot && j + 1 < s.size() &&
                                                                                 std::isdigit(static_cast<unsigned char>(s[j + 1]))))) {
        dot |= s[j] == '.';
        ++j;
      }
      Tok t{Tok::num, s.substr(i, j - i)};
      t.number = std::stod(t.text);
      t.is_int = !dot;
      out.push_back(t);
      i = j;
    } else if (c == '\'' || c == '"') {
      std::string v;
      size_t j = i + 1;
      while (j < s.size() && s[j] != c) {
        if (s[j] == '\\' && j + 1 < s.size()) {
          char e = s[++j];
          v += e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e;
        } else {
          v += s[j];
        }
        ++j;
      }
      if (j >= s.size()) throw UsageError(what + ": chat template: unterminated string");
      out.push_back({Tok::str, v});
      i = j + 1;
    } else {
      static const char* two[] = {"==", "!=", "<=", ">=", "//", "**"};
      std::string op(1, c);
      for (const char* t : two)
        if (s.compare(i, 2, t) == 0) op = t;
      if (std::string("+-*/%~()[]{},:.|=<>!").find(c) == std::string::npos)
        throw UsageError(what + ": chat template: unexpected character '" + std::string(1, c) + "'");
      out.push_back({Tok::op, op});
      i += op.size();
    }
  }
  out.push_back({Tok::end, ""});
  return out;
}

struct Expr;
using ExprP = std::shared_ptr<Expr>;
struct Expr {
  enum Kind { lit, var, attr, index, slice, unop, binop, call, filter, test, list, dict, cond } kind;
  json value;                 // lit
  std::string name;           // var, attr, op, call/filter/test name
  std::vector<ExprP> args;    // operands / call args / list items / dict k,v pairs
  bool negate = false;        // test: "is not"
};

bool truthy(const json& v) {
  if (v.is_discarded() || v.is_null()) return false;
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_number_integer()) return v.get<int64_t>() != 0;
  if (v.is_number()) return v.get<double>() != 0.0;
  if (v.is_string() || v.is_array() || v.is_object()) return !v.empty();
  return true;
}

std::string to_text(const json& v) {
  if (v.is_discarded() || v.is_null()) return v.is_null() ? "None" : "";
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "True" : "False";
  if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
  return v.dump();
}

class Parser {
 public:
  Parser(std::vector<Tok> t, const std::string& what) : t_(std::move(t)), what_(what) {}
  ExprP parse_all() {
    ExprP e = expr();
    if (peek().kind != Tok::end) fail("unexpected '" + peek().text + "'");
    return e;
  }
  ExprP expr() { return conditional(); }
  const Tok& peek() const { return t_[p_]; }
  bool accept_op(const std::string& op) {
    if (peek().kind == Tok::op && peek().text == op) {
      ++p_;
      return true;
    }
    return false;
  }
  bool accept_name(const std::string& n) {
    if (peek().kind == Tok::name && peek().text == n) {
      ++p_;
      return true;
    }
    return false;
  }
  std::string name() {
    if (peek().kind != Tok::name) fail("expected a name, got '" + peek().text + "'");
    return t_[p_++].text;
  }
  void expect_op(const std::string& op) {
    if (!accept_op(op)) fail("expected '" + op + "', got '" + peek().text + "'");
  }
  [[noreturn]] void fail(const std::string& m) const { throw UsageError(what_ + ": chat template: " + m); }

 private:
  ExprP mk(Expr::Kind k, std::string n = "", std::vector<ExprP> a = {}) {
    auto e = std::make_shared<Expr>();
    e->kind = k;
    e->name = std::move(n);
    e->args = std::move(a);
    return e;
  }
  ExprP conditional() {
    ExprP a = or_expr();
    if (accept_name("if")) {
      ExprP c = or_expr();
      ExprP b = accept_name("else") ? or_expr() : nullptr;
      return mk(Expr::cond, "", {c, a, b});
    }
    return a;
  }
  ExprP or_expr() {
    ExprP a = and_expr();
    while (accept_name("or")) a = mk(Expr::binop, "or", {a, and_expr()});
    return a;
  }
  ExprP and_expr() {
    ExprP a = not_expr();
    while (accept_name("and")) a = mk(Expr::binop, "and", {a, not_expr()});
    return a;
  }
  ExprP not_expr() {
    if (accept_name("not")) return mk(Expr::unop, "not", {not_expr()});
    return compare();
  }
  ExprP compare() {
    ExprP a = concat();
    for (;;) {
      static const char* ops[] = {"==", "!=", "<=", ">=", "<", ">"};
      bool matched = false;
      for (const char* o : ops)
        if (accept_op(o)) {
          a = mk(Expr::binop, o, {a, concat()});
          matched = true;
          break;
        }
      if (matched) continue;
      if (accept_name("in")) {
        a = mk(Expr::binop, "in", {a, concat()});
      } else if (peek().kind == Tok::name && peek().text == "not" && t_[p_ + 1].kind == Tok::name && t_[p_ + 1].text == "in") {
        p_ += 2;
        a = mk(Expr::unop, "not", {mk(Expr::binop, "in", {a, concat()})});
      } else if (accept_name("is")) {
        bool neg = accept_name("not");
        ExprP t = mk(Expr::test, name(), {a});
        t->negate = neg;
        if (peek().kind == Tok::str || peek().kind == Tok::num || accept_op("(")) {
          // "is equalto x" / "is sameas(x)"
          t->args.push_back(concat());
          accept_op(")");
        }
        a = t;
      } else {
        return a;
      }
    }
  }
  ExprP concat() {
    ExprP a = additive();
    while (accept_op("~")) a = mk(Expr::binop, "~", {a, additive()});
    return a;
  }
  ExprP additive() {
    ExprP a = multiplicative();
    for (;;) {
      if (accept_op("+")) a = mk(Expr::binop, "+", {a, multiplicative()});
      else if (accept_op("-")) a = mk(Expr::binop, "-", {a, multiplicative()});
      else return a;
    }
  }
  ExprP multiplicative() {
    ExprP a = unary();
    for (;;) {
      if (accept_op("*")) a = mk(Expr::binop, "*", {a, unary()});
      else if (accept_op("//")) a = mk(Expr::binop, "//", {a, unary()});
      else if (accept_op("/")) a = mk(Expr::binop, "/", {a, unary()});
      else if (accept_op("%")) a = mk(Expr::binop, "%", {a, unary()});
      else return a;
    }
  }
  ExprP unary() {
    if (accept_op("-")) return mk(Expr::unop, "-", {unary()});
    return postfix(primary());
  }
  std::vector<ExprP> call_args() {
    std::vector<ExprP> a;
    if (accept_op(")")) return a;
    do {
      // keyword arguments (namespace(x=1)) become ["x", value] pairs via a dict literal
      if (peek().kind == Tok::name && t_[p_ + 1].kind == Tok::op && t_[p_ + 1].text == "=") {
        std::string k = name();
        expect_op("=");
        ExprP kv = mk(Expr::dict, "", {});
        auto key = mk(Expr::lit);
        key->value = k;
        kv->args = {key, expr()};
        kv->name = "kwarg";
        a.push_back(kv);
      } else {
        a.push_back(expr());
      }
    } while (accept_op(","));
    expect_op(")");
    return a;
  }
  ExprP postfix(ExprP a) {
    for (;;) {
      if (accept_op(".")) {
        a = mk(Expr::attr, name(), {a});
      } else if (accept_op("[")) {
        ExprP lo = nullptr, hi = nullptr;
        if (!(peek().kind == Tok::op && peek().text == ":")) lo = expr();
        if (accept_op(":")) {
          if (!(peek().kind == Tok::op && peek().text == "]")) hi = expr();
          expect_op("]");
          a = mk(Expr::slice, "", {a, lo, hi});
        } else {
          expect_op("]");
          a = mk(Expr::index, "", {a, lo});
        }
      } else if (accept_op("(")) {
        if (a->kind == Expr::attr) a = mk(Expr::call, a->name, [&] {
            std::vector<ExprP> v{a->args[0]};
            for (auto& x : call_args()) v.push_back(x);
            return v;
          }());
        else if (a->kind == Expr::var) a = mk(Expr::call, a->name, call_args());
        else fail("only names and methods can be called");
      } else if (accept_op("|")) {
        std::string f = name();
        std::vector<ExprP> args{a};
        if (accept_op("("))
          for (auto& x : call_args()) args.push_back(x);
        a = mk(Expr::filter, f, args);
      } else {
        return a;
      }
    }
  }
  ExprP primary() {
    const Tok& t = peek();
    if (t.kind == Tok::str) {
      ++p_;
      auto e = mk(Expr::lit);
      e->value = t.text;
      // adjacent string literals concatenate
      while (peek().kind == Tok::str) e->value = e->value.get<std::string>() + t_[p_++].text;
      return e;
    }
    if (t.kind == Tok::num) {
      ++p_;
      auto e = mk(Expr::lit);
      if (t.is_int) e->value = static_cast<int64_t>(t.number);
      else e->value = t.number;
      return e;
    }
    if (t.kind == Tok::name) {
      ++p_;
      auto e = mk(Expr::lit);
      if (t.text == "true" || t.text == "True") e->value = true;
      else if (t.text == "false" || t.text == "False") e->value = false;
      else if (t.text == "none" || t.text == "None") e->value = nullptr;
      else return mk(Expr::var, t.text);
      return e;
    }
    if (accept_op("(")) {
      ExprP e = expr();
      expect_op(")");
      return e;
    }
    if (accept_op("[")) {
      std::vector<ExprP> items;
      if (!accept_op("]")) {
        do items.push_back(expr());
        while (accept_op(","));
        expect_op("]");
      }
      return mk(Expr::list, "", items);
    }
    if (accept_op("{")) {
      std::vector<ExprP> kv;
      if (!accept_op("}")) {
        do {
          kv.push_back(expr());
          expect_op(":");
          kv.push_back(expr());
        } while (accept_op(","));
        expect_op("}");
      }
      return mk(Expr::dict, "", kv);
    }
    fail("unexpected '" + t.text + "'");
  }

  std::vector<Tok> t_;
  size_t p_ = 0;
  std::string what_;
};

}  // namespace

// ---- statements --------------------------------------------------------------------------------

struct ChatTemplate::Node {
  enum Kind { k_text, k_output, k_if, k_for, k_set } kind;
  std::string text;                                        // text
  ExprP expr;                                              // output, set value, for iterable
  std::vector<std::pair<ExprP, std::vector<std::shared_ptr<Node>>>> branches;  // if
  std::vector<std::shared_ptr<Node>> body, else_body;      // for (and if's else)
  std::vector<std::string> targets;                        // for vars; set: name or ns.attr
};

namespace {

using NodeP = std::shared_ptr<ChatTemplate::Node>;

struct Segment {
  enum Kind { text, expr, stmt } kind;
  std::string s;
};

// Splits the source into text / {{ }} / {% %} segments, applying Jinja's whitespace control
// ("-" markers) and transformers' trim_blocks + lstrip_blocks.
std::vector<Segment> segment(const std::string& source, const std::string& what) {
  // Jinja drops one newline at the very end of a template (keep_trailing_newline=False).
  const std::string src = !source.empty() && source.back() == '\n' ? source.substr(0, source.size() - 1) : source;
  std::vector<Segment> out;
  size_t pos = 0;
  bool strip_ws = false, trim_nl = false;
  while (pos <= src.size()) {
    size_t open = std::string::npos;
    for (size_t k = pos; k + 1 < src.size(); ++k)
      if (src[k] == '{' && (src[k + 1] == '{' || src[k + 1] == '%' || src[k + 1] == '#')) {
        open = k;
        break;
      }
    std::string text = src.substr(pos, (open == std::string::npos ? src.size() : open) - pos);
    if (strip_ws) {
      size_t k = text.find_first_not_of(" \t\r\n");
      text = k == std::string::npos ? "" : text.substr(k);
    } else if (trim_nl && !text.empty() && text[0] == '\n') {
      text.erase(0, 1);
    }
    strip_ws = trim_nl = false;
    if (open == std::string::npos) {
      if (!text.empty()) out.push_back({Segment::text, text});
      break;
    }
    char kind = src[open + 1];
    char marker = open + 2 < src.size() ? src[open + 2] : 0;
    bool block = kind == '%' || kind == '#';
    if (marker == '-') {
      size_t k = text.find_last_not_of(" \t\r\n");
      text = k == std::string::npos ? "" : text.substr(0, k + 1);
    } else if (block && marker != '+') {
      // lstrip_blocks, judged on the source: only spaces and tabs between the line start and the tag.
      size_t k = open;
      while (k > 0 && (src[k - 1] == ' ' || src[k - 1] == '\t')) --k;
      if (k == 0 || src[k - 1] == '\n') text.erase(text.size() - std::min(text.size(), open - k));
    }
    if (!text.empty()) out.push_back({Segment::text, text});
    std::string close = kind == '{' ? "}}" : kind == '%' ? "%}" : "#}";
    size_t k = open + 2;
    char quote = 0;
    for (; k + 1 < src.size(); ++k) {
      if (quote) {
        if (src[k] == '\\') ++k;
        else if (src[k] == quote) quote = 0;
      } else if ((src[k] == '\'' || src[k] == '"') && kind != '#') {
        quote = src[k];
      } else if (src[k] == close[0] && src[k + 1] == close[1]) {
        break;
      }
    }
    if (k + 1 >= src.size()) throw UsageError(what + ": chat template: '" + src.substr(open, 2) + "' is never closed");
    size_t inner_begin = open + 2 + ((marker == '-' || marker == '+') ? 1 : 0);
    size_t inner_end = k;
    if (inner_end > inner_begin && src[inner_end - 1] == '-') {
      --inner_end;
      strip_ws = true;
    } else if (block) {
      trim_nl = true;
    }
    std::string inner = src.substr(inner_begin, inner_end - inner_begin);
    if (kind == '{') out.push_back({Segment::expr, inner});
    else if (kind == '%') out.push_back({Segment::stmt, inner});
    pos = k + 2;
  }
  return out;
}

std::string trim(const std::string& s) {
  size_t a = s.find_first_not_of(" \t\r\n"), b = s.find_last_not_of(" \t\r\n");
  return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

std::string keyword(const std::string& stmt) {
  std::string t = trim(stmt);
  size_t e = 0;
  while (e < t.size() && (std::isalnum(static_cast<unsigned char>(t[e])) || t[e] == '_')) ++e;
  return t.substr(0, e);
}

class StmtParser {
 public:
  StmtParser(const std::vector<Segment>& segs, const std::string& what) : s_(segs), what_(what) {}
  // Parses until one of `ends` (returned in *ended) or the end of the template.
  std::vector<NodeP> block(const std::vector<std::string>& ends, std::string* ended) {
    std::vector<NodeP> nodes;
    while (i_ < s_.size()) {
      const Segment& g = s_[i_];
      if (g.kind == Segment::text) {
        auto n = std::make_shared<ChatTemplate::Node>();
        n->kind = ChatTemplate::Node::k_text;
        n->text = g.s;
        nodes.push_back(n);
        ++i_;
        continue;
      }
      if (g.kind == Segment::expr) {
        auto n = std::make_shared<ChatTemplate::Node>();
        n->kind = ChatTemplate::Node::k_output;
        n->expr = Parser(lex_expr(g.s, what_), what_).parse_all();
        nodes.push_back(n);
        ++i_;
        continue;
      }
      std::string kw = keyword(g.s);
      if (std::find(ends.begin(), ends.end(), kw) != ends.end()) {
        if (ended) *ended = kw;
        return nodes;
      }
      std::string rest = trim(trim(g.s).substr(kw.size()));
      ++i_;
      if (kw == "if") {
        auto n = std::make_shared<ChatTemplate::Node>();
        n->kind = ChatTemplate::Node::k_if;
        std::string cond = rest, end;
        for (;;) {
          ExprP c = Parser(lex_expr(cond, what_), what_).parse_all();
          auto body = block({"elif", "else", "endif"}, &end);
          n->branches.push_back({c, body});
          if (end == "elif") {
            cond = trim(trim(s_[i_].s).substr(4));
            ++i_;
            continue;
          }
          if (end == "else") {
            ++i_;
            n->else_body = block({"endif"}, &end);
          }
          if (end != "endif") fail("'if' without 'endif'");
          ++i_;
          break;
        }
        nodes.push_back(n);
      } else if (kw == "for") {
        auto n = std::make_shared<ChatTemplate::Node>();
        n->kind = ChatTemplate::Node::k_for;
        size_t in = rest.find(" in ");
        if (in == std::string::npos) fail("'for' without 'in'");
        std::string vars = rest.substr(0, in);
        for (size_t a = 0; a <= vars.size();) {
          size_t c = vars.find(',', a);
          n->targets.push_back(trim(vars.substr(a, c == std::string::npos ? std::string::npos : c - a)));
          if (c == std::string::npos) break;
          a = c + 1;
        }
        std::string iter = rest.substr(in + 4);
        if (iter.find(" if ") != std::string::npos || iter.find(" recursive") != std::string::npos)
          fail("'for ... if' filters and recursive loops are not supported");
        n->expr = Parser(lex_expr(iter, what_), what_).parse_all();
        std::string end;
        n->body = block({"else", "endfor"}, &end);
        if (end == "else") {
          ++i_;
          n->else_body = block({"endfor"}, &end);
        }
        if (end != "endfor") fail("'for' without 'endfor'");
        ++i_;
        nodes.push_back(n);
      } else if (kw == "set") {
        auto n = std::make_shared<ChatTemplate::Node>();
        n->kind = ChatTemplate::Node::k_set;
        size_t eq = rest.find('=');
        if (eq == std::string::npos) fail("block 'set' is not supported");
        n->targets.push_back(trim(rest.substr(0, eq)));
        n->expr = Parser(lex_expr(rest.substr(eq + 1), what_), what_).parse_all();
        nodes.push_back(n);
      } else {
        fail("statement '" + kw + "' is not supported");
      }
    }
    if (!ends.empty()) fail("missing '" + ends.back() + "'");
    return nodes;
  }

 private:
  [[noreturn]] void fail(const std::string& m) const { throw UsageError(what_ + ": chat template: " + m); }
  const std::vector<Segment>& s_;
  std::string what_;
  size_t i_ = 0;
};

// ---- evaluation --------------------------------------------------------------------------------

const json kUndefined = json(json::value_t::discarded);

class Renderer {
 public:
  Renderer(const json& ctx, const std::string& what) : what_(what) { scopes_.push_back(ctx); }

  void run(const std::vector<NodeP>& nodes, std::string& out) {
    for (const auto& n : nodes) {
      switch (n->kind) {
        case ChatTemplate::Node::k_text: out += n->text; break;
        case ChatTemplate::Node::k_output: out += to_text(eval(*n->expr)); break;
        case ChatTemplate::Node::k_if: {
          bool done = false;
          for (const auto& [c, body] : n->branches)
            if (truthy(eval(*c))) {
              run(body, out);
              done = true;
              break;
            }
          if (!done) run(n->else_body, out);
          break;
        }
        case ChatTemplate::Node::k_for: {
          json seq = eval(*n->expr);
          json items = json::array();
          if (seq.is_array()) items = seq;
          else if (seq.is_object()) for (auto& [k, v] : seq.items()) items.push_back(k);
          else if (seq.is_string()) for (char c : seq.get<std::string>()) items.push_back(std::string(1, c));
          else if (!seq.is_discarded() && !seq.is_null()) fail("cannot loop over " + seq.dump());
          if (items.empty()) {
            run(n->else_body, out);
            break;
          }
          for (size_t k = 0; k < items.size(); ++k) {
            json scope = json::object();
            if (n->targets.size() == 1) scope[n->targets[0]] = items[k];
            else
              for (size_t t = 0; t < n->targets.size(); ++t)
                scope[n->targets[t]] = items[k].is_array() && t < items[k].size() ? items[k][t] : kUndefined;
            scope["loop"] = {{"index0", k}, {"index", k + 1}, {"first", k == 0}, {"last", k + 1 == items.size()},
                             {"length", items.size()}, {"revindex", items.size() - k}, {"revindex0", items.size() - k - 1},
                             {"previtem", k ? items[k - 1] : kUndefined},
                             {"nextitem", k + 1 < items.size() ? items[k + 1] : kUndefined}};
            scopes_.push_back(scope);
            run(n->body, out);
            scopes_.pop_back();
          }
          break;
        }
        case ChatTemplate::Node::k_set: {
          json v = eval(*n->expr);
          const std::string& t = n->targets[0];
          size_t dot = t.find('.');
          if (dot == std::string::npos) {
            scopes_.back()[t] = v;
          } else {
            json* ns = lookup_ref(trim(t.substr(0, dot)));
            if (!ns || !ns->is_object()) fail("'" + t.substr(0, dot) + "' is not a namespace");
            (*ns)[trim(t.substr(dot + 1))] = v;
          }
          break;
        }
      }
    }
  }

 private:
  [[noreturn]] void fail(const std::string& m) const { throw RuntimeError(what_ + ": chat template: " + m); }

  json* lookup_ref(const std::string& name) {
    for (auto it = scopes_.rbegin(); it != scopes_.rend(); ++it) {
      auto f = it->find(name);
      if (f != it->end()) return &*f;
    }
    return nullptr;
  }

  json call(const std::string& name, const std::vector<json>& a) {
    auto str = [&](size_t i) { return i < a.size() && a[i].is_string() ? a[i].get<std::string>() : std::string(); };
    if (name == "raise_exception") throw RuntimeError(what_ + ": chat template raised: " + str(0));
    if (name == "namespace") {
      json ns = json::object();
      for (const auto& x : a)
        if (x.is_object() && x.contains("__kwarg__")) ns[x["__kwarg__"].get<std::string>()] = x["value"];
      return ns;
    }
    if (a.empty()) fail("unknown function '" + name + "'");
    const json& self = a[0];
    if (self.is_string()) {
      std::string s = self.get<std::string>();
      if (name == "strip" || name == "lstrip" || name == "rstrip") {
        std::string chars = a.size() > 1 ? str(1) : std::string(" \t\r\n");
        size_t b = name == "rstrip" ? 0 : s.find_first_not_of(chars);
        if (b == std::string::npos) return "";
        size_t e = name == "lstrip" ? s.size() - 1 : s.find_last_not_of(chars);
        return s.substr(b, e - b + 1);
      }
      if (name == "startswith") return s.rfind(str(1), 0) == 0;
      if (name == "endswith") return s.size() >= str(1).size() && s.compare(s.size() - str(1).size(), std::string::npos, str(1)) == 0;
      if (name == "upper" || name == "lower") {
        for (auto& c : s) c = static_cast<char>(name == "upper" ? std::toupper(static_cast<unsigned char>(c)) : std::tolower(static_cast<unsigned char>(c)));
        return s;
      }
      if (name == "replace") {
        std::string from = str(1), to = str(2), r;
        if (from.empty()) return s;
        for (size_t i = 0;;) {
          size_t f = s.find(from, i);
          if (f == std::string::npos) return r + s.substr(i);
          r += s.substr(i, f - i) + to;
          i = f + from.size();
        }
      }
      if (name == "split") {
        json parts = json::array();
        std::string sep = str(1);
        if (sep.empty()) fail("split() without a separator is not supported");
        for (size_t i = 0;;) {
          size_t f = s.find(sep, i);
          parts.push_back(s.substr(i, f == std::string::npos ? std::string::npos : f - i));
          if (f == std::string::npos) break;
          i = f + sep.size();
        }
        return parts;
      }
    }
    if (self.is_object()) {
      if (name == "items") {
        json r = json::array();
        for (auto& [k, v] : self.items()) r.push_back({k, v});
        return r;
      }
      if (name == "keys") {
        json r = json::array();
        for (auto& [k, v] : self.items()) r.push_back(k);
        return r;
      }
      if (name == "values") {
        json r = json::array();
        for (auto& [k, v] : self.items()) r.push_back(v);
        return r;
      }
      if (name == "get") return self.contains(str(1)) ? self[str(1)] : (a.size() > 2 ? a[2] : json(nullptr));
    }
    fail("method '" + name + "' is not supported");
  }

  json filter(const std::string& f, const std::vector<json>& a) {
    const json& v = a[0];
    if (f == "trim") return call("strip", {v.is_string() ? v : json(to_text(v))});
    if (f == "length" || f == "count") return static_cast<int64_t>(v.is_string() ? v.get<std::string>().size() : v.size());
    if (f == "upper" || f == "lower") return call(f, {json(to_text(v))});
    if (f == "string") return to_text(v);
    if (f == "tojson") return v.dump(a.size() > 1 && a[1].is_number_integer() ? static_cast<int>(a[1].get<int64_t>()) : -1);
    if (f == "default" || f == "d") return v.is_discarded() ? (a.size() > 1 ? a[1] : json("")) : v;
    if (f == "first") return v.empty() ? kUndefined : (v.is_array() ? v.front() : json(to_text(v).substr(0, 1)));
    if (f == "last") return v.empty() ? kUndefined : (v.is_array() ? v.back() : json(to_text(v).substr(to_text(v).size() - 1)));
    if (f == "join") {
      std::string sep = a.size() > 1 ? to_text(a[1]) : "", r;
      for (size_t i = 0; i < v.size(); ++i) r += (i ? sep : "") + to_text(v[i]);
      return r;
    }
    if (f == "capitalize") {
      std::string s = to_text(v);
      for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (!s.empty()) s[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(s[0])));
      return s;
    }
    if (f == "items") return call("items", {v});
    if (f == "replace") return call("replace", {json(to_text(v)), a.size() > 1 ? a[1] : json(""), a.size() > 2 ? a[2] : json("")});
    if (f == "reverse") {
      json r = v;
      if (r.is_array()) std::reverse(r.begin(), r.end());
      else if (r.is_string()) {
        std::string s = r.get<std::string>();
        std::reverse(s.begin(), s.end());
        r = s;
      }
      return r;
    }
    if (f == "list") return v.is_array() ? v : json::array();
    if (f == "safe") return v;
    fail("filter '" + f + "' is not supported");
  }

  bool test(const std::string& t, const json& v, const std::vector<json>& extra) {
    if (t == "defined") return !v.is_discarded();
    if (t == "undefined") return v.is_discarded();
    if (t == "none") return v.is_null();
    if (t == "string") return v.is_string();
    if (t == "number") return v.is_number();
    if (t == "boolean") return v.is_boolean();
    if (t == "mapping") return v.is_object();
    if (t == "sequence" || t == "iterable") return v.is_array() || v.is_string() || v.is_object();
    if (t == "true") return v.is_boolean() && v.get<bool>();
    if (t == "false") return v.is_boolean() && !v.get<bool>();
    if (t == "even" || t == "odd") return v.is_number_integer() && (v.get<int64_t>() % 2 == 0) == (t == "even");
    if ((t == "equalto" || t == "eq" || t == "sameas") && !extra.empty()) return v == extra[0];
    fail("test '" + t + "' is not supported");
  }

  json eval(const Expr& e) {
    switch (e.kind) {
      case Expr::lit: return e.value;
      case Expr::var: {
        json* r = lookup_ref(e.name);
        return r ? *r : kUndefined;
      }
      case Expr::attr: {
        json o = eval(*e.args[0]);
        if (o.is_object() && o.contains(e.name)) return o[e.name];
        return kUndefined;
      }
      case Expr::index: {
        json o = eval(*e.args[0]), k = eval(*e.args[1]);
        if (o.is_object() && k.is_string()) return o.contains(k.get<std::string>()) ? o[k.get<std::string>()] : kUndefined;
        if ((o.is_array() || o.is_string()) && k.is_number_integer()) {
          int64_t n = static_cast<int64_t>(o.is_array() ? o.size() : o.get<std::string>().size()), i = k.get<int64_t>();
          if (i < 0) i += n;
          if (i < 0 || i >= n) return kUndefined;
          return o.is_array() ? o[static_cast<size_t>(i)] : json(o.get<std::string>().substr(static_cast<size_t>(i), 1));
        }
        return kUndefined;
      }
      case Expr::slice: {
        json o = eval(*e.args[0]);
        int64_t n = static_cast<int64_t>(o.is_array() ? o.size() : o.is_string() ? o.get<std::string>().size() : 0);
        auto bound = [&](const ExprP& x, int64_t dflt) {
          if (!x) return dflt;
          json v = eval(*x);
          int64_t i = v.is_number_integer() ? v.get<int64_t>() : dflt;
          if (i < 0) i += n;
          return std::clamp<int64_t>(i, 0, n);
        };
        int64_t lo = bound(e.args[1], 0), hi = bound(e.args[2], n);
        if (hi < lo) hi = lo;
        if (o.is_string()) return o.get<std::string>().substr(static_cast<size_t>(lo), static_cast<size_t>(hi - lo));
        json r = json::array();
        for (int64_t i = lo; i < hi; ++i) r.push_back(o[static_cast<size_t>(i)]);
        return r;
      }
      case Expr::unop: {
        json v = eval(*e.args[0]);
        if (e.name == "not") return !truthy(v);
        if (v.is_number_integer()) return -v.get<int64_t>();
        if (v.is_number()) return -v.get<double>();
        fail("cannot negate " + v.dump());
      }
      case Expr::binop: {
        if (e.name == "and") {
          json a = eval(*e.args[0]);
          return truthy(a) ? eval(*e.args[1]) : a;
        }
        if (e.name == "or") {
          json a = eval(*e.args[0]);
          return truthy(a) ? a : eval(*e.args[1]);
        }
        json a = eval(*e.args[0]), b = eval(*e.args[1]);
        if (e.name == "~") return to_text(a) + to_text(b);
        if (e.name == "==") return a == b;
        if (e.name == "!=") return a != b;
        if (e.name == "in") {
          if (b.is_string()) return b.get<std::string>().find(to_text(a)) != std::string::npos;
          if (b.is_object()) return a.is_string() && b.contains(a.get<std::string>());
          if (b.is_array()) return std::find(b.begin(), b.end(), a) != b.end();
          return false;
        }
        if (e.name == "+" && a.is_string() && b.is_string()) return a.get<std::string>() + b.get<std::string>();
        if (e.name == "+" && a.is_array() && b.is_array()) {
          json r = a;
          for (auto& x : b) r.push_back(x);
          return r;
        }
        if (a.is_number() && b.is_number()) {
          bool ints = a.is_number_integer() && b.is_number_integer();
          double x = a.get<double>(), y = b.get<double>();
          if (e.name == "<") return x < y;
          if (e.name == ">") return x > y;
          if (e.name == "<=") return x <= y;
          if (e.name == ">=") return x >= y;
          if (ints) {
            int64_t p = a.get<int64_t>(), q = b.get<int64_t>();
            if (e.name == "+") return p + q;
            if (e.name == "-") return p - q;
            if (e.name == "*") return p * q;
            if ((e.name == "//" || e.name == "%") && q == 0) fail("division by zero");
            if (e.name == "//") return p / q;
            if (e.name == "%") return ((p % q) + q) % q;
          }
          if (e.name == "+") return x + y;
          if (e.name == "-") return x - y;
          if (e.name == "*") return x * y;
          if (e.name == "/") return x / y;
        }
        if (a.is_string() && b.is_string()) {
          if (e.name == "<") return a.get<std::string>() < b.get<std::string>();
          if (e.name == ">") return a.get<std::string>() > b.get<std::string>();
        }
        fail("cannot apply '" + e.name + "' to " + (a.is_discarded() ? "undefined" : a.dump()) + " and " +
             (b.is_discarded() ? "undefined" : b.dump()));
      }
      case Expr::call: {
        std::vector<json> args;
        for (const auto& x : e.args) {
          if (x->kind == Expr::dict && x->name == "kwarg") args.push_back({{"__kwarg__", x->args[0]->value}, {"value", eval(*x->args[1])}});
          else args.push_back(eval(*x));
        }
        return call(e.name, args);
      }
      case Expr::filter: {
        std::vector<json> args;
        for (const auto& x : e.args) args.push_back(eval(*x));
        return filter(e.name, args);
      }
      case Expr::test: {
        json v = eval(*e.args[0]);
        std::vector<json> extra;
        for (size_t i = 1; i < e.args.size(); ++i) extra.push_back(eval(*e.args[i]));
        return test(e.name, v, extra) != e.negate;
      }
      case Expr::list: {
        json r = json::array();
        for (const auto& x : e.args) r.push_back(eval(*x));
        return r;
      }
      case Expr::dict: {
        json r = json::object();
        for (size_t i = 0; i + 1 < e.args.size(); i += 2) r[to_text(eval(*e.args[i]))] = eval(*e.args[i + 1]);
        return r;
      }
      case Expr::cond: {
        if (truthy(eval(*e.args[0]))) return eval(*e.args[1]);
        return e.args[2] ? eval(*e.args[2]) : kUndefined;
      }
    }
    return kUndefined;
  }

  std::vector<json> scopes_;
  std::string what_;
};

}  // namespace

ChatTemplate::ChatTemplate(const std::string& source, const std::string& what) : what_(what) {
  std::vector<Segment> segs = segment(source, what);
  StmtParser p(segs, what);
  body_ = p.block({}, nullptr);
}

ChatTemplate::~ChatTemplate() = default;
ChatTemplate::ChatTemplate(ChatTemplate&&) noexcept = default;
ChatTemplate& ChatTemplate::operator=(ChatTemplate&&) noexcept = default;

std::string ChatTemplate::render(const json& context) const {
  std::string out;
  Renderer r(context, what_);
  r.run(body_, out);
  return out;
}

}  // namespace bellows::tok
