# tests of loaders/ (see CMakeLists.txt: nibble_test)
nibble_test(loaders_test
  SOURCES loaders_gguf_test.cpp loaders_llama2c_test.cpp loaders_corrupt_test.cpp
          loaders_writer_test.cpp loaders_mapped_file_test.cpp
  LIBS nibble_loaders)
