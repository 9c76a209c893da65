# Helpers for the cmake -P scripts that drive nibble's command-line tools as a user would.

# run_cmd(EXPECT_RC COMMAND args...): runs the command; its exit status must equal EXPECT_RC
# exactly (a crash shows up as a non-numeric status such as "Segmentation fault", a hang as a
# timeout). Sets OUT and ERR in the caller.
function(run_cmd expect_rc)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err
                  TIMEOUT 300)
  set(OUT "${out}" PARENT_SCOPE)
  set(ERR "${err}" PARENT_SCOPE)
  if(NOT rc STREQUAL "${expect_rc}")
    message(FATAL_ERROR "${ARGN}: expected exit ${expect_rc}, got '${rc}'\n${out}\n${err}")
  endif()
endfunction()

function(expect_in text what)
  string(FIND "${text}" "${what}" pos)
  if(pos EQUAL -1)
    message(FATAL_ERROR "expected '${what}' in:\n${text}")
  endif()
endfunction()
