# tests of the chat formats (runtime/chat_format) and of run-model --chat / --stop
nibble_test(chat_test SOURCES runtime_chat_test.cpp LIBS nibble_runtime)
