# nibble's own file format (docs/format.md), its writer and reader, the quantize-model engine
# (recipes, GGUF / llama2.c / Hugging Face inputs, error report) and the command-line tools.
nibble_test(format_test
  SOURCES format_reader_test.cpp format_safetensors_test.cpp format_roundtrip_test.cpp
  LIBS nibble_quant)
add_test(NAME format_cli COMMAND ${CMAKE_COMMAND}
  -DQUANTIZE_MODEL=$<TARGET_FILE:quantize-model> -DRUN_MODEL=$<TARGET_FILE:run-model>
  -DSOURCE_DIR=${PROJECT_SOURCE_DIR} -DSHARED_DIR=${NIBBLE_SHARED_DIR}
  -DWORK_DIR=${CMAKE_CURRENT_BINARY_DIR}/format_cli
  -P ${CMAKE_CURRENT_SOURCE_DIR}/format_cli_test.cmake)
set_tests_properties(format_cli PROPERTIES TIMEOUT 600)
nibble_test(format_api_test SOURCES format_api_test.cpp LIBS nibble)
