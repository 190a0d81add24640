# Cron engine and time zones (issue 4): parser, next fire with DST rules,
# a differential test against a brute-force enumerator built on libc, and
# the "pgreviewer cron next" command.
pgr_add_unit_test(test_cron_parse ${CMAKE_CURRENT_LIST_DIR}/cron/test_cron_parse.c)
pgr_add_unit_test(test_cron_next ${CMAKE_CURRENT_LIST_DIR}/cron/test_cron_next.c)
pgr_add_unit_test(test_cron_diff ${CMAKE_CURRENT_LIST_DIR}/cron/test_cron_diff.c)
pgr_add_unit_test(test_cron_cli ${CMAKE_CURRENT_LIST_DIR}/cron/test_cron_cli.c)
pgr_add_unit_test(test_cron_heap ${CMAKE_CURRENT_LIST_DIR}/cron/test_cron_heap.c)
pgr_add_unit_test(test_tz_formats ${CMAKE_CURRENT_LIST_DIR}/cron/test_tz_formats.c)

# libFuzzer target for the parser and cron_next (-DPGREVIEWER_FUZZ=ON, clang):
# ctest runs it for CRON_FUZZ_SECONDS on the seeds of tests/cron/corpus.
if(PGREVIEWER_FUZZ)
  set(CRON_FUZZ_SECONDS 20 CACHE STRING "Seconds fuzz_cron runs under ctest")
  add_executable(fuzz_cron ${CMAKE_CURRENT_LIST_DIR}/cron/fuzz_cron.c
                 ${PROJECT_SOURCE_DIR}/core/cron.c ${PROJECT_SOURCE_DIR}/core/tz.c
                 ${PROJECT_SOURCE_DIR}/core/util.c)
  target_include_directories(fuzz_cron PRIVATE ${PROJECT_SOURCE_DIR}/core)
  target_compile_options(fuzz_cron PRIVATE -fsanitize=fuzzer,address,undefined -fno-omit-frame-pointer)
  target_link_options(fuzz_cron PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_libraries(fuzz_cron PRIVATE Threads::Threads)
  set(_cron_corpus "${CMAKE_BINARY_DIR}/fuzz-corpus/fuzz_cron")
  file(MAKE_DIRECTORY "${_cron_corpus}")
  add_test(NAME fuzz_cron
           COMMAND fuzz_cron -max_total_time=${CRON_FUZZ_SECONDS} -timeout=10 -max_len=256
                   -print_final_stats=1 "${_cron_corpus}" "${CMAKE_CURRENT_LIST_DIR}/cron/corpus")
  set_tests_properties(fuzz_cron PROPERTIES LABELS fuzz TIMEOUT 600)
endif()
