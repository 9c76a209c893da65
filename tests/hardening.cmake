# Issue #7 (hardening): bad input through the C API and the command line. The fuzz targets are
# in tests/fuzz (NIBBLE_FUZZ builds); what they found is pinned in hardening_fuzz_regressions_test.
nibble_test(hardening_test
  SOURCES hardening_bad_input_test.cpp hardening_fuzz_regressions_test.cpp
  LIBS nibble nibble_loaders nibble_tokenizer)
add_test(NAME hardening_cli COMMAND ${CMAKE_COMMAND}
  -DRUN_MODEL=$<TARGET_FILE:run-model> -DMODEL=${PROJECT_SOURCE_DIR}/assets/kjv-llama-q4_0.gguf
  -DWORK_DIR=${CMAKE_CURRENT_BINARY_DIR}/hardening_cli
  -P ${CMAKE_CURRENT_SOURCE_DIR}/hardening_cli_test.cmake)
set_tests_properties(hardening_cli PROPERTIES TIMEOUT 600)
