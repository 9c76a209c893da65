/* embed-chat: a multi-turn chat with an instruct model through the installed C API.
 *   embed-chat MODEL "first question" ["second question" ...]
 * The conversation is formatted in the model's own chat format (nibble_chat_apply); each turn
 * evaluates only the text the context does not hold yet, so the KV cache carries the
 * conversation from turn to turn. */
#include <nibble/nibble.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { kMaxTurns = 16 };

typedef struct {
  char* text; /* the answer so far (malloc'd) */
  size_t len;
} Answer;

static int on_piece(const char* text, size_t len, void* user) {
  Answer* a = (Answer*)user;
  char* grown = (char*)realloc(a->text, a->len + len + 1);
  if (!grown) return 0;
  a->text = grown;
  memcpy(a->text + a->len, text, len);
  a->len += len;
  a->text[a->len] = '\0';
  fwrite(text, 1, len, stdout);
  fflush(stdout);
  return 1;
}

/* The formatted conversation (malloc'd, NUL-terminated), or NULL. */
static char* format(const nibble_model* model, const nibble_chat_message* msgs, size_t n) {
  int32_t len = 0;
  nibble_status s = nibble_chat_apply(model, NULL, msgs, n, 1, NULL, 0, &len);
  if (s != NIBBLE_ERR_BUFFER_TOO_SMALL) return NULL;
  char* text = (char*)malloc((size_t)len + 1);
  if (text && nibble_chat_apply(model, NULL, msgs, n, 1, text, len + 1, &len) != NIBBLE_OK) {
    free(text);
    return NULL;
  }
  return text;
}

int main(int argc, char** argv) {
  if (argc < 3 || argc - 2 > kMaxTurns) {
    fprintf(stderr, "usage: %s MODEL QUESTION [QUESTION ...] (at most %d)\n", argv[0], kMaxTurns);
    return 1;
  }
  nibble_model* model = NULL;
  if (nibble_model_load(argv[1], NULL, &model) != NIBBLE_OK) {
    fprintf(stderr, "load failed: %s\n", nibble_last_error());
    return 1;
  }
  const char* format_name = nibble_chat_format(model, NULL);
  if (!format_name) {
    fprintf(stderr, "%s\n", nibble_last_error());
    nibble_model_free(model);
    return 1;
  }
  nibble_context_params cp = nibble_context_default_params();
  cp.n_ctx = 2048;
  nibble_context* ctx = NULL;
  if (nibble_context_create(model, &cp, &ctx) != NIBBLE_OK) {
    fprintf(stderr, "context failed: %s\n", nibble_last_error());
    nibble_model_free(model);
    return 1;
  }
  printf("chat format: %s\n", format_name);

  nibble_chat_message msgs[2 * kMaxTurns];
  Answer answers[kMaxTurns];
  memset(answers, 0, sizeof answers);
  size_t n_msgs = 0;
  char* held = NULL; /* the formatted text the context holds (prompt + answer so far) */
  nibble_sampler_params sp = nibble_sampler_default_params();
  sp.temperature = 0; /* greedy: the same answers every run */
  int rc = 0;
  for (int turn = 0; turn < argc - 2 && rc == 0; ++turn) {
    msgs[n_msgs].role = "user";
    msgs[n_msgs].content = argv[2 + turn];
    ++n_msgs;
    char* prompt = format(model, msgs, n_msgs);
    if (!prompt) {
      fprintf(stderr, "format failed: %s\n", nibble_last_error());
      rc = 1;
      break;
    }
    /* Tokenize only what is new; markers such as <|im_start|> must parse as special tokens.
     * Formats that trim messages may not extend the held text: then start over. */
    size_t held_len = held ? strlen(held) : 0;
    if (!held || strncmp(prompt, held, held_len) != 0) {
      nibble_context_reset(ctx);
      held_len = 0;
    }
    const int first = held_len == 0;
    const char* fresh = prompt + held_len;
    const size_t fresh_len = strlen(fresh);
    int32_t n_tok = 0;
    nibble_tokenize(model, fresh, fresh_len, first, 1, NULL, 0, &n_tok);
    int32_t* tokens = (int32_t*)malloc(sizeof(int32_t) * (size_t)(n_tok > 0 ? n_tok : 1));
    nibble_tokenize(model, fresh, fresh_len, first, 1, tokens, n_tok, &n_tok);
    printf("> %s\n", argv[2 + turn]);
    nibble_generate_stats st;
    Answer* a = &answers[turn];
    nibble_status s = nibble_generate_tokens(ctx, tokens, n_tok, 256, &sp, on_piece, a, &st);
    printf("\n[%d prompt tokens at %.1f t/s, %d answer tokens at %.1f t/s]\n", st.n_prompt,
           st.prompt_seconds > 0 ? st.n_prompt / st.prompt_seconds : 0.0, st.n_generated,
           st.gen_seconds > 0 ? st.n_generated / st.gen_seconds : 0.0);
    free(tokens);
    if (s != NIBBLE_OK) {
      fprintf(stderr, "generation failed: %s\n", nibble_context_last_error(ctx));
      rc = 1;
    } else if (!st.hit_end_of_generation) {
      fprintf(stderr, "the answer did not end within 256 tokens\n");
      rc = 1;
    }
    /* The context now holds the prompt and the answer (not the end-of-turn token). */
    free(held);
    held = (char*)malloc(strlen(prompt) + a->len + 1);
    if (held) {
      strcpy(held, prompt);
      memcpy(held + strlen(prompt), a->text ? a->text : "", a->len);
      held[strlen(prompt) + a->len] = '\0';
    }
    free(prompt);
    msgs[n_msgs].role = "assistant";
    msgs[n_msgs].content = a->text ? a->text : "";
    ++n_msgs;
  }
  free(held);
  for (int i = 0; i < kMaxTurns; ++i) free(answers[i].text);
  nibble_context_free(ctx);
  nibble_model_free(model);
  return rc;
}
