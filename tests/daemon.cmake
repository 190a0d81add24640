# pgreviewer run: the single-host daemon, end to end.
pgr_add_unit_test(test_daemon ${CMAKE_CURRENT_LIST_DIR}/daemon/test_daemon.c)
target_link_libraries(test_daemon PRIVATE pgr_testenv)
add_dependencies(test_daemon pgreviewer example)
set_tests_properties(test_daemon PROPERTIES TIMEOUT 240)
