# The configuration loader (core/config.c): fixtures in tests/data/config/.
pgr_add_unit_test(test_config ${CMAKE_CURRENT_LIST_DIR}/unit/test_config.c)
