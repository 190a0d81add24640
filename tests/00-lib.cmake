# tests/lib: the harness every test that needs a real server links.
add_library(pgr_testenv STATIC ${CMAKE_CURRENT_LIST_DIR}/lib/testenv.c)
target_include_directories(pgr_testenv PUBLIC ${CMAKE_CURRENT_LIST_DIR}/lib)
target_link_libraries(pgr_testenv PUBLIC PkgConfig::LIBPQ)
