# tests/vault.cmake - the Vault client, credentials and `connection test`
# (core/vault.c, core/credentials.c, core/cli_connection.c) against the
# fake Vault server tests/vault/fake_vault.py and a real PostgreSQL.
find_program(PGR_PYTHON3 python3 REQUIRED)

add_library(pgr_fakevault STATIC ${CMAKE_CURRENT_LIST_DIR}/vault/fakevault.c)
target_include_directories(pgr_fakevault PUBLIC ${CMAKE_CURRENT_LIST_DIR}/vault)
target_link_libraries(pgr_fakevault PUBLIC pgr_testenv PkgConfig::CURL PkgConfig::JANSSON)

pgr_add_unit_test(vault_test ${CMAKE_CURRENT_LIST_DIR}/vault/test_vault.c)
target_link_libraries(vault_test PRIVATE pgr_fakevault)
set_tests_properties(vault_test PROPERTIES TIMEOUT 120)

pgr_add_unit_test(credentials_test ${CMAKE_CURRENT_LIST_DIR}/vault/test_credentials.c)
target_link_libraries(credentials_test PRIVATE pgr_fakevault)
set_tests_properties(credentials_test PROPERTIES TIMEOUT 120)

# Started with VAULT_TOKEN in its initial environment: checks that the token
# is wiped from /proc/PID/environ (and from forked children) once captured.
pgr_add_unit_test(vault_env_test ${CMAKE_CURRENT_LIST_DIR}/vault/test_vault_env.c)
target_link_libraries(vault_env_test PRIVATE pgr_fakevault)
set_property(TEST vault_env_test APPEND PROPERTY ENVIRONMENT "VAULT_TOKEN=s.ENV-token-known-0bb7e2")
set_tests_properties(vault_env_test PROPERTIES TIMEOUT 60)
