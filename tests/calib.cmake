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
