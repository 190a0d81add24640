# The worker supervisor (core/worker.c, core/cli_worker.c): end-to-end
# tests of the real `pgreviewer worker` against a redis-server and a
# PostgreSQL started by the test (tests/lib), with the example plugin.
set(_wdir ${CMAKE_CURRENT_LIST_DIR}/worker)
pgr_add_unit_test(test_worker ${_wdir}/test_worker.c ${_wdir}/wtest.c)
target_include_directories(test_worker PRIVATE ${_wdir})
target_link_libraries(test_worker PRIVATE pgr_testenv)
set_tests_properties(test_worker PROPERTIES TIMEOUT 300)
