# run-model on bad input (issue #7): every case ends with exit status 0 or 1 and a message —
# never a signal (a crash shows up here as a non-numeric result such as "Segmentation fault"),
# a hang (TIMEOUT) or a silent failure.
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})

include(${CMAKE_CURRENT_LIST_DIR}/cli_test_util.cmake)
# run(EXPECT_RC args...): EXPECT_RC is 0 or 1, exactly.
macro(run expect_rc)
  run_cmd(${expect_rc} ${RUN_MODEL} ${ARGN})
endmacro()

set(GEN -m ${MODEL} -t 1 --temp 0)

# Unknown and malformed flags: one line naming the flag, exit 1.
run(1 ${GEN} -p hi --bogus)
expect_in("${ERR}" "unknown flag '--bogus'")
run(1 ${GEN} -p hi -x)
expect_in("${ERR}" "unknown flag '-x'")
run(1 frobnicate -m ${MODEL} -p hi)
expect_in("${ERR}" "unknown command 'frobnicate'")
run(1 ${GEN} -p hi -n)
expect_in("${ERR}" "-n needs a value")
run(1 -p hi -m)
expect_in("${ERR}" "-m needs a value")
run(1 ${GEN} -p hi -n 99999999999999999999)
expect_in("${ERR}" "-n: expected an integer")
run(1 ${GEN} -p hi -c -5)
expect_in("${ERR}" "-c: expected an integer")
run(1 ${GEN} -p hi -t 0)
run(1 ${GEN} -p hi --temp nan)
run(1 ${GEN} -p hi --seed -1)
run(1 ${GEN} -f ${WORK_DIR}/no-such-prompt.txt)
expect_in("${ERR}" "cannot read prompt file")

# Empty prompt (from an empty file: a CMake list cannot carry an empty argument): the model
# starts from BOS alone.
file(WRITE ${WORK_DIR}/empty.txt "")
run(0 ${GEN} -f ${WORK_DIR}/empty.txt -n 4)
expect_in("${ERR}" "tokens/s (tg)")
run(0 tokenize -m ${MODEL} -f ${WORK_DIR}/empty.txt)
expect_in("${OUT}" "1")

# Prompt longer than the context: refused, saying why.
run(1 ${GEN} -c 8 -p "And God said, Let there be light: and there was light. And God saw the light.")
expect_in("${ERR}" "context")

# -n past the context: stops when the context is full, and says so.
run(0 ${GEN} -c 24 -n 500 -p "And God said")
string(FIND "${ERR}" "the context of 24 tokens is full" full)
string(FIND "${ERR}" "stopped: end of text" eot)
if(full EQUAL -1 AND eot EQUAL -1)
  message(FATAL_ERROR "-n past the context did not say why it stopped:\n${ERR}")
endif()

# Prompt bytes that are not UTF-8 (from a file: argv cannot carry every byte portably).
execute_process(COMMAND printf "And \\377\\376\\303( \\355\\240\\200 God"
                OUTPUT_FILE ${WORK_DIR}/bad-utf8.txt)
run(0 ${GEN} -f ${WORK_DIR}/bad-utf8.txt -n 4)
run(0 tokenize -m ${MODEL} -f ${WORK_DIR}/bad-utf8.txt --pieces)

# Model paths that are not model files.
run(1 -m ${WORK_DIR} -p hi)
expect_in("${ERR}" "is a directory")
run(1 -m /dev/zero -p hi)
expect_in("${ERR}" "not a regular file")
file(WRITE ${WORK_DIR}/empty.gguf "")
run(1 -m ${WORK_DIR}/empty.gguf -p hi)
expect_in("${ERR}" "empty")
file(WRITE ${WORK_DIR}/text.gguf "this is not a model file at all, just some text\n")
run(1 -m ${WORK_DIR}/text.gguf -p hi)
expect_in("${ERR}" "not a GGUF file or llama2.c checkpoint")

# A file truncated before loading: refused, mapped or read.
execute_process(COMMAND head -c 300000 ${MODEL} OUTPUT_FILE ${WORK_DIR}/cut.gguf)
run(1 -m ${WORK_DIR}/cut.gguf -p hi)
expect_in("${ERR}" "cut.gguf")
run(1 -m ${WORK_DIR}/cut.gguf -p hi --no-mmap)
expect_in("${ERR}" "cut.gguf")

# perplexity on a text too short for one chunk.
file(WRITE ${WORK_DIR}/short.txt "And God said")
run(1 perplexity -m ${MODEL} -f ${WORK_DIR}/short.txt -c 64 -t 1)
