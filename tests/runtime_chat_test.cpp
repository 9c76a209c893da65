// Chat formats: each family's text for a fixed conversation (as model-families.md C.2 spells
// them), recognition of real Jinja templates (../shared/data/chat-templates), and the choice of
// format for files without a template.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "runtime/chat_format.h"

namespace {

using namespace nibble;
namespace fs = std::filesystem;

const std::vector<ChatMessage> kConversation = {
    {"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Hello!"}, {"user", "Name a color."}};

std::string fmt(ChatFormat f, bool gen = true) { return format_chat(f, kConversation, gen); }

TEST(ChatFormat, ChatML) {
  EXPECT_EQ(fmt(ChatFormat::kChatML),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
            "<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nName a color.<|im_end|>\n"
            "<|im_start|>assistant\n");
  // Without the generation prompt a finished conversation is a prefix of the next one: the
  // chat loop evaluates only what follows it.
  const std::string before = format_chat(ChatFormat::kChatML, {kConversation.begin(), kConversation.begin() + 3}, false);
  EXPECT_EQ(fmt(ChatFormat::kChatML).compare(0, before.size(), before), 0);
}

TEST(ChatFormat, Llama3) {
  EXPECT_EQ(fmt(ChatFormat::kLlama3),
            "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nName a color.<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(ChatFormat, GemmaFoldsTheSystemMessageIntoTheFirstUserTurn) {
  EXPECT_EQ(fmt(ChatFormat::kGemma),
            "<start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello!<end_of_turn>\n"
            "<start_of_turn>user\nName a color.<end_of_turn>\n<start_of_turn>model\n");
}

TEST(ChatFormat, Llama2Family) {
  EXPECT_EQ(fmt(ChatFormat::kLlama2Sys),
            "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST]Hello!</s>[INST] Name a color. [/INST]");
  EXPECT_EQ(fmt(ChatFormat::kLlama2), "[INST] Be brief.\nHi [/INST]Hello!</s>[INST] Name a color. [/INST]");
  EXPECT_EQ(fmt(ChatFormat::kLlama2SysBos),
            "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST]Hello!</s><s>[INST] Name a color. [/INST]");
}

TEST(ChatFormat, Mistral) {
  EXPECT_EQ(fmt(ChatFormat::kMistralV1), " [INST] Be brief.\n\nHi [/INST] Hello!</s> [INST] Name a color. [/INST]");
  EXPECT_EQ(fmt(ChatFormat::kMistralV3), "[INST] Be brief.\n\nHi[/INST] Hello!</s>[INST] Name a color.[/INST]");
  EXPECT_EQ(fmt(ChatFormat::kMistralV3Tekken), "[INST]Be brief.\n\nHi[/INST]Hello!</s>[INST]Name a color.[/INST]");
  EXPECT_EQ(fmt(ChatFormat::kMistralV7),
            "[SYSTEM_PROMPT] Be brief.[/SYSTEM_PROMPT][INST] Hi[/INST] Hello!</s>[INST] Name a color.[/INST]");
}

TEST(ChatFormat, PhiZephyrDeepSeek) {
  EXPECT_EQ(fmt(ChatFormat::kPhi3),
            "<|system|>\nBe brief.<|end|>\n<|user|>\nHi<|end|>\n<|assistant|>\nHello!<|end|>\n"
            "<|user|>\nName a color.<|end|>\n<|assistant|>\n");
  EXPECT_EQ(fmt(ChatFormat::kZephyr),
            "<|system|>\nBe brief.<|endoftext|>\n<|user|>\nHi<|endoftext|>\n<|assistant|>\nHello!<|endoftext|>\n"
            "<|user|>\nName a color.<|endoftext|>\n<|assistant|>\n");
  EXPECT_EQ(fmt(ChatFormat::kDeepSeek),
            "Be brief.### Instruction:\nHi\n### Response:\nHello!\n<|EOT|>\n### Instruction:\nName a color.\n"
            "### Response:\n");
  EXPECT_EQ(fmt(ChatFormat::kDeepSeek3),
            "Be brief.\n\n<\xEF\xBD\x9CUser\xEF\xBD\x9C>Hi<\xEF\xBD\x9C" "Assistant\xEF\xBD\x9C>Hello!"
            "<\xEF\xBD\x9C" "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C><\xEF\xBD\x9CUser\xEF\xBD\x9C>"
            "Name a color.<\xEF\xBD\x9C" "Assistant\xEF\xBD\x9C>");
}

TEST(ChatFormat, NamesRoundTripAndUnknownRolesAreRefused) {
  for (const char* name : {"chatml", "llama3", "gemma", "mistral-v7", "phi3", "deepseek3"}) {
    ASSERT_TRUE(chat_format_from_name(name)) << name;
    EXPECT_STREQ(chat_format_name(*chat_format_from_name(name)), name);
  }
  EXPECT_FALSE(chat_format_from_name("jinja"));
  EXPECT_THROW(format_chat(ChatFormat::kLlama2, {{"tool", "x"}}, true), std::invalid_argument);
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(ChatFormat, RecognisesRealTemplates) {
  const fs::path dir = fs::path(NIBBLE_SHARED_DIR) / "data" / "chat-templates";
  if (!fs::exists(dir)) GTEST_SKIP() << dir << " not found";
  const std::pair<const char*, const char*> expected[] = {
      {"HuggingFaceTB-SmolLM3-3B.jinja", "chatml"},
      {"Qwen-Qwen2.5-7B-Instruct.jinja", "chatml"},
      {"Qwen-Qwen3-0.6B.jinja", "chatml"},
      {"deepseek-ai-DeepSeek-R1-Distill-Llama-8B.jinja", "deepseek3"},
      {"google-gemma-2-2b-it.jinja", "gemma"},
      {"meta-llama-Llama-3.2-3B-Instruct.jinja", "llama3"},
      {"microsoft-Phi-3.5-mini-instruct.jinja", "phi3"},
      {"mistralai-Mistral-Nemo-Instruct-2407.jinja", "mistral-v3-tekken"},
  };
  for (const auto& [file, name] : expected) {
    const auto f = detect_chat_format(read_file(dir / file));
    ASSERT_TRUE(f) << file;
    EXPECT_STREQ(chat_format_name(*f), name) << file;
  }
  // A family nibble knows of but does not format: a clear refusal naming it.
  try {
    detect_chat_format(read_file(dir / "ibm-granite-granite-3.3-2B-Instruct.jinja"));
    FAIL() << "granite accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("Granite"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(detect_chat_format("{{ messages }}"));
}

TEST(ChatFormat, ChoiceForAVocabulary) {
  Vocabulary v;
  v.tokens = {"<pad>", "<eos>", "<bos>", "<start_of_turn>", "<end_of_turn>"};
  std::string how;
  EXPECT_EQ(choose_chat_format(v, "", &how), ChatFormat::kGemma);  // no template: the markers decide
  EXPECT_NE(how.find("<start_of_turn>"), std::string::npos);
  EXPECT_EQ(choose_chat_format(v, "chatml"), ChatFormat::kChatML);  // an explicit name wins
  EXPECT_THROW(choose_chat_format(v, "no-such-format"), std::invalid_argument);
  v.chat_template = "{% for m in messages %}<|im_start|>{{ m.role }}{% endfor %}";
  EXPECT_EQ(choose_chat_format(v, ""), ChatFormat::kChatML);
  v.chat_template = "{{ messages }}";
  EXPECT_THROW(choose_chat_format(v, ""), std::invalid_argument);
  Vocabulary plain;
  plain.tokens = {"<unk>", "<s>", "</s>", "a"};
  EXPECT_THROW(choose_chat_format(plain, ""), std::invalid_argument);
}

}  // namespace
