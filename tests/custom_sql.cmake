# custom_sql tests: the plugin through `pgreviewer plugin exec` (timeouts,
# read-only, one statement per query, value types, truncation, thresholds,
# version gates, params errors), and every check of the library
# conf.d/checks/ through `pgreviewer run --once`, each against its own
# throw-away PostgreSQL.
pgr_add_unit_test(test_custom_sql ${CMAKE_CURRENT_LIST_DIR}/custom_sql/test_custom_sql.c)
target_link_libraries(test_custom_sql PRIVATE pgr_testenv)
add_dependencies(test_custom_sql pgreviewer custom_sql)
set_tests_properties(test_custom_sql PROPERTIES TIMEOUT 300)

pgr_add_unit_test(test_custom_sql_checks ${CMAKE_CURRENT_LIST_DIR}/custom_sql/test_custom_sql_checks.c)
target_link_libraries(test_custom_sql_checks PRIVATE pgr_testenv)
add_dependencies(test_custom_sql_checks pgreviewer custom_sql)
set_tests_properties(test_custom_sql_checks PROPERTIES TIMEOUT 300)

# The plugin's pure parts (values, thresholds, params), from its sources,
# without a server.
set(_csql ${PROJECT_SOURCE_DIR}/plugins/custom_sql)
pgr_add_unit_test(test_csql_units ${CMAKE_CURRENT_LIST_DIR}/custom_sql/test_csql_units.c
                  ${_csql}/csql_value.c ${_csql}/csql_threshold.c ${_csql}/csql_params.c)
target_include_directories(test_csql_units PRIVATE ${_csql})
target_link_libraries(test_csql_units PRIVATE PkgConfig::JANSSON)
