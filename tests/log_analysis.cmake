# Tests of the log_analysis plugin (see plugins/log_analysis/README.md).
add_executable(la_cli log_analysis/la_cli.c)
target_link_libraries(la_cli PRIVATE la_engine)

# Parsers and normalizers, unit by unit (cmocka).
add_executable(test_la_parse log_analysis/test_la_parse.c)
target_link_libraries(test_la_parse PRIVATE la_engine PkgConfig::CMOCKA)
add_test(NAME test_la_parse COMMAND test_la_parse)

# The figures on the three sample logs against pgBadger 12's summaries.
find_package(Python3 COMPONENTS Interpreter)
# The reference data lives in shared/ beside the repository (as CI lays it
# out); /work/shared is where developers' machines have it.
get_filename_component(_la_beside "${PROJECT_SOURCE_DIR}/../shared/data/pglog" ABSOLUTE)
if(EXISTS "${_la_beside}/stderr.summary.json")
  set(_la_default "${_la_beside}")
else()
  set(_la_default "/work/shared/data/pglog")
endif()
set(LA_DATA_DIR "${_la_default}" CACHE PATH "pgBadger reference data (small.*.xz, *.summary.json)")
if(NOT EXISTS "${LA_DATA_DIR}/stderr.summary.json")
  # Say so in the test results rather than dropping the comparison silently.
  add_test(NAME la_reference_data
           COMMAND sh -c "echo 'pgBadger reference data not found in ${LA_DATA_DIR} (set LA_DATA_DIR)'; exit 77")
  set_tests_properties(la_reference_data PROPERTIES SKIP_RETURN_CODE 77)
endif()
if(Python3_FOUND AND EXISTS "${LA_DATA_DIR}/stderr.summary.json")
  foreach(v stderr csv jsonlog)
    add_test(NAME la_summary_${v}
             COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/log_analysis/check_summary.py
                     $<TARGET_FILE:la_cli> ${LA_DATA_DIR} ${v})
  endforeach()
  # The plugin through the host (pgreviewer plugin exec) = la_cli.
  if(TARGET pgreviewer)
    add_test(NAME la_plugin_exec
             COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/log_analysis/test_plugin_exec.py
                     $<TARGET_FILE:pgreviewer> $<TARGET_FILE:la_cli> ${LA_DATA_DIR})
    set_tests_properties(la_plugin_exec PROPERTIES
      ENVIRONMENT "PGR_PLUGIN_DIR=${PGR_BUILD_PLUGIN_DIR}")
  endif()
  # One large file read in 2 chunks = 1 thread, in each format.
  add_test(NAME la_threads
           COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/log_analysis/test_threads.py
                   $<TARGET_FILE:la_cli> ${LA_DATA_DIR})
  # syslog lines (rsyslog) give the figures of the stderr log.
  add_test(NAME la_syslog
           COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/log_analysis/test_syslog.py
                   $<TARGET_FILE:la_cli> ${LA_DATA_DIR})
  # Incremental state across appends, rotation (rename, copytruncate, gzip)
  # and truncation.
  add_test(NAME la_incremental
           COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/log_analysis/test_incremental.py
                   $<TARGET_FILE:la_cli> ${LA_DATA_DIR})
  # The engine's side of source: server on a local directory (la_cli
  # --server-dir): chunks, incremental state, reused names, formats.
  add_test(NAME la_server_dir
           COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/log_analysis/test_server_dir.py
                   $<TARGET_FILE:la_cli> ${LA_DATA_DIR})
endif()

# libFuzzer target for the parsers (-DPGREVIEWER_FUZZ=ON, clang): ctest runs
# it for LA_FUZZ_SECONDS on the seeds of tests/log_analysis/corpus.
if(PGREVIEWER_FUZZ)
  set(LA_FUZZ_SECONDS 20 CACHE STRING "Seconds fuzz_la_parse runs under ctest")
  add_executable(fuzz_la_parse log_analysis/fuzz_la_parse.c)
  target_compile_options(fuzz_la_parse PRIVATE -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
  target_link_libraries(fuzz_la_parse PRIVATE la_engine)
  target_link_options(fuzz_la_parse PRIVATE -fsanitize=fuzzer,address,undefined)
  set(_la_corpus "${CMAKE_BINARY_DIR}/fuzz-corpus/fuzz_la_parse")
  file(MAKE_DIRECTORY "${_la_corpus}")
  add_test(NAME fuzz_la_parse
           COMMAND fuzz_la_parse -max_total_time=${LA_FUZZ_SECONDS} -timeout=10 -rss_limit_mb=2048
                   -max_len=65536 -print_final_stats=1 "${_la_corpus}"
                   "${CMAKE_CURRENT_SOURCE_DIR}/log_analysis/corpus")
  set_tests_properties(fuzz_la_parse PROPERTIES LABELS fuzz TIMEOUT 600)
endif()

if(Python3_FOUND)
  # Binary data, invalid UTF-8, 1 MB and 20 MB lines, broken csv/json records.
  add_test(NAME la_robust
           COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/log_analysis/test_robust.py
                   $<TARGET_FILE:la_cli>)
endif()

# source: server, against a PostgreSQL with the logging collector on: the
# figures of a workload, incremental runs, rotation, privileges.
pgr_add_unit_test(test_la_server ${CMAKE_CURRENT_LIST_DIR}/log_analysis/test_la_server.c)
target_link_libraries(test_la_server PRIVATE pgr_testenv PkgConfig::JANSSON)
add_dependencies(test_la_server pgreviewer log_analysis)
set_tests_properties(test_la_server PROPERTIES TIMEOUT 300)
