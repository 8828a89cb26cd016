#include "ingest/bounded_json.h"

namespace edgeline {
namespace {

using nlohmann::json;

// True when ParseBounded's callback would keep everything: no array, objects nested at most
// kMaxDepth deep, at most kMaxJsonMembers keys (each ':' outside a string is one).
bool CannotReachParseBounds(std::string_view text) {
  size_t depth = 0;
  size_t colons = 0;
  bool in_string = false;
  bool escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    switch (c) {
      case '"': in_string = true; break;
      case '{':
        if (++depth > kMaxDepth) return false;
        break;
      case '}':
        if (depth > 0) --depth;
        break;
      case '[': return false;
      case ':':
        if (++colons > kMaxJsonMembers) return false;
        break;
      default: break;
    }
  }
  return true;
}

}  // namespace

// nlohmann rejects a whole document when one number overflows a double ("1e400"); the
// mapping contract is to drop just that field. This scans the text (strings skipped, keys
// tracked per nesting level), rewrites each overflowing number to null and names the
// flattened key it belonged to. Syntax is not checked here: the real parser runs afterwards.
bool NeutralizeOverflowingNumbers(std::string_view in, std::string* out, std::vector<std::string>* keys) {
  struct Frame {
    bool is_object;
    bool untracked;  // inside an array (dropped anyway) or too deep to be named
    std::string prefix;
    std::string key;
  };
  std::vector<Frame> stack;
  size_t deep = 0;  // containers open below kMaxDepth: counted, not stored (they are not named)
  bool changed = false;
  out->clear();
  out->reserve(in.size());
  size_t i = 0;
  while (i < in.size()) {
    char c = in[i];
    if (c == '"') {
      size_t j = i + 1;
      while (j < in.size() && in[j] != '"') j += in[j] == '\\' ? 2 : 1;
      j = std::min(j + 1, in.size());
      std::string_view token = in.substr(i, j - i);
      out->append(token);
      i = j;
      size_t k = i;
      while (k < in.size() && (in[k] == ' ' || in[k] == '\t' || in[k] == '\n' || in[k] == '\r')) ++k;
      if (k < in.size() && in[k] == ':' && deep == 0 && !stack.empty() && stack.back().is_object) {
        json key = json::parse(token, nullptr, false);
        stack.back().key = key.is_string() ? key.get<std::string>() : std::string();
      }
      continue;
    }
    if ((c == '{' || c == '[') && stack.size() >= kMaxDepth) {
      ++deep;
    } else if (c == '{' || c == '[') {
      Frame f{c == '{', c == '[', "", ""};
      if (!stack.empty()) {
        const Frame& parent = stack.back();
        f.untracked = f.untracked || parent.untracked || !parent.is_object;
        if (parent.is_object && !f.untracked) f.prefix = parent.prefix + parent.key + kFlattenSeparator;
      }
      stack.push_back(std::move(f));
    } else if (c == '}' || c == ']') {
      if (deep > 0) {
        --deep;
      } else if (!stack.empty()) {
        stack.pop_back();
      }
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      size_t j = i;
      while (j < in.size() && std::string_view("0123456789+-.eE").find(in[j]) != std::string_view::npos) ++j;
      std::string number(in.substr(i, j - i));
      char* endp = nullptr;
      double d = std::strtod(number.c_str(), &endp);
      if (std::isinf(d)) {
        out->append("null");
        changed = true;
        if (deep == 0 && !stack.empty() && stack.back().is_object && !stack.back().untracked) {
          keys->push_back(stack.back().prefix + stack.back().key);
        }
      } else {
        out->append(number);
      }
      i = j;
      continue;
    }
    out->push_back(c);
    ++i;
  }
  return changed;
}

// Parses with the DOM bounded by what the mapper can use: array elements and members nested
// below kMaxDepth are dropped while parsing (the mapper drops them anyway, with a warning on the
// array or on the deepest object it reads), and past kMaxJsonMembers kept members the rest is
// dropped and *too_many set (the message is then rejected). nlohmann's parser is iterative, so
// deep nesting costs neither stack nor, with this, memory beyond a few bytes per level.
json ParseBounded(std::string_view text, bool* too_many) {
  *too_many = false;
  // The usual payload (a flat object) cannot reach the bounds: one byte scan shows it, and the
  // plain parse then builds the same DOM without a callback per token (8% of mapping, P1b).
  if (CannotReachParseBounds(text)) return json::parse(text, nullptr, /*allow_exceptions=*/false);
  std::vector<char> open;  // '{' or '[' of each open container down to kMaxDepth
  size_t members = 0;
  json::parser_callback_t keep = [&](int depth, json::parse_event_t event, json& /*parsed*/) {
    using E = json::parse_event_t;
    const auto d = static_cast<size_t>(depth);
    if (open.size() > d) open.resize(d);  // containers closed since the last event
    if (event == E::object_end || event == E::array_end) return true;
    const bool in_array = d > 0 && d <= open.size() && open[d - 1] == '[';
    if ((event == E::object_start || event == E::array_start) && d <= kMaxDepth) {
      open.push_back(event == E::object_start ? '{' : '[');
    }
    if (in_array || d > kMaxDepth) return false;
    // A refused key is never inserted, and its value (of any size) is then dropped as parsed.
    if (event == E::key && ++members > kMaxJsonMembers) {
      *too_many = true;
      return false;
    }
    return true;
  };
  return json::parse(text, keep, /*allow_exceptions=*/false);
}

}  // namespace edgeline
