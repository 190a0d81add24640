# The plugin ABI baseline: the header must stay self-contained C99 and its
# structs may only grow (plugin-sdk/abi/v1.baseline).
add_executable(abi_dump ${CMAKE_CURRENT_LIST_DIR}/abi/abi_dump.c)
target_include_directories(abi_dump PRIVATE "${PROJECT_SOURCE_DIR}/plugin-sdk/include")
set_target_properties(abi_dump PROPERTIES C_STANDARD 99 C_EXTENSIONS OFF)
target_compile_options(abi_dump PRIVATE -pedantic -Werror)
add_test(NAME abi_baseline
         COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/abi/abi_check.sh $<TARGET_FILE:abi_dump>
                 ${PROJECT_SOURCE_DIR}/plugin-sdk/abi/v1.baseline)
