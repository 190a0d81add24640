# Foundation tests: the plugin loader (against real, deliberately broken
# shared objects), param schemas, `run --once` in every mode of the example
# plugin, and an out-of-tree plugin built against the installed SDK.

# Fixture plugins: each in its own directory (directory permissions are part
# of what the loader checks): fixtures/<case>/<name>.so + <name>.yaml.
set(PGR_FIXTURE_DIR "${CMAKE_BINARY_DIR}/tests/fixtures")
# The descriptor always calls itself "fixture"; `name` is the file's name.
function(pgr_fixture case name define type)
  set(tgt fixture_${case})
  add_library(${tgt} MODULE ${CMAKE_CURRENT_LIST_DIR}/foundation/fixtures/fixture.c)
  target_include_directories(${tgt} PRIVATE "${PROJECT_SOURCE_DIR}/plugin-sdk/include")
  target_compile_definitions(${tgt} PRIVATE FIXTURE_NAME="fixture" ${define})
  set_target_properties(${tgt} PROPERTIES PREFIX "" OUTPUT_NAME "${name}"
    C_VISIBILITY_PRESET hidden LIBRARY_OUTPUT_DIRECTORY "${PGR_FIXTURE_DIR}/${case}")
  set(FIXTURE_NAME ${name})
  set(FIXTURE_TYPE ${type})
  configure_file(${CMAKE_CURRENT_LIST_DIR}/foundation/fixtures/fixture.yaml.in
                 "${PGR_FIXTURE_DIR}/${case}/${name}.yaml" @ONLY)
  add_dependencies(test_loader ${tgt})
endfunction()

pgr_add_unit_test(test_loader ${CMAKE_CURRENT_LIST_DIR}/foundation/test_loader.c)
target_link_libraries(test_loader PRIVATE pgr_testenv)
set_property(TEST test_loader APPEND PROPERTY ENVIRONMENT "PGR_FIXTURE_DIR=${PGR_FIXTURE_DIR}")
pgr_fixture(good fixture "FIXTURE_GOOD" fixture_type)
pgr_fixture(abi2 fixture "BREAK_ABI_MAJOR" fixture_type)
pgr_fixture(v2only fixture "BREAK_SYMBOL_V2" fixture_type)
pgr_fixture(nosymbol fixture "BREAK_NO_SYMBOL" fixture_type)
pgr_fixture(nulldesc fixture "BREAK_NULL" fixture_type)
pgr_fixture(badmagic fixture "BREAK_MAGIC" fixture_type)
pgr_fixture(small fixture "BREAK_SIZE" fixture_type)
pgr_fixture(mismatch fixture "FIXTURE_GOOD" other_type)
pgr_fixture(misnamed wrongname "FIXTURE_GOOD" fixture_type)
pgr_fixture(twin twin "FIXTURE_TWIN" fixture_type)
pgr_fixture(badutf8 fixture "FIXTURE_BAD_UTF8" fixture_type)
add_dependencies(test_loader pgreviewer example)

pgr_add_unit_test(test_run_once ${CMAKE_CURRENT_LIST_DIR}/foundation/test_run_once.c)
target_link_libraries(test_run_once PRIVATE pgr_testenv)
add_dependencies(test_run_once pgreviewer example)

add_test(NAME sdk_out_of_tree
         COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/foundation/sdk_out_of_tree.sh
                 "${CMAKE_BINARY_DIR}" "${PROJECT_SOURCE_DIR}")
set_tests_properties(sdk_out_of_tree PROPERTIES TIMEOUT 300)
