# The HTTP API against a real store and redis-server.
pgr_add_unit_test(test_api ${CMAKE_CURRENT_LIST_DIR}/api/test_api.c)
target_link_libraries(test_api PRIVATE pgr_testenv)
add_dependencies(test_api example)
set_tests_properties(test_api PROPERTIES TIMEOUT 120)
