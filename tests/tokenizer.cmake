# tests of tokenizer/ (see CMakeLists.txt: nibble_test)
# sentencepiece is linked directly too: one test compares against the library's own encoding.
nibble_test(tokenizer_test SOURCES tokenizer_test.cpp LIBS nibble_tokenizer PkgConfig::SENTENCEPIECE)
# Byte-level BPE: hand-made vocabularies (no shared files needed), SmolLM2 when fetched.
nibble_test(tokenizer_bpe_test SOURCES tokenizer_bpe_test.cpp LIBS nibble_tokenizer)
# llama.cpp's test vectors for every vocabulary in ../shared/data/tokenizer-vectors.
nibble_test(tokenizer_vectors_test SOURCES tokenizer_vectors_test.cpp LIBS nibble_tokenizer)
# The same vectors through `run-model tokenize` (one process per case).
add_test(NAME tokenizer_vectors_cli COMMAND ${CMAKE_COMMAND}
  -DRUN_MODEL=$<TARGET_FILE:run-model> -DVECTORS=${NIBBLE_SHARED_DIR}/data/tokenizer-vectors
  -DWORK_DIR=${CMAKE_CURRENT_BINARY_DIR}/tokenizer_vectors_cli
  -P ${CMAKE_CURRENT_SOURCE_DIR}/tokenizer_vectors_cli_test.cmake)
set_tests_properties(tokenizer_vectors_cli PROPERTIES TIMEOUT 600 SKIP_REGULAR_EXPRESSION "SKIPPED:")
