# Tests of the log_analysis plugin (see plugins/log_analysis/README.md).
add_executable(la_cli log_analysis/la_cli.c)
target_link_libraries(la_cli PRIVATE la_engine)
