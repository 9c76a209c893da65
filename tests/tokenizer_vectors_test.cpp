// llama.cpp's tokenizer test vectors (../shared/data/tokenizer-vectors): for each vocabulary
// file, .inp holds the texts (each followed by a line "__ggml_vocab_test__") and .out one line
// of reference ids per text, encoded without BOS/EOS and without special-token parsing.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "loaders/model_file.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/vocabulary.h"

namespace nibble {
namespace {

namespace fs = std::filesystem;

const fs::path kVectors = fs::path(NIBBLE_SHARED_DIR) / "data" / "tokenizer-vectors";

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

struct VectorCase {
  std::string text;
  std::vector<int32_t> ids;
};

std::vector<VectorCase> read_cases(const fs::path& gguf) {
  const std::string inp = read_file(gguf.string() + ".inp");
  const std::string out = read_file(gguf.string() + ".out");
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<VectorCase> cases;
  for (size_t pos = 0; pos < inp.size();) {
    const size_t end = inp.find(sep, pos);
    if (end == std::string::npos) break;
    cases.push_back({inp.substr(pos, end - pos), {}});
    pos = end + sep.size();
  }
  std::istringstream lines(out);
  std::string line;
  for (auto& c : cases) {
    if (!std::getline(lines, line)) break;
    std::istringstream ids(line);
    for (int32_t id; ids >> id;) c.ids.push_back(id);
  }
  return cases;
}

std::string ids_str(const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) {
    if (!s.empty()) s += ' ';
    s += std::to_string(id);
  }
  return s;
}

// Printable form of a case's text for failure messages.
std::string shown(std::string_view text) {
  std::string s;
  for (char c : text) {
    if (c == '\n')
      s += "\\n";
    else if (c == '\t')
      s += "\\t";
    else if (c == '\r')
      s += "\\r";
    else
      s += c;
  }
  return s;
}

class TokenizerVectorFiles : public ::testing::TestWithParam<std::string> {};

TEST_P(TokenizerVectorFiles, EveryCaseMatchesLlamaCpp) {
  const fs::path gguf = kVectors / ("ggml-vocab-" + GetParam() + ".gguf");
  if (!fs::exists(gguf)) GTEST_SKIP() << "shared test vectors not available: " << gguf;
  const ModelFile file = read_gguf(gguf.string());
  const auto tok = make_tokenizer(read_vocabulary(file.meta, gguf.string()), gguf.string());
  const auto cases = read_cases(gguf);
  ASSERT_FALSE(cases.empty()) << gguf;

  size_t passed = 0;
  std::string failures;
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto got = tok->encode(cases[i].text, /*add_special=*/false, /*parse_special=*/false);
    if (got == cases[i].ids) {
      ++passed;
      continue;
    }
    failures += "  case " + std::to_string(i) + " '" + shown(cases[i].text) + "'\n    want " +
                ids_str(cases[i].ids) + "\n    got  " + ids_str(got) + "\n";
  }
  EXPECT_EQ(passed, cases.size()) << GetParam() << ": " << passed << "/" << cases.size()
                                  << " cases pass; failing:\n"
                                  << failures;
  RecordProperty("passed", static_cast<int>(passed));
  RecordProperty("total", static_cast<int>(cases.size()));
}

INSTANTIATE_TEST_SUITE_P(All, TokenizerVectorFiles,
                         ::testing::Values("gpt-2", "starcoder", "falcon", "deepseek-coder",
                                           "llama-spm", "phi-3"),
                         [](const auto& info) {
                           std::string name = info.param;
                           for (char& c : name)
                             if (c == '-') c = '_';
                           return name;
                         });

}  // namespace
}  // namespace nibble
