# The report plugin (plugins/report) and `pgreviewer report` (core/cli_report.c,
# core/report_store.c): one throw-away PostgreSQL per binary, a fresh
# migrated database per test case, seeded executions and results.
set(_report_dir "${CMAKE_CURRENT_LIST_DIR}/report")
# The plugin's collector and renderers are also linked in, so that one test
# runs them in-process, where the sanitizers' leak check can see them (the
# executor processes end with _exit()).
set(_rp "${PROJECT_SOURCE_DIR}/plugins/report")
pgr_add_unit_test(test_report "${_report_dir}/test_report.c"
                  "${CMAKE_CURRENT_LIST_DIR}/store/store_testutil.c"
                  "${_rp}/rp_collect.c" "${_rp}/rp_markdown.c" "${_rp}/rp_html.c"
                  "${_rp}/rp_text.c")
target_include_directories(test_report PRIVATE "${CMAKE_CURRENT_LIST_DIR}/store" "${_rp}")
target_link_libraries(test_report PRIVATE pgr_testenv m)
add_dependencies(test_report report)
set_tests_properties(test_report PROPERTIES TIMEOUT 120)
