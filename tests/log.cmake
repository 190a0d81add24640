# Structured logging (core/log.c).
pgr_add_unit_test(test_log ${CMAKE_CURRENT_LIST_DIR}/unit/test_log.c)
