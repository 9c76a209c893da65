# Smoke test of the benchmarking tools (random-model, bench-model). This one file is both the
# registration (included from tests/CMakeLists.txt) and the test script (run with cmake -P).
if(NOT CMAKE_SCRIPT_MODE_FILE)
  add_test(NAME bench_tools_smoke COMMAND ${CMAKE_COMMAND}
    -DRANDOM_MODEL=$<TARGET_FILE:random-model> -DBENCH_MODEL=$<TARGET_FILE:bench-model>
    -DWORK_DIR=${CMAKE_CURRENT_BINARY_DIR}/bench_tools
    -P ${CMAKE_CURRENT_LIST_FILE})
  set_tests_properties(bench_tools_smoke PROPERTIES TIMEOUT 300)
  return()
endif()

include(${CMAKE_CURRENT_LIST_DIR}/cli_test_util.cmake)
macro(run expect_rc)
  run_cmd(${expect_rc} ${ARGN})
endmacro()

file(MAKE_DIRECTORY ${WORK_DIR})
# A tiny custom shape: the tools' whole path in well under a second per file.
set(shape --shape custom --dim 64 --ffn 128 --layers 2 --heads 4 --kv-heads 2 --vocab 512 --ctx 64)
foreach(type Q4_0 Q8_0 F16)
  set(model ${WORK_DIR}/tiny-${type}.gguf)
  file(REMOVE ${model})
  run(0 ${RANDOM_MODEL} ${model} --type ${type} ${shape} --seed 7)
  expect_in("${ERR}" "output.weight")
  run(0 ${BENCH_MODEL} -m ${model} -p 16 -n 4 -r 1 -t 1 -o json)
  # One object per test, with the fields other tools read.
  string(JSON n LENGTH "${OUT}")
  if(NOT n EQUAL 2)
    message(FATAL_ERROR "expected 2 tests in the JSON, got ${n}:\n${OUT}")
  endif()
  foreach(i 0 1)
    foreach(key n_prompt n_gen n_threads avg_ts stddev_ts model_filename model_size)
      string(JSON v ERROR_VARIABLE json_err GET "${OUT}" ${i} ${key})
      if(json_err)
        message(FATAL_ERROR "test ${i}: ${json_err}\n${OUT}")
      endif()
    endforeach()
    string(JSON ts GET "${OUT}" ${i} avg_ts)
    if(NOT ts GREATER 0)
      message(FATAL_ERROR "test ${i}: avg_ts ${ts} is not positive\n${OUT}")
    endif()
  endforeach()
  string(JSON p GET "${OUT}" 0 n_prompt)
  string(JSON g GET "${OUT}" 1 n_gen)
  if(NOT p EQUAL 16 OR NOT g EQUAL 4)
    message(FATAL_ERROR "expected pp16 then tg4:\n${OUT}")
  endif()
endforeach()

# Same seed, same bytes: the writer is deterministic (and independent of the thread count).
set(again ${WORK_DIR}/tiny-Q4_0-again.gguf)
file(REMOVE ${again})
run(0 ${CMAKE_COMMAND} -E env OMP_NUM_THREADS=1 ${RANDOM_MODEL} ${again} --type Q4_0 ${shape} --seed 7)
file(SHA256 ${WORK_DIR}/tiny-Q4_0.gguf h1)
file(SHA256 ${again} h2)
if(NOT h1 STREQUAL h2)
  message(FATAL_ERROR "random-model is not deterministic for a fixed seed")
endif()

# Gemma 3: both layer kinds (7 layers, pattern 6), a head size that is not dim / heads, a window
# shorter than the prompt; the tied head (no output.weight) stored as llama-quantize would.
set(gemma ${WORK_DIR}/tiny-gemma3-Q4_0.gguf)
file(REMOVE ${gemma})
run(0 ${RANDOM_MODEL} ${gemma} --type Q4_0 --arch gemma3 --dim 64 --ffn 128 --layers 7 --heads 4
    --kv-heads 1 --head-dim 32 --window 4 --vocab 512 --ctx 64 --seed 7)
expect_in("${ERR}" "gemma3 Q4_0")
expect_in("${ERR}" "the head tied to it")
run(0 ${BENCH_MODEL} -m ${gemma} -p 16 -n 4 -r 1 -t 1)
expect_in("${OUT}" "| pp16 |")
expect_in("${OUT}" "| tg4 |")
run(1 ${RANDOM_MODEL} ${WORK_DIR}/x.gguf --type Q4_0 --head-dim 32)
expect_in("${ERR}" "--head-dim needs --arch gemma3")

run(0 ${BENCH_MODEL} -m ${WORK_DIR}/tiny-Q8_0.gguf -p 8 -n 2 -r 1 -t 1)
expect_in("${OUT}" "| pp8 |")
expect_in("${OUT}" "| tg2 |")

# -d: the tests start at that depth (context 64 = 40 + 16 + 8), named and reported as llama-bench's.
run(0 ${BENCH_MODEL} -m ${WORK_DIR}/tiny-Q8_0.gguf -p 16 -n 8 -d 0,40 -r 1 -t 1)
expect_in("${OUT}" "| pp16 @ d40 |")
expect_in("${OUT}" "| tg8 @ d40 |")
expect_in("${OUT}" "| tg8 |")
run(0 ${BENCH_MODEL} -m ${WORK_DIR}/tiny-Q8_0.gguf -p 0 -n 4 -d 40 -r 1 -t 1 -o json)
string(JSON d GET "${OUT}" 0 n_depth)
if(NOT d EQUAL 40)
  message(FATAL_ERROR "expected n_depth 40:\n${OUT}")
endif()
run(1 ${BENCH_MODEL} -m ${WORK_DIR}/tiny-Q8_0.gguf -d -1)

run(1 ${BENCH_MODEL} --bogus)
expect_in("${ERR}" "unknown flag '--bogus'")
run(1 ${BENCH_MODEL} -m ${WORK_DIR}/tiny-Q8_0.gguf -p abc)
run(1 ${BENCH_MODEL} -m /nonexistent.gguf)
run(1 ${RANDOM_MODEL} ${WORK_DIR}/x.gguf --type Q5_9)
run(1 ${RANDOM_MODEL} ${WORK_DIR}/x.gguf --type Q4_0 --bogus)
