nibble_test(model_forward_test SOURCES model_forward_test.cpp LIBS nibble_runtime)
nibble_test(runtime_test SOURCES runtime_sampler_test.cpp runtime_session_test.cpp LIBS nibble_runtime)
# Links both: the pure math from the runtime, the end-to-end cases through the public API.
nibble_test(perplexity_test SOURCES runtime_perplexity_test.cpp LIBS nibble_runtime nibble)
nibble_test(api_test SOURCES api_test.cpp LIBS nibble)
add_test(NAME run_model_cli COMMAND ${CMAKE_COMMAND}
  -DRUN_MODEL=$<TARGET_FILE:run-model> -DMODEL=${PROJECT_SOURCE_DIR}/assets/kjv-llama-q4_0.gguf
  -P ${CMAKE_CURRENT_SOURCE_DIR}/run_model_cli_test.cmake)
nibble_test(quant_test SOURCES quant_gguf_test.cpp LIBS nibble_quant)
nibble_test(api_cpp_test SOURCES api_cpp_test.cpp LIBS nibble)
nibble_test(model_gemma3_test SOURCES model_gemma3_test.cpp LIBS nibble_runtime)
# Real models from scripts/fetch-models.sh ($NIBBLE_MODELS); skipped when they are absent.
nibble_test(model_real_test SOURCES model_real_test.cpp LIBS nibble_runtime)
