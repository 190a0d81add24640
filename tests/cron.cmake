# Cron engine and time zones (issue 4): parser, next fire with DST rules,
# a differential test against a brute-force enumerator built on libc, and
# the "pgreviewer cron next" command.
pgr_add_unit_test(test_cron_parse ${CMAKE_CURRENT_LIST_DIR}/cron/test_cron_parse.c)
pgr_add_unit_test(test_cron_next ${CMAKE_CURRENT_LIST_DIR}/cron/test_cron_next.c)
pgr_add_unit_test(test_cron_diff ${CMAKE_CURRENT_LIST_DIR}/cron/test_cron_diff.c)
pgr_add_unit_test(test_cron_cli ${CMAKE_CURRENT_LIST_DIR}/cron/test_cron_cli.c)
pgr_add_unit_test(test_cron_heap ${CMAKE_CURRENT_LIST_DIR}/cron/test_cron_heap.c)
