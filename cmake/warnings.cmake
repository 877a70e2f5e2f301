# One INTERFACE target carries the warning set; every module links it.
add_library(herald_warnings INTERFACE)
target_compile_options(herald_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wnon-virtual-dtor -Wno-missing-field-initializers
  $<$<CXX_COMPILER_ID:GNU>:-Wshadow=local>)  # clang (the fuzz preset) has no =local
if(HERALD_WERROR)
  target_compile_options(herald_warnings INTERFACE -Werror)
endif()
# Boost.Asio/Beast: no deprecated interfaces, separate compilation off.
add_library(herald_boost INTERFACE)
target_compile_definitions(herald_boost INTERFACE
  BOOST_ASIO_NO_DEPRECATED BOOST_ASIO_DISABLE_BOOST_COROUTINE)
target_link_libraries(herald_boost INTERFACE Boost::headers Boost::system Threads::Threads)
