# The scheduler against a real store and queue, and fail-over between two
# scheduler processes.
pgr_add_unit_test(test_scheduler ${CMAKE_CURRENT_LIST_DIR}/scheduler/test_scheduler.c)
target_link_libraries(test_scheduler PRIVATE pgr_testenv)
add_dependencies(test_scheduler pgreviewer example)
set_tests_properties(test_scheduler PROPERTIES TIMEOUT 240)
