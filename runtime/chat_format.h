// Chat formats: turning a list of messages into the prompt text an instruct model was trained
// on. nibble does not run Jinja; like llama.cpp's built-in formatter it recognises the common
// template families from the template text (tokenizer.chat_template) and writes each family's
// format itself. The rendered prompt must be tokenized with special-token parsing on, so the
// markers become single tokens, and without a BOS that the tokenizer adds anyway.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/vocabulary.h"

namespace nibble {

enum class ChatFormat {
  kChatML,
  kLlama3,
  kGemma,
  kLlama2,           // [INST] … [/INST], system text prefixed to the first user message
  kLlama2Sys,        // … with a <<SYS>> block
  kLlama2SysBos,     // … and <s> before every later [INST]
  kLlama2SysStrip,   // … and message contents trimmed
  kMistralV1,
  kMistralV3,
  kMistralV3Tekken,
  kMistralV7,
  kMistralV7Tekken,
  kPhi3,
  kPhi4,
  kZephyr,
  kDeepSeek,   // deepseek-coder-instruct: ### Instruction / ### Response
  kDeepSeek2,  // User: / Assistant:
  kDeepSeek3,  // <｜User｜> / <｜Assistant｜> (V3, R1 and the R1 distills)
};

struct ChatMessage {
  std::string role;  // "system", "user", "assistant" (others are passed through where the format allows)
  std::string content;
};

// The short name of a format ("chatml", "llama3", "gemma", "llama2-sys", "mistral-v7", …) and
// back. Names are llama.cpp's, so --chat-template values carry over.
const char* chat_format_name(ChatFormat f);
std::optional<ChatFormat> chat_format_from_name(std::string_view name);
// All names, comma separated, for error messages and --help.
std::string chat_format_names();

// Recognises the family of a Jinja chat template by the markers it contains (llama.cpp's
// substring rules, in its order). nullopt: not a family nibble formats. Throws std::invalid_argument
// naming the family when the template is a known family nibble does not implement.
std::optional<ChatFormat> detect_chat_format(std::string_view jinja);

// The format for a model: `override_name` when given; else detected from the vocabulary's
// tokenizer.chat_template; else, for files without a template, guessed from the vocabulary's
// marker tokens (<|im_start|>, <start_of_turn>, <|start_header_id|>, …). `how` (optional) says
// which of these decided. Throws std::invalid_argument when nothing decides, naming the options.
ChatFormat choose_chat_format(const Vocabulary& vocab, std::string_view override_name,
                              std::string* how = nullptr);

// The prompt text for `messages`; with add_generation_prompt it ends where the assistant's next
// answer begins. Throws std::invalid_argument for a role the format has no place for.
std::string format_chat(ChatFormat f, const std::vector<ChatMessage>& messages,
                        bool add_generation_prompt);

}  // namespace nibble
