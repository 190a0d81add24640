# Tests of the log_analysis plugin (see plugins/log_analysis/README.md).
add_executable(la_cli log_analysis/la_cli.c)
target_link_libraries(la_cli PRIVATE la_engine)

# The figures on the three sample logs against pgBadger 12's summaries.
find_package(Python3 COMPONENTS Interpreter)
set(LA_DATA_DIR "/work/shared/data/pglog" CACHE PATH "pgBadger reference data (small.*.xz, *.summary.json)")
if(Python3_FOUND AND EXISTS "${LA_DATA_DIR}/stderr.summary.json")
  foreach(v stderr csv jsonlog)
    add_test(NAME la_summary_${v}
             COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/log_analysis/check_summary.py
                     $<TARGET_FILE:la_cli> ${LA_DATA_DIR} ${v})
  endforeach()
  # Incremental state across appends, rotation (rename, copytruncate, gzip)
  # and truncation.
  add_test(NAME la_incremental
           COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/log_analysis/test_incremental.py
                   $<TARGET_FILE:la_cli> ${LA_DATA_DIR})
endif()
