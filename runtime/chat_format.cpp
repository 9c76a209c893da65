#include "runtime/chat_format.h"

#include <stdexcept>

namespace nibble {
namespace {

struct NamedFormat {
  const char* name;
  ChatFormat format;
};
constexpr NamedFormat kNames[] = {
    {"chatml", ChatFormat::kChatML},
    {"llama3", ChatFormat::kLlama3},
    {"gemma", ChatFormat::kGemma},
    {"llama2", ChatFormat::kLlama2},
    {"llama2-sys", ChatFormat::kLlama2Sys},
    {"llama2-sys-bos", ChatFormat::kLlama2SysBos},
    {"llama2-sys-strip", ChatFormat::kLlama2SysStrip},
    {"mistral-v1", ChatFormat::kMistralV1},
    {"mistral-v3", ChatFormat::kMistralV3},
    {"mistral-v3-tekken", ChatFormat::kMistralV3Tekken},
    {"mistral-v7", ChatFormat::kMistralV7},
    {"mistral-v7-tekken", ChatFormat::kMistralV7Tekken},
    {"phi3", ChatFormat::kPhi3},
    {"phi4", ChatFormat::kPhi4},
    {"zephyr", ChatFormat::kZephyr},
    {"deepseek", ChatFormat::kDeepSeek},
    {"deepseek2", ChatFormat::kDeepSeek2},
    {"deepseek3", ChatFormat::kDeepSeek3},
};

bool has(std::string_view s, std::string_view what) { return s.find(what) != std::string_view::npos; }

std::string trim(std::string_view s) {
  const char* ws = " \t\n\r\f\v";
  const size_t b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  const size_t e = s.find_last_not_of(ws);
  return std::string(s.substr(b, e - b + 1));
}

[[noreturn]] void unsupported_role(ChatFormat f, const std::string& role) {
  throw std::invalid_argument(std::string("chat format ") + chat_format_name(f) + " has no place for role '" +
                              role + "'");
}

// Formats where every message is "<prefix>{role}<mid>{content}<suffix>".
std::string per_message(const std::vector<ChatMessage>& msgs, bool gen, std::string_view open,
                        std::string_view mid, std::string_view close, bool trim_content,
                        std::string_view assistant_role = "assistant") {
  std::string out;
  for (const ChatMessage& m : msgs) {
    out.append(open).append(m.role == "assistant" ? std::string(assistant_role) : m.role).append(mid);
    out += trim_content ? trim(m.content) : m.content;
    out.append(close);
  }
  if (gen) out.append(open).append(assistant_role).append(mid);
  return out;
}

std::string format_gemma(const std::vector<ChatMessage>& msgs, bool gen) {
  // No system role: system text goes at the start of the next user turn.
  std::string out, pending_system;
  for (const ChatMessage& m : msgs) {
    if (m.role == "system") {
      if (!pending_system.empty()) pending_system += "\n\n";
      pending_system += trim(m.content);
      continue;
    }
    std::string content = trim(m.content);
    if (!pending_system.empty() && m.role == "user") {
      content = pending_system + "\n\n" + content;
      pending_system.clear();
    }
    out += "<start_of_turn>";
    out += m.role == "assistant" ? "model" : m.role;
    out += "\n" + content + "<end_of_turn>\n";
  }
  if (gen) out += "<start_of_turn>model\n";
  return out;
}

std::string format_llama2(ChatFormat f, const std::vector<ChatMessage>& msgs) {
  const bool sys_block = f != ChatFormat::kLlama2;
  const bool bos_inside = f == ChatFormat::kLlama2SysBos;
  const bool strip = f == ChatFormat::kLlama2SysStrip;
  std::string out;
  bool inside_inst = false, first_turn = true;
  auto open_inst = [&] {
    if (inside_inst) return;
    out += (!first_turn && bos_inside) ? "<s>[INST] " : "[INST] ";
    inside_inst = true;
  };
  for (const ChatMessage& m : msgs) {
    const std::string content = strip ? trim(m.content) : m.content;
    if (m.role == "system") {
      open_inst();
      out += sys_block ? "<<SYS>>\n" + content + "\n<</SYS>>\n\n" : content + "\n";
    } else if (m.role == "user") {
      open_inst();
      out += content + " [/INST]";
      inside_inst = false;
    } else if (m.role == "assistant") {
      out += content + "</s>";
      first_turn = false;
    } else {
      unsupported_role(f, m.role);
    }
  }
  return out;  // no generation prompt: the prompt already ends with [/INST]
}

std::string format_mistral(ChatFormat f, const std::vector<ChatMessage>& msgs) {
  std::string out, pending_system;
  if (f == ChatFormat::kMistralV7 || f == ChatFormat::kMistralV7Tekken) {
    const std::string sp = f == ChatFormat::kMistralV7 ? " " : "";
    for (const ChatMessage& m : msgs) {
      if (m.role == "system") {
        out += "[SYSTEM_PROMPT]" + sp + m.content + "[/SYSTEM_PROMPT]";
      } else if (m.role == "user") {
        out += "[INST]" + sp + m.content + "[/INST]";
      } else if (m.role == "assistant") {
        out += sp + m.content + "</s>";
      } else {
        unsupported_role(f, m.role);
      }
    }
    return out;
  }
  const bool v1 = f == ChatFormat::kMistralV1, tekken = f == ChatFormat::kMistralV3Tekken;
  for (const ChatMessage& m : msgs) {
    if (m.role == "system") {
      pending_system += m.content;
    } else if (m.role == "user") {
      out += v1 ? " [INST] " : tekken ? "[INST]" : "[INST] ";
      if (!pending_system.empty()) {
        out += pending_system + "\n\n";
        pending_system.clear();
      }
      out += m.content + (v1 ? " [/INST]" : "[/INST]");
    } else if (m.role == "assistant") {
      out += tekken ? m.content : " " + (v1 ? m.content : trim(m.content));
      out += "</s>";
    } else {
      unsupported_role(f, m.role);
    }
  }
  return out;
}

std::string format_deepseek(ChatFormat f, const std::vector<ChatMessage>& msgs, bool gen) {
  std::string out;
  for (const ChatMessage& m : msgs) {
    if (m.role == "system") {
      out += f == ChatFormat::kDeepSeek ? m.content : m.content + "\n\n";
    } else if (m.role == "user") {
      out += f == ChatFormat::kDeepSeek    ? "### Instruction:\n" + m.content + "\n"
             : f == ChatFormat::kDeepSeek2 ? "User: " + m.content + "\n\n"
                                           : "<\xEF\xBD\x9CUser\xEF\xBD\x9C>" + m.content;
    } else if (m.role == "assistant") {
      out += f == ChatFormat::kDeepSeek ? "### Response:\n" + m.content + "\n<|EOT|>\n"
             : f == ChatFormat::kDeepSeek2
                 ? "Assistant: " + m.content + "<\xEF\xBD\x9C" "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>"
                 : "<\xEF\xBD\x9C" "Assistant\xEF\xBD\x9C>" + m.content +
                       "<\xEF\xBD\x9C" "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>";
    } else {
      unsupported_role(f, m.role);
    }
  }
  if (gen) {
    out += f == ChatFormat::kDeepSeek    ? "### Response:\n"
           : f == ChatFormat::kDeepSeek2 ? "Assistant:"
                                         : "<\xEF\xBD\x9C" "Assistant\xEF\xBD\x9C>";
  }
  return out;
}

}  // namespace

const char* chat_format_name(ChatFormat f) {
  for (const NamedFormat& n : kNames) {
    if (n.format == f) return n.name;
  }
  return "?";
}

std::optional<ChatFormat> chat_format_from_name(std::string_view name) {
  for (const NamedFormat& n : kNames) {
    if (name == n.name) return n.format;
  }
  return std::nullopt;
}

std::string chat_format_names() {
  std::string s;
  for (const NamedFormat& n : kNames) {
    if (!s.empty()) s += ", ";
    s += n.name;
  }
  return s;
}

std::optional<ChatFormat> detect_chat_format(std::string_view t) {
  auto unsupported = [](const char* family) -> std::optional<ChatFormat> {
    throw std::invalid_argument(std::string("the chat template is of the ") + family +
                             " family, which nibble does not format yet; pass --chat-template NAME (" +
                             chat_format_names() + ")");
  };
  if (has(t, "<|im_start|>")) {
    if (has(t, "<|im_sep|>")) return ChatFormat::kPhi4;
    if (has(t, "<end_of_utterance>")) return unsupported("SmolVLM");
    return ChatFormat::kChatML;
  }
  if (t.substr(0, 7) == "mistral" || has(t, "[INST]")) {
    if (has(t, "[SYSTEM_PROMPT]")) return ChatFormat::kMistralV7;
    if (has(t, "' [INST] ' + system_message") || has(t, "[AVAILABLE_TOOLS]")) {
      if (has(t, " [INST]")) return ChatFormat::kMistralV1;
      if (has(t, "\"[INST]\"")) return ChatFormat::kMistralV3Tekken;
      return ChatFormat::kMistralV3;
    }
    if (has(t, "content.strip()")) return ChatFormat::kLlama2SysStrip;
    if (has(t, "bos_token + '[INST]")) return ChatFormat::kLlama2SysBos;
    if (has(t, "<<SYS>>")) return ChatFormat::kLlama2Sys;
    return ChatFormat::kLlama2;
  }
  if (has(t, "<|assistant|>") && has(t, "<|end|>")) return ChatFormat::kPhi3;
  if (has(t, "[gMASK]<sop>")) return unsupported("ChatGLM4");
  if (has(t, "<|assistant|>") && has(t, "<|user|>")) {
    if (has(t, "<|tool_declare|>")) return unsupported("EXAONE-MoE");
    if (has(t, "</s>")) return unsupported("Falcon 3");
    // llama.cpp calls this GLM-Edge, which also catches the common Zephyr template (it writes
    // eos_token, not a literal </s>). The Zephyr template is the one people meet, so a template
    // that ends turns with eos_token and has a system role is formatted as Zephyr.
    if (has(t, "eos_token") && has(t, "<|system|>")) return ChatFormat::kZephyr;
    return unsupported("GLM-Edge");
  }
  if (has(t, "<|user|>") && has(t, "<|endoftext|>")) return ChatFormat::kZephyr;
  if (has(t, "<start_of_turn>")) return ChatFormat::kGemma;
  if (has(t, "### Instruction:") && has(t, "<|EOT|>")) return ChatFormat::kDeepSeek;
  if (has(t, "<|start_header_id|>") && has(t, "<|end_header_id|>")) return ChatFormat::kLlama3;
  if (has(t, "'Assistant: ' + message['content'] + eos_token")) return ChatFormat::kDeepSeek2;
  if (has(t, "<\xEF\xBD\x9C" "Assistant\xEF\xBD\x9C>") && has(t, "<\xEF\xBD\x9CUser\xEF\xBD\x9C>") &&
      has(t, "<\xEF\xBD\x9C" "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>")) {
    return ChatFormat::kDeepSeek3;
  }
  if (has(t, "<|start_of_role|>")) return unsupported("Granite");
  if (has(t, "<|header_start|>") && has(t, "<|header_end|>")) return unsupported("Llama 4");
  if (has(t, "<|start|>") && has(t, "<|channel|>")) return unsupported("gpt-oss");
  return std::nullopt;
}

ChatFormat choose_chat_format(const Vocabulary& vocab, std::string_view override_name, std::string* how) {
  auto say = [&](std::string s) {
    if (how) *how = std::move(s);
  };
  if (!override_name.empty()) {
    if (auto f = chat_format_from_name(override_name)) {
      say("--chat-template");
      return *f;
    }
    throw std::invalid_argument("unknown chat template '" + std::string(override_name) + "' (known: " +
                             chat_format_names() + ")");
  }
  if (!vocab.chat_template.empty()) {
    if (auto f = detect_chat_format(vocab.chat_template)) {
      say("the model's chat template");
      return *f;
    }
    throw std::invalid_argument("the model's chat template is of no family nibble knows; pass --chat-template NAME (" +
                             chat_format_names() + ")");
  }
  // No template in the file: the vocabulary's turn markers say which format it was trained on.
  struct Marker {
    const char* token;
    ChatFormat format;
  };
  const Marker markers[] = {{"<|im_start|>", ChatFormat::kChatML},
                            {"<start_of_turn>", ChatFormat::kGemma},
                            {"<|start_header_id|>", ChatFormat::kLlama3},
                            {"[SYSTEM_PROMPT]", ChatFormat::kMistralV7},
                            {"<|assistant|>", ChatFormat::kPhi3}};
  for (const Marker& m : markers) {
    for (const std::string& tok : vocab.tokens) {
      if (tok == m.token) {
        say(std::string("no chat template in the file; the vocabulary has ") + m.token);
        return m.format;
      }
    }
  }
  throw std::invalid_argument("the model has no chat template; pass --chat-template NAME (" + chat_format_names() +
                           ")");
}

std::string format_chat(ChatFormat f, const std::vector<ChatMessage>& msgs, bool gen) {
  switch (f) {
    case ChatFormat::kChatML:
      return per_message(msgs, gen, "<|im_start|>", "\n", "<|im_end|>\n", false);
    case ChatFormat::kPhi4:
      return per_message(msgs, gen, "<|im_start|>", "<|im_sep|>", "<|im_end|>", false);
    case ChatFormat::kLlama3:
      return per_message(msgs, gen, "<|start_header_id|>", "<|end_header_id|>\n\n", "<|eot_id|>", true);
    case ChatFormat::kPhi3:
      return per_message(msgs, gen, "<|", "|>\n", "<|end|>\n", false);
    case ChatFormat::kZephyr:
      return per_message(msgs, gen, "<|", "|>\n", "<|endoftext|>\n", false);
    case ChatFormat::kGemma:
      return format_gemma(msgs, gen);
    case ChatFormat::kLlama2:
    case ChatFormat::kLlama2Sys:
    case ChatFormat::kLlama2SysBos:
    case ChatFormat::kLlama2SysStrip:
      return format_llama2(f, msgs);
    case ChatFormat::kMistralV1:
    case ChatFormat::kMistralV3:
    case ChatFormat::kMistralV3Tekken:
    case ChatFormat::kMistralV7:
    case ChatFormat::kMistralV7Tekken:
      return format_mistral(f, msgs);
    case ChatFormat::kDeepSeek:
    case ChatFormat::kDeepSeek2:
    case ChatFormat::kDeepSeek3:
      return format_deepseek(f, msgs, gen);
  }
  throw std::invalid_argument("format_chat: unknown format");
}

}  // namespace nibble
