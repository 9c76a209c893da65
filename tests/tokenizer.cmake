# tests of tokenizer/ (see CMakeLists.txt: nibble_test)
# sentencepiece is linked directly too: one test compares against the library's own encoding.
nibble_test(tokenizer_test SOURCES tokenizer_test.cpp LIBS nibble_tokenizer PkgConfig::SENTENCEPIECE)
