# The scheduler against a real store and queue, and fail-over between two
# scheduler processes.
pgr_add_unit_test(test_scheduler ${CMAKE_CURRENT_LIST_DIR}/scheduler/test_scheduler.c)
target_link_libraries(test_scheduler PRIVATE pgr_testenv)
add_dependencies(test_scheduler pgreviewer example)
set_tests_properties(test_scheduler PROPERTIES TIMEOUT 240)

# Batched fires (store_fire_batch, store_tasks_active) and a burst of 3,000
# tasks due at one second, against a real store and Redis.
pgr_add_unit_test(test_sched_batch ${CMAKE_CURRENT_LIST_DIR}/scheduler/test_sched_batch.c)
target_link_libraries(test_sched_batch PRIVATE pgr_testenv)
set_tests_properties(test_sched_batch PROPERTIES TIMEOUT 120)
