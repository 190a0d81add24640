# The report plugin (plugins/report) and `pgreviewer report` (core/cli_report.c,
# core/report_store.c): one throw-away PostgreSQL per binary, a fresh
# migrated database per test case, seeded executions and results.
set(_report_dir "${CMAKE_CURRENT_LIST_DIR}/report")
pgr_add_unit_test(test_report "${_report_dir}/test_report.c"
                  "${CMAKE_CURRENT_LIST_DIR}/store/store_testutil.c")
target_include_directories(test_report PRIVATE "${CMAKE_CURRENT_LIST_DIR}/store")
target_link_libraries(test_report PRIVATE pgr_testenv)
add_dependencies(test_report report)
set_tests_properties(test_report PROPERTIES TIMEOUT 120)
