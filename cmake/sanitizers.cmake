# Test environment of the sanitizer builds (presets asan and tsan; see
# docs/threading.md "Sanitizers"). The test presets set the runtime options;
# what a sanitized test run needs in every case is set here, so that plain
# `ctest --test-dir build/<preset>` behaves the same.
#
# HERALD_SANITIZER_LOG_DIR: the e2e harnesses (tests/e2e/harness.py,
# tests/cpp/server_process.cpp) send the herald server's sanitizer reports to
# a file of their own (log_path) and fail the test on any; with this set they
# also keep a copy of each report and of the server log there (CI artifacts).
set(HERALD_SANITIZER_LOG_DIR "" CACHE PATH
    "Directory where e2e tests keep sanitizer reports of the herald server (empty: not kept)")

# Extra test properties (name value ...) for every test, one element per value.
set(HERALD_TEST_PROPERTIES "")
if(CMAKE_CXX_FLAGS MATCHES "-fsanitize=[a-z,]*thread")
  # RocksDB is a prebuilt, uninstrumented static library: TSan cannot see its
  # synchronization. tests/tsan.supp names only library-internal frames; the
  # longest history keeps RocksDB's side of such a report restorable, so
  # that the suppression matches (tests/tsan.supp).
  list(APPEND HERALD_TEST_PROPERTIES ENVIRONMENT_MODIFICATION
       "TSAN_OPTIONS=string_append::suppressions=${PROJECT_SOURCE_DIR}/tests/tsan.supp:history_size=7")
endif()
if(HERALD_SANITIZER_LOG_DIR)
  list(APPEND HERALD_TEST_PROPERTIES ENVIRONMENT "HERALD_SANITIZER_LOG_DIR=${HERALD_SANITIZER_LOG_DIR}")
endif()

# The same for tests added with add_test (after their set_tests_properties).
function(herald_sanitizer_test_env)
  set(props ${HERALD_TEST_PROPERTIES})
  while(props)
    list(POP_FRONT props name value)
    set_property(TEST ${ARGN} APPEND PROPERTY ${name} "${value}")
  endwhile()
endfunction()
