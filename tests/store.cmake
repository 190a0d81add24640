# The analytics store (core/store.c, cli_task.c, cli_db.c): each binary
# starts one throw-away PostgreSQL and gives every test case a fresh
# database.
set(_store_dir "${CMAKE_CURRENT_LIST_DIR}/store")
pgr_add_unit_test(test_store "${_store_dir}/test_store.c" "${_store_dir}/store_testutil.c")
target_link_libraries(test_store PRIVATE pgr_testenv)
pgr_add_unit_test(test_store_cli "${_store_dir}/test_store_cli.c" "${_store_dir}/store_testutil.c")
target_link_libraries(test_store_cli PRIVATE pgr_testenv)
set_tests_properties(test_store test_store_cli PROPERTIES TIMEOUT 120)
