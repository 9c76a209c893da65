# Cross-compiling for 64-bit ARM Linux with Debian's g++-aarch64-linux-gnu, against the arm64
# (multiarch) -dev packages of the dependencies: scripts/install-deps-aarch64.sh installs both.
# Binaries run under qemu-user; ctest does that itself through CMAKE_CROSSCOMPILING_EMULATOR.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)

# Where to find the dependencies: the cross toolchain's own sysroot (libstdc++, libgomp, libc),
# the arm64 packages scripts/install-deps-aarch64.sh unpacked privately (those that are not
# Multi-Arch: same, e.g. sentencepiece) and the multiarch arm64 packages under /usr (headers in
# /usr/include, libraries and CMake packages in /usr/lib/aarch64-linux-gnu).
get_filename_component(NIBBLE_AARCH64_DEPS "${CMAKE_CURRENT_LIST_DIR}/../.cache/aarch64-deps" ABSOLUTE)
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu ${NIBBLE_AARCH64_DEPS} /usr)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# pkg-config must see only arm64 .pc files, never the host's x86-64 ones; the private ones first.
set(ENV{PKG_CONFIG_LIBDIR}
    ${NIBBLE_AARCH64_DEPS}/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig)
set(ENV{PKG_CONFIG_PATH} "")

# No -L sysroot: the multiarch arm64 runtime (libc6, libstdc++6, libgomp1 :arm64) resolves every
# library, and qemu 7.2 with the cross sysroot's loader hangs at the first thread start.
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64)
