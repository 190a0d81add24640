# Secrets hygiene end to end: a known password (from Vault) and a known
# Vault token never appear in output, logs, results, the store, or the
# executors' argv and environment.
pgr_add_unit_test(test_secrets ${CMAKE_CURRENT_LIST_DIR}/secrets/test_secrets.c)
target_link_libraries(test_secrets PRIVATE pgr_fakevault)
add_dependencies(test_secrets pgreviewer custom_sql)
set_tests_properties(test_secrets PROPERTIES TIMEOUT 180)
