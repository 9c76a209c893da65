# Calibrated quantization (quant/): linear algebra, calibration statistics, AWQ, GPTQ,
# SmoothQuant, activation calibration, bit allocation.
nibble_test(calib_test SOURCES
  calib_linalg_test.cpp
  calib_awq_test.cpp
  calib_actcal_test.cpp
  calib_alloc_test.cpp
  calib_static_test.cpp
  calib_auto_test.cpp
  calib_outlier_test.cpp
  calib_gptq_test.cpp
  LIBS nibble_quant nibble_runtime)
add_test(NAME calib_cli COMMAND ${CMAKE_COMMAND}
  -DQUANTIZE_MODEL=$<TARGET_FILE:quantize-model> -DRUN_MODEL=$<TARGET_FILE:run-model>
  -DSOURCE_DIR=${PROJECT_SOURCE_DIR} -DWORK_DIR=${CMAKE_CURRENT_BINARY_DIR}/calib_cli
  -P ${CMAKE_CURRENT_SOURCE_DIR}/calib_cli_test.cmake)
set_tests_properties(calib_cli PROPERTIES TIMEOUT 600)
