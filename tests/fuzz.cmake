# Fuzz targets of the core's parsers (built with -DPGREVIEWER_FUZZ=ON).
pgr_add_fuzzer(fuzz_yaml ${CMAKE_CURRENT_LIST_DIR}/fuzz/fuzz_yaml.c)
