# Finds CAF 0.17 (the C++ Actor Framework), which ships neither a CMake config nor a .pc file, and
# defines the imported targets caf::core, caf::io and caf::openssl (TLS between nodes). Used by libflow's
# build and by its installed package (libflowConfig.cmake), so a program linking libflow's static
# libraries finds CAF the same way.
find_path(CAF_INCLUDE_DIR caf/all.hpp)
find_library(CAF_CORE_LIBRARY caf_core)
find_library(CAF_IO_LIBRARY caf_io)
find_library(CAF_OPENSSL_LIBRARY caf_openssl)

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(CAF REQUIRED_VARS CAF_CORE_LIBRARY CAF_IO_LIBRARY CAF_OPENSSL_LIBRARY CAF_INCLUDE_DIR)

if(CAF_FOUND AND NOT TARGET caf::core)
  find_package(Threads REQUIRED)
  add_library(caf::core INTERFACE IMPORTED)
  target_include_directories(caf::core SYSTEM INTERFACE ${CAF_INCLUDE_DIR})
  target_link_libraries(caf::core INTERFACE ${CAF_CORE_LIBRARY} Threads::Threads)
  add_library(caf::io INTERFACE IMPORTED)
  target_link_libraries(caf::io INTERFACE ${CAF_IO_LIBRARY} caf::core)
  add_library(caf::openssl INTERFACE IMPORTED)
  target_link_libraries(caf::openssl INTERFACE ${CAF_OPENSSL_LIBRARY} caf::io)
endif()
