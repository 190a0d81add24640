# Packaging: the systemd units, debian/ and the RPM spec, checked cheaply
# (tests/packaging/check_units.sh). The real dpkg-buildpackage build is not
# here (minutes): docs/install.md says how to run it.
foreach(mode units control install)
  add_test(NAME packaging_${mode}
           COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/packaging/check_units.sh ${mode})
  set_tests_properties(packaging_${mode} PROPERTIES TIMEOUT 60 LABELS packaging
    ENVIRONMENT "${PGR_TEST_ENV};PGR_BIN=$<TARGET_FILE:pgreviewer>")
endforeach()
# The checks above can fail: broken copies of the tree, exact messages.
add_test(NAME packaging_negative
         COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/packaging/negative.sh)
set_tests_properties(packaging_negative PROPERTIES TIMEOUT 120 LABELS packaging
  ENVIRONMENT "${PGR_TEST_ENV};PGR_BIN=$<TARGET_FILE:pgreviewer>")
