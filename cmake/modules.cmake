# herald_module(<name> SOURCES ... DEPS ...)
#   Static library herald_<name>; it links only the layers below it (DEPS),
#   so an upward include fails to link and shows in review.
function(herald_module name)
  cmake_parse_arguments(M "" "" "SOURCES;DEPS" ${ARGN})
  add_library(herald_${name} STATIC ${M_SOURCES})
  target_include_directories(herald_${name} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(herald_${name} PUBLIC ${M_DEPS} PRIVATE herald_warnings)
endfunction()

# herald_test(<name> SOURCES ... DEPS ... LABELS ... [FILTER <gtest filter>])
#   A GoogleTest binary registered with CTest under the given labels, one
#   CTest test per test case (only those matching FILTER when given).
function(herald_test name)
  cmake_parse_arguments(T "" "FILTER" "SOURCES;DEPS;LABELS" ${ARGN})
  set(filter "")
  if(T_FILTER)
    set(filter TEST_FILTER ${T_FILTER})
  endif()
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_DEPS} GTest::gtest GTest::gtest_main GTest::gmock herald_warnings)
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/src ${PROJECT_SOURCE_DIR}/tests)
  include(GoogleTest)
  gtest_discover_tests(${name} ${filter} PROPERTIES LABELS "${T_LABELS}" ${HERALD_TEST_PROPERTIES} DISCOVERY_TIMEOUT 60)
endfunction()

# herald_bench(<name> SOURCES ... DEPS ...)
function(herald_bench name)
  cmake_parse_arguments(B "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${B_SOURCES})
  target_link_libraries(${name} PRIVATE ${B_DEPS} benchmark::benchmark herald_warnings)
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/src)
endfunction()
