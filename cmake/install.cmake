# cmake --install: headers, libnibble, the CMake package (nibble::nibble) and nibble.pc.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(FILES ${PROJECT_SOURCE_DIR}/include/nibble/nibble.h ${PROJECT_SOURCE_DIR}/include/nibble/nibble.hpp
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/nibble)

set(nibble_install_targets nibble)
if(NOT NIBBLE_SHARED_LIB)
  # A static archive needs the internal archives it was built from.
  list(APPEND nibble_install_targets nibble_quant nibble_runtime nibble_models nibble_tokenizer
       nibble_loaders nibble_kernels)
  set(NIBBLE_PC_PRIVATE_LIBS "-lnibble_quant -lnibble_runtime -lnibble_models -lnibble_tokenizer -lnibble_loaders -lnibble_kernels -lhwy -fopenmp -lstdc++")
  set(NIBBLE_PC_PRIVATE_REQUIRES "sentencepiece libpcre2-8")
endif()
install(TARGETS ${nibble_install_targets} EXPORT nibbleTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS run-model quantize-model RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(EXPORT nibbleTargets NAMESPACE nibble:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/nibble)

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/nibbleConfig.cmake.in
  ${PROJECT_BINARY_DIR}/nibbleConfig.cmake INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/nibble)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/nibbleConfigVersion.cmake
  COMPATIBILITY SameMajorVersion)
install(FILES ${PROJECT_BINARY_DIR}/nibbleConfig.cmake ${PROJECT_BINARY_DIR}/nibbleConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/nibble)

configure_file(${PROJECT_SOURCE_DIR}/cmake/nibble.pc.in ${PROJECT_BINARY_DIR}/nibble.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/nibble.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
