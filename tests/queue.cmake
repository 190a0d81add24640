# Queue tests (core/queue*.c, core/cli_queue.c). The backend suite and the
# Redis tests start their own redis-server through tests/lib.
set(_qdir ${CMAKE_CURRENT_LIST_DIR}/queue)

pgr_add_unit_test(test_queue_units ${_qdir}/test_queue_units.c)
target_include_directories(test_queue_units PRIVATE ${_qdir})
target_link_libraries(test_queue_units PRIVATE pgr_testenv)

pgr_add_unit_test(test_queue_backends ${_qdir}/test_queue_backends.c)
target_include_directories(test_queue_backends PRIVATE ${_qdir})
target_link_libraries(test_queue_backends PRIVATE pgr_testenv)

pgr_add_unit_test(test_queue_redis ${_qdir}/test_queue_redis.c)
target_include_directories(test_queue_redis PRIVATE ${_qdir})
target_link_libraries(test_queue_redis PRIVATE pgr_testenv)

pgr_add_unit_test(test_cli_queue ${_qdir}/test_cli_queue.c)
target_include_directories(test_cli_queue PRIVATE ${_qdir})
target_link_libraries(test_cli_queue PRIVATE pgr_testenv)

set_tests_properties(test_queue_backends test_queue_redis test_cli_queue PROPERTIES TIMEOUT 120)
