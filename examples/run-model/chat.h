// run-model --chat: an interactive, multi-turn conversation through the public C API.
#pragma once

#include <string>
#include <vector>

#include "nibble/nibble.h"

namespace chat {

struct Options {
  std::string system_prompt;            // -sys
  std::string template_name;            // --chat-template ("" = from the model)
  std::vector<std::string> stop;        // --stop (repeatable)
  int32_t n_ctx = 0, n_batch = 512, n_threads = 0;
  int32_t n_predict = -1;               // per answer; -1: until end of turn or full context
  nibble_sampler_params sampler{};
  std::vector<std::string> scripted;    // turns given with -p (non-interactive use and tests)
};

// Runs the conversation: reads user turns from stdin (or takes `scripted` ones), streams each
// answer to stdout. Ctrl-C stops the current answer; Ctrl-C or Ctrl-D at the prompt ends.
// Returns the process exit status.
int run(const Options& o, nibble_model* model);

// Holds back streamed text that may be the start of a stop string, so a stop string is never
// printed. feed() returns what can be shown now; `stopped` turns true once a stop string has
// appeared (the text before it has then been returned).
class StopFilter {
 public:
  explicit StopFilter(std::vector<std::string> stops);
  std::string feed(const std::string& text);
  std::string flush();  // what was held back, at the end of an answer
  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stops_;
  std::string held_;
  bool stopped_ = false;
};

}  // namespace chat
