/* embed-c: the smallest app that embeds nibble through its installed C API.
 *   embed-c MODEL [PROMPT] [CANCEL_AFTER_MS]
 * Streams a completion; a second thread plays the UI's "stop" button after CANCEL_AFTER_MS. */
#include <nibble/nibble.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static atomic_int stop_requested; /* what a UI's cancel button sets */

static int on_piece(const char* text, size_t len, void* user) {
  (void)user;
  fwrite(text, 1, len, stdout);
  fflush(stdout);
  return !atomic_load(&stop_requested); /* 0 tells nibble to stop after this piece */
}

static void* ui_thread(void* arg) {
  const long ms = *(const long*)arg;
  struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&t, NULL);
  atomic_store(&stop_requested, 1);
  return NULL;
}

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s MODEL [PROMPT] [CANCEL_AFTER_MS]\n", argv[0]);
    return 1;
  }
  const char* prompt = argc > 2 ? argv[2] : "And God said";
  long cancel_ms = argc > 3 ? atol(argv[3]) : -1;
  printf("nibble %s, kernels: %s\n", nibble_version(), nibble_isa());

  nibble_model* model = NULL;
  if (nibble_model_load(argv[1], NULL, &model) != NIBBLE_OK) {
    fprintf(stderr, "load failed: %s\n", nibble_last_error());
    return 1;
  }
  nibble_context* ctx = NULL;
  if (nibble_context_create(model, NULL, &ctx) != NIBBLE_OK) {
    fprintf(stderr, "context failed: %s\n", nibble_last_error());
    nibble_model_free(model);
    return 1;
  }

  pthread_t ui;
  if (cancel_ms >= 0) pthread_create(&ui, NULL, ui_thread, &cancel_ms);

  nibble_sampler_params sp = nibble_sampler_default_params();
  sp.temperature = 0; /* greedy: the same text every run */
  nibble_generate_stats st;
  printf("%s", prompt);
  nibble_status s = nibble_generate(ctx, prompt, 64, &sp, on_piece, NULL, &st);
  printf("\n");
  if (cancel_ms >= 0) pthread_join(ui, NULL);

  int rc = 0;
  if (s == NIBBLE_ERR_ABORTED) {
    printf("[stopped by the user after %d tokens]\n", st.n_generated);
  } else if (s != NIBBLE_OK) {
    fprintf(stderr, "generation failed: %s\n", nibble_context_last_error(ctx));
    rc = 1;
  } else {
    printf("[%d tokens, %.1f tokens/s]\n", st.n_generated,
           st.gen_seconds > 0 ? st.n_generated / st.gen_seconds : 0.0);
  }
  nibble_context_free(ctx);
  nibble_model_free(model);
  return rc;
}
